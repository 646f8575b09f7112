//! Plain data shared by every module: the CloudEvent as flowbridge sees it, Jina documents, and
//! the Flow request/response pair. Nothing here knows about HTTP, gRPC or CEL.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value};

/// CloudEvents spec version of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecVersion {
    V03,
    V10,
}

impl SpecVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            SpecVersion::V03 => "0.3",
            SpecVersion::V10 => "1.0",
        }
    }
}

/// Value of an extension attribute. Binary mode only ever yields `String`; the JSON format may
/// carry booleans and integers.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtValue {
    String(String),
    Bool(bool),
    Integer(i64),
}

impl ExtValue {
    /// The canonical string form (CloudEvents type system), as used in HTTP headers.
    pub fn to_canonical(&self) -> String {
        match self {
            ExtValue::String(s) => s.clone(),
            ExtValue::Bool(b) => b.to_string(),
            ExtValue::Integer(i) => i.to_string(),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            ExtValue::String(s) => Value::String(s.clone()),
            ExtValue::Bool(b) => Value::Bool(*b),
            ExtValue::Integer(i) => Value::from(*i),
        }
    }
}

/// Event payload, already interpreted according to `datacontenttype`.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// `*/json` or `*/*+json` content (or structured mode without a content type).
    Json(Value),
    /// `text/*` content, or a non-JSON string in structured mode.
    Text(String),
    /// Anything else.
    Binary(Bytes),
}

/// A validated CloudEvent (1.0 or 0.3). Constructed only by the HTTP binding
/// (`ingress::binding`) or the JSON format reader, which enforce the spec's rules.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudEvent {
    pub specversion: SpecVersion,
    pub id: String,
    pub source: String,
    pub ty: String,
    pub datacontenttype: Option<String>,
    /// `dataschema` (1.0) or `schemaurl` (0.3).
    pub dataschema: Option<String>,
    pub subject: Option<String>,
    /// RFC 3339 timestamp, as received (already validated).
    pub time: Option<String>,
    /// Extension attributes by (lower-case) name.
    pub extensions: BTreeMap<String, ExtValue>,
    pub data: Option<Data>,
}

/// An n-dimensional numeric array (embedding or tensor), row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<u32>,
    pub values: Vec<f64>,
}

/// A Jina (docarray v1) document as flowbridge models it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document {
    pub id: String,
    pub text: Option<String>,
    pub uri: Option<String>,
    pub blob: Option<Bytes>,
    pub mime_type: Option<String>,
    pub tags: Map<String, Value>,
    pub embedding: Option<Tensor>,
    pub tensor: Option<Tensor>,
    pub weight: Option<f32>,
    pub modality: Option<String>,
    /// Named scores (e.g. `cosine`) as set by rankers; result documents only.
    pub scores: BTreeMap<String, f64>,
    pub chunks: Vec<Document>,
    pub matches: Vec<Document>,
}

/// One Jina DataRequest, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRequest {
    pub endpoint: String,
    pub target_executor: Option<String>,
    pub parameters: Map<String, Value>,
    pub docs: Vec<Document>,
}

/// What the Flow answered (only for a successful request).
#[derive(Debug, Clone, PartialEq)]
pub struct FlowResponse {
    pub request_id: String,
    pub docs: Vec<Document>,
    pub parameters: Map<String, Value>,
}

/// Settings for one Jina gateway, validated by `config`.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewaySpec {
    pub name: String,
    /// `grpc://host:port` (h2c) or `grpcs://host:port` (TLS).
    pub url: String,
    /// Deadline of one Flow call, retries included.
    pub timeout: Duration,
    /// Largest gRPC message flowbridge decodes from the gateway.
    pub max_message_bytes: usize,
}
