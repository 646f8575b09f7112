//! The fuzz targets' invariants (`fuzz/src/lib.rs`, included here) under `cargo test`, without
//! libFuzzer:
//!
//! * the seed corpora `fuzz/corpus/<target>/` are exactly what the fixtures generate (run
//!   `scripts/fuzz-seeds.sh` to rewrite them after a fixture changes), and every seed holds its
//!   target's invariants;
//! * every minimized crash input in `fuzz/regressions/<target>/` holds them too, each also named
//!   by a test of its own below.
//!
//! Seeds come from the CloudEvents conformance fixtures (JSON format and YAML events), the CESQL
//! TCK events, the example configs `config/*.yaml`, and a few events written for the programs of
//! `fuzz/src/rules.yaml`.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod fuzz;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use flowbridge::cloudevents;
use flowbridge::model::CloudEvent;
use fuzz::check;
use fuzz::wire::{EventInput, HttpInput};
use serde_json::{Value, json};
use serde_norway::Value as Yaml;

/// A target's invariant checks on raw fuzzer bytes.
type Check = fn(&[u8]);

/// The targets, each with the check its fuzz target runs on raw bytes.
const TARGETS: &[(&str, Check)] = &[
    ("binding_headers", check::binding_headers),
    ("binding_json", check::binding_json),
    ("config_yaml", check::config_yaml),
    ("rules_eval", check::rules_eval),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `(testType, tests)` of a JSON-format conformance file.
fn json_tests(name: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(&read(&format!(
        "tests/fixtures/conformance/json-format/{name}"
    )))
    .expect("json");
    v["tests"].as_array().expect("tests").clone()
}

/// A file name from a fixture's test id: `[a-zA-Z0-9_-]` only.
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn structured_input(event: &Value) -> HttpInput {
    HttpInput {
        headers: vec![(
            "content-type".into(),
            b"application/cloudevents+json; charset=utf-8".to_vec(),
        )],
        body: serde_json::to_vec(event).expect("json"),
    }
}

fn batch_input(batch: &Value) -> HttpInput {
    HttpInput {
        headers: vec![(
            "content-type".into(),
            b"application/cloudevents-batch+json".to_vec(),
        )],
        body: serde_json::to_vec(batch).expect("json"),
    }
}

fn binary_input(event: &CloudEvent) -> HttpInput {
    let (headers, body) = cloudevents::encode_binary(event);
    HttpInput::from_message(&headers, &body)
}

/// The YAML conformance events as HTTP messages in their declared mode: (name, message, the
/// event's JSON form for the rules seeds).
fn yaml_messages() -> Vec<(String, HttpInput, Value)> {
    let mut out = Vec::new();
    for rel in [
        "v1.0/v1_minimum.yaml",
        "v0.3/v03_minimum.yaml",
        "v1.yaml",
        "v03.yaml",
    ] {
        let text = read(&format!("tests/fixtures/conformance/yaml/{rel}"));
        for (index, doc) in serde_norway::Deserializer::from_str(&text).enumerate() {
            use serde::Deserialize;
            let doc = Yaml::deserialize(doc).expect("yaml");
            let mode = doc.get("Mode").and_then(Yaml::as_str).unwrap_or("binary");
            let attrs = doc["ContextAttributes"].as_mapping().expect("attributes");
            let mut fields: Vec<(String, String)> = Vec::new();
            for (name, value) in attrs {
                let name = name.as_str().expect("name");
                if name == "Extensions" {
                    for (ext, v) in value.as_mapping().expect("extensions") {
                        let v = v.as_str().map(str::to_owned).unwrap_or_else(|| {
                            serde_norway::to_string(v)
                                .expect("scalar")
                                .trim()
                                .to_owned()
                        });
                        fields.push((ext.as_str().expect("name").into(), v.trim().into()));
                    }
                } else {
                    let v = match value {
                        Yaml::String(s) => s.clone(),
                        other => serde_norway::to_string(other).expect("scalar"),
                    };
                    fields.push((name.into(), v.trim().into()));
                }
            }
            let data = doc.get("Data").and_then(Yaml::as_str).map(str::to_owned);
            let ct = fields
                .iter()
                .find(|(n, _)| n == "datacontenttype")
                .map(|(_, v)| v.clone());
            let mut object = serde_json::Map::new();
            for (name, value) in &fields {
                object.insert(name.clone(), Value::String(value.clone()));
            }
            if let Some(data) = &data {
                let as_json = ct.as_deref().is_none_or(cloudevents::is_json_media_type);
                let value = match serde_json::from_str(data) {
                    Ok(v) if as_json => v,
                    _ => Value::String(data.clone()),
                };
                object.insert("data".into(), value);
            }
            let object = Value::Object(object);
            let message = if mode == "structured" {
                structured_input(&object)
            } else {
                let mut headers: Vec<(String, Vec<u8>)> = fields
                    .iter()
                    .filter(|(n, _)| n != "datacontenttype")
                    .map(|(n, v)| (format!("ce-{n}"), v.clone().into_bytes()))
                    .collect();
                if let Some(ct) = ct {
                    headers.push(("content-type".into(), ct.into_bytes()));
                }
                HttpInput {
                    headers,
                    body: data.unwrap_or_default().into_bytes(),
                }
            };
            let name = format!(
                "yaml-{}-{index}-{mode}",
                slug(rel.trim_end_matches(".yaml"))
            );
            out.push((name, message, object));
        }
    }
    out
}

/// Events from the CESQL TCK (`event` or `eventOverrides` on a base event), deduplicated.
fn tck_events() -> Vec<(String, CloudEvent)> {
    let dir = root().join("tests/fixtures/cesql-tck");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tck dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for path in files {
        let doc: Yaml =
            serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).expect("yaml");
        for test in doc["tests"].as_sequence().expect("tests") {
            let mut event =
                json!({"specversion": "1.0", "id": "tck-id", "source": "/tck", "type": "tck.type"});
            match (test.get("event"), test.get("eventOverrides")) {
                (Some(e), _) => event = serde_json::to_value(e).unwrap(),
                (None, Some(o)) => {
                    let o = serde_json::to_value(o).unwrap();
                    for (k, v) in o.as_object().expect("overrides") {
                        event[k] = v.clone();
                    }
                }
                (None, None) => continue,
            }
            let Ok(event) = cloudevents::from_json(&event) else {
                continue;
            };
            if !seen.contains(&event) {
                seen.push(event.clone());
                let stem = path.file_stem().unwrap().to_string_lossy().to_string();
                out.push((format!("tck-{}-{}", slug(&stem), out.len()), event));
            }
        }
    }
    out
}

/// Events written for the programs of fuzz/src/rules.yaml, so the fuzzer starts inside them.
fn rules_events() -> Vec<(String, Value)> {
    let base = |extra: Value| {
        let mut event = json!({
            "specversion": "1.0", "id": "r1", "source": "/shop/eu", "type": "com.example.order.doc",
            "subject": "orders/42", "time": "2024-05-01T10:00:00Z", "seq": 7, "divisor": "3",
            "comexampleextension1": "value", "flag": "true", "rush": true,
        });
        for (k, v) in extra.as_object().expect("object") {
            event[k] = v.clone();
        }
        event
    };
    vec![
        (
            "arith".into(),
            base(json!({"data": {"priority": 9, "boost": -3, "a": 17, "b": 5, "n": 4, "f": 2.5}})),
        ),
        (
            "strings".into(),
            base(
                json!({"data": {"op": "index", "executor": "enc.*", "s": "héllo, wörld",
                "t": "l", "i": 1, "j": 4}}),
            ),
        ),
        (
            "lists".into(),
            base(
                json!({"data": {"items": [{"title": "a", "k": 1, "w": 0.5, "score": 0.9},
                {"title": "b", "k": "x", "w": 2, "score": 0.1}], "i": 0, "j": 2, "n": 5}}),
            ),
        ),
        (
            "math".into(),
            base(json!({"data": {"a": 3, "b": 62, "f": -2.5}})),
        ),
        (
            "conversions".into(),
            base(
                json!({"data": {"ts": "2024-01-01T00:00:00Z", "d": "90s", "s": "abc",
                "b64": "aGVsbG8=", "x": 1, "y": 1.0}}),
            ),
        ),
        (
            "documents".into(),
            base(
                json!({"data": {"id": "d1", "text": "hello", "blob": "aGVsbG8=",
                "embedding": [[0.1, 0.2], [0.3, 0.4]], "uri": "https://example.com/x",
                "tags": {"k": [1, {"z": null}]}, "weight": 0.5, "mime_type": "text/plain",
                "modality": "text", "chunks": [{"text": "c1"}, {"id": "c2", "chunks": [{}]}],
                "matches": [{"text": "m"}]}}),
            ),
        ),
        (
            "documents-list".into(),
            base(json!({"data": {"docs": [{"id": "a", "text": "x"}, {"text": "y"}, {}]}})),
        ),
        (
            "binary".into(),
            base(json!({"datacontenttype": "application/octet-stream", "data_base64": "AAECAw=="})),
        ),
        (
            "text".into(),
            base(json!({"datacontenttype": "text/plain", "data": "orders/42"})),
        ),
        (
            "v03".into(),
            json!({"specversion": "0.3", "id": "r3", "source": "/s", "type": "t.doc",
                "schemaurl": "https://example.com/s", "data": {"priority": 1}}),
        ),
    ]
}

/// Every seed: (target, file name) → bytes.
fn seeds() -> BTreeMap<(&'static str, String), Vec<u8>> {
    let mut out = BTreeMap::new();
    let add_http = |out: &mut BTreeMap<_, _>, name: String, input: HttpInput| {
        let bytes = input.encode().expect("encodable");
        assert_eq!(
            HttpInput::decode(&bytes),
            input,
            "{name}: format round trip"
        );
        out.insert(("binding_headers", name), bytes);
    };
    let add_event = |out: &mut BTreeMap<_, _>, name: String, event: CloudEvent| {
        let input = EventInput(event);
        let bytes = input.encode().expect("encodable");
        assert_eq!(
            EventInput::decode(&bytes),
            input,
            "{name}: format round trip"
        );
        out.insert(("rules_eval", name), bytes);
    };

    for test in json_tests("valid-events.json") {
        let id = slug(test["id"].as_str().expect("id"));
        let event = &test["event"];
        let parsed = cloudevents::from_json(event).expect("valid event");
        add_http(
            &mut out,
            format!("{id}-structured"),
            structured_input(event),
        );
        add_http(&mut out, format!("{id}-binary"), binary_input(&parsed));
        out.insert(
            ("binding_json", id.clone()),
            serde_json::to_vec(event).unwrap(),
        );
        add_event(&mut out, id, parsed);
    }
    for test in json_tests("invalid-events.json") {
        let id = slug(test["id"].as_str().expect("id"));
        add_http(&mut out, id.clone(), structured_input(&test["event"]));
        out.insert(
            ("binding_json", id),
            serde_json::to_vec(&test["event"]).unwrap(),
        );
    }
    for file in ["valid-batches.json", "invalid-batches.json"] {
        for test in json_tests(file) {
            let id = slug(test["id"].as_str().expect("id"));
            add_http(&mut out, id.clone(), batch_input(&test["batch"]));
            out.insert(
                ("binding_json", id),
                serde_json::to_vec(&test["batch"]).unwrap(),
            );
        }
    }
    for (name, message, object) in yaml_messages() {
        add_http(&mut out, name.clone(), message);
        if let Ok(event) = cloudevents::from_json(&object) {
            add_event(&mut out, name, event);
        }
    }
    for (name, event) in tck_events() {
        add_event(&mut out, name, event);
    }
    for (name, event) in rules_events() {
        let parsed = cloudevents::from_json(&event).unwrap_or_else(|e| panic!("{name}: {e}"));
        add_http(
            &mut out,
            format!("rules-{name}-binary"),
            binary_input(&parsed),
        );
        add_event(&mut out, format!("rules-{name}"), parsed);
    }

    let mut configs: Vec<PathBuf> = std::fs::read_dir(root().join("config"))
        .expect("config dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    configs.sort();
    for path in configs {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        out.insert(("config_yaml", name), std::fs::read(&path).unwrap());
    }
    out.insert(
        ("config_yaml", "fuzz-rules".into()),
        check::RULES_YAML.as_bytes().to_vec(),
    );
    out
}

fn files_in(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

/// With `FLOWBRIDGE_UPDATE_FUZZ_CORPUS=1` (scripts/fuzz-seeds.sh) this rewrites
/// `fuzz/corpus/<target>/`; otherwise it checks that the committed seeds are current.
#[test]
fn seed_corpora_are_generated_from_the_fixtures() {
    let seeds = seeds();
    let update = std::env::var("FLOWBRIDGE_UPDATE_FUZZ_CORPUS").is_ok_and(|v| v == "1");
    for (target, _) in TARGETS {
        let dir = root().join("fuzz/corpus").join(target);
        let want: BTreeMap<String, Vec<u8>> = seeds
            .iter()
            .filter(|((t, _), _)| t == target)
            .map(|((_, name), bytes)| (name.clone(), bytes.clone()))
            .collect();
        assert!(want.len() >= 5, "{target}: only {} seeds", want.len());
        if update {
            if dir.exists() {
                std::fs::remove_dir_all(&dir).unwrap();
            }
            std::fs::create_dir_all(&dir).unwrap();
            for (name, bytes) in &want {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
            println!("{target}: wrote {} seeds to {}", want.len(), dir.display());
            continue;
        }
        let have = files_in(&dir);
        let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            names(&have),
            names(&want),
            "{target}: the seed files differ from what the fixtures generate; \
             run scripts/fuzz-seeds.sh"
        );
        for (name, bytes) in &want {
            assert!(
                have.get(name) == Some(bytes),
                "{target}/{name}: stale seed; run scripts/fuzz-seeds.sh"
            );
        }
    }
}

/// Every committed seed and regression input through its target's invariant checks.
#[test]
fn committed_inputs_hold_the_invariants() {
    for (target, check) in TARGETS {
        let mut count = 0;
        for sub in ["corpus", "regressions"] {
            for (name, bytes) in files_in(&root().join("fuzz").join(sub).join(target)) {
                let outcome = std::panic::catch_unwind(|| check(&bytes));
                assert!(
                    outcome.is_ok(),
                    "fuzz/{sub}/{target}/{name} breaks an invariant"
                );
                count += 1;
            }
        }
        println!("{target}: {count} inputs");
        assert!(count >= 5, "{target}: only {count} inputs");
    }
}

/// The seeds exercise what they were made for (not just the error paths): most binding seeds
/// decode, and every rules seed passes the binding's validation.
#[test]
fn seeds_reach_past_the_decoders() {
    let seeds = seeds();
    let decoded = seeds
        .iter()
        .filter(|((t, _), _)| *t == "binding_headers")
        .filter(|(_, bytes)| {
            let input = HttpInput::decode(bytes);
            cloudevents::decode(&input.header_map(), &Bytes::from(input.body)).is_ok()
        })
        .count();
    assert!(decoded >= 30, "only {decoded} binding seeds decode");
    for ((target, name), bytes) in &seeds {
        if *target == "rules_eval" {
            assert!(
                EventInput::decode(bytes).validated().is_some(),
                "{name}: not a valid event"
            );
        }
    }
}

/// One regression input, by target and file name.
fn regression(target: &str, name: &str) {
    let path = root().join("fuzz/regressions").join(target).join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (_, check) = TARGETS.iter().find(|(t, _)| *t == target).expect("target");
    check(&bytes);
}

/// `"datacontenttype": " text/plain"` was accepted as is in structured mode, but binary mode
/// carries it as Content-Type, which is trimmed on decode: the event changed between the modes.
/// Fixed by trimming `datacontenttype` in the binding.
#[test]
fn regression_binding_json_datacontenttype_leading_space() {
    regression("binding_json", "datacontenttype-leading-space");
}
