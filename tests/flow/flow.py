"""The real Jina 3.34 Flow that flowbridge's integration tests talk to.

    python tests/flow/flow.py --port P --record FILE [--protocol grpc|http|websocket]
                              [--executor-name recorder] [--watch-stdin]

Runs under either docarray: with the v1 venv (docarray 0.21, ``scripts/jina-requirements.txt``)
the Flow speaks ``DocumentArrayProto``; with the v2 venv (docarray 0.40,
``scripts/jina-v2-requirements.txt``) it speaks ``DocListProto``, and the executors below, whose
handlers have no type hints, receive ``DocList[LegacyDocumentJina]`` (jina's v1-shaped v2
document: id, text, url, blob, tensor, embedding, tags, scores, chunks, matches; no mime_type).

Starts a Flow with one gateway on 127.0.0.1:P speaking ``--protocol`` (gRPC by default, or HTTP:
v1 serves ``POST /post``, v2 serves ``POST /<endpoint>`` for every endpoint the executors
declare; or WebSocket: ``/`` takes one ``DataRequestProto`` per binary frame with the ``bytes``
subprotocol) and two executors, in this order:

* ``recorder`` (class ``Recorder``, name overridable): handles ``/index``, ``/search`` and
  ``/echo`` explicitly and every other endpoint through a bare ``@requests`` (``/default``). The
  explicit ones exist because a v2 HTTP gateway only routes the endpoints an executor declares.
  For each request it appends one JSON line to FILE as soon as the request arrives (before
  sleeping or raising), describing exactly what it received, in ONE shape for both docarray
  versions (see ``_doc``), so that tests can compare what executors see across Flows. Then it
  marks the documents (``tags.seen_by = "recorder"``, ``tags.length = len(text)`` when text is
  set). ``parameters.sleep = <seconds>`` makes it wait before answering (timeout tests);
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
from jina._docarray import docarray_v2  # noqa: E402

DOCARRAY = "v2" if docarray_v2 else "v1"
# Endpoints the recorder declares explicitly (see the module doc).
EXPLICIT_ENDPOINTS = ["/index", "/search", "/echo"]

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


def _scores(scores):
    """{name: value}: v1 NamedScores and v2 plain dicts alike."""
    out = {}
    for name, score in (scores or {}).items():
        value = getattr(score, "value", score)
        if isinstance(value, dict):
            value = value.get("value")
        out[name] = value
    return out


def _doc(d):
    """One received document, in the same JSON shape for docarray v1 and v2.

    Every key is always present; unset values are null (or {} / [] for tags, scores, chunks,
    matches). ``uri`` is v1 ``uri`` or v2 ``url``. ``mime_type`` exists only in v1: a v2
    ``LegacyDocumentJina`` has no such field, so it is always null on a v2 Flow.
    """
    if docarray_v2:
        uri = getattr(d, "url", None)
        mime_type = None
    else:
        uri = d.uri
        mime_type = d.mime_type
    blob = d.blob
    return {
        "id": d.id,
        "text": d.text or None,
        "uri": uri or None,
        "mime_type": mime_type or None,
        "tags": dict(d.tags) if d.tags else {},
        "blob": base64.b64encode(blob).decode("ascii") if blob else None,
        "embedding": _ndarray(d.embedding),
        "tensor": _ndarray(d.tensor),
        "scores": _scores(d.scores),
        "chunks": [_doc(c) for c in (d.chunks or [])],
        "matches": [_doc(m) for m in (d.matches or [])],
    }


def _truthy(value):
    return value is True or (isinstance(value, str) and value.lower() == "true")


class Recorder(Executor):
    """Appends what it received to the record file, marks the docs, can sleep or raise."""

    def __init__(self, record: str = "", protocol: str = "grpc", **kwargs):
        super().__init__(**kwargs)
        _install_header_probe()
        self._record = record
        self._protocol = protocol
        # Not `_lock`: jina's Executor keeps its own `_lock` (used around sync handlers such as
        # the built-in dry run), which a threading.Lock here would replace.
        self._record_lock = threading.Lock()

    @requests(on=EXPLICIT_ENDPOINTS)
    async def record_explicit(self, docs, parameters, **kwargs):
        await self._handle(docs, parameters)

    @requests
    async def record(self, docs, parameters, **kwargs):
        await self._handle(docs, parameters)

    async def _handle(self, docs, parameters):
        header = _CURRENT_HEADER.get()
        parameters = dict(parameters or {})
        entry = {
            "executor": self.runtime_args.name.split("/")[0],
            "docarray": DOCARRAY,
            "protocol": self._protocol,
            "endpoint": header.exec_endpoint if header is not None else None,
            "request_id": header.request_id if header is not None else None,
            "parameters": parameters,
            "docs": [_doc(d) for d in docs],
        }
        line = json.dumps(entry, sort_keys=True, default=repr)
        with self._record_lock, open(self._record, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()

        sleep = parameters.get("sleep", 0) or 0
        if sleep:
            await asyncio.sleep(float(sleep))

        if _truthy(parameters.get("raise")):
            raise ValueError("boom", docs[0].id if len(docs) else "")
        for d in docs:
            if _truthy((d.tags or {}).get("raise")):
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
    parser.add_argument("--port", type=int, required=True, help="gateway port on 127.0.0.1")
    parser.add_argument(
        "--protocol", choices=["grpc", "http", "websocket"], default="grpc", help="the gateway's protocol"
    )
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
        Flow(protocol=args.protocol, port=args.port, host="127.0.0.1", **tracing)
        .add(
            name=args.executor_name,
            uses=Recorder,
            uses_with={"record": record, "protocol": args.protocol},
            **tracing,
        )
        .add(name="tagger", uses=Tagger, **tracing)
    )
    started = time.monotonic()
    with flow:
        if stop.is_set():
            return
        print(
            f"FLOW READY port={args.port} protocol={args.protocol} docarray={DOCARRAY}"
            f" after {time.monotonic() - started:.1f}s",
            flush=True,
        )
        flow.block(stop_event=stop)


if __name__ == "__main__":
    main()
