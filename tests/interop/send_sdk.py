"""Interop check with the Python CloudEvents SDK (cloudevents 2.2.0, from the jina venv).

    send_sdk.py URL --mode binary|structured --type T --source S
                [--data JSON | --data-text TEXT | --data-base64 B64] [--datacontenttype CT]
                [--api core|legacy] [--id ID] [--subject S] [--ext NAME=VALUE ...]
                [--no-reply] [--timeout SECONDS]

Builds an event with the SDK, encodes it with the SDK's own HTTP binding (binary or structured
content mode), POSTs it to URL with `Prefer: reply` (unless --no-reply) using only http.client,
which adds no header of its own but Host, Content-Length and Accept-Encoding (urllib would add a
form Content-Type to a body without one), then parses any reply with the SDK's own HTTP reader.
`--datacontenttype ""` leaves the attribute out, as most SDK users do: `to_binary` then sends no
Content-Type at all. Prints one JSON object on stdout:

    {"status": 200,
     "headers": {...response headers, lower-cased...},
     "reply": {...reply attributes..., "data": ...} | null,
     "reply_error": "why the SDK could not read the reply" | null,
     "body": "response body as text, when it was not a reply event" | null}

`--api core` (default) uses the SDK 2.x API (`cloudevents.core`); `--api legacy` uses the 1.x
API kept in 2.x as `cloudevents.v1` (`http.CloudEvent`, `conversion.to_binary`/`to_structured`,
`http.from_http`), which is what most existing user code calls. Exit code 0 whenever an HTTP
answer arrived, whatever its status; 2 on usage or connection errors.

Note: both SDK readers fill in `time` (now) when the reply has none, so whether the reply carried
a `time` cannot be seen in "reply" (look at "headers" for binary mode).
"""

import argparse
import base64
import json
import sys
import http.client
import urllib.parse


def build_and_encode(args, data):
    attributes = {"type": args.type, "source": args.source}
    if args.id:
        attributes["id"] = args.id
    if args.subject:
        attributes["subject"] = args.subject
    if data is not None and args.datacontenttype:
        attributes["datacontenttype"] = args.datacontenttype
    for ext in args.ext:
        name, _, value = ext.partition("=")
        attributes[name] = value

    if args.api == "core":
        from cloudevents.core.bindings import http as ce_http
        from cloudevents.core.v1.event import CloudEvent

        event = CloudEvent(attributes, data)
        encode = ce_http.to_binary_event if args.mode == "binary" else ce_http.to_structured_event
        message = encode(event)
        return dict(message.headers), message.body

    from cloudevents.v1.conversion import to_binary, to_structured
    from cloudevents.v1.http import CloudEvent

    event = CloudEvent(attributes, data)
    encode = to_binary if args.mode == "binary" else to_structured
    headers, body = encode(event)
    return dict(headers), body


def read_reply(api, headers, body):
    """The reply event as {attributes..., data}, parsed by the SDK."""
    if api == "core":
        from cloudevents.core.bindings import http as ce_http

        event = ce_http.from_http_event(ce_http.HTTPMessage(headers=headers, body=body))
        attributes = dict(event.get_attributes())
        data = event.get_data()
    else:
        from cloudevents.v1.http import from_http

        event = from_http(headers, body)
        attributes = dict(event.get_attributes())
        data = event.get_data()
    reply = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in attributes.items()}
    if isinstance(data, (bytes, bytearray)):
        reply["data_base64"] = base64.b64encode(bytes(data)).decode("ascii")
    else:
        reply["data"] = data
    return reply


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--mode", choices=["binary", "structured"], required=True)
    parser.add_argument("--type", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--data", help="event data as JSON text (omit for an event without data)")
    parser.add_argument("--data-text", help="event data: this string")
    parser.add_argument("--data-base64", help="event data: these bytes")
    parser.add_argument("--datacontenttype", default="application/json")
    parser.add_argument("--api", choices=["core", "legacy"], default="core")
    parser.add_argument("--id")
    parser.add_argument("--subject")
    parser.add_argument("--ext", action="append", default=[], metavar="NAME=VALUE",
                        help="extension attribute (repeatable)")
    parser.add_argument("--no-reply", action="store_true", help="do not send Prefer: reply")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()

    try:
        data = json.loads(args.data) if args.data is not None else None
    except json.JSONDecodeError as e:
        parser.error(f"--data is not JSON: {e}")
    if args.data_text is not None:
        data = args.data_text
    if args.data_base64 is not None:
        data = base64.b64decode(args.data_base64)

    headers, body = build_and_encode(args, data)
    if not args.no_reply:
        headers["Prefer"] = "reply"
    url = urllib.parse.urlsplit(args.url)
    try:
        connection = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=args.timeout)
        connection.request("POST", url.path or "/", body=body or b"", headers=headers)
        response = connection.getresponse()
        status, resp_headers, resp_body = response.status, response.headers, response.read()
        connection.close()
    except OSError as e:
        print(f"send_sdk.py: cannot POST to {args.url}: {e}", file=sys.stderr)
        return 2

    lowered = {k.lower(): v for k, v in resp_headers.items()}
    out = {"status": status, "headers": lowered, "reply": None, "reply_error": None, "body": None}
    is_event = any(k.startswith("ce-") for k in lowered) or lowered.get(
        "content-type", ""
    ).startswith("application/cloudevents+json")
    if is_event:
        try:
            out["reply"] = read_reply(args.api, lowered, resp_body)
        except Exception as e:  # report, don't crash: the test asserts on it
            out["reply_error"] = f"{type(e).__name__}: {e}"
    if out["reply"] is None and resp_body:
        out["body"] = resp_body.decode("utf-8", errors="replace")
    print(json.dumps(out, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
