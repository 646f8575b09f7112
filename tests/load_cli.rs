//! `flowbridge load` end to end: a `flowbridge serve` in front of the real Jina Flow
//! (`tests/flow/flow.py`), loaded for about 2 s; the JSON summary must add up, every event
//! must be answered 202, and every one of them must have reached the Flow's recorder with its
//! own unique id.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::process::Command;

use support::{FlowBridge, flowbridge_bin, shared_flow};

#[test]
fn load_through_flowbridge_into_the_real_flow() {
    let flow = shared_flow();
    let bridge = FlowBridge::start_with(&["--gateway", &flow.grpc_url()], &[]);
    let ty = format!("dev.flowbridge.load-test.{}", std::process::id());
    let out = Command::new(flowbridge_bin())
        .args([
            "load",
            &bridge.url(),
            "--concurrency",
            "4",
            "--duration",
            "2s",
        ])
        .args(["--type", &ty, "--source", "/tests/load", "--json"])
        .args(["--data", r#"{"text":"load test"}"#])
        .output()
        .expect("cannot run flowbridge load");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "flowbridge load failed ({}):\n{stderr}\nserver log:\n{}",
        out.status,
        bridge.log_text()
    );
    let s: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("summary is not JSON ({e}): {stdout}"));

    // Counts add up: everything sent was answered 202, nothing else happened.
    let sent = s["sent"].as_u64().unwrap();
    assert!(sent > 0, "{s}");
    assert_eq!(s["answered"], sent, "{s}");
    assert_eq!(s["ok"], sent, "{s}");
    assert_eq!(s["errors"], 0, "{s}");
    assert_eq!(s["status"], serde_json::json!({"202": sent}), "{s}");
    assert_eq!(s["transport_errors"], serde_json::json!({}), "{s}");
    assert_eq!(s["mode"], "closed");
    assert_eq!(s["concurrency"], 4);
    let elapsed = s["elapsed_s"].as_f64().unwrap();
    assert!(elapsed >= 2.0, "{s}");
    let throughput = s["throughput"].as_f64().unwrap();
    assert!((throughput * elapsed - sent as f64).abs() < 1.0, "{s}");
    let lat = &s["latency_ms"];
    let p = |k: &str| {
        lat[k]
            .as_f64()
            .unwrap_or_else(|| panic!("latency_ms.{k} in {s}"))
    };
    assert!(p("min") <= p("p50") && p("p50") <= p("p90"), "{s}");
    assert!(p("p90") <= p("p99") && p("p99") <= p("max"), "{s}");

    // Progress lines on stderr, one per second.
    assert!(
        stderr.contains("sent") && stderr.contains("rate"),
        "{stderr}"
    );

    // Every 202 was recorded by the executor, each event once, with its own id.
    let docs: Vec<serde_json::Value> = flow
        .records()
        .into_iter()
        .flat_map(|r| r["docs"].as_array().cloned().unwrap_or_default())
        .filter(|d| d["tags"]["cloudevent"]["type"] == ty.as_str())
        .collect();
    assert_eq!(docs.len() as u64, sent, "documents recorded for {ty}");
    let ids: HashSet<&str> = docs.iter().filter_map(|d| d["id"].as_str()).collect();
    assert_eq!(ids.len() as u64, sent, "event ids are not unique");
    assert!(docs.iter().all(|d| d["text"] == "load test"));
}

#[test]
fn load_reports_a_dead_target_and_fails() {
    let port = support::free_port();
    let out = Command::new(flowbridge_bin())
        .args(["load", &format!("http://127.0.0.1:{port}/")])
        .args([
            "--concurrency",
            "2",
            "--duration",
            "300ms",
            "--json",
            "--quiet",
        ])
        .output()
        .expect("cannot run flowbridge load");
    assert_eq!(out.status.code(), Some(1), "no 2xx at all must exit 1");
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["answered"], 0);
    assert!(
        s["transport_errors"]["connect"].as_u64().unwrap() > 0,
        "{s}"
    );
    assert!(out.stderr.is_empty(), "--quiet prints no progress");
}

#[test]
fn load_usage_errors_exit_64() {
    let out = Command::new(flowbridge_bin())
        .args(["load", "https://127.0.0.1:1/", "--duration", "1s"])
        .output()
        .expect("cannot run flowbridge load");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only http://"));
}
