//! The alert rules of `deploy/prometheus/` checked with Prometheus' own `promtool` (Debian's
//! `prometheus` package; `./scripts/test.sh` installs it when missing): the rules file is valid,
//! every alert passes its unit tests (`flowbridge.rules.test.yml`: fires when it should, stays
//! silent when it should not), the PrometheusRule carries the same groups, a scrape of
//! flowbridge in front of the real Flow passes `promtool check metrics`, docs/metrics.md names
//! every family it serves, its OpenMetrics form passes the Prometheus project's Python parser
//! with the same sample names, and a real Prometheus server scraping that flowbridge answers every
//! Grafana panel (`deploy/grafana/`) and every alert expression with the series and labels they
//! expect. The dev cluster's Prometheus config passes `promtool check config`.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;

use support::{FlowBridge, http_request, post_event, repo_root, shared_flow, unique};

/// `promtool ARGS…` in `deploy/prometheus/`, feeding `stdin`; its combined output, or a panic
/// naming what failed.
fn promtool(args: &[&str], stdin: Option<&str>) -> String {
    promtool_in(&repo_root().join("deploy/prometheus"), args, stdin)
}

/// [`promtool`] in `dir`.
fn promtool_in(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut cmd = Command::new("promtool");
    cmd.args(args).current_dir(dir);
    let out = support::output_with_stdin(&mut cmd, stdin.unwrap_or_default().as_bytes())
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}); install it (Debian: apt-get install prometheus; \
                 ./scripts/test.sh does)"
            )
        });
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

/// The dev cluster's Prometheus config (`deploy/monitoring/prometheus.yml`), beside the rules
/// file as `deploy/kustomization.yaml` mounts them, passes `promtool check config` (which also
/// checks the rules it loads).
#[test]
fn the_dev_cluster_prometheus_config_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    for (from, to) in [
        ("deploy/monitoring/prometheus.yml", "prometheus.yml"),
        (
            "deploy/prometheus/flowbridge.rules.yml",
            "flowbridge.rules.yml",
        ),
    ] {
        std::fs::copy(repo_root().join(from), dir.path().join(to)).unwrap();
    }
    let text = promtool_in(dir.path(), &["check", "config", "prometheus.yml"], None);
    assert!(text.contains("SUCCESS: 6 rules found"), "{text}");
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

/// flowbridge in front of the real Flow with a route that answers, one whose executor raises
/// (both `unmatched: reject`), a dedup window, and a webhook behind a bearer token. Gateway
/// `late` is the same Flow behind `late_port`, where [`forward_later`] may open a way to it.
fn start_bridge(late_port: u16) -> FlowBridge {
    let config = support::write_config(&format!(
        r#"
unmatched: reject
gateways:
  main: {{url: "{}", timeout: 20s}}
  late: {{url: "grpc://127.0.0.1:{late_port}", timeout: 20s, connect_timeout: 60s}}
routes:
  - name: late
    gateway: late
    filters:
      - exact: {{type: prom.late}}
  - name: ok
    gateway: main
    dedup: 5m
    filters:
      - exact: {{type: prom.ok}}
  - name: raise
    gateway: main
    filters:
      - exact: {{type: prom.raise}}
    parameters: '{{"raise": true}}'
webhooks:
  - name: hook
    source: /prometheus/hook
    type: prom.ok
    auth:
      bearer:
        tokens_from:
          - {{env: PROM_TEST_TOKEN}}
"#,
        shared_flow().grpc_url()
    ));
    let config = config.to_string_lossy().into_owned();
    FlowBridge::start_with(
        &["--config", &config],
        &[("PROM_TEST_TOKEN", "s3cret-token-for-the-test")],
    )
}

#[test]
fn a_scrape_passes_promtool_check_metrics() {
    let bridge = start_bridge(support::free_port());
    let send = |ty: &str| post_event(bridge.port, &unique("prom"), ty, &[]);
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
    // docs/metrics.md names every family served.
    let docs = std::fs::read_to_string(repo_root().join("docs/metrics.md")).unwrap();
    let missing: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .filter(|name| !docs.contains(&format!("`{name}`")))
        .collect();
    assert!(missing.is_empty(), "not in docs/metrics.md: {missing:?}");

    // Asked as Prometheus asks by default: OpenMetrics, which the Prometheus project's Python
    // parser (in the jina venv) reads strictly, with the same sample names as the 0.0.4 text.
    let scrape = http_request(
        bridge.admin_port,
        "GET",
        "/metrics",
        &[("accept", PROMETHEUS_ACCEPT)],
        b"",
    );
    assert_eq!(scrape.status, 200);
    assert_eq!(
        scrape.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert_eq!(scrape.header("vary"), Some("accept"));
    let openmetrics = scrape.text();
    assert!(openmetrics.ends_with("# EOF\n"));
    let parsed = openmetrics_sample_names(&openmetrics);
    let mut text_samples: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect();
    text_samples.sort();
    text_samples.dedup();
    assert_eq!(parsed, text_samples);
}

/// Prometheus 2's default scrape `Accept` header.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// The sample names of an OpenMetrics exposition, read by `prometheus_client`'s OpenMetrics
/// parser (which refuses anything off the spec), sorted.
fn openmetrics_sample_names(text: &str) -> Vec<String> {
    let script = "import sys\n\
                  from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
                  names = {s.name for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples}\n\
                  print('\\n'.join(sorted(names)))\n";
    let out = support::output_with_stdin(
        Command::new(support::venv_python()).args(["-c", script]),
        text.as_bytes(),
    )
    .unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the scrape: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A `prometheus` server on a free loopback port scraping `targets` every second and loading
/// the alert rules; stopped (its process group) on drop.
struct Prometheus {
    port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(admin_port: u16) -> Prometheus {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let rules = repo_root().join("deploy/prometheus/flowbridge.rules.yml");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 rule_files: [{rules:?}]\n\
                 scrape_configs:\n  - job_name: flowbridge\n    static_configs:\n      \
                 - targets: [\"127.0.0.1:{admin_port}\"]\n"
            ),
        )
        .unwrap();
        let port = support::free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start prometheus ({e}); install it (Debian: apt-get install \
                     prometheus; ./scripts/test.sh does)"
                )
            });
        let p = Prometheus {
            port,
            child,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !(support::port_accepts(port)
            && http_request(port, "GET", "/-/ready", &[], b"").status == 200)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "prometheus not ready in 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        p
    }

    /// `GET /api/v1/query`: the result vector (panics when the query fails).
    fn query(&self, expr: &str) -> Vec<serde_json::Value> {
        let q = percent_encoding::utf8_percent_encode(expr, percent_encoding::NON_ALPHANUMERIC);
        let r = http_request(
            self.port,
            "GET",
            &format!("/api/v1/query?query={q}"),
            &[],
            b"",
        );
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["status"], "success", "{expr}: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: signalling the process group this test started.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// The expressions of the Grafana dashboard (with its variables at "All" and a 30 s rate
/// window), each with the labels its legend names.
fn dashboard_targets() -> Vec<(String, String, Vec<String>)> {
    let text = std::fs::read_to_string(repo_root().join("deploy/grafana/flowbridge.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "30s")
                .replace("\"$namespace\"", "\".*\"")
                .replace("\"$service\"", "\".*\"")
                .replace("\"$route\"", "\".*\"")
                .replace("\"$gateway\"", "\".*\"");
            assert!(!expr.contains('$') || expr.contains("${1}"), "{expr}");
            let legend = target["legendFormat"].as_str().unwrap_or("");
            let labels = legend
                .split("{{")
                .skip(1)
                .filter_map(|s| s.split_once("}}").map(|(l, _)| l.to_string()))
                .collect();
            out.push((panel["title"].as_str().unwrap().to_string(), expr, labels));
        }
    }
    out
}

/// Every dashboard panel and every alert expression, through a real Prometheus scraping
/// flowbridge in front of the real Flow after events of every outcome and a cold start (a
/// gateway that comes up 1.5 s after its event arrived): each panel returns series with the
/// labels of its legend, each alert evaluates, every metric they read exists, and the cold
/// start shows as a spell and a queue wait of at least 1.5 s.
#[test]
fn dashboard_and_alerts_query_a_real_prometheus() {
    let late_port = support::free_port();
    let bridge = start_bridge(late_port);
    let prometheus = Prometheus::start(bridge.admin_port);
    // A cold start: gateway `late` refuses (nothing listens) until the way to the Flow opens
    // 1.5 s after the event arrived; the event waits in the queue and is answered then.
    let port = bridge.port;
    let late = std::thread::spawn(move || post_event(port, &unique("late"), "prom.late", &[]));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    forward_later(late_port, shared_flow().port);
    assert_eq!(late.join().unwrap(), 202);
    let send = |ty: &str, id: &str| post_event(bridge.port, id, ty, &[]);
    // Every outcome: ok, a redelivery answered from the dedup window, an executor error,
    // unmatched, not a CloudEvent, and a webhook call without its token.
    let id = unique("prom");
    for _ in 0..3 {
        assert_eq!(send("prom.ok", &unique("prom")), 202);
    }
    assert_eq!(send("prom.ok", &id), 202);
    assert_eq!(send("prom.ok", &id), 202);
    assert_eq!(send("prom.raise", &unique("prom")), 502);
    assert_eq!(send("prom.nobody", &unique("prom")), 422);
    assert_eq!(
        http_request(bridge.port, "POST", "/", &[], b"{}").status,
        415
    );
    assert_eq!(
        http_request(bridge.port, "POST", "/webhooks/hook", &[], b"{}").status,
        401
    );
    // Wait until Prometheus has scraped the counters twice after the events (rates need two
    // samples).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let seen =
            prometheus.query("count_over_time(flowbridge_dedup_redeliveries_total[30s]) >= 2");
        if !seen.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "prometheus did not scrape flowbridge twice in 30 s: {:?}",
            prometheus.query("up")
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }

    let mut failures = Vec::new();
    for (title, expr, labels) in dashboard_targets() {
        let result = prometheus.query(&expr);
        if result.is_empty() {
            failures.push(format!("panel {title:?}: no series for {expr}"));
            continue;
        }
        for series in &result {
            for label in &labels {
                if series["metric"].get(label).is_none() {
                    failures.push(format!(
                        "panel {title:?}: a series without label {label}: {series}"
                    ));
                }
            }
        }
    }
    let rules: serde_norway::Value = serde_norway::from_str(
        &std::fs::read_to_string(repo_root().join("deploy/prometheus/flowbridge.rules.yml"))
            .unwrap(),
    )
    .unwrap();
    for rule in rules["groups"][0]["rules"].as_sequence().unwrap() {
        let name = rule["alert"].as_str().unwrap();
        let expr = rule["expr"].as_str().unwrap();
        // Evaluates (query() asserts success); nothing fires in this calm test.
        let _ = prometheus.query(expr);
        for m in metric_names(expr) {
            if prometheus
                .query(&format!("count({{__name__=\"{m}\"}})"))
                .is_empty()
            {
                failures.push(format!("alert {name}: metric {m} has no series"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The cold start shows: one spell of at least the 1.5 s, and the queue wait it caused.
    let spell = prometheus.query(
        "flowbridge_gateway_cold_duration_seconds_sum{gateway=\"late\",cause=\"unavailable\"}",
    );
    let seconds: f64 = spell[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(seconds >= 1.4, "{spell:?}");
    let waited = prometheus.query(
        "histogram_quantile(1, sum by (le) (flowbridge_queue_wait_seconds_bucket{gateway=\"late\"}))",
    );
    let seconds: f64 = waited[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(seconds >= 1.4, "{waited:?}");
    // Prometheus asked for OpenMetrics and got it: a Prometheus 2 (Debian's is 2.42) keeps its
    // `le="1.0"`, where the 0.0.4 text writes `le="1"`. (A Prometheus 3 writes `1.0` for both,
    // and this check would prove nothing there.)
    let bounds = prometheus.query("count by (le) (flowbridge_queue_wait_seconds_bucket)");
    assert!(
        bounds.iter().any(|s| s["metric"]["le"] == "1.0"),
        "{bounds:?}"
    );
    // The rules loaded into the server too.
    let r = http_request(prometheus.port, "GET", "/api/v1/rules", &[], b"");
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let loaded = body["data"]["groups"][0]["rules"].as_array().unwrap().len();
    assert_eq!(loaded, 6, "{body}");
}

/// The `flowbridge_*` metric names an expression reads.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("flowbridge_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let name = expr[start..end].to_string();
        if !names.contains(&name) {
            names.push(name);
        }
        i = end;
    }
    names
}

/// From now on, connections to `127.0.0.1:from` reach `127.0.0.1:to` (a gateway that comes up
/// late, as a Flow scaled to zero does). The forwarding threads live until the test process
/// ends.
fn forward_later(from: u16, to: u16) {
    let listener = std::net::TcpListener::bind(("127.0.0.1", from)).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(inbound) = conn else { continue };
            let Ok(outbound) = std::net::TcpStream::connect(("127.0.0.1", to)) else {
                continue;
            };
            for (mut from, mut to) in [
                (inbound.try_clone().unwrap(), outbound.try_clone().unwrap()),
                (outbound, inbound),
            ] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
}
