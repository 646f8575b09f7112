//! Metrics end to end: a flowbridge process in front of the real Jina Flow gets a known mix of
//! events (ok, invalid, unmatched, executor error), then `/metrics` on its admin listener is
//! scraped, parsed as the Prometheus text format, and every counter is checked exactly.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::unique;

use std::collections::BTreeMap;
use std::path::PathBuf;

use support::{FlowBridge, http_request, shared_flow};

fn metrics_config(flow_url: &str) -> PathBuf {
    let text = format!(
        r#"
unmatched: reject
gateways:
  main: {{url: "{flow_url}", timeout: 20s}}
routes:
  - name: ok
    gateway: main
    filters:
      - exact: {{type: metrics.ok}}
    reply:
      type: metrics.replied
  - name: raise
    gateway: main
    filters:
      - exact: {{type: metrics.raise}}
    parameters: '{{"raise": true}}'
"#
    );
    support::write_config(&text)
}

/// Every sample of a text-format scrape by its series (`name{labels}`), checking that each
/// sample's family has a `# TYPE` line and each value is a number.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut types = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE line has a kind");
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line:?}"));
        let name = series.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                let base = name.strip_suffix(s)?;
                (types.get(base).map(String::as_str) == Some("histogram")).then_some(base)
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "no # TYPE before {line:?}");
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "series twice: {series}"
        );
    }
    samples
}

fn binary(bridge: &FlowBridge, id: &str, ty: &str, extra: &[(&str, &str)]) -> u16 {
    support::post_event(bridge.port, id, ty, extra)
}

#[test]
fn counters_after_a_known_mix_of_events_through_the_real_flow() {
    let flow = shared_flow();
    let bridge = FlowBridge::start(&metrics_config(&flow.grpc_url()));

    // Two ok events: binary asking for a reply (200), structured without (202).
    assert_eq!(
        binary(&bridge, &unique("ok"), "metrics.ok", &[("prefer", "reply")]),
        200
    );
    let structured = serde_json::json!({
        "specversion": "1.0", "id": unique("ok"), "source": "/metrics/test",
        "type": "metrics.ok", "data": {"text": "structured"}
    });
    let r = http_request(
        bridge.port,
        "POST",
        "/",
        &[("content-type", "application/cloudevents+json")],
        structured.to_string().as_bytes(),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    // Invalid: binary mode without ce-id.
    let r = http_request(
        bridge.port,
        "POST",
        "/",
        &[
            ("ce-specversion", "1.0"),
            ("ce-type", "metrics.ok"),
            ("ce-source", "/metrics/test"),
        ],
        b"",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    // Unmatched with `unmatched: reject`.
    assert_eq!(binary(&bridge, &unique("none"), "metrics.nobody", &[]), 422);
    // The executor raises.
    assert_eq!(binary(&bridge, &unique("raise"), "metrics.raise", &[]), 502);

    let scrape = http_request(bridge.admin_port, "GET", "/metrics", &[], b"");
    assert_eq!(scrape.status, 200);
    assert_eq!(
        scrape.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let m = parse(&scrape.text());
    let get = |series: &str| -> f64 {
        *m.get(series)
            .unwrap_or_else(|| panic!("no series {series} in:\n{}", scrape.text()))
    };
    let expected: &[(&str, f64)] = &[
        ("flowbridge_events_received_total{mode=\"binary\"}", 3.0),
        ("flowbridge_events_received_total{mode=\"structured\"}", 1.0),
        ("flowbridge_events_received_total{mode=\"batched\"}", 0.0),
        ("flowbridge_events_matched_total{route=\"ok\"}", 2.0),
        ("flowbridge_events_matched_total{route=\"raise\"}", 1.0),
        ("flowbridge_events_unmatched_total{action=\"reject\"}", 1.0),
        ("flowbridge_events_unmatched_total{action=\"accept\"}", 0.0),
        (
            "flowbridge_events_rejected_total{reason=\"invalid_event\"}",
            1.0,
        ),
        ("flowbridge_events_rejected_total{reason=\"no_route\"}", 1.0),
        (
            "flowbridge_events_rejected_total{reason=\"executor_error\"}",
            1.0,
        ),
        (
            "flowbridge_events_rejected_total{reason=\"body_too_large\"}",
            0.0,
        ),
        (
            "flowbridge_event_count_total{route=\"ok\",response_code=\"200\"}",
            1.0,
        ),
        (
            "flowbridge_event_count_total{route=\"ok\",response_code=\"202\"}",
            1.0,
        ),
        (
            "flowbridge_event_count_total{route=\"raise\",response_code=\"502\"}",
            1.0,
        ),
        (
            "flowbridge_event_count_total{route=\"_none\",response_code=\"400\"}",
            1.0,
        ),
        (
            "flowbridge_event_count_total{route=\"_none\",response_code=\"422\"}",
            1.0,
        ),
        (
            "flowbridge_event_dispatch_latencies_seconds_count{route=\"ok\"}",
            2.0,
        ),
        (
            "flowbridge_event_dispatch_latencies_seconds_bucket{route=\"ok\",le=\"+Inf\"}",
            2.0,
        ),
        (
            "flowbridge_replies_sent_total{route=\"ok\",destination=\"response\"}",
            1.0,
        ),
        (
            "flowbridge_replies_sent_total{route=\"ok\",destination=\"sink\"}",
            0.0,
        ),
        (
            "flowbridge_flow_requests_total{gateway=\"main\",outcome=\"ok\"}",
            2.0,
        ),
        (
            "flowbridge_flow_requests_total{gateway=\"main\",outcome=\"executor_error\"}",
            1.0,
        ),
        (
            "flowbridge_flow_requests_total{gateway=\"main\",outcome=\"timeout\"}",
            0.0,
        ),
        (
            "flowbridge_flow_request_duration_seconds_count{gateway=\"main\"}",
            3.0,
        ),
        ("flowbridge_flow_request_docs_count{gateway=\"main\"}", 3.0),
        ("flowbridge_flow_request_docs_sum{gateway=\"main\"}", 3.0),
        (
            "flowbridge_flow_request_docs_bucket{gateway=\"main\",le=\"1\"}",
            3.0,
        ),
        ("flowbridge_flow_request_events_sum{gateway=\"main\"}", 3.0),
        ("flowbridge_flow_retries_total{gateway=\"main\"}", 0.0),
        (
            "flowbridge_flow_cold_start_probes_total{gateway=\"main\"}",
            0.0,
        ),
        ("flowbridge_flow_in_flight_requests{gateway=\"main\"}", 0.0),
        ("flowbridge_pending_events{gateway=\"main\"}", 0.0),
        ("flowbridge_gateway_cold{gateway=\"main\"}", 0.0),
        ("flowbridge_events_overloaded_total{gateway=\"main\"}", 0.0),
        ("flowbridge_cesql_evaluation_errors_total", 0.0),
    ];
    for (series, value) in expected {
        assert_eq!(get(series), *value, "{series}");
    }
    // No series carries an event id.
    assert!(!scrape.text().contains("ok-"), "{}", scrape.text());

    // Probes on both listeners.
    for port in [bridge.admin_port, bridge.port] {
        assert_eq!(http_request(port, "GET", "/healthz", &[], b"").status, 200);
        assert_eq!(http_request(port, "GET", "/readyz", &[], b"").status, 200);
    }
    // /metrics is only on the admin listener.
    assert_eq!(
        http_request(bridge.port, "GET", "/metrics", &[], b"").status,
        404
    );
}

#[test]
fn admin_listener_off_leaves_the_port_closed() {
    let flow = shared_flow();
    let config = metrics_config(&flow.grpc_url());
    let config = config.to_string_lossy().into_owned();
    let bridge = FlowBridge::start_with(
        &["--config", &config, "--log-format", "json"],
        &[("FLOWBRIDGE_ADMIN_LISTEN", "off")],
    );
    assert!(!support::port_accepts(bridge.admin_port));
    // JSON logs: every line of the log is one JSON object.
    let log = bridge.log_text();
    assert!(log.contains("flowbridge listening"), "{log}");
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    }
}
