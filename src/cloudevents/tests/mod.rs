//! Unit tests of the codec, one file per topic; this file holds the helpers they share (headers
//! and events to start from, decoding shortcuts that assert the kind of error).
//!
//! * `media_types`: mode detection, JSON media types, the `datacontenttype` shape.
//! * `attributes`: required attributes, spec versions, value rules, extension names and values,
//!   message length.
//! * `binary_mode`: `ce-*` headers and their value decoding, bodies read by content type or by
//!   inference, events as Knative sources send them, 0.3 in binary mode.
//! * `json_format`: structured and batched bodies, 0.3 in the JSON format.
//! * `encoding`: both encoders and their round trips through the decoder.

mod attributes;
mod binary_mode;
mod encoding;
mod json_format;
mod media_types;

use std::collections::BTreeMap;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::attributes::{is_absolute_uri, is_rfc3339};
use super::error::MAX_MESSAGE_CHARS;
use super::{
    BindingError, Declared, Decoded, Inferred, Mode, ReadAs, decode, detect_mode, encode_binary,
    from_json, is_json_media_type, to_json,
};
use crate::model::{CloudEvent, Data, ExtValue, SpecVersion};

fn header(h: &mut HeaderMap, name: &str, value: &[u8], append: bool) {
    let name = HeaderName::from_bytes(name.as_bytes()).expect("test header name");
    let value = HeaderValue::from_bytes(value).expect("test header value");
    if append {
        h.append(name, value);
    } else {
        h.insert(name, value);
    }
}

/// Minimal valid binary headers (1.0) with `extra` inserted (overriding).
fn binary(extra: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("ce-specversion", "1.0"),
        ("ce-id", "1"),
        ("ce-source", "/s"),
        ("ce-type", "t"),
    ] {
        header(&mut h, k, v.as_bytes(), false);
    }
    for (k, v) in extra {
        header(&mut h, k, v.as_bytes(), false);
    }
    h
}

fn without(mut h: HeaderMap, name: &str) -> HeaderMap {
    h.remove(name);
    h
}

fn structured(ct: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    header(&mut h, "content-type", ct.as_bytes(), false);
    h
}

fn dec(h: &HeaderMap, body: &[u8]) -> Result<Decoded, BindingError> {
    decode(h, &Bytes::copy_from_slice(body))
}

fn one(h: &HeaderMap, body: &[u8]) -> CloudEvent {
    let mut d = dec(h, body).expect("decodes");
    assert_eq!(d.events.len(), 1);
    d.events.remove(0)
}

fn invalid(r: Result<Decoded, BindingError>) -> String {
    match r {
        Err(BindingError::Invalid(m)) => {
            assert!(m.chars().count() <= MAX_MESSAGE_CHARS, "too long: {m}");
            m
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn json_invalid(v: Value) -> String {
    match from_json(&v) {
        Err(BindingError::Invalid(m)) => m,
        other => panic!("expected Invalid for {v}, got {other:?}"),
    }
}

fn minimal_json() -> Value {
    json!({"specversion": "1.0", "id": "1", "source": "/s", "type": "t"})
}

fn with(mut v: Value, key: &str, val: Value) -> Value {
    v[key] = val;
    v
}

fn subject_of(raw: &[u8]) -> Result<String, String> {
    let mut h = binary(&[]);
    header(&mut h, "ce-subject", raw, false);
    match dec(&h, b"") {
        Ok(d) => Ok(d.events[0].subject.clone().expect("subject")),
        Err(e) => Err(e.to_string()),
    }
}
