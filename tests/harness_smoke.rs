//! Proves the test harness (`tests/support`): real Jina Flows start (shared and per test), serve,
//! record what they receive and stop with their processes; the recorder behaves as the
//! flowbridge tests expect; the raw HTTP reader and the SDK sender work.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

#[test]
fn own_flow_starts_empty_serves_and_stops_with_its_processes() {
    let mut flow = support::JinaFlow::start();
    assert!(
        support::port_accepts(flow.port),
        "gateway port {} refuses TCP; log:\n{}",
        flow.port,
        flow.log_tail(40)
    );
    assert_eq!(flow.records(), Vec::<serde_json::Value>::new());
    assert!(flow.records_with_doc("no-such-doc").is_empty());
    assert_eq!(
        flow.wait_for_record(Duration::from_millis(100), |_| true),
        None
    );
    assert_eq!(flow.grpc_url(), format!("grpc://127.0.0.1:{}", flow.port));
    flow.stop();
    assert!(
        !support::port_accepts(flow.port),
        "gateway port {} still open after stop()",
        flow.port
    );
}

#[test]
fn shared_flow_is_one_instance_per_binary_and_serves() {
    let a = support::shared_flow();
    let b = support::shared_flow();
    assert!(std::ptr::eq(a, b));
    assert!(support::port_accepts(a.port), "log:\n{}", a.log_tail(40));
}

#[test]
fn http_reader_parses_plain_and_chunked_bodies() {
    let plain = support::parse_response(
        b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\nX-A: b\r\n\r\nok",
        false,
    )
    .expect("plain response");
    assert_eq!(plain.status, 202);
    assert_eq!(plain.header("X-A"), Some("b"));
    assert_eq!(plain.body, b"ok");

    let chunked = support::parse_response(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        false,
    )
    .expect("chunked response");
    assert_eq!(chunked.body, b"abcde");

    assert!(support::parse_response(b"HTTP/1.1 200 OK\r\n", false).is_err());
    assert!(
        support::parse_response(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab",
            false
        )
        .is_err()
    );
}

#[test]
fn free_port_is_bindable() {
    let port = support::free_port();
    assert_ne!(port, 0);
    assert!(!support::port_accepts(port));
}

#[test]
fn send_sdk_reports_connection_refused_as_failure() {
    let port = support::free_port();
    let result = std::panic::catch_unwind(|| {
        support::send_sdk(
            &format!("http://127.0.0.1:{port}/"),
            &[
                "--mode", "binary", "--type", "t", "--source", "s", "--data", "{}",
            ],
        )
    });
    let err = result.expect_err("nothing listens, send_sdk must fail");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("cannot POST"), "unexpected failure: {msg}");
}

/// Drives the shared Flow with jina's own Python client, so the recorder's behaviour that the
/// flowbridge tests rely on (record format, marks, target_executor skip, raise) is checked here.
#[test]
fn recorder_records_marks_skips_and_raises_with_jinas_own_client() {
    let flow = support::shared_flow();
    let script = r#"
import json, sys
import numpy as np
from docarray import Document, DocumentArray
from jina import Client
c = Client(host=sys.argv[1])
out = {}
d = Document(id="smoke-1", text="hello", tags={"k": "v"}, embedding=np.array([0.5, 1.5], dtype="float32"))
r = c.post("/smoke", DocumentArray([d]), parameters={"p": 7}, return_responses=True)[0]
out["full"] = dict(r.docs[0].tags)
r = c.post("/smoke", DocumentArray([Document(id="smoke-2", text="ab")]), target_executor="recorder", return_responses=True)[0]
out["targeted"] = dict(r.docs[0].tags)
r = c.post("/smoke", DocumentArray([Document(id="smoke-3", tags={"raise": True})]), return_responses=True, continue_on_error=True)[0]
out["error"] = {"code": r.header.status.code, "description": r.header.status.description}
print(json.dumps(out))
"#;
    let out = std::process::Command::new(support::venv_python())
        .args(["-c", script, &flow.grpc_url()])
        .env("JINA_OPTOUT_TELEMETRY", "1")
        .output()
        .expect("run the jina client");
    assert!(
        out.status.success(),
        "jina client failed: {}\nflow log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        flow.log_tail(30)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let got: serde_json::Value = serde_json::from_str(last).expect("client JSON");

    assert_eq!(
        got["full"],
        serde_json::json!({"k": "v", "seen_by": "recorder", "length": 5.0, "tagged_by": "tagger"})
    );
    assert_eq!(
        got["targeted"],
        serde_json::json!({"seen_by": "recorder", "length": 2.0})
    );
    assert_eq!(got["error"]["code"], 1);
    assert_eq!(got["error"]["description"], "ValueError('boom', 'smoke-3')");

    let rec = flow.records_with_doc("smoke-1");
    assert_eq!(rec.len(), 1, "{rec:?}");
    assert_eq!(rec[0]["endpoint"], "/smoke");
    assert_eq!(rec[0]["executor"], "recorder");
    assert_eq!(rec[0]["parameters"]["p"], 7.0);
    let doc = &rec[0]["docs"][0];
    assert_eq!(doc["text"], "hello");
    assert_eq!(doc["tags"], serde_json::json!({"k": "v"}));
    assert_eq!(
        doc["embedding"],
        serde_json::json!({"values": [0.5, 1.5], "shape": [2], "dtype": "float32"})
    );
    assert_eq!(flow.records_with_doc("smoke-3").len(), 1);
}
