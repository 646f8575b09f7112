// Interop check with the JavaScript CloudEvents SDK (cloudevents 10.0.0, from npm).
//
//     node send_js.mjs URL --type T --source S --id ID [--mode binary|structured]
//                      [--data-json JSON | --data-text TEXT | --data-base64 B64]
//
// Builds a CloudEvent with the SDK (no datacontenttype given: the SDK picks it), encodes it with
// the SDK's own HTTP binding (`HTTP.binary` or `HTTP.structured`), and POSTs exactly those headers
// and that body to URL with node:http, which adds only Host, Content-Length and Connection.
// Prints one JSON object: {"status": 202, "sent": {"headers": {...}, "body": "..."}, "body": "..."}.
// Exit code 0 whenever an HTTP answer arrived, 2 on usage or connection errors.
import http from "node:http";
import { CloudEvent, HTTP } from "cloudevents";

function parse(argv) {
  const args = { mode: "binary" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) {
      args.url = a;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${a} needs a value`);
    args[a.slice(2)] = value;
  }
  for (const required of ["url", "type", "source", "id"]) {
    if (!args[required]) throw new Error(`missing ${required}`);
  }
  return args;
}

function main() {
  let args;
  try {
    args = parse(process.argv.slice(2));
  } catch (e) {
    console.error(`send_js.mjs: ${e.message}`);
    process.exit(2);
  }
  const attributes = { type: args.type, source: args.source, id: args.id };
  if (args["data-json"] !== undefined) attributes.data = JSON.parse(args["data-json"]);
  if (args["data-text"] !== undefined) attributes.data = args["data-text"];
  if (args["data-base64"] !== undefined) attributes.data = Buffer.from(args["data-base64"], "base64");
  const event = new CloudEvent(attributes);
  const message = args.mode === "structured" ? HTTP.structured(event) : HTTP.binary(event);
  const body = typeof message.body === "string" || Buffer.isBuffer(message.body)
    ? message.body
    : JSON.stringify(message.body);
  const url = new URL(args.url);
  const request = http.request(
    { host: url.hostname, port: url.port, path: url.pathname, method: "POST", headers: message.headers },
    (response) => {
      const chunks = [];
      response.on("data", (c) => chunks.push(c));
      response.on("end", () => {
        const out = {
          status: response.statusCode,
          sent: { headers: message.headers, body: Buffer.from(body).toString("utf8") },
          body: Buffer.concat(chunks).toString("utf8"),
        };
        console.log(JSON.stringify(out));
      });
    },
  );
  request.on("error", (e) => {
    console.error(`send_js.mjs: cannot POST to ${args.url}: ${e.message}`);
    process.exit(2);
  });
  request.end(body);
}

main();
