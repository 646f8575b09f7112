"""The Flow's own ceiling: documents per second when fed directly in big batches.

    python bench/flow_ceiling.py --gateway grpc://127.0.0.1:P [--batch 256] [--concurrency 4]
                                 [--duration 15] [--warmup 2]

``--concurrency`` coroutines share one async ``jina.Client`` and each posts requests of
``--batch`` documents (short texts, built once per coroutine) back to back. After a warm-up, it
counts the documents of every answered request for ``--duration`` seconds and prints one JSON
object: ``{"docs_per_s", "requests", "docs", "errors", "elapsed_s", "batch", "concurrency"}``.
"""

import argparse
import asyncio
import json
import os
import time

os.environ.setdefault("JINA_OPTOUT_TELEMETRY", "1")
os.environ.setdefault("JINA_LOG_LEVEL", "WARNING")

from docarray import Document, DocumentArray  # noqa: E402
from jina import Client  # noqa: E402


async def worker(client, index, batch, until, counts, measuring):
    docs = DocumentArray(
        [Document(id=f"c{index}-{i}", text=f"hello from the ceiling {i}") for i in range(batch)]
    )
    while time.monotonic() < until:
        try:
            n = 0
            async for answer in client.post("/", inputs=docs, request_size=batch):
                n += len(answer)
            if measuring():
                counts["requests"] += 1
                counts["docs"] += n
        except Exception as exc:
            counts["errors"] += 1
            counts["error"] = repr(exc)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()

    client = Client(host=args.gateway, asyncio=True)
    start = time.monotonic()
    measure_from = start + args.warmup
    until = measure_from + args.duration
    counts = {"requests": 0, "docs": 0, "errors": 0}
    await asyncio.gather(
        *(
            worker(client, i, args.batch, until, counts, lambda: time.monotonic() >= measure_from)
            for i in range(args.concurrency)
        )
    )
    elapsed = time.monotonic() - measure_from
    print(
        json.dumps(
            {
                "docs_per_s": counts["docs"] / elapsed,
                "requests": counts["requests"],
                "docs": counts["docs"],
                "errors": counts["errors"],
                "error": counts.get("error"),
                "elapsed_s": elapsed,
                "batch": args.batch,
                "concurrency": args.concurrency,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
