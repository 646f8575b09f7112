"""The benchmarks' Flow: one executor doing trivial work per document, gRPC gateway on loopback.

    python bench/flow_fast.py --port P [--request-ms 20 --doc-ms 0.2]

Starts a Jina 3.34 Flow with a gRPC gateway on 127.0.0.1:P and one executor, ``fast``, whose
only work is to tag every document with the length of its text (so each document is really
read and written, but no model runs). With ``--request-ms``/``--doc-ms`` the executor also
waits that long per request plus per document, like a small GPU model (the wait is a sleep: the
time is the model's, not the CPU's, and one request is served at a time, as one model replica
does). Prints ``FLOW READY port=P`` on stdout once the gateway
serves; SIGTERM / SIGINT stop it, and so does EOF on stdin when ``--watch-stdin`` is given (the
benchmark runner holds the pipe, so the Flow cannot outlive it).
"""

import argparse
import os
import signal
import threading
import time

os.environ.setdefault("JINA_OPTOUT_TELEMETRY", "1")
os.environ.setdefault("JINA_LOG_NO_COLOR", "1")
os.environ.setdefault("JINA_LOG_LEVEL", "WARNING")
os.environ.setdefault("JINA_DEFAULT_HOST", "127.0.0.1")

from jina import Executor, Flow, requests  # noqa: E402


class Fast(Executor):
    """Touches every document once: tags.n = len(text); then waits request_ms + doc_ms × docs."""

    def __init__(self, request_ms: float = 0.0, doc_ms: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self._request_s = request_ms / 1000.0
        self._doc_s = doc_ms / 1000.0

    @requests
    def fast(self, docs, **kwargs):
        for d in docs:
            d.tags["n"] = len(d.text or "")
        wait = self._request_s + self._doc_s * len(docs)
        if wait > 0:
            # A sync handler: jina runs one at a time per replica, as a model on one GPU would.
            time.sleep(wait)


def _watch_stdin(stop):
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    stop.set()
    time.sleep(15)
    if os.getpgid(0) == os.getpid():
        os.killpg(0, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="gRPC gateway port on 127.0.0.1")
    parser.add_argument("--watch-stdin", action="store_true", help="stop when stdin reaches EOF")
    parser.add_argument("--request-ms", type=float, default=0.0, help="model time per request")
    parser.add_argument("--doc-ms", type=float, default=0.0, help="model time per document")
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.watch_stdin:
        threading.Thread(target=_watch_stdin, args=(stop,), daemon=True).start()

    flow = Flow(protocol="grpc", port=args.port, host="127.0.0.1").add(
        name="fast",
        uses=Fast,
        uses_with={"request_ms": args.request_ms, "doc_ms": args.doc_ms},
    )
    started = time.monotonic()
    with flow:
        if stop.is_set():
            return
        print(f"FLOW READY port={args.port} after {time.monotonic() - started:.1f}s", flush=True)
        flow.block(stop_event=stop)


if __name__ == "__main__":
    main()
