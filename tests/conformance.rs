//! Data-driven conformance tests of the CloudEvents HTTP binding (`flowbridge::cloudevents`),
//! run directly against the module (no server):
//!
//! * the JSON event-format tests of cloudevents/conformance (`format-tests` branch): valid and
//!   invalid single events (as a structured body, as a one-element batch and via `from_json`),
//!   valid and invalid batches, compared with golden samples built here;
//! * the YAML events of the cloudevents/conformance tool, each turned into an HTTP message in its
//!   declared mode and in the other mode, decoded, and compared attribute by attribute.
//!
//! Fixture provenance: `tests/fixtures/conformance/SOURCES.md`. Run with `--nocapture` to see
//! the counts.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;
use flowbridge::cloudevents::{self, BindingError, Decoded, Mode};
use flowbridge::model::{CloudEvent, Data, ExtValue, SpecVersion};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

fn fixture(rel: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests/fixtures/conformance",
        rel,
    ]
    .iter()
    .collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json_fixture(name: &str) -> (String, Vec<Value>) {
    let v: Value = serde_json::from_str(&fixture(&format!("json-format/{name}"))).expect("json");
    let kind = v["testType"].as_str().expect("testType").to_owned();
    let tests = v["tests"].as_array().expect("tests").clone();
    (kind, tests)
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_bytes(value.as_bytes()).expect("header value"),
        );
    }
    h
}

fn post_structured(event: &Value) -> Result<Decoded, BindingError> {
    let h = headers(&[(
        "content-type",
        "application/cloudevents+json; charset=utf-8",
    )]);
    cloudevents::decode(&h, &Bytes::from(serde_json::to_vec(event).expect("json")))
}

fn post_batch(batch: &Value) -> Result<Decoded, BindingError> {
    let h = headers(&[("content-type", "application/cloudevents-batch+json")]);
    cloudevents::decode(&h, &Bytes::from(serde_json::to_vec(batch).expect("json")))
}

// ---- golden samples (format/README.md) ----

fn minimal() -> CloudEvent {
    CloudEvent {
        specversion: SpecVersion::V10,
        id: "minimal".into(),
        source: "https://cloudevents.io".into(),
        ty: "io.cloudevents.test".into(),
        datacontenttype: None,
        dataschema: None,
        subject: None,
        time: None,
        extensions: BTreeMap::new(),
        data: None,
    }
}

fn golden_event(sample: &str) -> CloudEvent {
    let base = minimal();
    match sample {
        "minimal" => base,
        "minimalWithTime" => CloudEvent {
            id: sample.into(),
            time: Some("2018-04-05T17:31:00Z".into()),
            ..base
        },
        "minimalWithRelativeSource" => CloudEvent {
            id: sample.into(),
            source: "#fragment".into(),
            ..base
        },
        "allCore" => CloudEvent {
            id: sample.into(),
            datacontenttype: Some("text/plain".into()),
            dataschema: Some("https://cloudevents.io/dataschema".into()),
            subject: Some("tests".into()),
            time: Some("2018-04-05T17:31:00Z".into()),
            ..base
        },
        // The README says id "simpleData"; the fixture (authoritative) uses "simpleTextData".
        "simpleTextData" => CloudEvent {
            id: sample.into(),
            datacontenttype: Some("text/plain".into()),
            data: Some(Data::Text("Simple text".into())),
            ..base
        },
        // The JSON format carries no type for extensions beyond string/boolean/number, so the
        // Binary, Timestamp, URI and URI-reference samples arrive as their canonical strings.
        "allExtensionTypes" => CloudEvent {
            id: sample.into(),
            extensions: BTreeMap::from([
                ("extinteger".into(), ExtValue::Integer(10)),
                ("extboolean".into(), ExtValue::Bool(true)),
                ("extstring".into(), ExtValue::String("text".into())),
                ("extbinary".into(), ExtValue::String("TWE=".into())),
                (
                    "exttimestamp".into(),
                    ExtValue::String("2023-03-31T15:12:00Z".into()),
                ),
                (
                    "exturi".into(),
                    ExtValue::String("https://cloudevents.io".into()),
                ),
                (
                    "exturiref".into(),
                    ExtValue::String("//authority/path".into()),
                ),
            ]),
            ..base
        },
        other => panic!("unknown golden sample {other}"),
    }
}

fn golden_batch(sample: &str) -> Vec<CloudEvent> {
    match sample {
        "empty" => vec![],
        "minimal" => vec![minimal()],
        "minimal2" => vec![minimal(), minimal()],
        "minimalAndAllCore" => vec![minimal(), golden_event("allCore")],
        "minimalAndAllExtensionTypes" => vec![minimal(), golden_event("allExtensionTypes")],
        other => panic!("unknown golden batch {other}"),
    }
}

/// Timestamps are compared as instants to the millisecond (the README's equality rule).
fn instant(time: &Option<String>) -> Option<i64> {
    time.as_ref().map(|t| {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap_or_else(|e| panic!("{t}: {e}"))
            .timestamp_millis()
    })
}

fn assert_same_event(got: &CloudEvent, want: &CloudEvent, test: &str) {
    assert_eq!(instant(&got.time), instant(&want.time), "{test}: time");
    let strip = |e: &CloudEvent| CloudEvent {
        time: None,
        ..e.clone()
    };
    assert_eq!(strip(got), strip(want), "{test}");
}

// ---- (a) JSON event format ----

#[test]
fn json_format_valid_events() {
    let (kind, tests) = json_fixture("valid-events.json");
    assert_eq!(kind, "ValidSingleEvent");
    let mut passed = 0;
    for t in &tests {
        let id = t["id"].as_str().expect("id");
        let want = golden_event(t["sampleId"].as_str().expect("sampleId"));
        let event = &t["event"];

        let parsed = cloudevents::from_json(event).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_same_event(&parsed, &want, id);

        let d = post_structured(event).unwrap_or_else(|e| panic!("{id} structured: {e}"));
        assert_eq!((d.mode, d.events.len()), (Mode::Structured, 1), "{id}");
        assert_same_event(&d.events[0], &want, id);

        let d = post_batch(&json!([event])).unwrap_or_else(|e| panic!("{id} as batch: {e}"));
        assert_eq!((d.mode, d.events.len()), (Mode::Batched, 1), "{id}");
        assert_same_event(&d.events[0], &want, id);
        passed += 1;
    }
    println!(
        "JSON format: valid single events passed {passed}/{}",
        tests.len()
    );
    assert_eq!(passed, 10);
}

#[test]
fn json_format_invalid_events() {
    let (kind, tests) = json_fixture("invalid-events.json");
    assert_eq!(kind, "InvalidSingleEvent");
    let mut rejected = 0;
    for t in &tests {
        let id = t["id"].as_str().expect("id");
        let event = &t["event"];
        let single = cloudevents::from_json(event);
        assert!(
            matches!(single, Err(BindingError::Invalid(_))),
            "{id}: from_json gave {single:?}"
        );
        let structured = post_structured(event);
        assert!(
            matches!(structured, Err(BindingError::Invalid(_))),
            "{id}: structured gave {structured:?}"
        );
        match post_batch(&json!([event])) {
            Err(BindingError::Invalid(m)) => {
                assert!(m.starts_with("batch[0]"), "{id}: batch error {m}")
            }
            other => panic!("{id}: as batch gave {other:?}"),
        }
        if let Err(BindingError::Invalid(m)) = single {
            assert!(
                m.starts_with("attribute \""),
                "{id}: message names no attribute: {m}"
            );
            println!("  {id}: {m}");
        }
        rejected += 1;
    }
    println!(
        "JSON format: invalid single events rejected {rejected}/{}",
        tests.len()
    );
    assert_eq!(rejected, 25);
}

#[test]
fn json_format_valid_batches() {
    let (kind, tests) = json_fixture("valid-batches.json");
    assert_eq!(kind, "ValidBatch");
    let mut passed = 0;
    for t in &tests {
        let id = t["id"].as_str().expect("id");
        let want = golden_batch(t["sampleId"].as_str().expect("sampleId"));
        let batch = &t["batch"];
        let d = post_batch(batch).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(d.mode, Mode::Batched);
        assert_eq!(
            d.events.len(),
            batch.as_array().expect("array").len(),
            "{id}: event count"
        );
        assert_eq!(d.events.len(), want.len(), "{id}: golden count");
        for (got, want) in d.events.iter().zip(&want) {
            assert_same_event(got, want, id);
        }
        passed += 1;
    }
    println!("JSON format: valid batches passed {passed}/{}", tests.len());
    assert_eq!(passed, 5);
}

#[test]
fn json_format_invalid_batches() {
    let (kind, tests) = json_fixture("invalid-batches.json");
    assert_eq!(kind, "InvalidBatch");
    let mut rejected = 0;
    for t in &tests {
        let id = t["id"].as_str().expect("id");
        match post_batch(&t["batch"]) {
            Err(BindingError::Invalid(m)) => println!("  {id}: {m}"),
            other => panic!("{id}: gave {other:?}"),
        }
        rejected += 1;
    }
    println!(
        "JSON format: invalid batches rejected {rejected}/{}",
        tests.len()
    );
    assert_eq!(rejected, 3);
}

// ---- (b) conformance tool YAML events ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct YamlEvent {
    mode: Option<String>,
    context_attributes: YamlAttributes,
    #[serde(default)]
    transport_extensions: BTreeMap<String, String>,
    data: Option<String>,
}

#[derive(Debug, Deserialize)]
struct YamlAttributes {
    specversion: String,
    #[serde(rename = "type")]
    ty: String,
    id: String,
    source: String,
    time: Option<String>,
    subject: Option<String>,
    schemaurl: Option<String>,
    dataschema: Option<String>,
    datacontenttype: Option<String>,
    #[serde(rename = "Extensions", default)]
    extensions: BTreeMap<String, String>,
}

fn yaml_events(rel: &str) -> Vec<YamlEvent> {
    let text = fixture(rel);
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| YamlEvent::deserialize(doc).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .collect()
}

/// The HTTP message the conformance tool would send for `ev` in `mode` (values trimmed and not
/// percent-encoded, as the tool does; structured data embedded as JSON when the content type is
/// JSON or absent, else as a JSON string).
fn to_http(ev: &YamlEvent, mode: Mode) -> (HeaderMap, Bytes) {
    let a = &ev.context_attributes;
    let data = ev.data.clone().unwrap_or_default();
    let mut attrs: Vec<(String, String)> = vec![
        ("specversion".into(), a.specversion.clone()),
        ("id".into(), a.id.clone()),
        ("source".into(), a.source.clone()),
        ("type".into(), a.ty.clone()),
    ];
    let optional = [
        ("time", &a.time),
        ("subject", &a.subject),
        ("schemaurl", &a.schemaurl),
        ("dataschema", &a.dataschema),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            attrs.push((name.into(), v.trim().to_owned()));
        }
    }
    for (name, value) in &a.extensions {
        attrs.push((name.clone(), value.trim().to_owned()));
    }
    let mut h = HeaderMap::new();
    let mut put = |name: &str, value: &str| {
        h.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_bytes(value.as_bytes()).expect("header value"),
        );
    };
    for (name, value) in &ev.transport_extensions {
        put(name, value);
    }
    match mode {
        Mode::Binary => {
            for (name, value) in &attrs {
                put(&format!("ce-{name}"), value);
            }
            if let Some(ct) = &a.datacontenttype {
                put("content-type", ct);
            }
            (h, Bytes::from(data))
        }
        Mode::Structured => {
            let mut obj = serde_json::Map::new();
            for (name, value) in attrs {
                obj.insert(name, Value::String(value));
            }
            if let Some(ct) = &a.datacontenttype {
                obj.insert("datacontenttype".into(), Value::String(ct.clone()));
            }
            if ev.data.is_some() {
                let as_json = a
                    .datacontenttype
                    .as_deref()
                    .is_none_or(cloudevents::is_json_media_type);
                let value = if as_json {
                    serde_json::from_str(&data).expect("structured Data must be JSON")
                } else {
                    Value::String(data)
                };
                obj.insert("data".into(), value);
            }
            put(
                "content-type",
                "application/cloudevents+json; charset=UTF-8",
            );
            (h, Bytes::from(serde_json::to_vec(&obj).expect("json")))
        }
        Mode::Batched => unreachable!("the YAML fixtures have no batches"),
    }
}

/// The event the binding should produce for `ev` sent in `mode`.
fn expected(ev: &YamlEvent, mode: Mode) -> CloudEvent {
    let a = &ev.context_attributes;
    let specversion = match a.specversion.as_str() {
        "1.0" => SpecVersion::V10,
        "0.3" => SpecVersion::V03,
        other => panic!("fixture specversion {other}"),
    };
    let schema = match specversion {
        SpecVersion::V10 => a.dataschema.clone(),
        SpecVersion::V03 => a.schemaurl.clone(),
    };
    let data = ev.data.as_ref().map(|d| {
        let json = a
            .datacontenttype
            .as_deref()
            .map(cloudevents::is_json_media_type);
        let text = a
            .datacontenttype
            .as_deref()
            .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("text/"));
        match (mode, json) {
            (_, Some(true)) | (Mode::Structured, None) => {
                Data::Json(serde_json::from_str(d).expect("JSON data"))
            }
            // Binary mode without a content type: JSON when it parses, else text (as the SDK
            // receivers read it); the fixtures' data is text.
            (_, None) => serde_json::from_str(d)
                .map(Data::Json)
                .unwrap_or_else(|_| Data::Text(d.clone())),
            (Mode::Structured, Some(false)) => Data::Text(d.clone()),
            (_, Some(false)) if text => Data::Text(d.clone()),
            _ => Data::Binary(Bytes::from(d.clone())),
        }
    });
    CloudEvent {
        specversion,
        id: a.id.clone(),
        source: a.source.clone(),
        ty: a.ty.clone(),
        datacontenttype: a.datacontenttype.clone(),
        dataschema: schema,
        subject: a.subject.clone(),
        time: a.time.clone(),
        extensions: a
            .extensions
            .iter()
            .map(|(k, v)| (k.clone(), ExtValue::String(v.trim().to_owned())))
            .collect(),
        data,
    }
}

#[test]
fn conformance_yaml_events() {
    let files = [
        "yaml/v1.0/v1_minimum.yaml",
        "yaml/v0.3/v03_minimum.yaml",
        "yaml/v1.yaml",
        "yaml/v03.yaml",
    ];
    let (mut documents, mut messages) = (0, 0);
    for file in files {
        for (index, ev) in yaml_events(file).iter().enumerate() {
            documents += 1;
            let declared = match ev.mode.as_deref() {
                None | Some("binary") => Mode::Binary,
                Some("structured") => Mode::Structured,
                Some(other) => panic!("{file}[{index}]: mode {other}"),
            };
            let other = match declared {
                Mode::Binary => Mode::Structured,
                _ => Mode::Binary,
            };
            for mode in [declared, other] {
                let (h, body) = to_http(ev, mode);
                let d = cloudevents::decode(&h, &body)
                    .unwrap_or_else(|e| panic!("{file}[{index}] {mode:?}: {e}"));
                assert_eq!(d.mode, mode, "{file}[{index}]");
                assert_eq!(
                    d.events,
                    vec![expected(ev, mode)],
                    "{file}[{index}] {mode:?}"
                );
                assert!(d.warnings.is_empty(), "{file}[{index}]: {:?}", d.warnings);
                messages += 1;
            }
        }
    }
    println!(
        "conformance YAML: {documents} events, {messages} HTTP messages (declared mode + the \
         other mode) decoded and matched"
    );
    assert_eq!((documents, messages), (15, 30));
}
