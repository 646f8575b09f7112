//! Reply data: the route's `reply.data` program (it sees `event` and the result `docs`), and
//! result documents as JSON ([`document_to_json`], the default reply data and what `explain`
//! prints; [`document_view`], what a `reply.data` program sees).
//!
//! Pure: no axum, tonic or tokio.

use base64::Engine as _;
use base64::engine::general_purpose;
use serde_json::{Map, Number, Value};

use super::error::{MappingError, runtime_error};
use crate::model::{CloudEvent, Document, Tensor};
use crate::rules::cel::{Program, Scope, event_to_val, json_to_val, val_to_json};

/// The reply `data` program (`None` = result docs as JSON).
#[derive(Debug)]
pub struct ReplyData {
    pub source: Option<String>,
    program: Option<Program>,
}

impl ReplyData {
    /// Compiles the program; it may use `event` and `docs`.
    pub fn compile(source: Option<&str>) -> Result<ReplyData, String> {
        let program = match source {
            None => None,
            Some(src) => Some(Program::compile(src, &["event", "docs"])?),
        };
        Ok(ReplyData {
            source: source.map(str::to_string),
            program,
        })
    }

    /// Evaluate with `event` and `docs` (result documents as maps) in scope.
    pub fn render(&self, event: &CloudEvent, docs: &[Document]) -> Result<Value, MappingError> {
        let Some(program) = &self.program else {
            return Ok(Value::Array(docs.iter().map(document_to_json).collect()));
        };
        let docs_view = Value::Array(docs.iter().map(document_view).collect());
        let mut scope = Scope::new();
        scope.bind("event", event_to_val(event));
        scope.bind("docs", json_to_val(&docs_view));
        program
            .eval(&scope, val_to_json)
            .map_err(|e| runtime_error("reply.data", program, e))?
            .map_err(|e| runtime_error("reply.data", program, e))
    }
}

// ---------------------------------------------------------------------------------------------
// Documents as JSON

/// A result document as reply `data` programs see it: [`document_to_json`] plus, always present,
/// `text`, `uri`, `mime_type`, `modality` (null when unset), `tags`, `scores` (maps) and `chunks`,
/// `matches` (lists, same shape inside), so `{"id": d.id, "text": d.text}` works for every doc.
pub fn document_view(doc: &Document) -> Value {
    let mut value = document_to_json(doc);
    if let Value::Object(out) = &mut value {
        for key in ["text", "uri", "mime_type", "modality"] {
            out.entry(key).or_insert(Value::Null);
        }
        for key in ["tags", "scores"] {
            out.entry(key).or_insert_with(|| Value::Object(Map::new()));
        }
        out.insert(
            "chunks".into(),
            Value::Array(doc.chunks.iter().map(document_view).collect()),
        );
        out.insert(
            "matches".into(),
            Value::Array(doc.matches.iter().map(document_view).collect()),
        );
    }
    value
}

/// Documents as compact JSON maps (the default reply data, `explain`, and the base of
/// [`document_view`]). `id` is always present; other fields only when set or non-empty (as in
/// protobuf). `blob` is base64 text; `embedding`/`tensor` are nested lists by shape.
pub fn document_to_json(doc: &Document) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), Value::String(doc.id.clone()));
    let strings = [
        ("text", &doc.text),
        ("uri", &doc.uri),
        ("mime_type", &doc.mime_type),
        ("modality", &doc.modality),
    ];
    for (key, value) in strings {
        if let Some(value) = value {
            out.insert(key.into(), Value::String(value.clone()));
        }
    }
    if let Some(blob) = &doc.blob {
        out.insert(
            "blob".into(),
            Value::String(general_purpose::STANDARD.encode(blob)),
        );
    }
    if !doc.tags.is_empty() {
        out.insert("tags".into(), Value::Object(doc.tags.clone()));
    }
    if let Some(embedding) = &doc.embedding {
        out.insert("embedding".into(), tensor_to_json(embedding));
    }
    if let Some(tensor) = &doc.tensor {
        out.insert("tensor".into(), tensor_to_json(tensor));
    }
    if let Some(weight) = doc.weight {
        // Through the shortest decimal form of the f32, so 0.1 stays 0.1 and not 0.100000001...
        let as_f64 = weight
            .to_string()
            .parse::<f64>()
            .unwrap_or(f64::from(weight));
        out.insert("weight".into(), number(as_f64));
    }
    if !doc.scores.is_empty() {
        let scores: Map<String, Value> = doc
            .scores
            .iter()
            .map(|(k, v)| (k.clone(), number(*v)))
            .collect();
        out.insert("scores".into(), Value::Object(scores));
    }
    if !doc.chunks.is_empty() {
        out.insert(
            "chunks".into(),
            Value::Array(doc.chunks.iter().map(document_to_json).collect()),
        );
    }
    if !doc.matches.is_empty() {
        out.insert(
            "matches".into(),
            Value::Array(doc.matches.iter().map(document_to_json).collect()),
        );
    }
    Value::Object(out)
}

/// A JSON number, or `null` for NaN and infinities (JSON has no form for them).
fn number(value: f64) -> Value {
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}

/// A tensor as nested lists following its shape (a bare number for shape `[]`). A tensor whose
/// shape doesn't match its values comes out flat.
pub(super) fn tensor_to_json(tensor: &Tensor) -> Value {
    let dims: Vec<usize> = tensor.shape.iter().map(|&d| d as usize).collect();
    let expected: usize = dims.iter().product();
    if expected != tensor.values.len() {
        return Value::Array(tensor.values.iter().map(|&v| number(v)).collect());
    }
    fn build(dims: &[usize], values: &[f64]) -> Value {
        match dims.split_first() {
            None => values.first().map_or(Value::Null, |&v| number(v)),
            Some((&n, rest)) => {
                let stride: usize = rest.iter().product();
                Value::Array(
                    (0..n)
                        .map(|i| build(rest, &values[i * stride..(i + 1) * stride]))
                        .collect(),
                )
            }
        }
    }
    build(&dims, &tensor.values)
}
