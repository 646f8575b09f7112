//! Event → Jina request mapping: the default mapping (one document per event), CEL mappings for
//! `docs`, `parameters`, `endpoint`, `target_executor`, the document shape check, and the reply
//! `data` program.
//!
//! Rules a mapping follows (the README's config reference describes the same):
//! * `docs` yields one document map or a list of them. Keys a document may set: see
//!   [`DOCUMENT_FIELDS`]; anything else is a [`MappingError`] naming the path
//!   (`docs[1].embeding`) and listing the allowed keys. A `null` value counts as absent.
//! * Without `docs`, the default mapping makes one document per event from its data.
//! * Top-level documents without an id get `<event id>` (one document) or `<event id>/<index>`
//!   (several); nested `chunks`/`matches` without one get `<parent id>/chunks/<i>` or
//!   `<parent id>/matches/<i>`. Top-level ids must be unique within the request (results are
//!   matched back to their event by id).
//! * Every top-level document gets the event's context in `tags.cloudevent`, unless the mapping
//!   (or, for the default mapping, the event's JSON object) already set a `cloudevent` tag: what
//!   the user wrote wins.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use bytes::Bytes;
use serde_json::{Map, Number, Value};

use super::cel::{
    CelVal, Program, Scope, View, event_to_val, json_to_val, key_str, type_name, val_to_json, view,
};
use crate::model::{CloudEvent, Data, Document, FlowRequest, Tensor};

/// The keys a mapping may set on a document, in the order error messages list them.
pub const DOCUMENT_FIELDS: &[&str] = &[
    "id",
    "text",
    "uri",
    "blob",
    "mime_type",
    "tags",
    "embedding",
    "weight",
    "modality",
    "chunks",
    "matches",
];

/// Decodes `blob` strings: the standard alphabet, padded or not.
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

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

impl MappingError {
    fn new(field: impl fmt::Display, message: impl Into<String>) -> MappingError {
        MappingError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// A compiled string setting.
#[derive(Debug)]
enum StrExpr {
    Literal(String),
    Cel(Program),
}

/// A compiled mapping; `Send + Sync`, shared by all requests.
#[derive(Debug)]
pub struct Mapping {
    pub spec: MappingSpec,
    endpoint: Option<StrExpr>,
    target_executor: Option<StrExpr>,
    parameters: Option<Program>,
    docs: Option<Program>,
}

impl Mapping {
    /// Compiles every CEL field; all problems are returned at once, each naming its field.
    pub fn compile(spec: &MappingSpec) -> Result<Mapping, Vec<FieldError>> {
        let mut errors = Vec::new();
        let endpoint = compile_str("endpoint", spec.endpoint.as_ref(), &mut errors);
        let target_executor = compile_str(
            "target_executor",
            spec.target_executor.as_ref(),
            &mut errors,
        );
        let parameters = compile_cel("parameters", spec.parameters.as_deref(), &mut errors);
        let docs = compile_cel("docs", spec.docs.as_deref(), &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Mapping {
            spec: spec.clone(),
            endpoint,
            target_executor,
            parameters,
            docs,
        })
    }

    /// Builds the Flow request for one event.
    pub fn apply(&self, event: &CloudEvent) -> Result<FlowRequest, MappingError> {
        let uses_cel = self.docs.is_some()
            || self.parameters.is_some()
            || matches!(self.endpoint, Some(StrExpr::Cel(_)))
            || matches!(self.target_executor, Some(StrExpr::Cel(_)));
        let mut scope = Scope::new();
        if uses_cel {
            scope.bind("event", event_to_val(event));
        }

        let endpoint = eval_str("endpoint", self.endpoint.as_ref(), &scope)?
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| "/".to_string());
        let target_executor = eval_str("target_executor", self.target_executor.as_ref(), &scope)?
            .filter(|t| !t.is_empty());

        let parameters = match &self.parameters {
            None => Map::new(),
            Some(program) => program
                .eval(&scope, |v| match view(v) {
                    View::Null => Ok(Map::new()),
                    View::Map(_) => match val_to_json(v) {
                        Ok(Value::Object(map)) => Ok(map),
                        Ok(_) => Err(MappingError::new("parameters", "expected a map")),
                        Err(e) => Err(MappingError::new("parameters", e)),
                    },
                    _ => Err(MappingError::new(
                        "parameters",
                        format!("expected a map, got {}", type_name(v)),
                    )),
                })
                .map_err(|e| runtime_error("parameters", program, e))??,
        };

        let mut docs = match &self.docs {
            None => vec![default_document(event)],
            Some(program) => program
                .eval(&scope, docs_from_val)
                .map_err(|e| runtime_error("docs", program, e))??,
        };
        finish_documents(event, &mut docs)?;

        Ok(FlowRequest {
            endpoint,
            target_executor,
            parameters,
            docs,
        })
    }
}

fn compile_str(
    field: &'static str,
    expr: Option<&Expr>,
    errors: &mut Vec<FieldError>,
) -> Option<StrExpr> {
    match expr? {
        Expr::Literal(s) => Some(StrExpr::Literal(s.clone())),
        Expr::Cel(source) => compile_cel(field, Some(source), errors).map(StrExpr::Cel),
    }
}

fn compile_cel(
    field: &'static str,
    source: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<Program> {
    match Program::compile(source?, &["event"]) {
        Ok(program) => Some(program),
        Err(message) => {
            errors.push(FieldError { field, message });
            None
        }
    }
}

fn runtime_error(field: &str, program: &Program, error: String) -> MappingError {
    MappingError::new(field, format!("`{}`: {error}", program.short_source()))
}

/// A literal, or a CEL result that must be a string (`null` = not set).
fn eval_str(
    field: &'static str,
    expr: Option<&StrExpr>,
    scope: &Scope<'_>,
) -> Result<Option<String>, MappingError> {
    match expr {
        None => Ok(None),
        Some(StrExpr::Literal(s)) => Ok(Some(s.clone())),
        Some(StrExpr::Cel(program)) => program
            .eval(scope, |v| match view(v) {
                View::String(s) => Ok(Some(s.to_string())),
                View::Null => Ok(None),
                _ => Err(MappingError::new(
                    field,
                    format!("expected a string, got {}", type_name(v)),
                )),
            })
            .map_err(|e| runtime_error(field, program, e))?,
    }
}

// ---------------------------------------------------------------------------------------------
// Documents from CEL values

/// Where in the `docs` result a value sits, for error messages (`docs[1].chunks[0].text`).
enum Path<'a> {
    Root(&'static str),
    Index(&'a Path<'a>, usize),
    Field(&'a Path<'a>, &'a str),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root(name) => f.write_str(name),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
            Path::Field(parent, field) => write!(f, "{parent}.{field}"),
        }
    }
}

fn docs_from_val(value: &CelVal<'_>) -> Result<Vec<Document>, MappingError> {
    let root = Path::Root("docs");
    match view(value) {
        View::Map(map) => Ok(vec![document_from_map(map, &root)?]),
        View::List(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| document_from_val(item.as_ref(), &Path::Index(&root, i)))
            .collect(),
        _ => Err(MappingError::new(
            root,
            format!(
                "expected a document map or a list of document maps, got {}",
                type_name(value)
            ),
        )),
    }
}

fn document_from_val(value: &CelVal<'_>, path: &Path<'_>) -> Result<Document, MappingError> {
    match view(value) {
        View::Map(map) => document_from_map(map, path),
        _ => Err(MappingError::new(
            path,
            format!("expected a document map, got {}", type_name(value)),
        )),
    }
}

type CelMapRef<'b, 'v> = &'b HashMap<::cel::common::types::CelMapKey<'v>, Box<CelVal<'v>>>;

fn document_from_map(map: CelMapRef<'_, '_>, path: &Path<'_>) -> Result<Document, MappingError> {
    let mut doc = Document::default();
    for (key, value) in map {
        let Some(name) = key_str(key) else {
            return Err(MappingError::new(
                path,
                "document keys must be strings".to_string(),
            ));
        };
        let value = value.as_ref();
        let here = Path::Field(path, name);
        match name {
            "id" => match view(value) {
                View::Null => {}
                View::String(s) if !s.is_empty() => doc.id = s.to_string(),
                View::String(_) => {
                    return Err(MappingError::new(here, "must not be empty"));
                }
                _ => return Err(expected(&here, "a non-empty string", value)),
            },
            "text" => doc.text = opt_string(value, &here)?,
            "uri" => doc.uri = opt_string(value, &here)?,
            "mime_type" => doc.mime_type = opt_string(value, &here)?,
            "modality" => doc.modality = opt_string(value, &here)?,
            "blob" => {
                doc.blob = match view(value) {
                    View::Null => None,
                    View::Bytes(b) => Some(Bytes::copy_from_slice(b)),
                    View::String(s) => {
                        Some(Bytes::from(BASE64_LENIENT.decode(s).map_err(|e| {
                            MappingError::new(&here, format!("not valid base64: {e}"))
                        })?))
                    }
                    _ => return Err(expected(&here, "bytes or a base64 string", value)),
                }
            }
            "tags" => match view(value) {
                View::Null => {}
                View::Map(_) => match val_to_json(value) {
                    Ok(Value::Object(tags)) => doc.tags = tags,
                    Ok(_) => return Err(expected(&here, "a map", value)),
                    Err(e) => return Err(MappingError::new(here, e)),
                },
                _ => return Err(expected(&here, "a map", value)),
            },
            "embedding" => doc.embedding = tensor_from_val(value, &here)?,
            "weight" => {
                doc.weight = match view(value) {
                    View::Null => None,
                    View::Int(i) => Some(i as f32),
                    View::UInt(u) => Some(u as f32),
                    View::Double(d) => Some(d as f32),
                    _ => return Err(expected(&here, "a number", value)),
                }
            }
            "chunks" => doc.chunks = nested_documents(value, &here)?,
            "matches" => doc.matches = nested_documents(value, &here)?,
            _ => {
                // Report the first unknown key in sorted order, so the message is stable.
                let first = map
                    .keys()
                    .filter_map(key_str)
                    .filter(|k| !DOCUMENT_FIELDS.contains(k))
                    .min()
                    .unwrap_or(name);
                return Err(MappingError::new(
                    Path::Field(path, first),
                    format!(
                        "unknown document field; allowed: {}",
                        DOCUMENT_FIELDS.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(doc)
}

fn expected(path: &Path<'_>, what: &str, value: &CelVal<'_>) -> MappingError {
    MappingError::new(path, format!("expected {what}, got {}", type_name(value)))
}

fn opt_string(value: &CelVal<'_>, path: &Path<'_>) -> Result<Option<String>, MappingError> {
    match view(value) {
        View::Null => Ok(None),
        View::String(s) => Ok(Some(s.to_string())),
        _ => Err(expected(path, "a string", value)),
    }
}

fn nested_documents(value: &CelVal<'_>, path: &Path<'_>) -> Result<Vec<Document>, MappingError> {
    match view(value) {
        View::Null => Ok(Vec::new()),
        View::List(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| document_from_val(item.as_ref(), &Path::Index(path, i)))
            .collect(),
        _ => Err(expected(path, "a list of document maps", value)),
    }
}

/// A list of numbers (shape `[n]`) or rectangular nested lists (shape `[n, m, ...]`).
fn tensor_from_val(value: &CelVal<'_>, path: &Path<'_>) -> Result<Option<Tensor>, MappingError> {
    let mut shape = Vec::new();
    let mut cur = value;
    loop {
        match view(cur) {
            View::Null if shape.is_empty() => return Ok(None),
            View::List(items) => {
                shape.push(items.len());
                match items.first() {
                    Some(first) => cur = first.as_ref(),
                    None => break,
                }
            }
            _ => break,
        }
    }
    if shape.is_empty() {
        return Err(expected(
            path,
            "a list of numbers (nested lists for more dimensions)",
            value,
        ));
    }
    let mut values = Vec::with_capacity(shape.iter().product());
    fill_tensor(value, &shape, 0, &mut values, path)?;
    let shape = shape
        .iter()
        .map(|&n| u32::try_from(n))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| MappingError::new(path, "dimension too large"))?;
    Ok(Some(Tensor { shape, values }))
}

fn fill_tensor(
    value: &CelVal<'_>,
    shape: &[usize],
    depth: usize,
    values: &mut Vec<f64>,
    path: &Path<'_>,
) -> Result<(), MappingError> {
    if depth == shape.len() {
        let number = match view(value) {
            View::Int(i) => i as f64,
            View::UInt(u) => u as f64,
            View::Double(d) => d,
            View::List(_) => {
                return Err(MappingError::new(
                    path,
                    "ragged nested list: nested deeper than the first entries",
                ));
            }
            _ => return Err(expected(path, "a number", value)),
        };
        values.push(number);
        return Ok(());
    }
    match view(value) {
        View::List(items) if items.len() == shape[depth] => {
            for (i, item) in items.iter().enumerate() {
                fill_tensor(
                    item.as_ref(),
                    shape,
                    depth + 1,
                    values,
                    &Path::Index(path, i),
                )?;
            }
            Ok(())
        }
        View::List(items) => Err(MappingError::new(
            path,
            format!(
                "ragged nested list: expected {} entries like the first list at this depth, got {}",
                shape[depth],
                items.len()
            ),
        )),
        _ => Err(MappingError::new(
            path,
            format!(
                "ragged nested list: expected a list like the first entries, got {}",
                type_name(value)
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Default mapping, ids and event context

/// One document from the event's data (the mapping when a route has no `docs`).
fn default_document(event: &CloudEvent) -> Document {
    let mut doc = Document {
        id: event.id.clone(),
        ..Document::default()
    };
    match &event.data {
        None => {}
        Some(Data::Json(Value::Object(object))) => {
            if let Some(Value::String(text)) = object.get("text") {
                doc.text = Some(text.clone());
            }
            doc.tags = object.clone();
        }
        Some(Data::Json(Value::String(text))) => doc.text = Some(text.clone()),
        Some(Data::Json(other)) => {
            doc.tags.insert("data".to_string(), other.clone());
        }
        Some(Data::Text(text)) => doc.text = Some(text.clone()),
        Some(Data::Binary(blob)) => {
            doc.blob = Some(blob.clone());
            doc.mime_type = Some(
                event
                    .datacontenttype
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".to_string()),
            );
        }
    }
    doc
}

/// The event's context as documents carry it in `tags.cloudevent`.
pub fn cloudevent_tag(event: &CloudEvent) -> Value {
    let mut ce = Map::new();
    ce.insert("id".into(), Value::String(event.id.clone()));
    ce.insert("source".into(), Value::String(event.source.clone()));
    ce.insert("type".into(), Value::String(event.ty.clone()));
    ce.insert(
        "specversion".into(),
        Value::String(event.specversion.as_str().to_string()),
    );
    let optional = [
        ("subject", &event.subject),
        ("time", &event.time),
        ("datacontenttype", &event.datacontenttype),
        ("dataschema", &event.dataschema),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            ce.insert(key.into(), Value::String(value.clone()));
        }
    }
    if !event.extensions.is_empty() {
        let extensions: Map<String, Value> = event
            .extensions
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect();
        ce.insert("extensions".into(), Value::Object(extensions));
    }
    Value::Object(ce)
}

/// Gives documents without an id theirs, checks top-level ids are unique, adds
/// `tags.cloudevent`.
fn finish_documents(event: &CloudEvent, docs: &mut [Document]) -> Result<(), MappingError> {
    let count = docs.len();
    let mut context = Some(cloudevent_tag(event));
    for (i, doc) in docs.iter_mut().enumerate() {
        if doc.id.is_empty() {
            doc.id = if count == 1 {
                event.id.clone()
            } else {
                format!("{}/{i}", event.id)
            };
        }
        name_nested(doc);
        if !doc.tags.contains_key("cloudevent") {
            // The last document takes the value itself, the others a copy.
            let value = if i + 1 == count {
                context.take()
            } else {
                context.clone()
            };
            if let Some(value) = value {
                doc.tags.insert("cloudevent".to_string(), value);
            }
        }
    }
    if count < 2 {
        return Ok(());
    }
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(count);
    for (i, doc) in docs.iter().enumerate() {
        if let Some(first) = seen.insert(doc.id.as_str(), i) {
            return Err(MappingError::new(
                format!("docs[{i}].id"),
                format!(
                    "duplicate document id \"{}\" (also docs[{first}]); ids must be unique within a request",
                    doc.id
                ),
            ));
        }
    }
    Ok(())
}

fn name_nested(doc: &mut Document) {
    for (kind, list) in [("chunks", &mut doc.chunks), ("matches", &mut doc.matches)] {
        for (i, child) in list.iter_mut().enumerate() {
            if child.id.is_empty() {
                child.id = format!("{}/{kind}/{i}", doc.id);
            }
            name_nested(child);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reply data

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
fn tensor_to_json(tensor: &Tensor) -> Value {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ExtValue;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn event(data: Option<Data>) -> CloudEvent {
        CloudEvent {
            data,
            ..CloudEvent::new("e1", "/shop", "order.created")
        }
    }

    fn json_event(data: Value) -> CloudEvent {
        let mut ev = event(Some(Data::Json(data)));
        ev.datacontenttype = Some("application/json".into());
        ev
    }

    fn docs_mapping(docs: &str) -> Mapping {
        Mapping::compile(&MappingSpec {
            docs: Some(docs.into()),
            ..MappingSpec::default()
        })
        .unwrap()
    }

    fn apply_docs(docs: &str, ev: &CloudEvent) -> Result<Vec<Document>, MappingError> {
        docs_mapping(docs).apply(ev).map(|r| r.docs)
    }

    fn default_request(ev: &CloudEvent) -> FlowRequest {
        Mapping::compile(&MappingSpec::default())
            .unwrap()
            .apply(ev)
            .unwrap()
    }

    /// Tags without the `cloudevent` context, to compare the rest.
    fn user_tags(doc: &Document) -> Value {
        let mut tags = doc.tags.clone();
        tags.remove("cloudevent");
        Value::Object(tags)
    }

    #[test]
    fn default_mapping_json_object() {
        let ev = json_event(json!({"text": "hello", "lang": "en"}));
        let req = default_request(&ev);
        assert_eq!(req.endpoint, "/");
        assert_eq!(req.target_executor, None);
        assert!(req.parameters.is_empty());
        assert_eq!(req.docs.len(), 1);
        let doc = &req.docs[0];
        assert_eq!(doc.id, "e1");
        assert_eq!(doc.text.as_deref(), Some("hello"));
        assert_eq!(user_tags(doc), json!({"text": "hello", "lang": "en"}));
        assert_eq!(
            doc.tags["cloudevent"],
            json!({"id": "e1", "source": "/shop", "type": "order.created",
                   "specversion": "1.0", "datacontenttype": "application/json"})
        );
        // a non-string `text` field stays a tag only
        let req = default_request(&json_event(json!({"text": 5})));
        assert_eq!(req.docs[0].text, None);
        assert_eq!(user_tags(&req.docs[0]), json!({"text": 5}));
    }

    #[test]
    fn default_mapping_json_string_number_and_array() {
        let req = default_request(&json_event(json!("just text")));
        assert_eq!(req.docs[0].text.as_deref(), Some("just text"));
        assert_eq!(user_tags(&req.docs[0]), json!({}));
        let req = default_request(&json_event(json!(42)));
        assert_eq!(req.docs[0].text, None);
        assert_eq!(user_tags(&req.docs[0]), json!({"data": 42}));
        let req = default_request(&json_event(json!([1, "a"])));
        assert_eq!(user_tags(&req.docs[0]), json!({"data": [1, "a"]}));
        let req = default_request(&json_event(Value::Null));
        assert_eq!(user_tags(&req.docs[0]), json!({"data": null}));
    }

    #[test]
    fn default_mapping_text_binary_and_no_data() {
        let mut ev = event(Some(Data::Text("plain".into())));
        ev.datacontenttype = Some("text/plain".into());
        let doc = &default_request(&ev).docs[0];
        assert_eq!(doc.text.as_deref(), Some("plain"));
        assert_eq!(doc.blob, None);

        let mut ev = event(Some(Data::Binary(Bytes::from_static(b"\x89PNG"))));
        ev.datacontenttype = Some("image/png".into());
        let doc = &default_request(&ev).docs[0];
        assert_eq!(doc.blob.as_deref(), Some(&b"\x89PNG"[..]));
        assert_eq!(doc.mime_type.as_deref(), Some("image/png"));
        assert_eq!(doc.text, None);

        let ev = event(Some(Data::Binary(Bytes::from_static(b"\x00"))));
        let doc = &default_request(&ev).docs[0];
        assert_eq!(doc.mime_type.as_deref(), Some("application/octet-stream"));

        let mut ev = event(None);
        ev.subject = Some("s1".into());
        ev.time = Some("2024-05-01T10:00:00Z".into());
        ev.extensions
            .insert("partition".into(), ExtValue::Integer(2));
        let doc = &default_request(&ev).docs[0];
        assert_eq!(doc.id, "e1");
        assert_eq!((doc.text.as_ref(), doc.blob.as_ref()), (None, None));
        assert_eq!(
            Value::Object(doc.tags.clone()),
            json!({"cloudevent": {"id": "e1", "source": "/shop", "type": "order.created",
                "specversion": "1.0", "subject": "s1", "time": "2024-05-01T10:00:00Z",
                "extensions": {"partition": 2}}})
        );
    }

    #[test]
    fn cel_docs_list_with_tags_and_embeddings() {
        let ev = json_event(json!({"items": [
            {"title": "a", "lang": "en", "vec": [1, 2.5, 3]},
            {"title": "b", "lang": "de", "vec": [[1, 2], [3, 4]]}
        ]}));
        let docs = apply_docs(
            "event.data.items.map(i, {'text': i.title, 'tags': {'lang': i.lang}, 'embedding': i.vec})",
            &ev,
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].id, "e1/0");
        assert_eq!(docs[1].id, "e1/1");
        assert_eq!(docs[0].text.as_deref(), Some("a"));
        assert_eq!(user_tags(&docs[1]), json!({"lang": "de"}));
        assert_eq!(docs[1].tags["cloudevent"]["id"], json!("e1"));
        assert_eq!(
            docs[0].embedding,
            Some(Tensor {
                shape: vec![3],
                values: vec![1.0, 2.5, 3.0]
            })
        );
        assert_eq!(
            docs[1].embedding,
            Some(Tensor {
                shape: vec![2, 2],
                values: vec![1.0, 2.0, 3.0, 4.0]
            })
        );
    }

    #[test]
    fn embedding_errors() {
        let ev = event(None);
        let err = apply_docs("{'embedding': [[1, 2], [3]]}", &ev).unwrap_err();
        assert_eq!(err.field, "docs.embedding[1]");
        assert!(err.message.contains("ragged"), "{err}");
        let err = apply_docs("[{'embedding': [1, 'x']}]", &ev).unwrap_err();
        assert_eq!(
            err.to_string(),
            "docs[0].embedding[1]: expected a number, got string"
        );
        let err = apply_docs("{'embedding': [1, [2]]}", &ev).unwrap_err();
        assert!(err.message.contains("ragged"), "{err}");
        let err = apply_docs("{'embedding': 'x'}", &ev).unwrap_err();
        assert_eq!(err.field, "docs.embedding");
    }

    #[test]
    fn single_map_gets_event_id_and_explicit_ids_are_kept() {
        let ev = event(None);
        let docs = apply_docs("{'text': 'x'}", &ev).unwrap();
        assert_eq!(docs[0].id, "e1");
        let docs = apply_docs("[{'text': 'only'}]", &ev).unwrap();
        assert_eq!(docs[0].id, "e1");
        let docs = apply_docs("[{'id': 'a'}, {'text': 't'}, {'id': 'b'}]", &ev).unwrap();
        let ids: Vec<_> = docs.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["a", "e1/1", "b"]);
    }

    #[test]
    fn duplicate_and_bad_ids_are_errors() {
        let ev = event(None);
        let err = apply_docs("[{'id': 'a'}, {'id': 'b'}, {'id': 'a'}]", &ev).unwrap_err();
        assert_eq!(err.field, "docs[2].id");
        assert!(err.message.contains("duplicate document id \"a\""), "{err}");
        assert!(err.message.contains("docs[0]"), "{err}");
        // a generated id colliding with an explicit one
        let err = apply_docs("[{'id': 'e1/1'}, {}]", &ev).unwrap_err();
        assert_eq!(err.field, "docs[1].id");
        let err = apply_docs("[{'id': ''}]", &ev).unwrap_err();
        assert_eq!(err.to_string(), "docs[0].id: must not be empty");
        let err = apply_docs("[{'id': 7}]", &ev).unwrap_err();
        assert_eq!(
            err.to_string(),
            "docs[0].id: expected a non-empty string, got int"
        );
    }

    #[test]
    fn unknown_key_lists_allowed_keys() {
        let ev = event(None);
        let err = apply_docs("[{'text': 'a'}, {'text': 'b', 'embeding': [1]}]", &ev).unwrap_err();
        assert_eq!(
            err.to_string(),
            "docs[1].embeding: unknown document field; allowed: id, text, uri, blob, \
             mime_type, tags, embedding, weight, modality, chunks, matches"
        );
        let err = apply_docs("{'text': 'a', 'zz': 1, 'aa': 2}", &ev).unwrap_err();
        assert_eq!(
            err.field, "docs.aa",
            "the first unknown key in sorted order"
        );
    }

    #[test]
    fn wrong_types_name_field_and_expected_type() {
        let ev = event(None);
        let err = apply_docs("{'text': 1}", &ev).unwrap_err();
        assert_eq!(err.to_string(), "docs.text: expected a string, got int");
        let err = apply_docs("{'tags': [1]}", &ev).unwrap_err();
        assert_eq!(err.to_string(), "docs.tags: expected a map, got list");
        let err = apply_docs("{'weight': 'heavy'}", &ev).unwrap_err();
        assert_eq!(
            err.to_string(),
            "docs.weight: expected a number, got string"
        );
        let err = apply_docs("'text'", &ev).unwrap_err();
        assert_eq!(
            err.to_string(),
            "docs: expected a document map or a list of document maps, got string"
        );
        let err = apply_docs("[1]", &ev).unwrap_err();
        assert_eq!(err.to_string(), "docs[0]: expected a document map, got int");
        let err = apply_docs("{'chunks': {'text': 'x'}}", &ev).unwrap_err();
        assert_eq!(err.field, "docs.chunks");
    }

    #[test]
    fn blob_from_bytes_and_base64_string() {
        let ev = event(Some(Data::Binary(Bytes::from_static(b"\x01\x02"))));
        let docs = apply_docs("{'blob': event.data, 'mime_type': 'image/png'}", &ev).unwrap();
        assert_eq!(docs[0].blob.as_deref(), Some(&b"\x01\x02"[..]));
        assert_eq!(docs[0].mime_type.as_deref(), Some("image/png"));
        let docs = apply_docs("[{'blob': 'aGk='}, {'blob': 'aGk'}]", &ev).unwrap();
        assert_eq!(docs[0].blob.as_deref(), Some(&b"hi"[..]));
        assert_eq!(
            docs[1].blob.as_deref(),
            Some(&b"hi"[..]),
            "unpadded accepted"
        );
        let err = apply_docs("{'blob': 'not base64!'}", &ev).unwrap_err();
        assert_eq!(err.field, "docs.blob");
        assert!(err.message.contains("not valid base64"), "{err}");
    }

    #[test]
    fn chunks_and_matches_are_nested_documents() {
        let ev = event(None);
        let docs = apply_docs(
            "{'id': 'p', 'text': 'parent', 'weight': 0.5, 'modality': 'text', 'uri': 'u://x', \
              'chunks': [{'text': 'c0'}, {'id': 'c1', 'chunks': [{'text': 'cc'}]}], \
              'matches': [{'id': 'm', 'tags': {'k': 1}, 'embedding': [0.5]}]}",
            &ev,
        )
        .unwrap();
        let doc = &docs[0];
        assert_eq!(doc.weight, Some(0.5));
        assert_eq!(doc.modality.as_deref(), Some("text"));
        assert_eq!(doc.uri.as_deref(), Some("u://x"));
        assert_eq!(doc.chunks.len(), 2);
        assert_eq!(doc.chunks[0].id, "p/chunks/0");
        assert_eq!(doc.chunks[0].text.as_deref(), Some("c0"));
        assert_eq!(doc.chunks[1].id, "c1");
        assert_eq!(doc.chunks[1].chunks[0].id, "c1/chunks/0");
        assert_eq!(doc.matches[0].id, "m");
        assert_eq!(Value::Object(doc.matches[0].tags.clone()), json!({"k": 1}));
        // event context only on top-level documents
        assert!(doc.tags.contains_key("cloudevent"));
        assert!(!doc.chunks[0].tags.contains_key("cloudevent"));
        // nested documents follow the same rules
        let err = apply_docs("{'matches': [{'txt': 'x'}]}", &ev).unwrap_err();
        assert_eq!(err.field, "docs.matches[0].txt");
    }

    #[test]
    fn user_cloudevent_tag_is_kept() {
        let ev = event(None);
        let docs = apply_docs("{'tags': {'cloudevent': 'mine'}}", &ev).unwrap();
        assert_eq!(docs[0].tags["cloudevent"], json!("mine"));
    }

    #[test]
    fn null_fields_count_as_absent() {
        let ev = event(None);
        let docs = apply_docs("{'id': null, 'text': null, 'embedding': null}", &ev).unwrap();
        assert_eq!(docs[0].id, "e1");
        assert_eq!(docs[0].text, None);
        assert_eq!(docs[0].embedding, None);
    }

    #[test]
    fn parameters_endpoint_and_target_executor() {
        let mut ev = json_event(json!({"kind": "search"}));
        ev.subject = Some("exec-a".into());
        let mapping = Mapping::compile(&MappingSpec {
            endpoint: Some(Expr::Cel("'/' + event.data.kind".into())),
            target_executor: Some(Expr::Cel(
                "has(event.subject) ? event.subject : null".into(),
            )),
            parameters: Some(
                "{'tenant': event.source, 'limit': 3, 'nested': {'x': [true]}}".into(),
            ),
            docs: None,
        })
        .unwrap();
        let req = mapping.apply(&ev).unwrap();
        assert_eq!(req.endpoint, "/search");
        assert_eq!(req.target_executor.as_deref(), Some("exec-a"));
        assert_eq!(
            Value::Object(req.parameters),
            json!({"tenant": "/shop", "limit": 3, "nested": {"x": [true]}})
        );
        ev.subject = None;
        assert_eq!(mapping.apply(&ev).unwrap().target_executor, None);

        let literal = Mapping::compile(&MappingSpec {
            endpoint: Some(Expr::Literal("/index".into())),
            target_executor: Some(Expr::Literal("indexer".into())),
            ..MappingSpec::default()
        })
        .unwrap();
        let req = literal.apply(&ev).unwrap();
        assert_eq!(
            (req.endpoint.as_str(), req.target_executor.as_deref()),
            ("/index", Some("indexer"))
        );
    }

    #[test]
    fn runtime_type_errors_name_the_field() {
        let ev = json_event(json!({"n": 1}));
        let m = Mapping::compile(&MappingSpec {
            endpoint: Some(Expr::Cel("event.data.n".into())),
            ..MappingSpec::default()
        })
        .unwrap();
        assert_eq!(
            m.apply(&ev).unwrap_err().to_string(),
            "endpoint: expected a string, got int"
        );
        let m = Mapping::compile(&MappingSpec {
            parameters: Some("[1]".into()),
            ..MappingSpec::default()
        })
        .unwrap();
        assert_eq!(
            m.apply(&ev).unwrap_err().to_string(),
            "parameters: expected a map, got list"
        );
        let err = apply_docs("event.data.items.map(i, {'text': i})", &ev).unwrap_err();
        assert_eq!(err.field, "docs");
        assert!(
            err.message
                .starts_with("`event.data.items.map(i, {'text': i})`: "),
            "{err}"
        );
        assert!(err.message.contains("items"), "{err}");
    }

    #[test]
    fn compile_errors_name_the_field() {
        let errors = Mapping::compile(&MappingSpec {
            endpoint: Some(Expr::Cel("evnt.id".into())),
            target_executor: Some(Expr::Cel("nosuch(event)".into())),
            parameters: Some("{'a': ".into()),
            docs: Some("event.data.map(i, {'text': i".into()),
        })
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["endpoint", "target_executor", "parameters", "docs"]
        );
        assert_eq!(
            errors[0].message,
            "line 1, column 1: unknown variable 'evnt' (available: event)"
        );
        assert_eq!(
            errors[1].message,
            "line 1, column 1: unknown function 'nosuch'"
        );
        assert!(
            errors[2].message.starts_with("syntax error at line 1"),
            "{}",
            errors[2].message
        );
        assert!(
            errors[3].message.starts_with("syntax error at line 1"),
            "{}",
            errors[3].message
        );
        // `docs` is not a variable of the request mapping
        let errors = Mapping::compile(&MappingSpec {
            docs: Some("docs".into()),
            ..MappingSpec::default()
        })
        .unwrap_err();
        assert_eq!(errors[0].field, "docs");
    }

    #[test]
    fn reply_data_default_and_cel() {
        let ev = json_event(json!({"q": "x"}));
        let result = vec![
            Document {
                id: "r1".into(),
                text: Some("hit".into()),
                tags: json!({"k": "v"}).as_object().cloned().unwrap_or_default(),
                embedding: Some(Tensor {
                    shape: vec![2, 2],
                    values: vec![1.0, 2.0, 3.0, 4.0],
                }),
                weight: Some(0.1),
                scores: BTreeMap::from([("cosine".to_string(), 0.25)]),
                blob: Some(Bytes::from_static(b"hi")),
                matches: vec![Document {
                    id: "m1".into(),
                    ..Document::default()
                }],
                ..Document::default()
            },
            Document {
                id: "r2".into(),
                ..Document::default()
            },
        ];
        let default = ReplyData::compile(None).unwrap();
        assert_eq!(
            default.render(&ev, &result).unwrap(),
            json!([
                {"id": "r1", "text": "hit", "tags": {"k": "v"}, "embedding": [[1.0, 2.0], [3.0, 4.0]],
                 "weight": 0.1, "scores": {"cosine": 0.25}, "blob": "aGk=", "matches": [{"id": "m1"}]},
                {"id": "r2"}
            ])
        );
        let cel = ReplyData::compile(Some(
            "{'query': event.data.q, 'hits': docs.map(d, {'id': d.id, 'text': d.text, 'n': size(d.matches), 'tags': d.tags})}",
        ))
        .unwrap();
        // Unset fields are present in the view (null / empty), so plain field access works.
        assert_eq!(
            cel.render(&ev, &result).unwrap(),
            json!({"query": "x", "hits": [
                {"id": "r1", "text": "hit", "n": 1, "tags": {"k": "v"}},
                {"id": "r2", "text": null, "n": 0, "tags": {}}
            ]})
        );
        let bad = ReplyData::compile(Some("docs[5]")).unwrap();
        let err = bad.render(&ev, &result).unwrap_err();
        assert_eq!(err.field, "reply.data");
        assert!(ReplyData::compile(Some("dcos.size()")).is_err());
        assert!(ReplyData::compile(Some("docs.size(")).is_err());
    }

    #[test]
    fn tensor_json_shapes() {
        let t = |shape: Vec<u32>, values: Vec<f64>| tensor_to_json(&Tensor { shape, values });
        assert_eq!(t(vec![3], vec![1.0, 2.0, 3.0]), json!([1.0, 2.0, 3.0]));
        assert_eq!(
            t(vec![2, 1, 2], vec![1.0, 2.0, 3.0, 4.0]),
            json!([[[1.0, 2.0]], [[3.0, 4.0]]])
        );
        assert_eq!(t(vec![], vec![7.0]), json!(7.0));
        assert_eq!(
            t(vec![5], vec![1.0]),
            json!([1.0]),
            "inconsistent shape comes out flat"
        );
    }

    #[test]
    fn mapping_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Mapping>();
        assert_send_sync::<ReplyData>();
    }
}
