//! The alert rules of `deploy/prometheus/` checked with Prometheus' own `promtool` (Debian's
//! `prometheus` package; `./scripts/test.sh` installs it when missing): the rules file is valid,
//! every alert passes its unit tests (`flowbridge.rules.test.yml`: fires when it should, stays
//! silent when it should not), the PrometheusRule carries the same groups, and a scrape of
//! flowbridge in front of the real Flow passes `promtool check metrics`.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::{FlowBridge, http_request, repo_root, shared_flow, unique};

/// `promtool ARGS…` in `deploy/prometheus/`, feeding `stdin`; its combined output, or a panic
/// naming what failed.
fn promtool(args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(repo_root().join("deploy/prometheus"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}); install it (Debian: apt-get install prometheus; \
                 ./scripts/test.sh does)"
            )
        });
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn the_rules_are_valid_and_pass_their_unit_tests() {
    let checked = promtool(&["check", "rules", "flowbridge.rules.yml"], None);
    assert!(checked.contains("SUCCESS: 6 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "flowbridge.rules.test.yml"], None);
    assert!(tested.contains("SUCCESS"), "{tested}");
    // Every alert has at least one test case that expects it to fire.
    let rules = std::fs::read_to_string(repo_root().join("deploy/prometheus/flowbridge.rules.yml"))
        .unwrap();
    let tests =
        std::fs::read_to_string(repo_root().join("deploy/prometheus/flowbridge.rules.test.yml"))
            .unwrap();
    for line in rules.lines() {
        if let Some(name) = line.trim().strip_prefix("- alert: ") {
            assert!(
                tests.contains(&format!("alertname: {name}")),
                "{name} has no unit test"
            );
        }
    }
}

#[test]
fn the_prometheus_rule_has_the_same_groups() {
    let read = |f: &str| -> serde_norway::Value {
        serde_norway::from_str(
            &std::fs::read_to_string(repo_root().join("deploy/prometheus").join(f)).unwrap(),
        )
        .unwrap()
    };
    let rules = read("flowbridge.rules.yml");
    let crd = read("prometheusrule.yaml");
    assert_eq!(crd["kind"], serde_norway::Value::from("PrometheusRule"));
    assert_eq!(crd["spec"]["groups"], rules["groups"]);
}

#[test]
fn a_scrape_passes_promtool_check_metrics() {
    let flow = shared_flow();
    let config = support::write_config(&format!(
        r#"
unmatched: reject
gateways:
  main: {{url: "{}", timeout: 20s}}
routes:
  - name: ok
    gateway: main
    filters:
      - exact: {{type: prom.ok}}
  - name: raise
    gateway: main
    filters:
      - exact: {{type: prom.raise}}
    parameters: '{{"raise": true}}'
"#,
        flow.grpc_url()
    ));
    let bridge = FlowBridge::start(&config);
    let send = |ty: &str| {
        http_request(
            bridge.port,
            "POST",
            "/",
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", &unique("prom")),
                ("ce-type", ty),
                ("ce-source", "/prometheus/test"),
                ("content-type", "application/json"),
            ],
            br#"{"text": "scrape me"}"#,
        )
        .status
    };
    // Events of every outcome: ok, executor error, unmatched, not a CloudEvent (no content type).
    assert_eq!(send("prom.ok"), 202);
    assert_eq!(send("prom.raise"), 502);
    assert_eq!(send("prom.nobody"), 422);
    assert_eq!(
        http_request(bridge.port, "POST", "/", &[], b"{}").status,
        415
    );
    let scrape = http_request(bridge.admin_port, "GET", "/metrics", &[], b"");
    assert_eq!(scrape.status, 200);
    let text = scrape.text();
    assert!(text.contains("flowbridge_gateway_timeout_seconds{gateway=\"main\"} 20.0"));
    let out = promtool(&["check", "metrics"], Some(&text));
    assert!(!out.contains("problem"), "{out}");
}
