"""The demo's Jina Flow: one `HeavyExecutor` behind a gRPC gateway.

    python scripts/demo_flow.py [--port 54321]

`HeavyExecutor` stands for a slow model: its bare `@requests` handler (every endpoint) waits
`DEMO_SLEEP` seconds (default 0.2), then for each document upper-cases its text (when it has
some) and sets `tags.processed_by = "HeavyExecutor"`. The gateway listens on 127.0.0.1:PORT.
Prints `FLOW READY` once it serves; SIGTERM / SIGINT stop it cleanly.
"""

import argparse
import os
import signal
import threading
import time

os.environ.setdefault("JINA_OPTOUT_TELEMETRY", "1")
os.environ.setdefault("JINA_LOG_LEVEL", "WARNING")
os.environ.setdefault("JINA_DEFAULT_HOST", "127.0.0.1")

from jina import Executor, Flow, requests  # noqa: E402


class HeavyExecutor(Executor):
    """Pretends to be expensive, then marks every document it processed."""

    def __init__(self, sleep: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        self._sleep = sleep

    @requests
    def process(self, docs, **kwargs):
        time.sleep(self._sleep)
        for d in docs:
            if d.text:
                d.text = d.text.upper()
            d.tags["processed_by"] = "HeavyExecutor"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=54321, help="gRPC gateway port (default 54321)")
    args = parser.parse_args()
    sleep = float(os.environ.get("DEMO_SLEEP", "0.2"))

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    flow = Flow(protocol="grpc", port=args.port, host="127.0.0.1").add(
        name="heavy", uses=HeavyExecutor, uses_with={"sleep": sleep}
    )
    with flow:
        if stop.is_set():
            return
        print(f"FLOW READY grpc://127.0.0.1:{args.port} (HeavyExecutor, sleep {sleep}s)", flush=True)
        flow.block(stop_event=stop)


if __name__ == "__main__":
    main()
