//! The request's documents: from the CEL result of a route's `docs` (the shape check, with the
//! path of every mistake in its error: `docs[1].chunks[0].text`), or the default one from the
//! event's data; then the ids of documents that have none, the uniqueness check of top-level
//! ids and the event's context in `tags.cloudevent`.
//!
//! Pure: no axum, tonic or tokio; CEL values come through [`crate::rules::cel`]'s views.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use serde_json::{Map, Value};

use super::error::MappingError;
use crate::model::{CloudEvent, Data, Document, Tensor};
use crate::rules::cel::{CelVal, View, key_str, type_name, val_to_json, view};

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

/// The documents of a `docs` result: one document map or a list of them.
pub(super) fn docs_from_val(value: &CelVal<'_>) -> Result<Vec<Document>, MappingError> {
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
pub(super) fn default_document(event: &CloudEvent) -> Document {
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
pub(super) fn finish_documents(
    event: &CloudEvent,
    docs: &mut [Document],
) -> Result<(), MappingError> {
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
