//! End-to-end: CloudEvents in over HTTP, a real Jina 3.34 Flow (tests/flow/flow.py, one per test
//! binary), results and replies out. Every test uses unique event ids so the shared Flow's records
//! can be told apart.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{unique, write_config};

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{FlowBridge, HttpResponse, JinaFlow, shared_flow};

/// The config every test shares: one route per behaviour, told apart by event type.
fn config_for(flow_url: &str, extra: &str) -> PathBuf {
    let text = format!(
        r#"
listen: 127.0.0.1:8080
unmatched: reject
limits: {{ max_body: 64KiB }}
gateways:
  main:
    url: {flow_url}
    timeout: 20s
  short:
    url: {flow_url}
    timeout: 1s
routes:
  - name: default-mapping
    gateway: main
    filters:
      - prefix: {{ type: e2e.default. }}
    reply:
      type: e2e.replied
  - name: cel-mapping
    gateway: main
    filters:
      - exact: {{ type: e2e.cel }}
      - cel: 'event.data.priority > 5'
    endpoint: {{ cel: '"/" + event.data.op' }}
    target_executor: recorder
    parameters: '{{"tenant": event.source, "priority": event.data.priority}}'
    docs: >-
      event.data.items.map(i, {{"text": i.title, "tags": {{"lang": i.lang}},
      "embedding": i.vec, "uri": "https://example.com/" + i.title}})
    reply:
      type: e2e.cel.replied
      data: '{{"ids": docs.map(d, d.id), "seen": docs.map(d, d.tags.seen_by), "tagged": docs.map(d, has(d.tags.tagged_by))}}'
  - name: raise
    gateway: main
    filters:
      - exact: {{ type: e2e.raise }}
    parameters: '{{"raise": true}}'
  - name: slow
    gateway: short
    filters:
      - exact: {{ type: e2e.slow }}
    parameters: '{{"sleep": 3}}'
  - name: bad-shape
    gateway: main
    filters:
      - exact: {{ type: e2e.badshape }}
    docs: '{{"txt": "typo"}}'
{extra}
"#
    );
    write_config(&text)
}

fn bridge() -> (&'static JinaFlow, FlowBridge) {
    let flow = shared_flow();
    let config = config_for(&flow.grpc_url(), "");
    (flow, FlowBridge::start(&config))
}

fn post_binary(
    bridge: &FlowBridge,
    id: &str,
    ty: &str,
    content_type: Option<&str>,
    body: &[u8],
    extra: &[(&str, &str)],
) -> HttpResponse {
    let mut headers = vec![
        ("ce-specversion", "1.0"),
        ("ce-id", id),
        ("ce-type", ty),
        ("ce-source", "/e2e/tests"),
    ];
    if let Some(ct) = content_type {
        headers.push(("content-type", ct));
    }
    headers.extend_from_slice(extra);
    bridge.request("POST", "/", &headers, body)
}

fn record_for(flow: &JinaFlow, doc_id: &str) -> Value {
    flow.wait_for_record(Duration::from_secs(5), |r| {
        r["docs"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["id"] == doc_id))
    })
    .unwrap_or_else(|| panic!("the executor never received doc {doc_id}"))
}

fn doc<'a>(record: &'a Value, id: &str) -> &'a Value {
    record["docs"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["id"] == id))
        .unwrap_or_else(|| panic!("doc {id} not in {record}"))
}

#[test]
fn binary_json_default_mapping_reaches_the_executor() {
    let (flow, bridge) = bridge();
    let id = unique("bin-json");
    let r = post_binary(
        &bridge,
        &id,
        "e2e.default.json",
        Some("application/json"),
        br#"{"text": "two apples", "lang": "en", "n": 3}"#,
        &[("ce-subject", "order%2017"), ("ce-tenant", "acme")],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(r.body.is_empty(), "202 must have an empty body");
    assert!(
        r.headers.iter().all(|(k, _)| !k.starts_with("ce-")),
        "202 must not carry ce-* headers: {:?}",
        r.headers
    );
    let record = record_for(flow, &id);
    let d = doc(&record, &id);
    assert_eq!(d["text"], "two apples");
    assert_eq!(d["tags"]["lang"], "en");
    assert_eq!(d["tags"]["n"], 3.0);
    assert_eq!(d["tags"]["cloudevent"]["id"], id.as_str());
    assert_eq!(d["tags"]["cloudevent"]["type"], "e2e.default.json");
    assert_eq!(d["tags"]["cloudevent"]["subject"], "order 17");
    assert_eq!(d["tags"]["cloudevent"]["extensions"]["tenant"], "acme");
    assert_eq!(record["endpoint"], "/");
}

#[test]
fn structured_text_and_binary_octets_use_the_default_mapping() {
    let (flow, bridge) = bridge();
    let text_id = unique("st-text");
    let event = json!({
        "specversion": "1.0", "id": text_id, "source": "/e2e", "type": "e2e.default.text",
        "datacontenttype": "text/plain", "data": "héllo wörld"
    });
    let r = bridge.request(
        "POST",
        "/",
        &[(
            "content-type",
            "application/cloudevents+json; charset=utf-8",
        )],
        event.to_string().as_bytes(),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        doc(&record_for(flow, &text_id), &text_id)["text"],
        "héllo wörld"
    );

    let bin_id = unique("bin-octets");
    let r = post_binary(
        &bridge,
        &bin_id,
        "e2e.default.bytes",
        Some("application/octet-stream"),
        &[0, 1, 2, 255],
        &[],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let record = record_for(flow, &bin_id);
    let d = doc(&record, &bin_id);
    assert_eq!(d["blob"], "AAEC/w==");
    assert_eq!(d["mime_type"], "application/octet-stream");
}

#[test]
fn batched_delivery_runs_every_event() {
    let (flow, bridge) = bridge();
    let ids: Vec<String> = (0..3).map(|i| unique(&format!("batch{i}"))).collect();
    let batch: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({"specversion": "1.0", "id": id, "source": "/e2e", "type": "e2e.default.batch",
                   "data": {"text": id}})
        })
        .collect();
    let r = bridge.request(
        "POST",
        "/",
        &[
            ("content-type", "application/cloudevents-batch+json"),
            ("prefer", "reply"),
        ],
        Value::Array(batch).to_string().as_bytes(),
    );
    assert_eq!(r.status, 202, "a batch never gets a reply: {}", r.text());
    for id in &ids {
        assert_eq!(doc(&record_for(flow, id), id)["text"], id.as_str());
    }

    // All-or-nothing: one bad element fails the batch with its index named.
    let bad = json!([
        {"specversion": "1.0", "id": unique("ok"), "source": "/e2e", "type": "e2e.default.batch"},
        {"specversion": "1.0", "id": unique("raise"), "source": "/e2e", "type": "e2e.raise"}
    ]);
    let r = bridge.request(
        "POST",
        "/",
        &[("content-type", "application/cloudevents-batch+json")],
        bad.to_string().as_bytes(),
    );
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("batch[1]"), "{}", r.text());
}

#[test]
fn cel_mapping_reaches_the_executor_intact_and_replies() {
    let (flow, bridge) = bridge();
    let id = unique("cel");
    let event = json!({
        "specversion": "1.0", "id": id, "source": "/shop/eu", "type": "e2e.cel",
        "data": {"priority": 7, "op": "index", "items": [
            {"title": "apple", "lang": "en", "vec": [0.5, 1.5, -2.0]},
            {"title": "birne", "lang": "de", "vec": [1, 2, 3]}
        ]}
    });
    let r = bridge.request(
        "POST",
        "/",
        &[
            ("content-type", "application/cloudevents+json"),
            ("prefer", "reply"),
        ],
        event.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let first = format!("{id}/0");
    let record = record_for(flow, &first);
    assert_eq!(record["endpoint"], "/index");
    assert_eq!(record["parameters"]["tenant"], "/shop/eu");
    assert_eq!(record["parameters"]["priority"], 7.0);
    let d0 = doc(&record, &first);
    assert_eq!(d0["text"], "apple");
    assert_eq!(d0["uri"], "https://example.com/apple");
    assert_eq!(d0["tags"]["lang"], "en");
    assert_eq!(d0["embedding"]["values"], json!([0.5, 1.5, -2.0]));
    assert_eq!(d0["embedding"]["shape"], json!([3]));
    assert_eq!(d0["embedding"]["dtype"], "float32");
    let d1 = doc(&record, &format!("{id}/1"));
    assert_eq!(d1["tags"]["lang"], "de");

    // The reply: binary mode, our type, data computed from the result docs. target_executor
    // `recorder` means the tagger never ran.
    assert_eq!(r.header("ce-type"), Some("e2e.cel.replied"));
    assert_eq!(r.header("ce-source"), Some("/flowbridge/cel-mapping"));
    assert_eq!(r.header("ce-originid"), Some(id.as_str()));
    assert!(r.header("ce-jinarequestid").is_some_and(|v| v.len() == 32));
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("application/json"))
    );
    let data = r.json();
    assert_eq!(data["ids"], json!([first, format!("{id}/1")]));
    assert_eq!(data["seen"], json!(["recorder", "recorder"]));
    assert_eq!(data["tagged"], json!([false, false]));

    // The CEL filter decides: priority 3 matches no route; unmatched is reject here.
    let low = json!({"specversion": "1.0", "id": unique("low"), "source": "/s", "type": "e2e.cel",
                     "data": {"priority": 3, "op": "x", "items": []}});
    let r = bridge.request(
        "POST",
        "/",
        &[("content-type", "application/cloudevents+json")],
        low.to_string().as_bytes(),
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "no_route");
}

#[test]
fn reply_only_with_prefer_reply() {
    let (flow, bridge) = bridge();
    let id = unique("reply");
    let r = post_binary(
        &bridge,
        &id,
        "e2e.default.reply",
        Some("application/json"),
        br#"{"text": "abc"}"#,
        &[("prefer", "reply")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("ce-type"), Some("e2e.replied"));
    assert_eq!(r.header("ce-specversion"), Some("1.0"));
    let docs = r.json();
    assert_eq!(docs[0]["id"], id.as_str());
    assert_eq!(docs[0]["tags"]["seen_by"], "recorder");
    assert_eq!(docs[0]["tags"]["tagged_by"], "tagger");
    assert_eq!(docs[0]["tags"]["length"], 3.0);
    let _ = record_for(flow, &id);

    let id2 = unique("noreply");
    let r = post_binary(
        &bridge,
        &id2,
        "e2e.default.reply",
        Some("application/json"),
        b"{}",
        &[],
    );
    assert_eq!(r.status, 202);
    assert!(r.body.is_empty());
}

#[test]
fn executor_exception_is_a_502_naming_executor_and_exception() {
    let (_flow, bridge) = bridge();
    let id = unique("raise");
    let r = post_binary(
        &bridge,
        &id,
        "e2e.raise",
        Some("application/json"),
        b"{}",
        &[],
    );
    assert_eq!(r.status, 502, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"]["code"], "executor_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("Recorder"), "{message}");
    assert!(message.contains("ValueError"), "{message}");
    assert!(message.contains("boom"), "{message}");
    assert!(r.body.len() < 1024);
}

#[test]
fn flow_deadline_is_a_504() {
    let (_flow, bridge) = bridge();
    let r = post_binary(
        &bridge,
        &unique("slow"),
        "e2e.slow",
        Some("application/json"),
        b"{}",
        &[],
    );
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "gateway_timeout");
}

#[test]
fn mapping_errors_are_422_and_name_the_field() {
    let (_flow, bridge) = bridge();
    let r = post_binary(
        &bridge,
        &unique("shape"),
        "e2e.badshape",
        Some("application/json"),
        b"{}",
        &[],
    );
    assert_eq!(r.status, 422, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"]["code"], "mapping_failed");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("txt"),
        "{body}"
    );
}

#[test]
fn bad_input_gets_the_documented_4xx() {
    let (_flow, bridge) = bridge();
    // Not a CloudEvent at all.
    let r = bridge.request(
        "POST",
        "/",
        &[("content-type", "application/json")],
        b"{\"a\":1}",
    );
    assert_eq!(r.status, 415, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "not_cloudevent");
    // Invalid CloudEvent: empty id.
    let r = post_binary(
        &bridge,
        "",
        "e2e.default.x",
        Some("application/json"),
        b"{}",
        &[],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("id")
    );
    // Bad time.
    let r = post_binary(
        &bridge,
        &unique("t"),
        "e2e.default.x",
        None,
        b"",
        &[("ce-time", "2018-04-05T18:31Z")],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    // Structured body that is not JSON.
    let r = bridge.request(
        "POST",
        "/",
        &[("content-type", "application/cloudevents+json")],
        b"{nope",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    // Oversized body (limit 64 KiB in this config).
    let big = vec![b'a'; 70 * 1024];
    let r = post_binary(
        &bridge,
        &unique("big"),
        "e2e.default.x",
        Some("text/plain"),
        &big,
        &[],
    );
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "body_too_large");
    // A body of exactly 64 KiB is accepted.
    let ok = vec![b'a'; 64 * 1024 - 100];
    let r = post_binary(
        &bridge,
        &unique("fits"),
        "e2e.default.x",
        Some("text/plain"),
        &ok,
        &[],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    // Wrong method.
    let r = bridge.request("GET", "/", &[], b"");
    assert_eq!(r.status, 405);
    // Probes.
    assert_eq!(bridge.request("GET", "/healthz", &[], b"").status, 200);
    assert_eq!(bridge.request("GET", "/readyz", &[], b"").status, 200);
    let r = bridge.request(
        "OPTIONS",
        "/",
        &[("webhook-request-origin", "eventgrid.azure.net")],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("webhook-allowed-origin"), Some("*"));
}

#[test]
fn knative_headers_are_tolerated() {
    let (flow, bridge) = bridge();
    let id = unique("kn");
    let r = post_binary(
        &bridge,
        &id,
        "e2e.default.kn",
        Some("application/json"),
        br#"{"text": "x"}"#,
        &[
            ("kn-namespace", "default"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("tracestate", "rojo=00f067aa0ba902b7"),
            ("ce-knativearrivaltime", "2026-11-27T04:00:00.123Z"),
            // Knative's Go senders do not percent-encode: raw spaces and a stray %.
            ("ce-subject", "100% raw value"),
        ],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let record = record_for(flow, &id);
    let ce = &doc(&record, &id)["tags"]["cloudevent"];
    assert_eq!(ce["subject"], "100% raw value");
    assert_eq!(
        ce["extensions"]["knativearrivaltime"],
        "2026-11-27T04:00:00.123Z"
    );
}

#[test]
fn gateway_down_is_503_after_connect_timeout_then_cold_start_succeeds() {
    let port = support::free_port();
    let url = format!("grpc://127.0.0.1:{port}");
    let config = config_for(&url, "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("timeout: 20s", "timeout: 20s\n    connect_timeout: 2s");
    std::fs::write(&config, text).unwrap();
    let bridge = FlowBridge::start(&config);

    // Nothing listens: 503 after waiting for about connect_timeout.
    let started = Instant::now();
    let r = post_binary(
        &bridge,
        &unique("down"),
        "e2e.default.cold",
        Some("application/json"),
        b"{}",
        &[],
    );
    let took = started.elapsed();
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "gateway_unavailable");
    assert!(
        took >= Duration::from_millis(1500),
        "gave up too early: {took:?}"
    );
    assert!(
        took < Duration::from_secs(10),
        "ignored the deadline: {took:?}"
    );

    // Cold start: the event is sent while the Flow is still starting and succeeds once it is up.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("connect_timeout: 2s", "connect_timeout: 120s");
    std::fs::write(&config, text).unwrap();
    let bridge = FlowBridge::start(&config);
    let id = unique("cold");
    let port_for_send = bridge.port;
    let sender = std::thread::spawn(move || {
        support::http_request(
            port_for_send,
            "POST",
            "/",
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", &id),
                ("ce-type", "e2e.default.cold"),
                ("ce-source", "/e2e"),
                ("content-type", "application/json"),
            ],
            b"{\"text\": \"wake up\"}",
        )
    });
    std::thread::sleep(Duration::from_millis(500));
    let flow = JinaFlow::start_on(port);
    let r = sender.join().unwrap();
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        flow.records().len(),
        1,
        "exactly one request reached the Flow"
    );
}
