//! Event → Jina request mapping: the default mapping (one document per event), CEL mappings for
//! `docs`, `parameters`, `endpoint`, `target_executor`, the document shape check, and the reply
//! `data` program.
//!
//! STUB: owned by the mapping work; the signatures are the contract.

use serde_json::Value;

use crate::model::{CloudEvent, Document, FlowRequest};

/// A string setting that is either literal or computed by CEL (`{cel: "..."}` in YAML).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(String),
    Cel(String),
}

/// What the route's YAML says about the request (raw strings, not yet compiled).
#[derive(Debug, Clone, Default)]
pub struct MappingSpec {
    /// `None` means the default "/".
    pub endpoint: Option<Expr>,
    pub target_executor: Option<Expr>,
    /// CEL → map.
    pub parameters: Option<String>,
    /// CEL → document or list of documents.
    pub docs: Option<String>,
}

/// A compile problem in one field of the mapping (`docs`, `parameters`, `endpoint`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// Mapping failed for this event (CEL runtime error, bad document shape): 422.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct MappingError {
    pub field: String,
    pub message: String,
}

/// A compiled mapping; `Send + Sync`, shared by all requests.
#[derive(Debug)]
pub struct Mapping {
    pub spec: MappingSpec,
}

impl Mapping {
    /// One-line summary for `flowbridge check`.
    pub fn describe(&self) -> String {
        String::new()
    }

    pub fn compile(spec: &MappingSpec) -> Result<Mapping, Vec<FieldError>> {
        Ok(Mapping { spec: spec.clone() })
    }

    pub fn apply(&self, event: &CloudEvent) -> Result<FlowRequest, MappingError> {
        let _ = event;
        Err(MappingError {
            field: "docs".into(),
            message: "mapping not implemented".into(),
        })
    }
}

/// The reply `data` program (`None` = result docs as JSON).
#[derive(Debug)]
pub struct ReplyData {
    pub source: Option<String>,
}

impl ReplyData {
    pub fn compile(source: Option<&str>) -> Result<ReplyData, String> {
        Ok(ReplyData {
            source: source.map(str::to_string),
        })
    }

    /// Evaluate with `event` and `docs` (result documents as maps) in scope.
    pub fn render(&self, event: &CloudEvent, docs: &[Document]) -> Result<Value, MappingError> {
        let _ = (event, docs);
        Err(MappingError {
            field: "reply.data".into(),
            message: "not implemented".into(),
        })
    }
}

/// Documents as JSON maps (the shape CEL and reply data see; also used by `explain`).
pub fn document_to_json(doc: &Document) -> Value {
    let _ = doc;
    Value::Null
}
