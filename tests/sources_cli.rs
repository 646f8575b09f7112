//! The sources in our users' hands and the CLI: the example configs in `config/` with events shaped
//! exactly as PingSource, KafkaSource and a Broker Trigger send them, replies to `reply.to` sinks,
//! the Python CloudEvents SDK as a sender and reply reader, and `check` / `explain` / `send`.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{unique, write_config};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::{FlowBridge, JinaFlow, flowbridge_bin, repo_root, shared_flow};

/// An example config from `config/`, pointed at the test Flow.
fn example(name: &str, flow: &JinaFlow) -> PathBuf {
    let text = std::fs::read_to_string(repo_root().join("config").join(name)).unwrap();
    let text = text.replace(
        "grpc://gateway.default.svc.cluster.local:8080",
        &flow.grpc_url(),
    );
    write_config(&text)
}

fn record_for(flow: &JinaFlow, doc_id: &str) -> Value {
    flow.wait_for_record(Duration::from_secs(5), |r| {
        r["docs"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["id"] == doc_id))
    })
    .unwrap_or_else(|| panic!("the executor never received doc {doc_id}"))
}

#[test]
fn pingsource_events_run_the_flow() {
    let flow = shared_flow();
    let bridge = FlowBridge::start(&example("pingsource.yaml", flow));
    // PingSource: binary mode, fresh UUID id, send time, spec.contentType + spec.data, no Prefer.
    let id = uuid::Uuid::new_v4().to_string();
    let r = bridge.request(
        "POST",
        "/",
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", &id),
            ("ce-type", "dev.knative.sources.ping"),
            (
                "ce-source",
                "/apis/v1/namespaces/default/pingsources/nightly-reindex",
            ),
            ("ce-time", "2026-11-27T03:00:00.412Z"),
            ("content-type", "application/json"),
            ("kn-namespace", "default"),
        ],
        br#"{"message": "Hello world!"}"#,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let record = record_for(flow, &id);
    assert_eq!(record["endpoint"], "/reindex");
    assert_eq!(record["parameters"]["collection"], "default");
    let doc = &record["docs"][0];
    assert_eq!(doc["text"], "Hello world!");
    assert_eq!(doc["tags"]["scheduled_at"], "2026-11-27T03:00:00.412Z");

    // The same tick from a PingSource without spec.contentType (its default): no Content-Type
    // header at all. The body is read as JSON, so the CEL mapping runs the Flow (it used to be a
    // 422 "no overload for bytes", which a PingSource drops: the tick was lost).
    let id = uuid::Uuid::new_v4().to_string();
    let tick = |id: &str, source: &str, body: &[u8]| {
        bridge.request(
            "POST",
            "/",
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", id),
                ("ce-type", "dev.knative.sources.ping"),
                ("ce-source", source),
                ("ce-time", "2026-11-27T03:01:00Z"),
                ("kn-namespace", "default"),
            ],
            body,
        )
    };
    let nightly = "/apis/v1/namespaces/default/pingsources/nightly-reindex";
    let r = tick(
        &id,
        nightly,
        br#"{"message": "reindex", "collection": "articles"}"#,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let record = record_for(flow, &id);
    assert_eq!(record["endpoint"], "/reindex");
    assert_eq!(record["parameters"]["collection"], "articles");
    assert_eq!(record["docs"][0]["text"], "reindex");
    // tags.cloudevent says what was received: no datacontenttype.
    let id = uuid::Uuid::new_v4().to_string();
    let heartbeat = "/apis/v1/namespaces/default/pingsources/heartbeat";
    let r = tick(&id, heartbeat, br#"{"beat": 1}"#);
    assert_eq!(r.status, 202, "{}", r.text());
    let doc = &record_for(flow, &id)["docs"][0];
    assert_eq!(doc["tags"]["beat"], 1.0, "{doc}");
    assert!(
        doc["tags"]["cloudevent"].get("datacontenttype").is_none(),
        "{doc}"
    );

    // dataBase64 and no contentType: text when it is UTF-8, bytes (a blob) when it is not.
    let id = uuid::Uuid::new_v4().to_string();
    let r = tick(&id, heartbeat, b"data");
    assert_eq!(r.status, 202, "{}", r.text());
    let record = record_for(flow, &id);
    assert_eq!(record["endpoint"], "/tick");
    assert_eq!(record["docs"][0]["text"], "data");
    let id = uuid::Uuid::new_v4().to_string();
    let r = tick(&id, heartbeat, b"\x89PNG\xff");
    assert_eq!(r.status, 202, "{}", r.text());
    let doc = &record_for(flow, &id)["docs"][0];
    assert_eq!(doc["blob"], "iVBOR/8=");
    assert_eq!(doc["mime_type"], "application/octet-stream");

    let metrics = bridge.metrics();
    for (read_as, at_least) in [("json", 2), ("text", 1), ("bytes", 1)] {
        let series = format!(
            "flowbridge_events_data_inferred_total{{declared=\"none\",read_as=\"{read_as}\"}} "
        );
        let n: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
            .trim()
            .parse()
            .unwrap();
        assert!(n >= at_least, "{series}{n}");
    }
}

#[test]
fn kafkasource_records_become_documents() {
    let flow = shared_flow();
    let bridge = FlowBridge::start(&example("kafkasource.yaml", flow));
    // KafkaSource (record is not a CloudEvent): id partition:<p>/offset:<o>, subject
    // partition:<p>#<o>, key + partitionkey, kafkaheader* extensions, binary mode.
    let offset = fastrand::u32(1000..1_000_000);
    let id = format!("partition:2/offset:{offset}");
    let subject = format!("partition:2#{offset}");
    let r = bridge.request(
        "POST",
        "/",
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", &id),
            ("ce-type", "dev.knative.kafka.event"),
            (
                "ce-source",
                "/apis/v1/namespaces/default/kafkasources/articles#news",
            ),
            ("ce-subject", &subject),
            ("ce-time", "2026-11-27T03:02:00.5Z"),
            ("ce-key", "article-9"),
            ("ce-partitionkey", "article-9"),
            ("ce-kafkaheadertraceid", "abc123"),
            ("content-type", "application/json"),
        ],
        br#"{"title": "Flows on events", "body": "Knative meets Jina.", "lang": "en"}"#,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let record = record_for(flow, &id);
    assert_eq!(record["endpoint"], "/index");
    let doc = &record["docs"][0];
    assert_eq!(doc["text"], "Flows on events\n\nKnative meets Jina.");
    assert_eq!(doc["tags"]["kafka_key"], "article-9");
    assert_eq!(doc["tags"]["kafka_partition"], 2.0);
    assert_eq!(doc["tags"]["kafka_offset"], offset as f64);
    assert_eq!(
        doc["tags"]["cloudevent"]["extensions"]["kafkaheadertraceid"],
        "abc123"
    );
}

#[test]
fn broker_trigger_gets_a_reply_event() {
    let flow = shared_flow();
    let bridge = FlowBridge::start(&example("broker-trigger.yaml", flow));
    let id = unique("order");
    let order = unique("o");
    let body = json!({"id": order, "items": [
        {"title": "apples", "sku": "a-1", "lang": "en"},
        {"title": "pears", "sku": "p-2", "lang": "en"}
    ]});
    // What the MT broker's filter sends: binary mode, Prefer: reply, arrival time, namespace.
    let r = bridge.request(
        "POST",
        "/",
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", &id),
            ("ce-type", "com.example.order.created"),
            ("ce-source", "/shop/eu"),
            ("ce-subject", "orders/17"),
            ("ce-knativearrivaltime", "2026-11-27T03:03:00.1Z"),
            ("content-type", "application/json"),
            ("prefer", "reply"),
            ("kn-namespace", "default"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("ce-type"), Some("com.example.order.indexed"));
    assert_eq!(r.header("ce-source"), Some("/flowbridge/orders"));
    assert_eq!(r.header("ce-subject"), Some("orders/17"));
    let data = r.json();
    assert_eq!(data["order"], order.as_str());
    assert_eq!(data["indexed"], 2);
    assert_eq!(data["ids"], json!([format!("{id}/0"), format!("{id}/1")]));
    let record = record_for(flow, &format!("{id}/0"));
    assert_eq!(record["parameters"]["order"], order.as_str());
    assert_eq!(record["docs"][1]["tags"]["sku"], "p-2");
}

#[test]
fn broker_trigger_cesql_filter_routes_through_the_flow() {
    // The `refunds` route carries a Trigger's `cesql` filter verbatim.
    let flow = shared_flow();
    let bridge = FlowBridge::start(&example("broker-trigger.yaml", flow));
    let send = |id: &str, source: &str, subject: Option<&str>| {
        let mut headers = vec![
            ("ce-specversion", "1.0"),
            ("ce-id", id),
            ("ce-type", "com.example.order.refunded"),
            ("ce-source", source),
            ("content-type", "application/json"),
        ];
        if let Some(subject) = subject {
            headers.push(("ce-subject", subject));
        }
        bridge.request("POST", "/", &headers, br#"{"text": "refund order 17"}"#)
    };

    let matched = unique("refund");
    let r = send(&matched, "/shop/eu", Some("orders/17"));
    assert_eq!(r.status, 202, "{}", r.text());
    let record = record_for(flow, &matched);
    assert_eq!(record["endpoint"], "/refund", "{record}");
    assert_eq!(record["docs"][0]["text"], "refund order 17");

    // LIKE '/shop/%' fails; EXISTS subject fails: no route, and `unmatched: reject` says so.
    let wrong_source = unique("refund");
    let r = send(&wrong_source, "/store/eu", Some("orders/18"));
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("no_route"), "{}", r.text());
    let no_subject = unique("refund");
    let r = send(&no_subject, "/shop/eu", None);
    assert_eq!(r.status, 422, "{}", r.text());
    std::thread::sleep(Duration::from_millis(300));
    assert!(flow.records_with_doc(&wrong_source).is_empty());
    assert!(flow.records_with_doc(&no_subject).is_empty());
}

/// One request a [`Sink`] received: lower-cased headers and the body.
type Received = (Vec<(String, String)>, Vec<u8>);

/// A tiny HTTP sink on loopback answering every request with `status`; records what it got.
struct Sink {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Sink {
    fn start(status: u16) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut headers = Vec::new();
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                loop {
                    line.clear();
                    reader.read_line(&mut line).unwrap();
                    let l = line.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = l.split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                    }
                }
                let len = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .map_or(0, |(_, v)| v.parse().unwrap());
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                store.lock().unwrap().push((headers, body));
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        Sink { port, received }
    }
}

fn sink_config(flow: &JinaFlow) -> PathBuf {
    write_config(&format!(
        r#"
gateways: {{ main: {{ url: {} }} }}
routes:
  - name: to-sink
    reply:
      type: e2e.sunk
      to: $E2E_SINK
"#,
        flow.grpc_url()
    ))
}

#[test]
fn reply_to_sink_is_delivered_before_the_ack() {
    let flow = shared_flow();
    let sink = Sink::start(202);
    let url = format!("http://127.0.0.1:{}/", sink.port);
    let config = sink_config(flow);
    let bridge = FlowBridge::start_with(
        &["--config", config.to_str().unwrap()],
        &[("E2E_SINK", url.as_str())],
    );
    let id = unique("sunk");
    let r = bridge.request(
        "POST",
        "/",
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", &id),
            ("ce-type", "e2e.tosink"),
            ("ce-source", "/e2e"),
            ("content-type", "application/json"),
        ],
        br#"{"text": "to the sink"}"#,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let got = sink.received.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "the sink got the reply before the ack");
    let (headers, body) = &got[0];
    let h = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(h("ce-type"), Some("e2e.sunk"));
    assert_eq!(h("ce-originid"), Some(id.as_str()));
    let docs: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(docs[0]["tags"]["seen_by"], "recorder");

    // A sink that fails makes the original fail with 502, so its sender retries.
    let failing = Sink::start(500);
    let url = format!("http://127.0.0.1:{}/", failing.port);
    let bridge = FlowBridge::start_with(
        &["--config", config.to_str().unwrap()],
        &[("E2E_SINK", url.as_str())],
    );
    let r = bridge.request(
        "POST",
        "/",
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", &unique("sunk-fail")),
            ("ce-type", "e2e.tosink"),
            ("ce-source", "/e2e"),
        ],
        b"",
    );
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "reply_sink_failed");
}

#[test]
fn python_sdk_events_are_accepted_and_our_reply_parses_with_the_sdk() {
    let flow = shared_flow();
    let bridge = FlowBridge::start(&example("broker-trigger.yaml", flow));
    for api in ["core", "legacy"] {
        for mode in ["binary", "structured"] {
            let id = unique(&format!("sdk-{api}-{mode}"));
            // The 2.x API percent-encodes header values as the binding says; the legacy 1.x API
            // sends them raw (and http.client cannot send non-Latin-1 raw), like Knative's Go
            // senders do with spaces.
            let subject = if api == "core" { "a b%c/€" } else { "a b/c" };
            let data = json!({"id": id, "items": [{"title": "t", "sku": "s", "lang": "en"}]});
            let out = support::send_sdk(
                &bridge.url(),
                &[
                    "--api",
                    api,
                    "--mode",
                    mode,
                    "--type",
                    "com.example.order.created",
                    "--source",
                    "/shop/sdk",
                    "--id",
                    &id,
                    "--subject",
                    subject,
                    "--data",
                    &data.to_string(),
                ],
            );
            assert_eq!(out["status"], 200, "{api}/{mode}: {out}");
            assert_eq!(out["reply_error"], Value::Null, "{api}/{mode}: {out}");
            let reply = &out["reply"];
            assert_eq!(
                reply["type"], "com.example.order.indexed",
                "{api}/{mode}: {out}"
            );
            // Our reply percent-encodes per the binding; the 2.x reader decodes it, the legacy
            // reader hands the header value through undecoded (our reply is always binary mode).
            let expected_subject = match (api, mode) {
                ("legacy", _) => "a%20b/c",
                _ => subject,
            };
            assert_eq!(
                reply["subject"], expected_subject,
                "subject round trip: {out}"
            );
            assert_eq!(reply["originid"], id.as_str(), "{out}");
            assert_eq!(reply["data"]["order"], id.as_str(), "{out}");
            assert_eq!(reply["data"]["indexed"], 1, "{out}");
        }
    }
}

/// A config whose routes use the default mapping (one document from the data) or a CEL mapping
/// over `event.data`, for events from the SDKs.
fn sdk_config(flow: &JinaFlow) -> PathBuf {
    write_config(&format!(
        r#"
gateways:
  default: {{ url: "{}" }}
routes:
  - name: cel
    filters: [ {{ exact: {{ type: com.example.cel }} }} ]
    docs: '[{{"text": event.data.text, "tags": {{"n": event.data.n}}}}]'
  - name: default-mapping
"#,
        flow.grpc_url()
    ))
}

#[test]
fn sdk_events_without_a_content_type_reach_the_flow_as_their_data() {
    let flow = shared_flow();
    let bridge = FlowBridge::start(&sdk_config(flow));
    // The Python SDK's to_binary without a datacontenttype (what most users write): no
    // Content-Type at all, dict data as JSON, str data as JSON (legacy) or raw text (core).
    // (event type, data flag, data, the document field to look at, what it must hold)
    let cases = [
        (
            "com.example.cel",
            "--data",
            r#"{"text": "hi", "n": 3}"#,
            "text",
            json!("hi"),
        ),
        (
            "com.example.text",
            "--data-text",
            "hello there",
            "text",
            json!("hello there"),
        ),
        (
            "com.example.bytes",
            "--data-base64",
            "AP8B",
            "blob",
            json!("AP8B"),
        ),
    ];
    for api in ["core", "legacy"] {
        for (ty, flag, data, field, expected) in &cases {
            let id = unique(&format!("py-{api}"));
            let out = support::send_sdk(
                &bridge.url(),
                &[
                    "--api",
                    api,
                    "--mode",
                    "binary",
                    "--type",
                    ty,
                    "--source",
                    "/py",
                    "--id",
                    &id,
                    "--datacontenttype",
                    "",
                    "--no-reply",
                    flag,
                    data,
                ],
            );
            assert_eq!(out["status"], 202, "{api} {ty}: {out}");
            let doc = &record_for(flow, &id)["docs"][0];
            assert_eq!(&doc[*field], expected, "{api} {ty}: {doc}");
            if *ty == "com.example.cel" {
                assert_eq!(
                    doc["tags"]["n"], 3.0,
                    "the CEL mapping read event.data.n: {doc}"
                );
            }
        }
    }

    // The JavaScript SDK's HTTP.binary labels every kind of data `application/json;
    // charset=utf-8`: a string goes unquoted (not JSON), a Buffer as raw bytes. Each send must
    // be accepted; it returns what the SDK sent and the document the executor got.
    let js = |ty: &str, flag: &str, data: &str| {
        let id = unique("js");
        let out = support::send_js(
            &bridge.url(),
            &["--type", ty, "--source", "/js", "--id", &id, flag, data],
        );
        assert_eq!(out["status"], 202, "{ty}: {out}");
        let doc = record_for(flow, &id)["docs"][0].clone();
        (out, doc)
    };
    let (out, doc) = js(
        "com.example.cel",
        "--data-json",
        r#"{"text": "from js", "n": 4}"#,
    );
    assert_eq!(
        out["sent"]["headers"]["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(
        (&doc["text"], &doc["tags"]["n"]),
        (&json!("from js"), &json!(4.0)),
        "{doc}"
    );

    let (out, doc) = js("com.example.text", "--data-text", "hello js");
    assert_eq!(out["sent"]["body"], "hello js", "sent unquoted: {out}");
    assert_eq!(doc["text"], "hello js");
    // The event keeps the content type it came with.
    assert_eq!(
        doc["tags"]["cloudevent"]["datacontenttype"],
        "application/json; charset=utf-8"
    );

    let (_, doc) = js("com.example.bytes", "--data-base64", "AP8B");
    assert_eq!(doc["blob"], "AP8B");

    let metrics = bridge.metrics();
    assert!(
        metrics.contains(
            "flowbridge_events_data_inferred_total{declared=\"json\",read_as=\"text\"} 1\n"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "flowbridge_events_data_inferred_total{declared=\"json\",read_as=\"bytes\"} 1\n"
        ),
        "{metrics}"
    );
}

#[test]
fn a_route_schema_guards_the_flow() {
    let flow = shared_flow();
    let config = write_config(&format!(
        r#"
gateways:
  default: {{ url: "{}" }}
routes:
  - name: orders
    filters: [ {{ exact: {{ type: com.example.order }} }} ]
    schema: ORDER_SCHEMA
"#,
        flow.grpc_url()
    ));
    let schema = config.with_file_name("order.schema.json");
    std::fs::write(
        &schema,
        r#"{"type": "object", "required": ["id", "items"],
            "properties": {"id": {"type": "string"},
                           "items": {"type": "array", "minItems": 1,
                                     "items": {"properties": {"qty": {"type": "integer", "minimum": 1}}}}}}"#,
    )
    .unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("ORDER_SCHEMA", schema.to_str().unwrap()),
    )
    .unwrap();
    let bridge = FlowBridge::start(&config);
    let send = |id: &str, data: &Value| {
        bridge.request(
            "POST",
            "/",
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", id),
                ("ce-type", "com.example.order"),
                ("ce-source", "/shop"),
                ("content-type", "application/json"),
            ],
            data.to_string().as_bytes(),
        )
    };
    let good = unique("schema-ok");
    let r = send(&good, &json!({"id": "o1", "items": [{"qty": 2}]}));
    assert_eq!(r.status, 202, "{}", r.text());
    record_for(flow, &good);

    let bad = unique("schema-bad");
    let r = send(&bad, &json!({"id": "o2", "items": [{"qty": 0}]}));
    assert_eq!(r.status, 422, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"]["code"], "schema_mismatch");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("at data/items/0/qty: 0 is less than the minimum of 1 (rule minimum at schema /properties/items/items/properties/qty/minimum)"),
        "{message}"
    );
    let missing = unique("schema-missing");
    let r = send(&missing, &json!({"items": []}));
    assert_eq!(r.status, 422, "{}", r.text());
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("rule required") && message.contains("rule minItems"),
        "{message}"
    );
    // Neither reached the executor.
    for id in [&bad, &missing] {
        let seen = flow.wait_for_record(Duration::from_millis(500), |r| {
            r["docs"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| d["id"] == id.as_str()))
        });
        assert!(seen.is_none(), "{id} reached the Flow: {seen:?}");
    }
    let metrics = bridge.metrics();
    assert!(
        metrics.contains("flowbridge_schema_mismatches_total{route=\"orders\"} 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("flowbridge_events_rejected_total{reason=\"schema_mismatch\"} 2\n"),
        "{metrics}"
    );

    // check: an invalid schema is reported with its path and line.
    std::fs::write(&schema, r#"{"type": "strin"}"#).unwrap();
    let (code, _, err) = flowbridge(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("line 7: routes[0].schema: ") && err.contains("invalid JSON Schema"),
        "{err}"
    );
}

fn flowbridge(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(flowbridge_bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_every_example_config() {
    for name in [
        "demo.yaml",
        "pingsource.yaml",
        "kafkasource.yaml",
        "broker-trigger.yaml",
    ] {
        let path = repo_root().join("config").join(name);
        let (code, out, err) = flowbridge(&["check", "--config", path.to_str().unwrap()]);
        assert_eq!(code, 0, "{name}: {out}{err}");
        assert!(out.contains("route "), "{name}: one line per route: {out}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("gateway ") && l.contains("connect_timeout")),
            "{name}: one line per gateway with its delivery settings: {out}"
        );
        assert!(out.contains("ok: "), "{out}");
    }
}

#[test]
fn check_lists_every_error_with_its_path() {
    let bad = write_config(
        r#"
limits: { max_body: 1KiB }
gateways:
  main: { url: ftp://127.0.0.1:1, timeout: soon, concurency: 2 }
routes:
  - name: a
    gateway: nope
    filters:
      - cesql: "type = 'x' AND (source LIKE '/shop/%'"
      - cel: 'event.data.x >'
    docs: 'evnt.data'
  - name: a
    reply: { source: /x }
"#,
    );
    let (code, out, err) = flowbridge(&["check", "--config", bad.to_str().unwrap()]);
    assert_eq!(code, 64, "{out}{err}");
    for needle in [
        "limits.max_body",
        "gateways.main.url",
        "gateways.main.timeout",
        "routes[0].gateway",
        "routes[0].filters[0].cesql: syntax error at line 1, column 38: expected ')' to close \
         the '(' at line 1, column 16, found the end of the expression",
        "routes[0].filters[1].cel",
        "routes[0].docs",
        "routes[1].name",
        "routes[1].reply.type",
        // Unknown keys no longer hide the rest; every error has its line.
        "line 4: gateways.main.concurency: unknown field `concurency`",
        "line 9: routes[0].filters[0].cesql",
        "line 11: routes[0].docs",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }

    let syntax =
        write_config("gateways:\n  main: { url: grpc://127.0.0.1:1 }\nroutes:\n  - name: [x\n");
    let (code, _, err) = flowbridge(&["check", "--config", syntax.to_str().unwrap()]);
    assert_eq!(code, 64);
    assert!(err.contains("line "), "{err}");

    let unknown = write_config("gateways:\n  main: { url: grpc://127.0.0.1:1 }\nroutez: []\n");
    let (code, _, err) = flowbridge(&["check", "--config", unknown.to_str().unwrap()]);
    assert_eq!(code, 64);
    assert!(err.contains("routez"), "{err}");

    let (code, _, err) = flowbridge(&["check", "--config", "/nonexistent/flowbridge.yaml"]);
    assert_eq!(code, 64);
    assert!(err.contains("/nonexistent/flowbridge.yaml"), "{err}");
}

fn write_event(dir: &Path, name: &str, event: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, event.to_string()).unwrap();
    path
}

#[test]
fn explain_prints_the_request_exactly_as_sent() {
    let dir = tempfile::tempdir().unwrap();
    let order = write_event(
        dir.path(),
        "order.json",
        &json!({"specversion": "1.0", "id": "e1", "source": "/shop/eu",
                "type": "com.example.order.created",
                "data": {"id": "o-9", "items": [{"title": "apples", "sku": "a-1", "lang": "en"}]}}),
    );
    let other = write_event(
        dir.path(),
        "other.json",
        &json!({"specversion": "1.0", "id": "e2", "source": "/elsewhere", "type": "x"}),
    );
    let config = repo_root().join("config/broker-trigger.yaml");
    let (code, out, err) = flowbridge(&[
        "explain",
        "--config",
        config.to_str().unwrap(),
        order.to_str().unwrap(),
        other.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let values: Vec<Value> = serde_json::Deserializer::from_str(&out)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(values.len(), 2, "{out}");
    assert_eq!(values[0]["route"], "orders");
    let request = &values[0]["request"];
    assert_eq!(request["endpoint"], "/index");
    assert_eq!(
        request["parameters"],
        json!({"order": "o-9", "region": "/shop/eu"})
    );
    assert_eq!(request["docs"][0]["id"], "e1");
    assert_eq!(request["docs"][0]["text"], "apples");
    assert_eq!(request["docs"][0]["tags"]["sku"], "a-1");
    assert_eq!(request["docs"][0]["tags"]["cloudevent"]["id"], "e1");
    // `trace` says which filter decided: every route tried, and the filter that rejected it.
    assert_eq!(
        values[0]["trace"],
        json!([{"route": "orders", "matched": true,
                "filters": ["type == \"com.example.order.created\"", "source ^= \"/shop/\""]}])
    );
    assert_eq!(values[1]["route"], Value::Null);
    assert_eq!(values[1]["request"], Value::Null);
    assert_eq!(
        values[1]["trace"],
        json!([
            {"route": "orders", "matched": false, "filter": 0,
             "failed": "type == \"com.example.order.created\""},
            {"route": "refunds", "matched": false, "filter": 0,
             "failed": "cesql(\"type = 'com.example.order.refunded' AND source LIKE '/shop/%' AND EXISTS subject\")"},
        ])
    );

    // stdin, and an invalid event named with its problem.
    let out = support::output_with_stdin(
        Command::new(flowbridge_bin()).args(["explain", "--config", config.to_str().unwrap(), "-"]),
        br#"{"specversion": "1.0", "id": "", "source": "/s", "type": "t"}"#,
    )
    .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("id"));
}

#[test]
fn send_posts_events_and_prints_the_reply() {
    let flow = shared_flow();
    let bridge = FlowBridge::start(&example("broker-trigger.yaml", flow));
    let id = unique("send");
    let data = json!({"id": "o-1", "items": [{"title": "apples", "sku": "a-1", "lang": "en"}]});
    let url = bridge.url();
    for structured in [false, true] {
        let mut args = vec![
            "send",
            &url,
            "--type",
            "com.example.order.created",
            "--source",
            "/shop/cli",
            "--id",
            &id,
            "--ext",
            "tenant=acme",
        ];
        let data_text = data.to_string();
        args.extend(["--data", &data_text]);
        if structured {
            args.push("--structured");
        }
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = flowbridge(&args);
        assert_eq!(code, 0, "{out}{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["status"], 200, "{v}");
        assert_eq!(v["reply"]["type"], "com.example.order.indexed", "{v}");
        assert_eq!(v["reply"]["originid"], id.as_str(), "{v}");
        assert_eq!(v["reply"]["data"]["order"], "o-1", "{v}");
    }
    let (code, out, _) = flowbridge(&[
        "send",
        &bridge.url(),
        "--type",
        "com.example.order.created",
        "--source",
        "/shop/cli",
        "--data",
        &data.to_string(),
        "--no-reply",
    ]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], 202);
    assert_eq!(v["reply"], Value::Null);
    // Non-2xx: the broker-trigger config rejects unmatched events with 422; send exits non-zero.
    let (code, out, _) = flowbridge(&["send", &bridge.url(), "--type", "nope", "--source", "/x"]);
    assert_ne!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], 422);
    assert_eq!(v["error"]["error"]["code"], "no_route");
}
