//! `flowbridge knative` on real `jina export kubernetes` output (jina 3.34 from the test venv):
//! one executor, two in sequence, replicas, multi-protocol gateways, shards, volumes. Every file
//! it writes must validate against the Knative/Kubernetes schemas, and the conversions and
//! refusals are asserted. Also: k8s/flow/ is exactly what the converter makes of the example Flow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod k8s_schema;
mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};

use k8s_schema::{Schemas, yaml_docs};

const EXPORT_NS: &str = "jina-ns";
const TARGET_NS: &str = "flows";
const GATEWAY_IMAGE: &str = "example.com/jina:3.34.0";

fn schemas() -> &'static Schemas {
    static S: OnceLock<Schemas> = OnceLock::new();
    S.get_or_init(Schemas::load)
}

fn jina() -> PathBuf {
    support::venv_python().with_file_name("jina")
}

/// Run `jina export kubernetes` on `flow_yaml` (cached per case for this test binary).
fn export_with(case: &str, flow_yaml: &str, namespace: &str, gateway_image: &str) -> PathBuf {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<OnceLock<PathBuf>>>>> = OnceLock::new();
    let cell = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(case.to_string())
        .or_default()
        .clone();
    cell.get_or_init(|| {
        let dir = support::repo_root()
            .join("target/tmp/knative-export")
            .join(format!("{case}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let flow = dir.join("flow.yml");
        std::fs::write(&flow, flow_yaml).unwrap();
        let out = dir.join("export");
        let result = Command::new(jina())
            .args(["export", "kubernetes"])
            .arg(&flow)
            .arg(&out)
            .args(["--k8s-namespace", namespace])
            .env("JINA_GATEWAY_IMAGE", gateway_image)
            .env("JINA_OPTOUT_TELEMETRY", "1")
            // docker:// executors are first looked up on Jina Hub: point it at a closed loopback
            // port so the lookup fails at once and the image name is used as given.
            .env("JINA_HUBBLE_REGISTRY", "http://127.0.0.1:9")
            // jina copies JINA_LOG_LEVEL into the ConfigMaps: keep the output independent of
            // the environment the tests run in.
            .env_remove("JINA_LOG_LEVEL")
            .output()
            .unwrap();
        assert!(
            result.status.success() && out.is_dir(),
            "jina export kubernetes failed for {case}:\n{}",
            String::from_utf8_lossy(&result.stderr)
        );
        out
    })
    .clone()
}

fn export(case: &str, executors: &str, gateway_with: &str) -> PathBuf {
    let yaml = format!("jtype: Flow\nwith:\n{gateway_with}\nexecutors:\n{executors}");
    export_with(case, &yaml, EXPORT_NS, GATEWAY_IMAGE)
}

fn run_knative(export: &Path, extra: &[&str]) -> Output {
    Command::new(support::flowbridge_bin())
        .arg("knative")
        .arg(export)
        .args(["--namespace", TARGET_NS])
        .args(extra)
        .output()
        .unwrap()
}

/// Convert into a fresh directory; returns (files by relative path, stderr).
fn convert(export: &Path, extra: &[&str]) -> (BTreeMap<String, String>, String) {
    let out = tempfile::Builder::new()
        .prefix("knative-out")
        .tempdir_in(support::repo_root().join("target/tmp"))
        .unwrap();
    let dir = out.path().join("out");
    let o = run_knative(export, &[&["-o", dir.to_str().unwrap()], extra].concat());
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "flowbridge knative failed:\n{stderr}");
    (read_tree(&dir), stderr)
}

fn read_tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Validate every written file (kustomization structurally, everything else by schema) and
/// return the Knative Services by name.
fn validate_all(files: &BTreeMap<String, String>) -> BTreeMap<String, Value> {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    k8s_schema::check_kustomization(schemas(), dir.path());
    let mut ksvcs = BTreeMap::new();
    for (rel, text) in files {
        if rel == "kustomization.yaml" {
            continue;
        }
        schemas().validate_text(rel, text);
        for doc in yaml_docs(text) {
            if doc["kind"] == "Namespace" {
                assert_eq!(doc["metadata"]["name"], TARGET_NS, "{rel}: the Namespace");
            } else {
                assert_eq!(doc["metadata"]["namespace"], TARGET_NS, "{rel}: namespace");
            }
            assert!(
                !doc.to_string().contains(EXPORT_NS),
                "{rel}: the export's namespace survived: {doc}"
            );
            if doc["kind"] == "Service" {
                ksvcs.insert(doc["metadata"]["name"].as_str().unwrap().to_string(), doc);
            }
        }
    }
    ksvcs
}

fn container(ksvc: &Value) -> &Value {
    &ksvc["spec"]["template"]["spec"]["containers"][0]
}

fn args(ksvc: &Value) -> Vec<String> {
    container(ksvc)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

fn flag(ksvc: &Value, name: &str) -> Vec<String> {
    let a = args(ksvc);
    let i = a
        .iter()
        .position(|x| x == name)
        .unwrap_or_else(|| panic!("no {name} in {a:?}"));
    a[i + 1..]
        .iter()
        .take_while(|x| !x.starts_with("--"))
        .cloned()
        .collect()
}

/// What every converted unit has in common.
fn assert_knative_unit(ksvc: &Value, port_name: &str) {
    let tpl = &ksvc["spec"]["template"];
    let ann = &tpl["metadata"]["annotations"];
    assert_eq!(ann["linkerd.io/inject"], "enabled");
    assert_eq!(ann["autoscaling.knative.dev/metric"], "concurrency");
    assert_eq!(ann["autoscaling.knative.dev/target"], "2");
    assert_eq!(ann["autoscaling.knative.dev/min-scale"], "0");
    assert_eq!(ann["autoscaling.knative.dev/max-scale"], "10");
    assert_eq!(tpl["spec"]["timeoutSeconds"], 300);
    let c = container(ksvc);
    assert_eq!(
        c["ports"],
        json!([{"name": port_name, "containerPort": 8080}])
    );
    for gone in ["lifecycle", "startupProbe", "livenessProbe"] {
        assert!(c.get(gone).is_none(), "{gone} left in {c}");
    }
    assert_eq!(c["readinessProbe"]["tcpSocket"]["port"], 8080);
    let env = c["env"].as_array().unwrap();
    assert!(
        env.iter().all(|e| e.get("valueFrom").is_none()),
        "fieldRef env left: {env:?}"
    );
    assert!(
        env.iter()
            .any(|e| e["name"] == "K8S_NAMESPACE_NAME" && e["value"] == TARGET_NS)
    );
    assert_eq!(flag(ksvc, "--k8s-namespace"), [TARGET_NS]);
    assert!(ksvc["spec"].get("replicas").is_none());
}

fn addresses(gateway: &Value) -> Value {
    serde_json::from_str(&flag(gateway, "--deployments-addresses")[0]).unwrap()
}

const ONE: &str = "  - name: heavy\n    uses: docker://example.com/heavy:1\n";
const GRPC: &str = "  protocol: grpc";

#[test]
fn one_executor_becomes_two_knative_services() {
    let (files, stderr) = convert(&export("one", ONE, GRPC), &[]);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "gateway/gateway.yml",
            "heavy/heavy.yml",
            "kustomization.yaml",
            "namespace.yaml"
        ]
    );
    let ksvcs = validate_all(&files);
    assert_eq!(ksvcs.keys().collect::<Vec<_>>(), ["gateway", "heavy"]);
    for k in ksvcs.values() {
        assert_knative_unit(k, "h2c");
    }
    let gw = &ksvcs["gateway"];
    assert_eq!(
        addresses(gw),
        json!({"heavy": [format!("grpc://heavy.{TARGET_NS}.svc:80")]})
    );
    assert_eq!(flag(gw, "--uses"), ["GRPCGateway"]);
    // ConfigMaps kept, k8s Services dropped: one comment in the file and one stderr line each.
    let text = &files["gateway/gateway.yml"];
    assert!(text.contains("kind: ConfigMap"));
    assert!(text.contains("# dropped Service gateway: a Knative Service creates its own"));
    for expected in [
        "gateway/gateway.yml: dropped Service gateway:",
        "gateway/gateway.yml: Deployment gateway: container gateway: removed env POD_UID (fieldRef metadata.uid)",
        "gateway/gateway.yml: Deployment gateway: container gateway: removed env K8S_POD_NAME (fieldRef metadata.name)",
        "gateway/gateway.yml: Deployment gateway: container gateway: removed exec startupProbe (`jina ping gateway grpc://127.0.0.1:8080`)",
        "gateway/gateway.yml: Deployment gateway: container gateway: removed exec livenessProbe",
        "gateway/gateway.yml: Deployment gateway: container gateway: removed lifecycle (preStop)",
        "heavy/heavy.yml: Deployment heavy: kept linkerd.io/inject",
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&format!("flowbridge knative: {expected}"))),
            "stderr lacks {expected:?}:\n{stderr}"
        );
    }
    // The same notes are comments above the object they concern.
    assert!(text.contains("# - container gateway: removed env POD_UID (fieldRef metadata.uid)"));
}

#[test]
fn output_is_deterministic_and_stdout_mode_has_the_same_objects() {
    let dir = export("one", ONE, GRPC);
    let (a, _) = convert(&dir, &[]);
    let (b, _) = convert(&dir, &[]);
    assert_eq!(a, b);
    let o = run_knative(&dir, &[]);
    assert!(o.status.success());
    let stdout = String::from_utf8(o.stdout).unwrap();
    let streamed: Vec<Value> = yaml_docs(&stdout);
    let written: Vec<Value> = ["namespace.yaml", "gateway/gateway.yml", "heavy/heavy.yml"]
        .iter()
        .flat_map(|f| yaml_docs(&a[*f]))
        .collect();
    assert_eq!(streamed, written);
}

#[test]
fn two_executors_in_sequence_keep_the_graph_and_address_both_services() {
    let ex = "  - name: ex_a\n    uses: docker://example.com/a:1\n  - name: ex_b\n    uses: docker://example.com/b:1\n";
    let (files, _) = convert(
        &export("two", ex, GRPC),
        &[
            "--metric",
            "rps",
            "--target",
            "50",
            "--min-scale",
            "1",
            "--max-scale",
            "4",
            "--timeout",
            "2m",
        ],
    );
    let ksvcs = validate_all(&files);
    assert_eq!(
        ksvcs.keys().collect::<Vec<_>>(),
        ["ex-a", "ex-b", "gateway"]
    );
    let gw = &ksvcs["gateway"];
    assert_eq!(
        addresses(gw),
        json!({
            "ex_a": [format!("grpc://ex-a.{TARGET_NS}.svc:80")],
            "ex_b": [format!("grpc://ex-b.{TARGET_NS}.svc:80")],
        })
    );
    let graph: Value = serde_json::from_str(&flag(gw, "--graph-description")[0]).unwrap();
    assert_eq!(graph["ex_a"], json!(["ex_b"]));
    let ann = &gw["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(ann["autoscaling.knative.dev/metric"], "rps");
    assert_eq!(ann["autoscaling.knative.dev/target"], "50");
    assert_eq!(ann["autoscaling.knative.dev/min-scale"], "1");
    assert_eq!(ann["autoscaling.knative.dev/max-scale"], "4");
    assert_eq!(gw["spec"]["template"]["spec"]["timeoutSeconds"], 120);
    assert_eq!(
        gw["spec"]["template"]["spec"]["responseStartTimeoutSeconds"],
        120
    );
}

#[test]
fn replicas_are_left_to_the_autoscaler() {
    let ex = "  - name: ex\n    uses: docker://example.com/ex:1\n    replicas: 3\n";
    let (files, stderr) = convert(&export("replicas", ex, GRPC), &["--max-scale", "2"]);
    let ksvcs = validate_all(&files);
    assert!(args(&ksvcs["ex"]).contains(&"--replicas".to_string()));
    assert!(
        stderr.contains("ex/ex.yml: Deployment ex: removed spec.replicas (3), spec.strategy and spec.selector: Knative's autoscaler sets the pod count (min-scale 0, max-scale 2); the export asked for 3 replicas, more than --max-scale"),
        "{stderr}"
    );
}

#[test]
fn multi_protocol_gateway_keeps_only_grpc() {
    let (files, stderr) = convert(
        &export("multi", ONE, "  protocol: [http, grpc, websocket]"),
        &[],
    );
    let ksvcs = validate_all(&files);
    let gw = &ksvcs["gateway"];
    assert_knative_unit(gw, "h2c");
    assert_eq!(flag(gw, "--protocol"), ["GRPC"]);
    assert_eq!(flag(gw, "--port"), ["8080"]);
    assert_eq!(flag(gw, "--uses"), ["GRPCGateway"]);
    assert!(
        stderr.contains("multi-protocol gateway (HTTP, GRPC, WEBSOCKET): kept only gRPC on 8080 (--uses GRPCGateway), dropped HTTP, WEBSOCKET"),
        "{stderr}"
    );
    // The extra per-protocol k8s Services are dropped like the main one.
    assert!(files["gateway/gateway.yml"].contains("# dropped Service gateway-1-grpc"));
}

#[test]
fn multi_protocol_gateway_without_grpc_is_refused() {
    let o = run_knative(
        &export("multi-nogrpc", ONE, "  protocol: [http, websocket]"),
        &[],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("gateway/gateway.yml: Deployment gateway: the gateway serves HTTP, WEBSOCKET but not gRPC"),
        "{stderr}"
    );
}

#[test]
fn single_http_gateway_gets_an_http1_port() {
    let (files, _) = convert(&export("http", ONE, "  protocol: http"), &[]);
    let ksvcs = validate_all(&files);
    assert_knative_unit(&ksvcs["gateway"], "http1");
    assert_knative_unit(&ksvcs["heavy"], "h2c");
}

#[test]
fn shards_become_a_head_and_one_service_per_shard() {
    let ex = "  - name: sharded\n    uses: docker://example.com/s:1\n    shards: 2\n";
    let (files, stderr) = convert(&export("shards", ex, GRPC), &[]);
    let ksvcs = validate_all(&files);
    assert_eq!(
        ksvcs.keys().collect::<Vec<_>>(),
        ["gateway", "sharded-0", "sharded-1", "sharded-head"]
    );
    for k in ksvcs.values() {
        assert_knative_unit(k, "h2c");
    }
    assert_eq!(
        addresses(&ksvcs["gateway"]),
        json!({"sharded": [format!("grpc://sharded-head.{TARGET_NS}.svc:80")]})
    );
    let connections: Value =
        serde_json::from_str(&flag(&ksvcs["sharded-head"], "--connection-list")[0]).unwrap();
    assert_eq!(
        connections,
        json!({"0": format!("sharded-0.{TARGET_NS}.svc:80"), "1": format!("sharded-1.{TARGET_NS}.svc:80")})
    );
    assert!(stderr.contains("sharded/sharded-head.yml: Deployment sharded-head: container executor: --connection-list now names the Knative Services on port 80"), "{stderr}");
}

#[test]
fn uses_before_sidecar_loses_its_port_and_probes() {
    let ex = "  - name: sharded\n    uses: docker://example.com/s:1\n    uses_before: docker://example.com/before:1\n    shards: 2\n";
    let (files, stderr) = convert(&export("uses-before", ex, GRPC), &[]);
    let ksvcs = validate_all(&files);
    let containers = ksvcs["sharded-head"]["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(containers.len(), 2);
    let sidecar = containers
        .iter()
        .find(|c| c["name"] == "uses-before")
        .unwrap();
    for gone in [
        "ports",
        "lifecycle",
        "startupProbe",
        "livenessProbe",
        "readinessProbe",
    ] {
        assert!(
            sidecar.get(gone).is_none(),
            "{gone} left in the sidecar: {sidecar}"
        );
    }
    assert!(
        stderr.contains("container uses-before: removed ports (8078)"),
        "{stderr}"
    );
}

#[test]
fn volumes_are_refused_and_nothing_is_written() {
    let ex =
        "  - name: store\n    uses: docker://example.com/store:1\n    volumes: ['/data/store']\n";
    let dir = export("volumes", ex, GRPC);
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("out");
    let o = run_knative(&dir, &["-o", target.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("store/store.yml: StatefulSet store claims persistent volumes (store-volume) for the executor's `volumes`: a Knative Service cannot run it"),
        "{stderr}"
    );
    assert!(!target.exists(), "output written despite the refusal");
}

#[test]
fn bad_arguments_exit_non_zero_with_the_reason() {
    let dir = export("one", ONE, GRPC);
    let o = run_knative(&dir, &["--timeout", "soon"]);
    assert_eq!(o.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--timeout \"soon\""));
    let o = Command::new(support::flowbridge_bin())
        .args(["knative", "/nonexistent/export", "--namespace", "x"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/export"));
}

/// k8s/flow/ is generated from examples/heavy-flow/flow.yml; this regenerates it the documented
/// way and fails when the committed files differ. FLOWBRIDGE_REGENERATE=1 rewrites k8s/flow/.
#[test]
fn committed_k8s_flow_is_what_the_converter_makes_of_the_example_flow() {
    let flow =
        std::fs::read_to_string(support::repo_root().join("examples/heavy-flow/flow.yml")).unwrap();
    let dir = export_with(
        "heavy-flow",
        &flow,
        "flowbridge",
        "kind.local/heavy-flow:0.1.0",
    );
    let o = Command::new(support::flowbridge_bin())
        .arg("knative")
        .arg(&dir)
        .args([
            "--namespace",
            "flowbridge",
            "--min-scale",
            "0",
            "--max-scale",
            "10",
            "--metric",
            "concurrency",
            "--target",
            "2",
            "--timeout",
            "100s",
        ])
        .args(["-o"])
        .arg(dir.with_file_name("converted"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let fresh = read_tree(&dir.with_file_name("converted"));
    let committed_dir = support::repo_root().join("k8s/flow");
    if std::env::var_os("FLOWBRIDGE_REGENERATE").is_some() {
        let _ = std::fs::remove_dir_all(&committed_dir);
        for (rel, text) in &fresh {
            let p = committed_dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }
    let committed = read_tree(&committed_dir);
    assert_eq!(
        committed.keys().collect::<Vec<_>>(),
        fresh.keys().collect::<Vec<_>>(),
        "k8s/flow is stale; regenerate: FLOWBRIDGE_REGENERATE=1 cargo test --test knative committed_k8s_flow"
    );
    for (rel, text) in &fresh {
        assert_eq!(
            &committed[rel], text,
            "k8s/flow/{rel} is stale; regenerate: FLOWBRIDGE_REGENERATE=1 cargo test --test knative committed_k8s_flow"
        );
    }
}
