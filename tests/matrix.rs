//! The core end-to-end scenarios as a matrix (issue 7, WebSocket added by issue 13): every
//! scenario runs against a real Jina 3.34 Flow with docarray v1 and with docarray v2, each behind
//! a gRPC, an HTTP and a WebSocket gateway (six cells, one shared Flow process per cell for this
//! whole binary, see `support::shared_flow_of`). Each scenario is one function taking the cell;
//! `matrix!` turns it into one `#[test]` per cell (`<scenario>::v1_grpc`, `::v1_http`, `::v1_ws`,
//! `::v2_grpc`, `::v2_http`, `::v2_ws`), so a failure names its cell. flowbridge is configured per
//! cell with the gateway URL of that cell's scheme (`grpc://`, `http://`, `ws://`) and
//! `docarray: auto`.
//!
//! `every_cell_sees_the_same_documents` then sends the same events through the same routes into
//! all six cells and checks that the executor saw the same documents; what it normalizes (only
//! what must differ between cells) is documented on [`normalize`].
//!
//! The recorder uses explicit endpoints (`/index`, `/search`) because a v2 HTTP gateway only
//! serves endpoints its executors declare (tests/flow/flow.py).

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use support::{
    FlowBridge, FlowKind, HttpResponse, JinaFlow, Protocol, matrix_cells, shared_flow_of, unique,
    write_config,
};

/// One route per behaviour, told apart by event type; the gateways point at the cell's Flow.
fn config_for(flow: &JinaFlow) -> PathBuf {
    let url = flow.gateway_url();
    write_config(&format!(
        r#"
listen: 127.0.0.1:8080
unmatched: reject
gateways:
  main:
    url: {url}
    docarray: auto
    timeout: 20s
  short:
    url: {url}
    docarray: auto
    timeout: 1s
routes:
  - name: text
    gateway: main
    filters:
      - exact: {{ type: mx.text }}
    endpoint: /index
    parameters: '{{"tenant": event.source, "priority": 7}}'
    reply:
      type: mx.replied
  - name: targeted
    gateway: main
    filters:
      - exact: {{ type: mx.targeted }}
    endpoint: /search
    target_executor: recorder
    reply:
      type: mx.targeted.replied
  - name: blob
    gateway: main
    filters:
      - exact: {{ type: mx.blob }}
    endpoint: /index
  - name: arrays
    gateway: main
    filters:
      - exact: {{ type: mx.arrays }}
    endpoint: /index
    docs: >-
      event.data.items.map(i, {{"text": i.title, "tags": {{"lang": i.lang}},
      "embedding": i.vec, "uri": "https://example.com/" + i.title}})
    reply:
      type: mx.arrays.replied
  - name: nested
    gateway: main
    filters:
      - exact: {{ type: mx.nested }}
    endpoint: /index
    docs: >-
      {{"text": event.data.text, "chunks": event.data.parts.map(p, {{"text": p}}),
      "matches": [{{"text": "best", "tags": {{"score": 0.5}}}}]}}
  - name: raise
    gateway: main
    filters:
      - exact: {{ type: mx.raise }}
    endpoint: /index
    parameters: '{{"raise": true}}'
  - name: slow
    gateway: short
    filters:
      - exact: {{ type: mx.slow }}
    endpoint: /index
    parameters: '{{"sleep": 3}}'
"#
    ))
}

/// The cell's shared Flow and a fresh flowbridge configured for it.
fn cell(kind: FlowKind, protocol: Protocol) -> (&'static JinaFlow, FlowBridge) {
    let flow = shared_flow_of(kind, protocol);
    assert_eq!((flow.kind, flow.protocol), (kind, protocol));
    (flow, FlowBridge::start(&config_for(flow)))
}

/// A binary-mode event.
fn post(
    bridge: &FlowBridge,
    id: &str,
    ty: &str,
    content_type: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> HttpResponse {
    let mut headers = vec![
        ("ce-specversion", "1.0"),
        ("ce-id", id),
        ("ce-type", ty),
        ("ce-source", "/matrix/tests"),
        ("content-type", content_type),
    ];
    headers.extend_from_slice(extra);
    bridge.request("POST", "/", &headers, body)
}

/// A structured-mode event.
fn post_structured(bridge: &FlowBridge, event: &Value, extra: &[(&str, &str)]) -> HttpResponse {
    let mut headers = vec![("content-type", "application/cloudevents+json")];
    headers.extend_from_slice(extra);
    bridge.request("POST", "/", &headers, event.to_string().as_bytes())
}

/// The record of the request that carried `doc_id`, waiting a little for it.
fn record_for(flow: &JinaFlow, doc_id: &str) -> Value {
    flow.wait_for_record(Duration::from_secs(10), |r| {
        r["docs"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["id"] == doc_id))
    })
    .unwrap_or_else(|| {
        panic!(
            "the {} {} Flow's executor never received doc {doc_id}; Flow log:\n{}",
            flow.kind,
            flow.protocol,
            flow.log_tail(30)
        )
    })
}

fn doc<'a>(record: &'a Value, id: &str) -> &'a Value {
    record["docs"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["id"] == id))
        .unwrap_or_else(|| panic!("doc {id} not in {record}"))
}

/// A JSON number as f64 (v1 tags and parameters are protobuf Structs: every number is a double;
/// v2 keeps integers), panicking with the value when it is not a number.
fn num(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number, got {v}"))
}

/// The dtype an executor sees for an embedding flowbridge sent: float32 over gRPC and WebSocket
/// (an NdArray with dtype `<f4` in the same DataRequest protobuf); over HTTP the gateway parses
/// JSON number lists, which numpy makes float64.
fn expected_dtype(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Grpc | Protocol::Websocket => "float32",
        Protocol::Http => "float64",
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios, each run once per cell.

/// A JSON event through the default mapping reaches the executor with the route's endpoint and
/// parameters and the event's context in tags.cloudevent; no Prefer: reply means 202, no body.
fn text_event_reaches_the_executor(kind: FlowKind, protocol: Protocol) {
    let (flow, bridge) = cell(kind, protocol);
    let id = unique("text");
    let r = post(
        &bridge,
        &id,
        "mx.text",
        "application/json",
        br#"{"text": "two apples", "lang": "en", "n": 3}"#,
        &[("ce-subject", "order%2017"), ("ce-tenant", "acme")],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(r.body.is_empty(), "202 must have an empty body");

    let record = record_for(flow, &id);
    assert_eq!(record["docarray"], kind.to_string(), "{record}");
    assert_eq!(record["protocol"], protocol.as_str(), "{record}");
    assert_eq!(record["endpoint"], "/index", "{record}");
    assert_eq!(record["parameters"]["tenant"], "/matrix/tests");
    assert_eq!(num(&record["parameters"]["priority"]), 7.0);
    let d = doc(&record, &id);
    assert_eq!(d["text"], "two apples");
    assert_eq!(d["tags"]["lang"], "en");
    assert_eq!(num(&d["tags"]["n"]), 3.0);
    let ce = &d["tags"]["cloudevent"];
    assert_eq!(ce["id"], id.as_str(), "{d}");
    assert_eq!(ce["type"], "mx.text");
    assert_eq!(ce["source"], "/matrix/tests");
    assert_eq!(ce["subject"], "order 17");
    assert_eq!(ce["extensions"]["tenant"], "acme");
}

/// With Prefer: reply the answer is a CloudEvent built from the result documents: both
/// executors ran (seen_by, tagged_by, length).
fn reply_is_built_from_the_result(kind: FlowKind, protocol: Protocol) {
    let (flow, bridge) = cell(kind, protocol);
    let id = unique("reply");
    let r = post(
        &bridge,
        &id,
        "mx.text",
        "application/json",
        br#"{"text": "abc"}"#,
        &[("prefer", "reply")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("ce-type"), Some("mx.replied"));
    assert_eq!(r.header("ce-specversion"), Some("1.0"));
    assert_eq!(r.header("ce-source"), Some("/flowbridge/text"));
    assert_eq!(r.header("ce-originid"), Some(id.as_str()));
    assert!(
        r.header("ce-jinarequestid").is_some_and(|v| !v.is_empty()),
        "{:?}",
        r.headers
    );
    let docs = r.json();
    assert_eq!(docs[0]["id"], id.as_str(), "{docs}");
    assert_eq!(docs[0]["text"], "abc", "{docs}");
    assert_eq!(docs[0]["tags"]["seen_by"], "recorder", "{docs}");
    assert_eq!(docs[0]["tags"]["tagged_by"], "tagger", "{docs}");
    assert_eq!(num(&docs[0]["tags"]["length"]), 3.0, "{docs}");
    assert_eq!(docs[0]["tags"]["cloudevent"]["id"], id.as_str(), "{docs}");
    let _ = record_for(flow, &id);
}

/// target_executor reaches the gateway: the request stops at the recorder, the tagger never runs.
fn target_executor_is_honoured(kind: FlowKind, protocol: Protocol) {
    let (flow, bridge) = cell(kind, protocol);
    let id = unique("targeted");
    let r = post(
        &bridge,
        &id,
        "mx.targeted",
        "application/json",
        br#"{"text": "only the recorder"}"#,
        &[("prefer", "reply")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("ce-type"), Some("mx.targeted.replied"));
    let docs = r.json();
    assert_eq!(docs[0]["tags"]["seen_by"], "recorder", "{docs}");
    assert!(
        docs[0]["tags"].get("tagged_by").is_none(),
        "the tagger ran although target_executor is recorder: {docs}"
    );
    assert_eq!(record_for(flow, &id)["endpoint"], "/search");
}

/// Binary data becomes the document's blob, byte for byte. A v2 HTTP gateway takes blobs as JSON
/// strings that pydantic encodes as UTF-8, so bytes that are not UTF-8 cannot reach a v2
/// executor over HTTP unchanged: there flowbridge must refuse the event (any non-2xx) rather
/// than deliver altered bytes.
fn binary_data_arrives_as_blob(kind: FlowKind, protocol: Protocol) {
    let (flow, bridge) = cell(kind, protocol);

    let utf8_id = unique("blob-utf8");
    let r = post(
        &bridge,
        &utf8_id,
        "mx.blob",
        "application/octet-stream",
        "héllo\n".as_bytes(),
        &[],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let record = record_for(flow, &utf8_id);
    let d = doc(&record, &utf8_id);
    assert_eq!(d["blob"], "aMOpbGxvCg==", "{d}");
    assert_eq!(d["text"], Value::Null, "{d}");
    match kind {
        FlowKind::V1 => assert_eq!(d["mime_type"], "application/octet-stream", "{d}"),
        // LegacyDocumentJina has no mime_type field.
        FlowKind::V2 => assert_eq!(d["mime_type"], Value::Null, "{d}"),
    }

    let bin_id = unique("blob-bin");
    let r = post(
        &bridge,
        &bin_id,
        "mx.blob",
        "application/octet-stream",
        &[0, 1, 2, 255],
        &[],
    );
    if (kind, protocol) == (FlowKind::V2, Protocol::Http) && r.status != 202 {
        assert!(
            (400..600).contains(&r.status),
            "neither delivered nor refused: {} {}",
            r.status,
            r.text()
        );
        assert!(
            flow.records_with_doc(&bin_id)
                .iter()
                .all(|rec| doc(rec, &bin_id)["blob"] == "AAEC/w=="),
            "refused, yet altered bytes reached the executor"
        );
        return;
    }
    assert_eq!(r.status, 202, "{}", r.text());
    let record = record_for(flow, &bin_id);
    assert_eq!(doc(&record, &bin_id)["blob"], "AAEC/w==");
}

/// Embeddings (nested lists → shape) and uris set by a CEL mapping arrive with values and shape;
/// the reply is built from the result documents.
fn embedding_arrives_with_shape(kind: FlowKind, protocol: Protocol) {
    let (flow, bridge) = cell(kind, protocol);
    let id = unique("arrays");
    let event = json!({
        "specversion": "1.0", "id": id, "source": "/matrix", "type": "mx.arrays",
        "data": {"items": [
            {"title": "apple", "lang": "en", "vec": [0.5, 1.5, -2.0]},
            {"title": "matrix", "lang": "de", "vec": [[1, 2, 3], [4.5, 5, -6]]}
        ]}
    });
    let r = post_structured(&bridge, &event, &[("prefer", "reply")]);
    assert_eq!(r.status, 200, "{}", r.text());

    let first = format!("{id}/0");
    let second = format!("{id}/1");
    let record = record_for(flow, &first);
    let d0 = doc(&record, &first);
    assert_eq!(d0["text"], "apple");
    assert_eq!(d0["uri"], "https://example.com/apple");
    assert_eq!(d0["tags"]["lang"], "en");
    assert_eq!(d0["embedding"]["values"], json!([0.5, 1.5, -2.0]), "{d0}");
    assert_eq!(d0["embedding"]["shape"], json!([3]), "{d0}");
    assert_eq!(d0["embedding"]["dtype"], expected_dtype(protocol), "{d0}");
    let d1 = doc(&record, &second);
    assert_eq!(
        d1["embedding"]["values"],
        json!([1.0, 2.0, 3.0, 4.5, 5.0, -6.0]),
        "{d1}"
    );
    assert_eq!(d1["embedding"]["shape"], json!([2, 3]), "{d1}");

    let docs = r.json();
    assert_eq!(docs[0]["id"], first.as_str(), "{docs}");
    assert_eq!(docs[1]["id"], second.as_str(), "{docs}");
    assert_eq!(docs[1]["uri"], "https://example.com/matrix", "{docs}");
    assert_eq!(docs[0]["tags"]["seen_by"], "recorder", "{docs}");
    // Reply documents carry embeddings as nested lists, in the shape the executor saw.
    let rows: Vec<Vec<f64>> = docs[1]["embedding"]
        .as_array()
        .unwrap_or_else(|| panic!("reply doc without an embedding: {docs}"))
        .iter()
        .map(|row| row.as_array().unwrap().iter().map(num).collect())
        .collect();
    assert_eq!(rows, [[1.0, 2.0, 3.0], [4.5, 5.0, -6.0]], "{docs}");
}

/// Chunks and matches reach a v1 executor with their ids, text and tags. An untyped v2 executor
/// cannot receive them at all (docarray 0.40 fails to decode `LegacyDocumentJina.chunks` from
/// protobuf; tests/fixtures/docarray/README.md): on a v2 Flow the event is refused with 422
/// before anything is sent, over gRPC and HTTP alike.
fn nested_documents(kind: FlowKind, protocol: Protocol) {
    let (flow, bridge) = cell(kind, protocol);
    let id = unique("nested");
    let event = json!({
        "specversion": "1.0", "id": id, "source": "/matrix", "type": "mx.nested",
        "data": {"text": "parent", "parts": ["one", "two"]}
    });
    let r = post_structured(&bridge, &event, &[]);
    match kind {
        FlowKind::V1 => {
            assert_eq!(r.status, 202, "{}", r.text());
            let record = record_for(flow, &id);
            let d = doc(&record, &id);
            assert_eq!(d["text"], "parent");
            let chunks = d["chunks"].as_array().unwrap();
            assert_eq!(chunks.len(), 2, "{d}");
            assert_eq!(chunks[0]["id"], format!("{id}/chunks/0"), "{d}");
            assert_eq!(chunks[1]["text"], "two", "{d}");
            let matches = d["matches"].as_array().unwrap();
            assert_eq!(matches[0]["id"], format!("{id}/matches/0"), "{d}");
            assert_eq!(num(&matches[0]["tags"]["score"]), 0.5, "{d}");
        }
        FlowKind::V2 => {
            // Refused before sending (422: it can never succeed, so Knative must not retry it).
            assert_eq!(r.status, 422, "{}", r.text());
            let body = r.text();
            assert!(body.contains("docs[0].chunks"), "{body}");
            assert!(body.contains("docarray v2"), "{body}");
            std::thread::sleep(Duration::from_millis(500));
            assert!(
                flow.records_with_doc(&id).is_empty(),
                "a refused event reached the executor"
            );
        }
    }
}

/// An executor exception is a 502 executor_error naming the exception, as on v1 gRPC
/// (v1 HTTP reports it as 200 with status.code 1, v2 HTTP as 500: both map to the same).
fn executor_error_is_a_502(kind: FlowKind, protocol: Protocol) {
    let (flow, bridge) = cell(kind, protocol);
    let id = unique("raise");
    let r = post(&bridge, &id, "mx.raise", "application/json", b"{}", &[]);
    assert_eq!(r.status, 502, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"]["code"], "executor_error", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("boom"), "{message}");
    assert!(message.contains("ValueError"), "{message}");
    assert!(r.body.len() < 1024);
    // It did reach the executor (the recorder writes before raising).
    let _ = record_for(flow, &id);
}

/// The Flow's deadline (gateway `short`: 1 s, the executor sleeps 3 s) is a 504.
fn flow_deadline_is_a_504(kind: FlowKind, protocol: Protocol) {
    let (_flow, bridge) = cell(kind, protocol);
    let r = post(
        &bridge,
        &unique("slow"),
        "mx.slow",
        "application/json",
        b"{}",
        &[],
    );
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "gateway_timeout");
}

/// An event no route matches is a 422 no_route (unmatched: reject) and never reaches the Flow.
fn unknown_route_is_a_422(kind: FlowKind, protocol: Protocol) {
    let (flow, bridge) = cell(kind, protocol);
    let id = unique("unrouted");
    let r = post(
        &bridge,
        &id,
        "mx.nothing.matches",
        "application/json",
        br#"{"text": "lost"}"#,
        &[],
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "no_route");
    // A request that went to the Flow would be recorded well within this.
    std::thread::sleep(Duration::from_millis(500));
    assert!(flow.records_with_doc(&id).is_empty());
}

macro_rules! matrix {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                use super::{FlowKind, Protocol};
                #[test]
                fn v1_grpc() {
                    super::$scenario(FlowKind::V1, Protocol::Grpc);
                }
                #[test]
                fn v1_http() {
                    super::$scenario(FlowKind::V1, Protocol::Http);
                }
                #[test]
                fn v2_grpc() {
                    super::$scenario(FlowKind::V2, Protocol::Grpc);
                }
                #[test]
                fn v2_http() {
                    super::$scenario(FlowKind::V2, Protocol::Http);
                }
                #[test]
                fn v1_ws() {
                    super::$scenario(FlowKind::V1, Protocol::Websocket);
                }
                #[test]
                fn v2_ws() {
                    super::$scenario(FlowKind::V2, Protocol::Websocket);
                }
            }
        )*
    };
}

matrix!(
    text_event_reaches_the_executor,
    reply_is_built_from_the_result,
    target_executor_is_honoured,
    binary_data_arrives_as_blob,
    embedding_arrives_with_shape,
    nested_documents,
    executor_error_is_a_502,
    flow_deadline_is_a_504,
    unknown_route_is_a_422,
);

// ---------------------------------------------------------------------------------------------
// Across cells.

/// What the executor saw for one request, reduced to what must be equal in every cell:
///
/// * `request_id` is dropped: the gateway (or flowbridge) makes a new one per request.
/// * `docarray` and `protocol` are dropped: they name the cell.
/// * Every number becomes an f64: v1 carries tags and parameters as a protobuf Struct, where every
///   number is a double (`3` arrives as `3.0`); v2 keeps integers apart from floats.
/// * `embedding.dtype` / `tensor.dtype` are dropped: float32 over gRPC, float64 over HTTP (the HTTP
///   gateways parse JSON number lists); the values must still be equal (the test uses values that
///   float32 holds exactly).
/// * `mime_type` is dropped unless `keep_mime` (v1 against v1): a v2 `LegacyDocumentJina` has no
///   mime_type field, so a v2 executor cannot see it.
///
/// Everything else (endpoint, parameters, ids, text, uri, blob, tags including tags.cloudevent,
/// embedding values and shape, chunks, matches, document order) is compared as is.
fn normalize(record: &Value, keep_mime: bool) -> Value {
    fn numbers(v: &Value) -> Value {
        match v {
            Value::Number(n) => json!(n.as_f64().unwrap()),
            Value::Array(items) => Value::Array(items.iter().map(numbers).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), numbers(v))).collect())
            }
            other => other.clone(),
        }
    }
    fn doc(d: &Value, keep_mime: bool) -> Value {
        let mut d = numbers(d);
        let obj = d.as_object_mut().unwrap();
        for key in ["embedding", "tensor"] {
            if let Some(Value::Object(array)) = obj.get_mut(key) {
                array.remove("dtype");
            }
        }
        if !keep_mime {
            obj.remove("mime_type");
        }
        for key in ["chunks", "matches"] {
            if let Some(Value::Array(nested)) = obj.get(key) {
                let nested = nested.iter().map(|n| doc(n, keep_mime)).collect();
                obj.insert(key.to_string(), Value::Array(nested));
            }
        }
        d
    }
    json!({
        "executor": record["executor"],
        "endpoint": record["endpoint"],
        "parameters": numbers(&record["parameters"]),
        "docs": record["docs"]
            .as_array()
            .unwrap_or_else(|| panic!("record without docs: {record}"))
            .iter()
            .map(|d| doc(d, keep_mime))
            .collect::<Vec<_>>(),
    })
}

/// The same events through the same routes give the same executor-visible documents on a v1 and
/// a v2 Flow, over gRPC, HTTP and WebSocket. Every cell has its own Flow, so the events (ids included)
/// are identical in every cell.
#[test]
fn every_cell_sees_the_same_documents() {
    let run = unique("same");
    let text_id = format!("{run}-text");
    let arrays_id = format!("{run}-arrays");
    let blob_id = format!("{run}-blob");
    // (id of a document the event makes, how to send the event)
    type Send = Box<dyn Fn(&FlowBridge) -> HttpResponse>;
    let events: Vec<(String, Send)> = vec![
        (text_id.clone(), {
            let id = text_id.clone();
            Box::new(move |b| {
                post(
                    b,
                    &id,
                    "mx.text",
                    "application/json",
                    br#"{"text": "two apples", "lang": "en", "n": 3, "ok": true, "deep": {"k": ["v", 1.5]}}"#,
                    &[("ce-subject", "s"), ("ce-time", "2026-11-27T04:00:00Z")],
                )
            })
        }),
        (format!("{arrays_id}/0"), {
            let id = arrays_id.clone();
            Box::new(move |b| {
                let event = json!({
                    "specversion": "1.0", "id": id, "source": "/matrix", "type": "mx.arrays",
                    "data": {"items": [
                        {"title": "apple", "lang": "en", "vec": [0.5, 1.5, -2.0]},
                        {"title": "grid", "lang": "de", "vec": [[1, 2], [3, 4.25]]}
                    ]}
                });
                post_structured(b, &event, &[])
            })
        }),
        (blob_id.clone(), {
            let id = blob_id.clone();
            Box::new(move |b| {
                post(
                    b,
                    &id,
                    "mx.blob",
                    "application/octet-stream",
                    "plain bytes\n".as_bytes(),
                    &[],
                )
            })
        }),
    ];

    // Start the six cells' Flows and bridges, send every event into each.
    let mut seen: Vec<((FlowKind, Protocol), Vec<Value>)> = Vec::new();
    for (kind, protocol) in matrix_cells() {
        let (flow, bridge) = cell(kind, protocol);
        let mut records = Vec::new();
        for (doc_id, send) in &events {
            let r = send(&bridge);
            assert!(
                r.status == 202 || r.status == 200,
                "{kind} {protocol}: event with doc {doc_id} answered {}: {}",
                r.status,
                r.text()
            );
            records.push(record_for(flow, doc_id));
        }
        seen.push(((kind, protocol), records));
    }

    let (reference_cell, reference) = &seen[0];
    assert_eq!(*reference_cell, (FlowKind::V1, Protocol::Grpc));
    for (cell, records) in &seen[1..] {
        let keep_mime = cell.0 == FlowKind::V1;
        for (want, got) in reference.iter().zip(records) {
            assert_eq!(
                normalize(got, keep_mime),
                normalize(want, keep_mime),
                "{} {} saw other documents than v1 grpc.\n{} {}: {got}\nv1 grpc: {want}",
                cell.0,
                cell.1,
                cell.0,
                cell.1,
            );
        }
    }
    // The comparison is not vacuous: the reference saw what was sent.
    let text = doc(&reference[0], &text_id);
    assert_eq!(text["text"], "two apples");
    assert_eq!(text["tags"]["deep"]["k"], json!(["v", 1.5]));
    assert_eq!(text["tags"]["cloudevent"]["time"], "2026-11-27T04:00:00Z");
    assert_eq!(reference[1]["docs"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc(&reference[2], &blob_id)["blob"], "cGxhaW4gYnl0ZXMK");
}
