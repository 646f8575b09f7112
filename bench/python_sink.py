"""The per-event Python sink that flowbridge is compared with: the way a Jina user writes a
CloudEvents sink today.

    python bench/python_sink.py --port HTTP_PORT --gateway grpc://127.0.0.1:FLOW_PORT

FastAPI + uvicorn (one worker) receive the event, the Python CloudEvents SDK (cloudevents 2.2,
``cloudevents.core.bindings.http``) parses it (binary or structured mode), and the async
``jina.Client`` sends it to the Flow as one request with one document, exactly as flowbridge's
default mapping would (id = event id; JSON object data → tags, ``text`` → text). The answer is
202 once the Flow answered, 400 for an event the SDK rejects, 502 when the Flow call fails.
Prints ``SINK READY port=P`` on stdout once it serves.
"""

import argparse
import os

os.environ.setdefault("JINA_OPTOUT_TELEMETRY", "1")
os.environ.setdefault("JINA_LOG_LEVEL", "WARNING")

import uvicorn  # noqa: E402
from cloudevents.core.bindings.http import HTTPMessage, from_http_event  # noqa: E402
from docarray import Document, DocumentArray  # noqa: E402
from fastapi import FastAPI, Request, Response  # noqa: E402
from jina import Client  # noqa: E402


def make_app(gateway: str) -> FastAPI:
    app = FastAPI()
    client = Client(host=gateway, asyncio=True)

    @app.post("/")
    async def receive(request: Request) -> Response:
        body = await request.body()
        try:
            event = from_http_event(HTTPMessage(headers=dict(request.headers), body=body))
        except Exception as exc:  # the SDK's validation errors
            return Response(status_code=400, content=f"invalid CloudEvent: {exc}")
        data = event.get_data()
        doc = Document(id=event.get_id())
        if isinstance(data, dict):
            doc.tags = data
            if isinstance(data.get("text"), str):
                doc.text = data["text"]
        elif isinstance(data, str):
            doc.text = data
        doc.tags["cloudevent"] = {
            "id": event.get_id(),
            "source": event.get_source(),
            "type": event.get_type(),
        }
        try:
            async for _ in client.post("/", inputs=DocumentArray([doc])):
                pass
        except Exception as exc:
            return Response(status_code=502, content=f"Flow call failed: {exc}")
        return Response(status_code=202)

    return app


class _Server(uvicorn.Server):
    async def startup(self, sockets=None):
        await super().startup(sockets)
        print(f"SINK READY port={self.config.port}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--gateway", required=True, help="grpc://127.0.0.1:PORT of the Flow")
    args = parser.parse_args()
    config = uvicorn.Config(
        make_app(args.gateway),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )
    _Server(config).run()


if __name__ == "__main__":
    main()
