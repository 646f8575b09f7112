"""The soak's Flow: one recording executor, gRPC gateway on loopback.

    python bench/soak_flow.py --port P --record FILE [--watch-stdin]

Starts a Jina 3.34 Flow with a gRPC gateway on 127.0.0.1:P and one executor, ``recorder``, which
appends the id of every document it receives to FILE (one id per line, written and flushed
before the request is answered, so an event answered 2xx by flowbridge is already in the file
when the sender sees the 2xx). The file is opened in append mode: a restarted Flow keeps adding
to the same record, which is how bench/soak.py counts lost events across Flow restarts.

Lighter than tests/flow/flow.py's recorder (which writes every field of every document as JSON,
about 400 bytes a document, plus a second executor): at 1,000 events/s for 15 minutes this file
stays around 30 MB and the executor's CPU stays small next to flowbridge's.

Prints ``FLOW READY port=P`` on stdout once the gateway serves; SIGTERM / SIGINT stop it, and so
does EOF on stdin with ``--watch-stdin`` (the soak holds the pipe, so the Flow cannot outlive it
even when the soak is killed).
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


class Recorder(Executor):
    """Appends one line per received document id to `record`, then marks the documents."""

    def __init__(self, record: str = "", **kwargs):
        super().__init__(**kwargs)
        # O_APPEND: one write per request lands whole at the end of the file, even if a
        # previous Flow was killed in the middle of a line.
        self._fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._record_lock = threading.Lock()

    @requests
    def record(self, docs, **kwargs):
        ids = [d.id for d in docs]
        if ids:
            data = ("\n".join(ids) + "\n").encode()
            with self._record_lock:
                os.write(self._fd, data)
        for d in docs:
            d.tags["recorded"] = True


def _watch_stdin(stop):
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    stop.set()
    time.sleep(15)
    # Still alive: the clean stop hung. Only kill the group if it is ours alone.
    if os.getpgid(0) == os.getpid():
        os.killpg(0, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="gRPC gateway port on 127.0.0.1")
    parser.add_argument("--record", required=True, help="file the recorder appends document ids to")
    parser.add_argument("--watch-stdin", action="store_true", help="stop when stdin reaches EOF")
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.watch_stdin:
        threading.Thread(target=_watch_stdin, args=(stop,), daemon=True).start()

    record = os.path.abspath(args.record)
    open(record, "a").close()
    flow = Flow(protocol="grpc", port=args.port, host="127.0.0.1").add(
        name="recorder", uses=Recorder, uses_with={"record": record}
    )
    started = time.monotonic()
    with flow:
        if stop.is_set():
            return
        print(f"FLOW READY port={args.port} after {time.monotonic() - started:.1f}s", flush=True)
        flow.block(stop_event=stop)


if __name__ == "__main__":
    main()
