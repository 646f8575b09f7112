//! Validation of Kubernetes/Knative YAML against the schemas in `tests/fixtures/schemas/`
//! (`mod k8s_schema;` in a test binary): Knative CRD `openAPIV3Schema`s plus a strict
//! unknown-field check, Kubernetes standalone-strict JSON Schemas, and a kustomize-lite check of
//! `kustomization.yaml` files (resources exist, `configMapGenerator` files exist under the
//! kustomization and make valid ConfigMaps, patch targets exist, JSON-patch `test`/`replace`
//! paths resolve and the patched objects still validate).

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// Which schema file validates which `apiVersion` + `kind` (the closing list of the issue).
pub const SCHEMAS: &[(&str, &str, &str)] = &[
    (
        "serving.knative.dev/v1",
        "Service",
        "knative/serving-service.yaml",
    ),
    (
        "eventing.knative.dev/v1",
        "Broker",
        "knative/eventing-broker.yaml",
    ),
    (
        "eventing.knative.dev/v1",
        "Trigger",
        "knative/eventing-trigger.yaml",
    ),
    (
        "sources.knative.dev/v1",
        "PingSource",
        "knative/eventing-pingsource.yaml",
    ),
    (
        "sources.knative.dev/v1",
        "SinkBinding",
        "knative/eventing-sinkbindings.yaml",
    ),
    (
        "sources.knative.dev/v1",
        "KafkaSource",
        "knative/eventing-kafka-kafkasource.yaml",
    ),
    (
        "sources.knative.dev/v1beta1",
        "KafkaSource",
        "knative/eventing-kafka-kafkasource.yaml",
    ),
    ("v1", "ConfigMap", "k8s/configmap-v1.json"),
    ("v1", "Namespace", "k8s/namespace-v1.json"),
    ("v1", "Service", "k8s/service-v1.json"),
    ("apps/v1", "Deployment", "k8s/deployment-apps-v1.json"),
];

struct Schema {
    file: &'static str,
    validator: jsonschema::Validator,
    /// The CRD's openAPIV3Schema, for the strict unknown-field walk (None for the strict k8s ones).
    structural: Option<Value>,
}

/// All schemas, compiled once.
pub struct Schemas {
    by_kind: BTreeMap<(String, String), Schema>,
}

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schemas")
}

/// Every YAML document of a file (empty documents skipped).
pub fn yaml_docs(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).expect("YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

impl Schemas {
    pub fn load() -> Schemas {
        let mut by_kind = BTreeMap::new();
        for (api, kind, file) in SCHEMAS {
            let path = schema_dir().join(file);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let (schema, structural) = if file.ends_with(".json") {
                let mut schema: Value = serde_json::from_str(&text).unwrap();
                // "http://json-schema.org/schema#" is not a draft URI; these are draft-07 style.
                schema.as_object_mut().unwrap().remove("$schema");
                (schema, None)
            } else {
                let crd = yaml_docs(&text).remove(0);
                assert_eq!(
                    crd["spec"]["names"]["kind"], *kind,
                    "{file} is not the {kind} CRD"
                );
                let version = api.rsplit('/').next().unwrap();
                let v = crd["spec"]["versions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|v| v["name"] == version)
                    .unwrap_or_else(|| panic!("{file}: no version {version}"));
                assert_eq!(v["served"], true, "{file}: {version} is not served");
                let s = v["schema"]["openAPIV3Schema"].clone();
                (s.clone(), Some(s))
            };
            let validator = jsonschema::draft7::new(&schema)
                .unwrap_or_else(|e| panic!("{file}: schema does not compile: {e}"));
            by_kind.insert(
                (api.to_string(), kind.to_string()),
                Schema {
                    file,
                    validator,
                    structural,
                },
            );
        }
        Schemas { by_kind }
    }

    /// Validate one object; returns the schema file it was validated against, or every error.
    pub fn validate(&self, doc: &Value) -> Result<&'static str, Vec<String>> {
        let api = doc["apiVersion"].as_str().unwrap_or("");
        let kind = doc["kind"].as_str().unwrap_or("");
        let Some(schema) = self.by_kind.get(&(api.to_string(), kind.to_string())) else {
            return Err(vec![format!(
                "no schema for apiVersion {api:?} kind {kind:?}"
            )]);
        };
        let mut errors: Vec<String> = schema
            .validator
            .iter_errors(doc)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        if let Some(structural) = &schema.structural {
            unknown_fields(structural, doc, "", &mut errors);
            // ObjectMeta is not in the CRD schema: check the parts every object needs.
            match doc.pointer("/metadata/name").and_then(Value::as_str) {
                Some(name) if is_dns_subdomain(name) => {}
                other => errors.push(format!("/metadata/name: invalid or missing: {other:?}")),
            }
        }
        if errors.is_empty() {
            Ok(schema.file)
        } else {
            Err(errors)
        }
    }

    /// Validate every document of a YAML text; panics listing every error with `origin`.
    /// Returns (apiVersion kind name, schema file) per document.
    pub fn validate_text(&self, origin: &str, text: &str) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for (i, doc) in yaml_docs(text).iter().enumerate() {
            let id = format!(
                "{} {} {}",
                doc["apiVersion"].as_str().unwrap_or("?"),
                doc["kind"].as_str().unwrap_or("?"),
                doc.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
            );
            match self.validate(doc) {
                Ok(file) => out.push((id, file)),
                Err(es) => {
                    for e in es {
                        errors.push(format!("{origin} document {} ({id}): {e}", i + 1));
                    }
                }
            }
        }
        assert!(errors.is_empty(), "schema errors:\n{}", errors.join("\n"));
        out
    }
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Strict structural check: a key not declared in `properties` is an error, unless the node
/// preserves unknown fields or declares `additionalProperties` (a map).
fn unknown_fields(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    if schema["x-kubernetes-preserve-unknown-fields"] == true {
        return;
    }
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, v) in map {
                    let p = format!("{path}/{k}");
                    // TypeMeta and ObjectMeta: always allowed, some CRDs do not declare them.
                    if path.is_empty() && ["apiVersion", "kind", "metadata"].contains(&k.as_str()) {
                        continue;
                    }
                    match props.get(k) {
                        Some(s) => unknown_fields(s, v, &p, errors),
                        None => errors.push(format!(
                            "{p}: unknown field (not in the schema; the API server would drop it)"
                        )),
                    }
                }
            } else if let Some(additional) =
                schema.get("additionalProperties").filter(|a| a.is_object())
            {
                for (k, v) in map {
                    unknown_fields(additional, v, &format!("{path}/{k}"), errors);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    unknown_fields(item_schema, v, &format!("{path}/{i}"), errors);
                }
            }
        }
        _ => {}
    }
}

/// One object found under a kustomization (for patch-target checks).
#[derive(Clone)]
pub struct Resource {
    pub file: PathBuf,
    pub doc: Value,
}

/// Check a `kustomization.yaml` and everything it includes, recursively; returns the objects it
/// builds (with inline JSON patches applied) and validates each patched object.
pub fn check_kustomization(schemas: &Schemas, dir: &Path) -> Vec<Resource> {
    let path = dir.join("kustomization.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let k = yaml_docs(&text).remove(0);
    assert_eq!(k["kind"], "Kustomization", "{}", path.display());
    assert_eq!(
        k["apiVersion"],
        "kustomize.config.k8s.io/v1beta1",
        "{}",
        path.display()
    );
    for key in k.as_object().unwrap().keys() {
        assert!(
            [
                "apiVersion",
                "kind",
                "resources",
                "patches",
                "configMapGenerator"
            ]
            .contains(&key.as_str()),
            "{}: unexpected key {key} (this check only understands resources, patches and \
             configMapGenerator)",
            path.display()
        );
    }
    let mut resources = Vec::new();
    for r in k["resources"].as_array().into_iter().flatten() {
        let r = r.as_str().unwrap();
        let target = dir.join(r);
        if target.is_dir() {
            assert!(
                target.join("kustomization.yaml").is_file(),
                "{}: resource {r} is a directory without kustomization.yaml",
                path.display()
            );
            resources.extend(check_kustomization(schemas, &target));
        } else {
            assert!(
                target.is_file(),
                "{}: resource {r} does not exist",
                path.display()
            );
            let text = std::fs::read_to_string(&target).unwrap();
            for doc in yaml_docs(&text) {
                resources.push(Resource {
                    file: target.clone(),
                    doc,
                });
            }
        }
    }
    for (i, g) in k["configMapGenerator"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        resources.push(generated_config_map(
            schemas,
            dir,
            &format!("{} configMapGenerator[{i}]", path.display()),
            g,
        ));
    }
    for (i, p) in k["patches"].as_array().into_iter().flatten().enumerate() {
        let here = format!("{} patches[{i}]", path.display());
        if let Some(file) = p.get("path").and_then(Value::as_str) {
            // Strategic merge patch: a (valid) partial object whose kind/name must exist.
            let text = std::fs::read_to_string(dir.join(file))
                .unwrap_or_else(|e| panic!("{here}: {file}: {e}"));
            for patch in yaml_docs(&text) {
                let found = resources.iter().any(|r| {
                    r.doc["kind"] == patch["kind"]
                        && r.doc["metadata"]["name"] == patch["metadata"]["name"]
                });
                assert!(
                    found,
                    "{here}: {file} patches {} {} which is not among the resources",
                    patch["kind"], patch["metadata"]["name"]
                );
            }
        } else {
            let target = &p["target"];
            let kind = target["kind"].as_str().unwrap();
            let name = target["name"].as_str().unwrap();
            let api = format!(
                "{}/{}",
                target["group"].as_str().unwrap(),
                target["version"].as_str().unwrap()
            );
            let ops: Value = serde_norway::from_str(p["patch"].as_str().unwrap()).unwrap();
            let matching: Vec<&mut Resource> = resources
                .iter_mut()
                .filter(|r| {
                    r.doc["apiVersion"] == api
                        && r.doc["kind"] == kind
                        && r.doc["metadata"]["name"] == name
                })
                .collect();
            assert_eq!(
                matching.len(),
                1,
                "{here}: target {api} {kind} {name} must match exactly one resource"
            );
            for r in matching {
                for op in ops.as_array().unwrap() {
                    let ptr = op["path"].as_str().unwrap();
                    match op["op"].as_str().unwrap() {
                        "replace" => {
                            let slot = r.doc.pointer_mut(ptr).unwrap_or_else(|| {
                                panic!(
                                    "{here}: replace {ptr}: no such path in {}",
                                    r.file.display()
                                )
                            });
                            *slot = op["value"].clone();
                        }
                        "test" => {
                            assert_eq!(
                                r.doc.pointer(ptr),
                                Some(&op["value"]),
                                "{here}: test {ptr} fails on {}",
                                r.file.display()
                            );
                        }
                        other => panic!("{here}: op {other} is not supported by this check"),
                    }
                }
                if let Err(errors) = schemas.validate(&r.doc) {
                    panic!(
                        "{here}: the patched {kind} {name} does not validate:\n{}",
                        errors.join("\n")
                    );
                }
            }
        }
    }
    resources
}

/// The ConfigMap a `configMapGenerator` entry makes (its `files`, `key=path` or `path`; files
/// must lie under the kustomization's directory, as kustomize's load restrictor demands),
/// validated. Its name is the one given: kustomize adds a content hash and rewrites the
/// references to it.
fn generated_config_map(schemas: &Schemas, dir: &Path, here: &str, g: &Value) -> Resource {
    for key in g.as_object().unwrap().keys() {
        assert!(
            ["name", "namespace", "files"].contains(&key.as_str()),
            "{here}: unexpected key {key} (this check only understands name, namespace, files)"
        );
    }
    let mut data = serde_json::Map::new();
    let mut first = None;
    for f in g["files"].as_array().unwrap() {
        let f = f.as_str().unwrap();
        let (key, rel) = f
            .split_once('=')
            .unwrap_or_else(|| (f.rsplit('/').next().unwrap(), f));
        assert!(
            !rel.split('/').any(|c| c == ".."),
            "{here}: {rel} is outside the kustomization's directory (kustomize refuses it)"
        );
        let file = dir.join(rel);
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{here}: {}: {e}", file.display()));
        assert!(
            data.insert(key.to_owned(), Value::from(text)).is_none(),
            "{here}: key {key} twice"
        );
        first.get_or_insert(file);
    }
    let mut metadata = serde_json::json!({"name": g["name"]});
    if let Some(ns) = g.get("namespace") {
        metadata["namespace"] = ns.clone();
    }
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": data,
    });
    if let Err(errors) = schemas.validate(&doc) {
        panic!("{here}: {}", errors.join("\n"));
    }
    Resource {
        file: first.unwrap_or_else(|| panic!("{here}: no files")),
        doc,
    }
}
