"""The benchmarks' Flow: one executor doing trivial work per document, gRPC gateway on loopback.

    python bench/flow_fast.py --port P

Starts a Jina 3.34 Flow with a gRPC gateway on 127.0.0.1:P and one executor, ``fast``, whose
only work is to tag every document with the length of its text (so each document is really
read and written, but no model runs). Prints ``FLOW READY port=P`` on stdout once the gateway
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
    """Touches every document once: tags.n = len(text)."""

    @requests
    def fast(self, docs, **kwargs):
        for d in docs:
            d.tags["n"] = len(d.text or "")


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
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.watch_stdin:
        threading.Thread(target=_watch_stdin, args=(stop,), daemon=True).start()

    flow = Flow(protocol="grpc", port=args.port, host="127.0.0.1").add(name="fast", uses=Fast)
    started = time.monotonic()
    with flow:
        if stop.is_set():
            return
        print(f"FLOW READY port={args.port} after {time.monotonic() - started:.1f}s", flush=True)
        flow.block(stop_event=stop)


if __name__ == "__main__":
    main()
