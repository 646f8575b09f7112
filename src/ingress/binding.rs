//! The CloudEvents HTTP protocol binding (1.0 and 0.3): mode detection from `Content-Type`,
//! binary-mode header decoding, the JSON event format (structured and batched) and validation.
//! Also encodes events to binary mode (for reply events and `flowbridge send`).
//!
//! STUB: owned by the binding work; the signatures are the contract.

use bytes::Bytes;
use http::HeaderMap;

use crate::model::CloudEvent;

/// How the event(s) arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Binary,
    Structured,
    Batched,
}

/// Result of decoding one HTTP message.
#[derive(Debug)]
pub struct Decoded {
    pub mode: Mode,
    pub events: Vec<CloudEvent>,
    /// Things accepted but worth a log line (e.g. extension names longer than 20 chars).
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BindingError {
    /// Not a CloudEvent at all (no `ce-specversion`, not a cloudevents media type): 415.
    #[error("{0}")]
    NotCloudEvent(String),
    /// A CloudEvent that breaks the spec: 400. The message names the attribute and the rule.
    #[error("{0}")]
    Invalid(String),
}

/// Decode an HTTP message (request or response) into events.
pub fn decode(headers: &HeaderMap, body: &Bytes) -> Result<Decoded, BindingError> {
    let _ = (headers, body);
    Err(BindingError::Invalid("binding not implemented".into()))
}

/// Parse one event in the JSON event format (a structured-mode body or a batch element).
pub fn from_json(value: &serde_json::Value) -> Result<CloudEvent, BindingError> {
    let _ = value;
    Err(BindingError::Invalid("binding not implemented".into()))
}

/// The JSON event format of an event (what structured mode sends).
pub fn to_json(event: &CloudEvent) -> serde_json::Value {
    let _ = event;
    serde_json::Value::Null
}

/// Binary-mode encoding: `ce-*` headers (percent-encoded per the binding), `Content-Type` from
/// `datacontenttype`, and the body.
pub fn encode_binary(event: &CloudEvent) -> (HeaderMap, Bytes) {
    let _ = event;
    (HeaderMap::new(), Bytes::new())
}
