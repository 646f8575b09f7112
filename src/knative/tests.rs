//! Unit tests of the conversion rules on small hand-written exports; the real `jina export
//! kubernetes` output is exercised in tests/knative.rs.

use super::convert::rewrite_address;
use super::*;

fn export(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

const EXECUTOR: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: ex, namespace: old}
spec: {ports: [{name: port, port: 8080}], selector: {app: ex}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ex, namespace: old}
spec:
  replicas: 3
  template:
    metadata:
      annotations: {linkerd.io/inject: enabled}
      labels: {app: ex, ns: old, pod_type: WORKER}
    spec:
      containers:
      - name: executor
        image: ex:1
        args: [executor, --k8s-namespace, old, --port, '8080']
        env:
        - {name: POD_UID, valueFrom: {fieldRef: {fieldPath: metadata.uid}}}
        - {name: K8S_NAMESPACE_NAME, value: old}
        ports: [{containerPort: 8080}]
        lifecycle: {preStop: {exec: {command: [sleep, '2']}}}
        livenessProbe: {exec: {command: [jina, ping]}}
"#;

#[test]
fn addresses_are_rewritten_to_knative_services_on_port_80() {
    assert_eq!(
        rewrite_address("grpc://ex-a.old.svc:8080", "old", "new").as_deref(),
        Some("grpc://ex-a.new.svc:80")
    );
    assert_eq!(
        rewrite_address("b-0.old.svc.cluster.local:8080", "old", "new").as_deref(),
        Some("b-0.new.svc:80")
    );
    // Not a unit of this export: left alone.
    assert_eq!(rewrite_address("grpc://10.0.0.1:8080", "old", "new"), None);
    assert_eq!(
        rewrite_address("grpc://ex.other.svc:8080", "old", "new"),
        None
    );
    assert_eq!(
        rewrite_address("grpc://ex.old.svc:9000", "old", "new"),
        None
    );
}

#[test]
fn deployment_becomes_a_knative_service_with_every_change_noted() {
    let dir = export(&[("ex/ex.yml", EXECUTOR)]);
    let c = convert_dir(dir.path(), &Options::new("new")).unwrap();
    let paths: Vec<&str> = c.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["namespace.yaml", "ex/ex.yml", "kustomization.yaml"]);
    let text = &c.files[1].text;
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 1, "the k8s Service is dropped: {text}");
    let ksvc = &docs[0];
    assert_eq!(ksvc["apiVersion"], "serving.knative.dev/v1");
    assert_eq!(ksvc["metadata"]["namespace"], "new");
    let tpl = &ksvc["spec"]["template"];
    assert_eq!(tpl["metadata"]["labels"]["ns"], "new");
    assert_eq!(
        tpl["metadata"]["annotations"]["linkerd.io/inject"],
        "enabled"
    );
    assert_eq!(
        tpl["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"],
        "10"
    );
    let c0 = &tpl["spec"]["containers"][0];
    assert_eq!(c0["ports"], json!([{"name": "h2c", "containerPort": 8080}]));
    assert_eq!(
        c0["env"],
        json!([{"name": "K8S_NAMESPACE_NAME", "value": "new"}])
    );
    assert!(c0.get("lifecycle").is_none() && c0.get("livenessProbe").is_none());
    assert_eq!(c0["readinessProbe"]["tcpSocket"]["port"], 8080);
    assert_eq!(
        c0["args"],
        json!(["executor", "--k8s-namespace", "new", "--port", "8080"])
    );
    assert_eq!(tpl["spec"]["timeoutSeconds"], 300);
    assert!(text.contains("# dropped Service ex:"), "{text}");
    assert!(
        text.contains("# - container executor: removed env POD_UID"),
        "{text}"
    );
    assert!(
        c.notes
            .iter()
            .any(|n| n.starts_with("ex/ex.yml: Deployment ex: removed spec.replicas (3)"))
    );
}

#[test]
fn output_is_deterministic() {
    let dir = export(&[("ex/ex.yml", EXECUTOR), ("a/a.yml", EXECUTOR)]);
    let one = convert_dir(dir.path(), &Options::new("new")).unwrap();
    let two = convert_dir(dir.path(), &Options::new("new")).unwrap();
    assert_eq!(one.files, two.files);
    assert_eq!(one.files[1].path, "a/a.yml");
}

#[test]
fn bad_options_and_unknown_kinds_are_refused_with_reasons() {
    let dir = export(&[(
        "ex/ex.yml",
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\n",
    )]);
    let mut o = Options::new("Bad_NS");
    o.min_scale = 5;
    o.max_scale = 2;
    let e = convert_dir(dir.path(), &o).unwrap_err().to_string();
    assert!(
        e.contains("--namespace \"Bad_NS\"") && e.contains("--min-scale 5"),
        "{e}"
    );
    let e = convert_dir(dir.path(), &Options::new("ok"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ex/ex.yml: batch/v1 Job j: not an object"),
        "{e}"
    );
    let empty = tempfile::tempdir().unwrap();
    let e = convert_dir(empty.path(), &Options::new("ok"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no .yml/.yaml files found"), "{e}");
}

#[test]
fn write_refuses_a_non_empty_directory() {
    let dir = export(&[("ex/ex.yml", EXECUTOR)]);
    let c = convert_dir(dir.path(), &Options::new("new")).unwrap();
    let out = tempfile::tempdir().unwrap();
    write(&c, out.path()).unwrap();
    assert!(out.path().join("ex/ex.yml").exists());
    let e = write(&c, out.path()).unwrap_err().to_string();
    assert!(e.contains("not empty"), "{e}");
}

#[test]
fn flowbridge_autoscale_entry_follows_the_annotations() {
    let mut o = Options::new("demo");
    o.max_scale = 10;
    o.target = 2;
    assert_eq!(
        o.flowbridge_autoscale().as_deref(),
        Some("autoscale: {target: 2, max_scale: 10}")
    );
    o.metric = Metric::Rps;
    assert_eq!(o.flowbridge_autoscale(), None);
}
