//! Why flowbridge decodes CloudEvents itself instead of with the official Rust SDK
//! (`cloudevents-sdk` 0.9, which the first design named): the same HTTP messages go through the
//! SDK's HTTP binding (`cloudevents::binding::http::to_event`) and through ours, and each
//! difference that decided for our own codec is asserted here (docs/design.md). When an SDK
//! release closes them, this test fails and the decision can be revisited.
//!
//! Inputs: the JSON event-format fixtures of cloudevents/conformance
//! (`tests/fixtures/conformance/json-format`, provenance in its SOURCES.md) as structured-mode
//! bodies, and binary-mode messages of the kinds real senders produce.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use bytes::Bytes;
use cloudevents::AttributesReader;
use flowbridge::cloudevents::{self as binding, Mode};
use flowbridge::model::ExtValue;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    h
}

fn sdk(h: &HeaderMap, body: &[u8]) -> Result<cloudevents::Event, String> {
    cloudevents::binding::http::to_event(h, body.to_vec()).map_err(|e| e.to_string())
}

fn ours(h: &HeaderMap, body: &[u8]) -> Result<binding::Decoded, String> {
    binding::decode(h, &Bytes::copy_from_slice(body)).map_err(|e| e.to_string())
}

fn fixture_tests(name: &str) -> Vec<Value> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests/fixtures/conformance/json-format",
        name,
    ]
    .iter()
    .collect();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).unwrap();
    v["tests"].as_array().unwrap().clone()
}

const BASE: [(&str, &[u8]); 4] = [
    ("ce-specversion", b"1.0"),
    ("ce-id", b"1"),
    ("ce-type", b"t"),
    ("ce-source", b"/s"),
];

fn binary(extra: &[(&str, &[u8])]) -> HeaderMap {
    let mut pairs: Vec<(&str, &[u8])> = BASE
        .iter()
        .filter(|(name, _)| !extra.iter().any(|(n, _)| n == name))
        .copied()
        .collect();
    pairs.extend_from_slice(extra);
    headers(&pairs)
}

#[test]
fn the_conformance_fixtures_split_the_two_decoders_where_expected() {
    let structured = headers(&[("content-type", b"application/cloudevents+json")]);
    let mut sdk_wrong = BTreeSet::new();
    for (file, valid) in [("valid-events.json", true), ("invalid-events.json", false)] {
        for test in fixture_tests(file) {
            let id = test["id"].as_str().unwrap().to_string();
            let body = serde_json::to_vec(&test["event"]).unwrap();
            assert_eq!(ours(&structured, &body).is_ok(), valid, "ours on {id}");
            if sdk(&structured, &body).is_ok() != valid {
                sdk_wrong.insert(id);
            }
        }
    }
    // Invalid events the SDK accepts: empty required and optional attributes, extension names
    // outside [a-z0-9], a non-integer extension number, a content type that is not a media type.
    let expected: BTreeSet<String> = [
        "invalidCapitalizedExtension",
        "invalidEmptyDataContentType",
        "invalidEmptyId",
        "invalidEmptySource",
        "invalidEmptySubject",
        "invalidEmptyType",
        "invalidNonRfc2046DataContentType",
        "invalidPunctuatedExtension",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(sdk_wrong, expected);
}

#[test]
fn binary_mode_header_values_are_percent_decoded_by_ours_only() {
    let h = binary(&[("ce-subject", b"Euro%20%E2%82%AC%20%F0%9F%98%80")]);
    let theirs = sdk(&h, b"").unwrap();
    assert_eq!(theirs.subject(), Some("Euro%20%E2%82%AC%20%F0%9F%98%80"));
    let decoded = ours(&h, b"").unwrap();
    assert_eq!(decoded.events[0].subject.as_deref(), Some("Euro € 😀"));
}

#[test]
fn raw_utf8_in_a_header_is_refused_by_the_sdk_and_read_by_ours() {
    // What Go senders emit: UTF-8 bytes, not percent-encoded.
    let h = binary(&[("ce-subject", "Café".as_bytes())]);
    assert!(sdk(&h, b"").is_err());
    let decoded = ours(&h, b"").unwrap();
    assert_eq!(decoded.events[0].subject.as_deref(), Some("Café"));
}

#[test]
fn empty_required_attributes_are_refused_by_ours_only() {
    for name in ["ce-id", "ce-source", "ce-type"] {
        let h = binary(&[(name, b"")]);
        assert!(sdk(&h, b"").is_ok(), "the SDK accepts an empty {name}");
        let e = ours(&h, b"").unwrap_err();
        assert!(e.contains(name.trim_start_matches("ce-")), "{name}: {e}");
    }
}

#[test]
fn structured_content_types_are_case_insensitive_in_ours_only() {
    let event = br#"{"specversion":"1.0","id":"1","type":"t","source":"/s"}"#;
    let h = headers(&[("content-type", b"Application/CloudEvents+JSON")]);
    assert!(sdk(&h, event).is_err());
    assert_eq!(ours(&h, event).unwrap().mode, Mode::Structured);
}

#[test]
fn batched_mode_exists_in_ours_only() {
    let batch = br#"[{"specversion":"1.0","id":"1","type":"t","source":"/s"},
                     {"specversion":"1.0","id":"2","type":"t","source":"/s"}]"#;
    let h = headers(&[("content-type", b"application/cloudevents-batch+json")]);
    assert!(sdk(&h, batch).is_err());
    let decoded = ours(&h, batch).unwrap();
    assert_eq!(decoded.mode, Mode::Batched);
    assert_eq!(decoded.events.len(), 2);
}

#[test]
fn json_data_under_a_vendor_json_type_is_read_by_ours_only() {
    let event = br#"{"specversion":"1.0","id":"1","type":"t","source":"/s",
                     "datacontenttype":"application/vnd.foo+json; charset=utf-8",
                     "data":{"a":1}}"#;
    let h = headers(&[("content-type", b"application/cloudevents+json")]);
    assert!(sdk(&h, event).is_err());
    assert!(ours(&h, event).is_ok());
}

#[test]
fn binary_mode_extensions_keep_their_names_checked_in_ours_only() {
    let h = binary(&[("ce-my_ext", b"v")]);
    let theirs = sdk(&h, b"").unwrap();
    assert!(theirs.extension("my_ext").is_some());
    assert!(ours(&h, b"").is_err());
    // A valid one arrives as a string in both (binary mode carries no type).
    let h = binary(&[("ce-myext", b"10")]);
    assert!(sdk(&h, b"").unwrap().extension("myext").is_some());
    let decoded = ours(&h, b"").unwrap();
    assert_eq!(
        decoded.events[0].extensions.get("myext"),
        Some(&ExtValue::String("10".into()))
    );
}
