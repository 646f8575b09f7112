"""The real Jina 3.34 Flow that flowbridge's integration tests talk to.

    python tests/flow/flow.py --port P --record FILE [--executor-name recorder] [--watch-stdin]

Starts a Flow with a gRPC gateway on 127.0.0.1:P and two executors, in this order:

* ``recorder`` (class ``Recorder``, name overridable): a bare ``@requests`` handler, so it takes
  every endpoint. For each request it appends one JSON line to FILE as soon as the request
  arrives (before sleeping or raising), describing exactly what it received (endpoint,
  request_id, parameters, every document field, chunks and matches included), then marks
  the documents (``tags.seen_by = "recorder"``, ``tags.length = len(text)`` when text is set).
  ``parameters.sleep = <seconds>`` makes it wait before answering (timeout tests);
  ``parameters.raise = true`` or a document with ``tags.raise == true`` makes it raise
  ``ValueError("boom", <doc id>)`` (executor error tests).
* ``tagger`` (class ``Tagger``): sets ``tags.tagged_by = "tagger"``. A request sent with
  ``target_executor = "recorder"`` skips it, which makes target_executor observable.

With ``--traces-port PORT`` jina's own tracing is on: the gateway and the executors export their
spans over OTLP/gRPC to 127.0.0.1:PORT (``tests/tracing.rs`` checks that the gateway continues
flowbridge's trace).

Prints ``FLOW READY`` on stdout once the gateway serves. SIGTERM / SIGINT stop the Flow cleanly.
With ``--watch-stdin`` the Flow also stops when its stdin reaches EOF (the test process that
started it has exited, even by SIGKILL); if a clean stop takes too long, the whole process group
is killed, which is why the caller must start this script in its own process group.
"""

import argparse
import asyncio
import base64
import contextvars
import json
import os
import signal
import threading
import time

# Quiet, offline start: no telemetry calls, no colour codes in logs captured to files.
os.environ.setdefault("JINA_OPTOUT_TELEMETRY", "1")
os.environ.setdefault("JINA_LOG_NO_COLOR", "1")
os.environ.setdefault("JINA_LOG_LEVEL", "WARNING")
# Internal executor ports and the gateway bind to loopback only.
os.environ.setdefault("JINA_DEFAULT_HOST", "127.0.0.1")

from jina import Executor, Flow, requests  # noqa: E402

# Jina hands a handler only `docs`, `parameters`, `docs_matrix`, `docs_map` and `tracing_context`:
# the endpoint is not among them, and for a bare `@requests` handler jina has already replaced it
# by "/default". The request header still has it, so the worker's request handler is wrapped to
# publish the header of the request being handled in a context variable. Async handlers run in
# the same task, so they can read it.
_CURRENT_HEADER = contextvars.ContextVar("flowbridge_current_header", default=None)


def _install_header_probe():
    from jina.serve.runtimes.worker.request_handling import WorkerRequestHandler

    if getattr(WorkerRequestHandler.handle, "_flowbridge_probe", False):
        return
    original = WorkerRequestHandler.handle

    async def handle(self, requests, *args, **kwargs):
        token = _CURRENT_HEADER.set(requests[0].header if requests else None)
        try:
            return await original(self, requests, *args, **kwargs)
        finally:
            _CURRENT_HEADER.reset(token)

    handle._flowbridge_probe = True
    WorkerRequestHandler.handle = handle


def _ndarray(value):
    """An embedding/tensor as {values, shape, dtype}, or None when unset."""
    if value is None:
        return None
    try:
        import numpy as np

        arr = np.asarray(value)
        return {
            "values": arr.reshape(-1).tolist(),
            "shape": list(arr.shape),
            "dtype": str(arr.dtype),
        }
    except Exception as exc:  # an exotic tensor type: say what it was rather than crash
        return {"unreadable": repr(exc), "type": type(value).__name__}


def _doc(d):
    return {
        "id": d.id,
        "parent_id": d.parent_id or None,
        "granularity": d.granularity,
        "adjacency": d.adjacency,
        "text": d.text or None,
        "uri": d.uri or None,
        "mime_type": d.mime_type or None,
        "tags": dict(d.tags) if d.tags else {},
        "blob": base64.b64encode(d.blob).decode("ascii") if d.blob else None,
        "embedding": _ndarray(d.embedding),
        "tensor": _ndarray(d.tensor),
        "weight": d.weight,
        "modality": d.modality or None,
        "scores": {k: v.value for k, v in d.scores.items()} if d.scores else {},
        "chunks": [_doc(c) for c in d.chunks],
        "matches": [_doc(m) for m in d.matches],
    }


def _truthy(value):
    return value is True or (isinstance(value, str) and value.lower() == "true")


class Recorder(Executor):
    """Appends what it received to the record file, marks the docs, can sleep or raise."""

    def __init__(self, record: str = "", **kwargs):
        super().__init__(**kwargs)
        _install_header_probe()
        self._record = record
        self._lock = threading.Lock()

    @requests
    async def record(self, docs, parameters, **kwargs):
        header = _CURRENT_HEADER.get()
        parameters = dict(parameters or {})
        entry = {
            "executor": self.runtime_args.name.split("/")[0],
            "endpoint": header.exec_endpoint if header is not None else None,
            "request_id": header.request_id if header is not None else None,
            "handler_kwargs": sorted(["docs", "parameters", *kwargs]),
            "parameters": parameters,
            "docs": [_doc(d) for d in docs],
        }
        line = json.dumps(entry, sort_keys=True, default=repr)
        with self._lock, open(self._record, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()

        sleep = parameters.get("sleep", 0) or 0
        if sleep:
            await asyncio.sleep(float(sleep))

        if _truthy(parameters.get("raise")):
            raise ValueError("boom", docs[0].id if len(docs) else "")
        for d in docs:
            if _truthy(d.tags.get("raise")):
                raise ValueError("boom", d.id)

        for d in docs:
            d.tags["seen_by"] = "recorder"
            if d.text:
                d.tags["length"] = len(d.text)


class Tagger(Executor):
    """Second step of the Flow: shows whether a request went past the recorder."""

    @requests
    def tag(self, docs, **kwargs):
        for d in docs:
            d.tags["tagged_by"] = "tagger"


def _watch_stdin(stop):
    """Stop the Flow when stdin closes; kill the process group if stopping hangs."""
    # os.read on the raw descriptor, not sys.stdin: a thread blocked inside sys.stdin's buffer
    # holds its lock, and the executor processes jina forks would deadlock closing their stdin.
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
    parser.add_argument("--record", required=True, help="JSONL file the recorder appends to")
    parser.add_argument("--executor-name", default="recorder", help="deployment name of the recorder")
    parser.add_argument(
        "--watch-stdin",
        action="store_true",
        help="stop when stdin reaches EOF (the parent test process is gone)",
    )
    parser.add_argument(
        "--traces-port",
        type=int,
        help="turn on jina's tracing (gateway and executors): OTLP/gRPC to 127.0.0.1:PORT",
    )
    args = parser.parse_args()
    tracing = {}
    if args.traces_port:
        tracing = dict(
            tracing=True,
            traces_exporter_host="http://127.0.0.1",
            traces_exporter_port=args.traces_port,
        )

    record = os.path.abspath(args.record)
    open(record, "a", encoding="utf-8").close()

    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if args.watch_stdin:
        threading.Thread(target=_watch_stdin, args=(stop,), daemon=True).start()

    flow = (
        Flow(protocol="grpc", port=args.port, host="127.0.0.1", **tracing)
        .add(name=args.executor_name, uses=Recorder, uses_with={"record": record}, **tracing)
        .add(name="tagger", uses=Tagger, **tracing)
    )
    started = time.monotonic()
    with flow:
        if stop.is_set():
            return
        print(f"FLOW READY port={args.port} after {time.monotonic() - started:.1f}s", flush=True)
        flow.block(stop_event=stop)


if __name__ == "__main__":
    main()
