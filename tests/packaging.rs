//! Packaging agrees with the code: the port, probe paths, user, entrypoint, config path and env
//! names of the code defaults, the Dockerfile and k8s/ are the same; every YAML document under
//! k8s/ validates against the Knative/Kubernetes schemas; the timeouts nest as documented.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod k8s_schema;
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::CommandFactory;
use serde_json::Value;

use k8s_schema::{Schemas, yaml_docs};
use support::dockerfile::{self, final_stage, instr};

fn root() -> PathBuf {
    support::repo_root()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn flowbridge_ksvc() -> Value {
    yaml_docs(&read("k8s/base/flowbridge.yaml")).remove(0)
}

fn default_port() -> u16 {
    flowbridge::config::validate::DEFAULT_LISTEN
        .rsplit_once(':')
        .unwrap()
        .1
        .parse()
        .unwrap()
}

#[test]
fn port_user_entrypoint_config_path_and_env_names_agree() {
    let port = default_port();
    assert_eq!(port, 8080);
    let stage = final_stage();
    let env = dockerfile::env(&stage);
    let env_of = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());

    // The CLI reads exactly these env names.
    let cli = flowbridge::cli::Cli::command();
    let serve = cli.find_subcommand("serve").unwrap();
    let env_name = |arg: &str| {
        serve
            .get_arguments()
            .find(|a| a.get_id() == arg)
            .and_then(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
    };
    assert_eq!(env_name("port").as_deref(), Some("PORT"));
    assert_eq!(env_name("config").as_deref(), Some("FLOWBRIDGE_CONFIG"));

    // Dockerfile: port, user, entrypoint, config path.
    assert_eq!(instr(&stage, "EXPOSE"), [port.to_string()]);
    assert_eq!(env_of("PORT"), Some(port.to_string()));
    assert_eq!(instr(&stage, "USER"), ["65532:65532"]);
    assert!(instr(&stage, "FROM")[0].starts_with("gcr.io/distroless/static-debian12:nonroot"));
    assert_eq!(instr(&stage, "ENTRYPOINT"), [r#"["/flowbridge"]"#]);
    assert_eq!(instr(&stage, "CMD"), [r#"["serve"]"#]);
    let config_path = env_of("FLOWBRIDGE_CONFIG").unwrap();
    assert_eq!(config_path, "/etc/flowbridge/config.yaml");

    // k8s: the same port, probes on the paths the server serves, the same user, path and args.
    let ksvc = flowbridge_ksvc();
    let spec = &ksvc["spec"]["template"]["spec"];
    let c = &spec["containers"][0];
    assert_eq!(c["ports"][0]["containerPort"], port);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], port);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], port);
    assert_eq!(c["args"], serde_json::json!(["serve"]));
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsUser"], 65532);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert!(c["resources"]["requests"]["cpu"].is_string());
    assert!(c["resources"]["requests"]["memory"].is_string());
    let k8s_env = |k: &str| {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == k)
            .map(|e| e["value"].as_str().unwrap().to_string())
    };
    assert_eq!(k8s_env("FLOWBRIDGE_CONFIG"), Some(config_path.clone()));
    // Knative sets PORT itself (and rejects it in env).
    assert_eq!(k8s_env("PORT"), None);
    // The config file is the `config.yaml` key of the ConfigMap mounted at its directory.
    let (dir, file) = config_path.rsplit_once('/').unwrap();
    let mount = &c["volumeMounts"][0];
    assert_eq!(mount["mountPath"], dir);
    let volume = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    let cm_name = volume["configMap"]["name"].as_str().unwrap();
    let cm = yaml_docs(&read("k8s/base/flowbridge-config.yaml")).remove(0);
    assert_eq!(cm["metadata"]["name"], cm_name);
    assert!(
        cm["data"][file].is_string(),
        "ConfigMap {cm_name} has no key {file}"
    );
}

/// The mounted config, as the container sees it (with the K_SINK a SinkBinding injects).
fn k8s_config_file(dir: &Path) -> PathBuf {
    let cm = yaml_docs(&read("k8s/base/flowbridge-config.yaml")).remove(0);
    let path = dir.join("config.yaml");
    std::fs::write(&path, cm["data"]["config.yaml"].as_str().unwrap()).unwrap();
    path
}

const K_SINK: &str = "http://broker-ingress.knative-eventing.svc.cluster.local/flowbridge/default";

#[test]
fn the_k8s_config_loads_and_the_probe_paths_answer() {
    let dir = tempfile::tempdir().unwrap();
    let config = k8s_config_file(dir.path());
    let check = std::process::Command::new(support::flowbridge_bin())
        .args(["check", "--config"])
        .arg(&config)
        .env("K_SINK", K_SINK)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(!stdout.contains("warning"), "{stdout}");
    assert!(stdout.contains("ok: 3 route(s), 1 gateway(s)"), "{stdout}");
    // Served the way the Knative Service runs it: config path from FLOWBRIDGE_CONFIG.
    let bridge = support::FlowBridge::start_with(
        &[],
        &[
            ("FLOWBRIDGE_CONFIG", config.to_str().unwrap()),
            ("K_SINK", K_SINK),
        ],
    );
    for path in ["/readyz", "/healthz"] {
        let r = support::http_request(bridge.port, "GET", path, &[], b"");
        assert_eq!(r.status, 200, "GET {path}");
    }
}

/// k8s/overlays/redis: the base config plus `dedup`, `rate` and `state:` (the base's lines in
/// order, nothing of it changed), and it loads.
#[test]
fn the_redis_overlay_config_is_the_base_plus_state_and_loads() {
    let data = |rel: &str| {
        let cm = yaml_docs(&read(rel)).remove(0);
        cm["data"]["config.yaml"].as_str().unwrap().to_string()
    };
    let base = data("k8s/base/flowbridge-config.yaml");
    let overlay = data("k8s/overlays/redis/flowbridge-config.yaml");
    let mut extra = overlay.lines();
    for line in base.lines() {
        assert!(
            extra.any(|l| l == line),
            "base line {line:?} missing or out of order in the redis overlay"
        );
    }
    for needed in [
        "dedup: 5m",
        "rate: 50",
        "state:",
        "redis: redis://redis.flowbridge.svc",
    ] {
        assert!(
            overlay.contains(needed),
            "{needed} not in the overlay config"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, &overlay).unwrap();
    let check = std::process::Command::new(support::flowbridge_bin())
        .args(["check", "--config"])
        .arg(&config)
        .env("K_SINK", K_SINK)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(!stdout.contains("warning"), "{stdout}");
}

fn iso_seconds(s: &str) -> u64 {
    let n = s
        .strip_prefix("PT")
        .and_then(|r| r.strip_suffix('S'))
        .unwrap_or_else(|| panic!("{s}: expected PT<n>S"));
    n.parse().unwrap()
}

#[test]
fn timeouts_nest_from_the_trigger_down_to_the_flow() {
    let ksvc = flowbridge_ksvc();
    let sink_timeout = ksvc["spec"]["template"]["spec"]["timeoutSeconds"]
        .as_u64()
        .unwrap();
    assert_eq!(
        ksvc["spec"]["template"]["spec"]["responseStartTimeoutSeconds"],
        sink_timeout
    );
    let cm = yaml_docs(&read("k8s/base/flowbridge-config.yaml")).remove(0);
    let config: Value =
        serde_norway::from_str(cm["data"]["config.yaml"].as_str().unwrap()).unwrap();
    let gateway_timeout =
        humantime::parse_duration(config["gateways"]["heavy"]["timeout"].as_str().unwrap())
            .unwrap();
    // flowbridge's whole budget for one event: waiting in the queue, then the request.
    let connect_timeout = humantime::parse_duration(
        config["gateways"]["heavy"]["connect_timeout"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let flow_timeouts: Vec<u64> = ["k8s/flow/gateway/gateway.yml", "k8s/flow/heavy/heavy.yml"]
        .iter()
        .flat_map(|f| yaml_docs(&read(f)))
        .filter(|d| d["kind"] == "Service")
        .map(|d| {
            d["spec"]["template"]["spec"]["timeoutSeconds"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(flow_timeouts.len(), 2);
    let mut deliveries = Vec::new();
    for f in [
        "k8s/base/triggers.yaml",
        "k8s/overlays/kafka/kafkasource.yaml",
    ] {
        for d in yaml_docs(&read(f)) {
            if d["spec"]["subscriber"]["ref"]["name"] == "flowbridge"
                || d["spec"]["sink"]["ref"]["name"] == "flowbridge"
            {
                deliveries.push((
                    format!("{f} {}", d["metadata"]["name"]),
                    iso_seconds(d["spec"]["delivery"]["timeout"].as_str().unwrap()),
                ));
                assert!(d["spec"]["delivery"]["deadLetterSink"].is_object());
                assert!(d["spec"]["delivery"]["retry"].as_u64().unwrap() > 0);
            }
        }
    }
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    for (what, delivery) in &deliveries {
        assert!(
            *delivery > sink_timeout,
            "{what}: delivery.timeout {delivery}s must exceed flowbridge's timeoutSeconds {sink_timeout}"
        );
    }
    assert!(
        Duration::from_secs(sink_timeout) > connect_timeout + gateway_timeout,
        "flowbridge timeoutSeconds {sink_timeout} must exceed connect_timeout {connect_timeout:?} \
         + timeout {gateway_timeout:?}"
    );
    for t in flow_timeouts {
        assert!(
            gateway_timeout > Duration::from_secs(t),
            "the gateway timeout {gateway_timeout:?} must exceed the Flow's timeoutSeconds {t}"
        );
    }
    // The gateway URL is the Flow gateway's Knative Service, on the port Knative serves.
    assert_eq!(
        config["gateways"]["heavy"]["url"],
        "grpc://gateway.flowbridge.svc.cluster.local:80"
    );
}

#[test]
fn every_yaml_document_under_k8s_validates() {
    let schemas = Schemas::load();
    let mut files = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                out.push(p);
            }
        }
    }
    walk(&root().join("k8s"), &mut files);
    files.sort();
    let mut report = Vec::new();
    let mut kustomizations = 0;
    for f in &files {
        let rel = f.strip_prefix(root()).unwrap().display().to_string();
        if f.file_name().unwrap() == "kustomization.yaml" {
            k8s_schema::check_kustomization(&schemas, f.parent().unwrap());
            kustomizations += 1;
            continue;
        }
        for (id, schema) in schemas.validate_text(&rel, &std::fs::read_to_string(f).unwrap()) {
            report.push(format!("{rel}: {id} ← {schema}"));
        }
    }
    // base, dev, prod, kafka, redis and the generated flow.
    assert_eq!(kustomizations, 6);
    println!("{}", report.join("\n"));
    for kind in [
        "serving.knative.dev/v1 Service flowbridge",
        "serving.knative.dev/v1 Service gateway",
        "serving.knative.dev/v1 Service heavy",
        "serving.knative.dev/v1 Service event-display",
        "eventing.knative.dev/v1 Broker default",
        "eventing.knative.dev/v1 Trigger orders",
        "sources.knative.dev/v1 PingSource nightly-reindex",
        "sources.knative.dev/v1 SinkBinding flowbridge-replies",
        "sources.knative.dev/v1 KafkaSource articles",
        "v1 ConfigMap flowbridge-config",
        "v1 Namespace flowbridge",
        "apps/v1 Deployment redis",
        "v1 Service redis",
    ] {
        assert!(
            report.iter().any(|r| r.contains(&format!(": {kind} ←"))),
            "{kind} not shipped/validated:\n{}",
            report.join("\n")
        );
    }
}

/// The dev monitoring stack (`deploy/kustomization.yaml`, applied by scripts/cluster-up.sh):
/// every object validates, every ConfigMap a Deployment mounts exists in its namespace, and the
/// pieces point at each other — Prometheus reads the config file where it is mounted and finds
/// flowbridge's pods through the headless Service on the admin port; Grafana's data source is
/// that Prometheus, and its dashboard provider reads the directory where the dashboard is
/// mounted. (`tests/prometheus.rs` runs `promtool check config` on the Prometheus config.)
#[test]
fn the_monitoring_stack_validates_and_is_wired() {
    let schemas = Schemas::load();
    let resources = k8s_schema::check_kustomization(&schemas, &root().join("deploy"));
    for r in &resources {
        if let Err(errors) = schemas.validate(&r.doc) {
            panic!("{}: {}", r.file.display(), errors.join("\n"));
        }
    }
    let find = |kind: &str, ns: &str, name: &str| -> &Value {
        &resources
            .iter()
            .find(|r| {
                r.doc["kind"] == kind
                    && r.doc["metadata"]["name"] == name
                    && r.doc["metadata"]["namespace"].as_str().unwrap_or("") == ns
            })
            .unwrap_or_else(|| panic!("no {kind} {ns}/{name} in deploy/"))
            .doc
    };
    // Every mounted ConfigMap exists; `mounts` gives a container's mount path of a ConfigMap key.
    let mounts = |deployment: &str| -> Vec<(String, Value)> {
        let d = find("Deployment", "monitoring", deployment);
        let spec = &d["spec"]["template"]["spec"];
        let mut out = Vec::new();
        for m in spec["containers"][0]["volumeMounts"].as_array().unwrap() {
            let v = spec["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == m["name"])
                .unwrap();
            if let Some(cm) = v["configMap"]["name"].as_str() {
                let data = find("ConfigMap", "monitoring", cm)["data"].clone();
                out.push((m["mountPath"].as_str().unwrap().to_owned(), data));
            }
        }
        out
    };
    let file_at = |deployment: &str, path: &str| -> String {
        let (dir, key) = path.rsplit_once('/').unwrap();
        mounts(deployment)
            .into_iter()
            .find(|(mount, _)| mount == dir)
            .and_then(|(_, data)| data[key].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("{deployment}: nothing mounted at {path}"))
    };

    // Prometheus: its config where --config.file says, the rules beside it.
    let prom = find("Deployment", "monitoring", "prometheus");
    let args = prom["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap();
    let config_file = args
        .iter()
        .find_map(|a| a.as_str().unwrap().strip_prefix("--config.file="))
        .unwrap();
    let config: Value = serde_norway::from_str(&file_at("prometheus", config_file)).unwrap();
    let dir = config_file.rsplit_once('/').unwrap().0;
    for rules in config["rule_files"].as_array().unwrap() {
        file_at("prometheus", &format!("{dir}/{}", rules.as_str().unwrap()));
    }
    // It finds flowbridge through the headless Service, on the admin listener's port.
    let job = &config["scrape_configs"][0];
    let sd = &job["dns_sd_configs"][0];
    let metrics = find("Service", "flowbridge", "flowbridge-metrics");
    assert_eq!(metrics["spec"]["clusterIP"], "None");
    assert_eq!(
        sd["names"][0],
        "flowbridge-metrics.flowbridge.svc.cluster.local"
    );
    let admin_port: u16 = flowbridge::config::validate::DEFAULT_ADMIN_LISTEN
        .rsplit_once(':')
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert_eq!(sd["port"], admin_port);
    assert_eq!(metrics["spec"]["ports"][0]["targetPort"], admin_port);
    let ksvc = flowbridge_ksvc();
    assert_eq!(
        ksvc["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"],
        admin_port.to_string()
    );
    assert_eq!(
        metrics["spec"]["selector"]["serving.knative.dev/service"],
        ksvc["metadata"]["name"]
    );
    // The labels the dashboard and alerts group by.
    let relabeled: Vec<&str> = job["relabel_configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target_label"].as_str().unwrap())
        .collect();
    assert_eq!(relabeled, ["namespace", "service"]);

    // Grafana: the data source is that Prometheus; the provider reads the dashboards' mount.
    let datasources: Value = serde_norway::from_str(&file_at(
        "grafana",
        "/etc/grafana/provisioning/datasources/prometheus.yaml",
    ))
    .unwrap();
    let prom_svc = find("Service", "monitoring", "prometheus");
    assert_eq!(
        datasources["datasources"][0]["url"],
        format!(
            "http://prometheus.monitoring.svc.cluster.local:{}",
            prom_svc["spec"]["ports"][0]["port"]
        )
    );
    assert_eq!(
        prom_svc["spec"]["ports"][0]["targetPort"],
        prom["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
    );
    let providers: Value = serde_norway::from_str(&file_at(
        "grafana",
        "/etc/grafana/provisioning/dashboards/flowbridge.yaml",
    ))
    .unwrap();
    let path = providers["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    let dashboard: Value =
        serde_json::from_str(&file_at("grafana", &format!("{path}/flowbridge.json"))).unwrap();
    assert_eq!(
        dashboard,
        serde_json::from_str::<Value>(&read("deploy/grafana/flowbridge.json")).unwrap()
    );
}

#[test]
fn the_strict_check_catches_a_misspelt_field() {
    // The CRD schemas alone accept unknown fields; our strict walk must not.
    let schemas = Schemas::load();
    let mut ksvc = flowbridge_ksvc();
    assert!(schemas.validate(&ksvc).is_ok());
    ksvc["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x".into();
    let errors = schemas.validate(&ksvc).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("/spec/template/spec/containers/0/imagee: unknown field")),
        "{errors:?}"
    );
    let mut ksvc = flowbridge_ksvc();
    ksvc["spec"]["template"]["spec"]["containers"][0]["lifecycle"] = serde_json::json!({});
    assert!(
        schemas.validate(&ksvc).is_err(),
        "Knative Services may not set lifecycle"
    );
    // And the CRD schema itself is applied (types, enums).
    let mut trigger = yaml_docs(&read("k8s/base/triggers.yaml")).remove(0);
    assert!(schemas.validate(&trigger).is_ok());
    trigger["spec"]["delivery"]["retry"] = "five".into();
    let errors = schemas.validate(&trigger).unwrap_err();
    assert!(
        errors.iter().any(|e| e.contains("/spec/delivery/retry")),
        "{errors:?}"
    );
    let mut cm = yaml_docs(&read("k8s/base/flowbridge-config.yaml")).remove(0);
    cm["dta"] = serde_json::json!({});
    assert!(schemas.validate(&cm).is_err());
}

#[test]
fn dockerignore_keeps_the_build_inputs_and_drops_the_rest() {
    let ignore = read(".dockerignore");
    let entries: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for out in ["target/", ".git/"] {
        assert!(entries.contains(&out), ".dockerignore must exclude {out}");
    }
    for needed in [
        "src",
        "proto",
        "build.rs",
        "Cargo.toml",
        "Cargo.lock",
        "tests",
        "benches",
    ] {
        assert!(
            !entries.iter().any(|e| e.trim_end_matches('/') == needed),
            ".dockerignore excludes {needed}, which the build needs"
        );
    }
    let build = read("Dockerfile");
    assert!(build.contains("FROM rust:1.95"));
    assert!(build.contains("-unknown-linux-musl"));
    assert!(build.contains("--locked --bin flowbridge"));
}
