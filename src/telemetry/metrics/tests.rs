//! Tests of the registry through its text: series names, labels and values as a scrape shows
//! them, and that the text is well-formed (Prometheus text format 0.0.4).

use super::*;

fn value(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_owned))
}

/// The family a sample line belongs to and its type, from the `# TYPE` lines of `text` (a
/// histogram's samples carry `_bucket`, `_sum` or `_count` after its name).
fn family_of<'a>(text: &str, name: &'a str) -> Option<(&'a str, String)> {
    let kind = |family: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("# TYPE {family} ")[..]))
            .map(str::to_owned)
    };
    if let Some(k) = kind(name) {
        return Some((name, k));
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = name.strip_suffix(suffix)?;
        let k = kind(base).filter(|k| k == "histogram")?;
        Some((base, k))
    })
}

#[test]
fn counters_render_with_labels_and_types() {
    let m = Metrics::new(["orders"], ["default"]).with_reasons(["invalid_event", "no_route"]);
    m.received("binary", 2);
    m.received("batched", 3);
    m.rejected("invalid_event");
    m.route("orders").matched.inc();
    m.route("orders").answered(202);
    m.route("orders").answered(202);
    m.route("nonexistent").answered(413);
    m.route("orders").reply_sent(false);
    let text = m.render(
        &[GatewayGauges {
            limit: None,
            gateway: "default".into(),
            pending: 4,
            in_flight: 1,
            cold: true,
            overloaded: 7,
            timeout: 60.0,
        }],
        9,
    );
    let v = |s: &str| value(&text, s);
    let expected = [
        ("flowbridge_events_received_total{mode=\"binary\"}", "2"),
        ("flowbridge_events_received_total{mode=\"batched\"}", "3"),
        ("flowbridge_events_received_total{mode=\"structured\"}", "0"),
        (
            "flowbridge_events_rejected_total{reason=\"invalid_event\"}",
            "1",
        ),
        ("flowbridge_events_rejected_total{reason=\"no_route\"}", "0"),
        (
            "flowbridge_event_count_total{route=\"orders\",response_code=\"202\"}",
            "2",
        ),
        (
            "flowbridge_event_count_total{route=\"_none\",response_code=\"413\"}",
            "1",
        ),
        (
            "flowbridge_replies_sent_total{route=\"orders\",destination=\"sink\"}",
            "1",
        ),
        ("flowbridge_pending_events{gateway=\"default\"}", "4"),
        (
            "flowbridge_flow_in_flight_requests{gateway=\"default\"}",
            "1",
        ),
        ("flowbridge_gateway_cold{gateway=\"default\"}", "1"),
        (
            "flowbridge_gateway_timeout_seconds{gateway=\"default\"}",
            "60.0",
        ),
        (
            "flowbridge_events_overloaded_total{gateway=\"default\"}",
            "7",
        ),
        ("flowbridge_cesql_evaluation_errors_total", "9"),
    ];
    for (series, want) in expected {
        assert_eq!(v(series).as_deref(), Some(want), "{series} in\n{text}");
    }
    // Only the status codes that counted something.
    assert_eq!(text.matches("flowbridge_event_count_total{").count(), 2);
    assert!(text.contains("# TYPE flowbridge_event_count_total counter\n"));
    assert!(text.contains("# TYPE flowbridge_flow_request_duration_seconds histogram\n"));
    assert!(text.contains("# HELP flowbridge_events_matched_total Events that matched a route.\n"));
    // Every sample line is `name{labels} value` or `name value`, after its family's TYPE line;
    // no family comes twice.
    let mut seen = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_default();
        assert!(value.parse::<f64>().is_ok(), "bad value in {line:?}");
        let name = series.split('{').next().unwrap_or_default();
        assert!(family_of(&text, name).is_some(), "no TYPE for {line:?}");
    }
    for line in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        assert!(!seen.contains(&line), "family twice: {line}");
        seen.push(line);
    }
}

#[test]
fn a_reason_not_given_at_start_is_still_counted() {
    let m = Metrics::new([], []).with_reasons(["invalid_event"]);
    m.rejected("brand_new_code");
    m.rejected("brand_new_code");
    let text = m.render(&[], 0);
    assert_eq!(
        value(
            &text,
            "flowbridge_events_rejected_total{reason=\"brand_new_code\"}"
        )
        .as_deref(),
        Some("2")
    );
    assert_eq!(
        value(
            &text,
            "flowbridge_events_rejected_total{reason=\"invalid_event\"}"
        )
        .as_deref(),
        Some("0")
    );
}

#[test]
fn histogram_buckets_are_cumulative_with_sum_and_count() {
    let m = Metrics::new(["r"], ["g"]);
    let g = m.gateway("g").unwrap_or_default();
    g.request_done("ok", 0.00390625);
    g.request_done("ok", 0.25);
    g.request_done("timeout", 100.0);
    assert_eq!(g.latency.count(), 3);
    let text = m.render(&[], 0);
    let v = |s: &str| value(&text, s);
    let b = |le: &str| {
        v(&format!(
            "flowbridge_flow_request_duration_seconds_bucket{{gateway=\"g\",le=\"{le}\"}}"
        ))
    };
    assert_eq!(b("0.005").as_deref(), Some("1"));
    assert_eq!(b("0.1").as_deref(), Some("1"));
    assert_eq!(b("0.5").as_deref(), Some("2"));
    assert_eq!(b("0.25").as_deref(), Some("2"));
    assert_eq!(b("60").as_deref(), Some("2"));
    assert_eq!(b("+Inf").as_deref(), Some("3"));
    assert_eq!(
        v("flowbridge_flow_request_duration_seconds_count{gateway=\"g\"}").as_deref(),
        Some("3")
    );
    assert_eq!(
        v("flowbridge_flow_request_duration_seconds_sum{gateway=\"g\"}").as_deref(),
        Some("100.25390625")
    );
    assert_eq!(
        v("flowbridge_flow_requests_total{gateway=\"g\",outcome=\"ok\"}").as_deref(),
        Some("2")
    );
    assert_eq!(
        v("flowbridge_flow_requests_total{gateway=\"g\",outcome=\"timeout\"}").as_deref(),
        Some("1")
    );
    assert_eq!(
        v("flowbridge_flow_request_docs_bucket{gateway=\"g\",le=\"1024\"}").as_deref(),
        Some("0")
    );
}

#[test]
fn limit_gauges_render_per_gateway() {
    let m = Metrics::new([], ["g"]);
    let gauges = GatewayGauges {
        gateway: "g".into(),
        limit: Some(LimitGauges {
            limit: 12,
            reason: "latency_rose",
            ratio: Some(1.5),
            docs: Some(3.25),
            no_load: vec![(1, 0.002), (8, 0.004)],
        }),
        ..GatewayGauges::default()
    };
    let text = m.render(&[gauges], 0);
    let v = |s: &str| value(&text, s);
    let expected = [
        ("flowbridge_gateway_concurrency_limit{gateway=\"g\"}", "12"),
        (
            "flowbridge_gateway_concurrency_limit_reason{gateway=\"g\",reason=\"latency_rose\"}",
            "1",
        ),
        ("flowbridge_gateway_latency_ratio{gateway=\"g\"}", "1.5"),
        ("flowbridge_gateway_batch_docs{gateway=\"g\"}", "3.25"),
        (
            "flowbridge_gateway_no_load_latency_seconds{gateway=\"g\",docs=\"1\"}",
            "0.002",
        ),
        (
            "flowbridge_gateway_no_load_latency_seconds{gateway=\"g\",docs=\"8\"}",
            "0.004",
        ),
        (
            "flowbridge_gateway_concurrency_limit_changes_total{gateway=\"g\",reason=\"start\"}",
            "0",
        ),
    ];
    for (series, want) in expected {
        assert_eq!(v(series).as_deref(), Some(want), "{series} in\n{text}");
    }
    assert!(text.contains("# TYPE flowbridge_gateway_no_load_latency_seconds gauge\n"));
}

#[test]
fn auth_failures_and_webhooks() {
    let m = Metrics::new(["r"], ["g"]).with_webhooks(["github"]);
    m.auth_failure("/", "oidc", Reason::Expired);
    m.auth_failure("/", "oidc", Reason::Expired);
    m.auth_failure("/webhooks/github", "hmac", Reason::BadSignature);
    m.auth_failure("/webhooks/unknown", "hmac", Reason::BadSignature);
    m.auth_failure("/", "no-such-method", Reason::Expired);
    m.webhook_received("github");
    m.webhook_received("unknown");
    let text = m.render(&[], 0);
    let v = |s: &str| value(&text, s);
    assert_eq!(
        v("flowbridge_auth_failures_total{endpoint=\"/\",method=\"oidc\",reason=\"expired\"}")
            .as_deref(),
        Some("2")
    );
    assert_eq!(
        v("flowbridge_auth_failures_total{endpoint=\"/webhooks/github\",method=\"hmac\",reason=\"bad_signature\"}")
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        text.matches("flowbridge_auth_failures_total{").count(),
        2,
        "only series that counted something"
    );
    assert_eq!(
        v("flowbridge_webhook_requests_total{webhook=\"github\"}").as_deref(),
        Some("1")
    );
    assert_eq!(
        text.matches("flowbridge_webhook_requests_total{").count(),
        1
    );
}

#[test]
fn config_generation_and_reloads_render() {
    let m = Metrics::new(["r"], []);
    let text = m.render(&[], 0);
    assert_eq!(
        value(&text, "flowbridge_config_generation").as_deref(),
        Some("0")
    );
    assert_eq!(
        value(&text, "flowbridge_config_info{generation=\"0\",hash=\"\"}").as_deref(),
        Some("1")
    );
    m.set_config(3, "0123456789abcdef");
    m.reloaded("success");
    m.reloaded("failure");
    m.reloaded("failure");
    m.register(["added"], ["g2"]);
    m.route("added").answered(202);
    let text = m.render(&[], 0);
    let v = |s: &str| value(&text, s);
    assert_eq!(v("flowbridge_config_generation").as_deref(), Some("3"));
    assert_eq!(
        v("flowbridge_config_info{generation=\"3\",hash=\"0123456789abcdef\"}").as_deref(),
        Some("1")
    );
    assert_eq!(text.matches("flowbridge_config_info{").count(), 1);
    assert_eq!(
        v("flowbridge_config_reloads_total{outcome=\"success\"}").as_deref(),
        Some("1")
    );
    assert_eq!(
        v("flowbridge_config_reloads_total{outcome=\"failure\"}").as_deref(),
        Some("2")
    );
    assert_eq!(
        v("flowbridge_event_count_total{route=\"added\",response_code=\"202\"}").as_deref(),
        Some("1")
    );
    assert_eq!(m.route("added").answered_with(202), 1);
    assert_eq!(
        v("flowbridge_flow_retries_total{gateway=\"g2\"}").as_deref(),
        Some("0")
    );
    assert_eq!(m.config(), (3, "0123456789abcdef".to_owned()));
}

#[test]
fn label_values_are_escaped() {
    let m = Metrics::new(["q\"b\\n\nz"], []);
    m.route("q\"b\\n\nz").matched.inc();
    let text = m.render(&[], 0);
    assert_eq!(
        value(
            &text,
            "flowbridge_events_matched_total{route=\"q\\\"b\\\\n\\nz\"}"
        )
        .as_deref(),
        Some("1"),
        "{text}"
    );
}

#[test]
fn help_texts_end_with_one_full_stop() {
    let m = Metrics::new([], ["g"]);
    let text = m.render(&[GatewayGauges::default()], 0);
    for help in text.lines().filter(|l| l.starts_with("# HELP ")) {
        assert!(help.ends_with('.') && !help.ends_with(".."), "{help}");
        assert!(!help.contains(['"', '\\']), "needs escaping: {help}");
    }
}

#[test]
fn state_series_only_with_state() {
    let m = Metrics::new([], []);
    let text = m.render(&[], 0);
    assert!(!text.contains("flowbridge_state_"), "{text}");
    let state = StateGauges {
        up: false,
        errors: vec![("dedup", 3), ("rate", 0)],
    };
    let text = m.render_with_state(&[], 0, Some(state), super::Format::Prometheus);
    assert_eq!(
        value(&text, "flowbridge_state_up").as_deref(),
        Some("0"),
        "{text}"
    );
    assert_eq!(
        value(&text, "flowbridge_state_errors_total{feature=\"dedup\"}").as_deref(),
        Some("3"),
        "{text}"
    );
    assert_eq!(
        value(&text, "flowbridge_state_errors_total{feature=\"rate\"}").as_deref(),
        Some("0"),
        "{text}"
    );
}

#[test]
fn openmetrics_has_the_same_families_and_one_eof() {
    let m = Metrics::new(["r"], ["g"]);
    let gateway = m.gateway("g").unwrap();
    gateway.queue_wait.observe(0.002);
    gateway.cold_ended("waking", 12.0);
    let prometheus = m.render(&[], 0);
    let openmetrics = m.render_with_state(&[], 0, None, super::Format::OpenMetrics);
    assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
    assert_eq!(openmetrics.matches("# EOF").count(), 1);
    assert!(!prometheus.contains("# EOF"));
    for text in [&prometheus, &openmetrics] {
        assert!(
            text.contains("flowbridge_queue_wait_seconds_count{gateway=\"g\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "flowbridge_gateway_cold_duration_seconds_sum{gateway=\"g\",cause=\"waking\"} 12"
            ),
            "{text}"
        );
    }
    // The one difference a Prometheus 2 stores: integral histogram bounds.
    assert!(
        prometheus.contains("flowbridge_queue_wait_seconds_bucket{gateway=\"g\",le=\"1\"}"),
        "{prometheus}"
    );
    assert!(
        openmetrics.contains("flowbridge_queue_wait_seconds_bucket{le=\"1.0\",gateway=\"g\"}"),
        "{openmetrics}"
    );
}
