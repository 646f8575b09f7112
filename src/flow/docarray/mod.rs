//! flowbridge's [`Document`] in docarray's wire formats, both ways: pure conversions, no network,
//! no tonic, no knowledge of gateways or retries (the transports in `flow` call these). The
//! generated protobuf types come from `flow::proto` and never leave `flow`.
//!
//! * `v1` — docarray v1 / jina protobuf (`DocumentProto`, `NdArrayProto`, `Struct` ↔ JSON), and
//!   the v1 `DataRequestProto.data` both ways.
//! * `wire_v1` — request documents written as docarray v1 protobuf bytes without building protos.
//! * `v2` — docarray v2 protobuf (`DocProto` nodes).
//! * `json` — the JSON documents of jina's HTTP gateway (v1 `PydanticDocument`, v2
//!   `LegacyDocumentJina`).
//! * `ids` — only the document ids of an answer, when no event needs the documents back.
//!
//! Here: [`ConvertError`], and what v2 and JSON share: tensors as nested JSON lists
//! ([`tensor_to_nested`], [`nested_to_tensor`]) and the refusal of nested documents for a
//! docarray v2 Flow ([`refuse_nested`], [`nested_refused`]).

pub(crate) mod ids;
pub(crate) mod json;
pub(crate) mod v1;
pub(crate) mod v2;
pub(crate) mod wire_v1;

use std::fmt;

use serde_json::{Value, json};

use crate::model::{Document, Tensor};

/// A document or value that cannot be converted, with the path of the offending field
/// (e.g. `docs[2].chunks[0].embedding`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConvertError {
    pub path: String,
    pub message: String,
}

impl ConvertError {
    pub(crate) fn new(path: &str, message: impl Into<String>) -> ConvertError {
        ConvertError {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A tensor as nested JSON lists following its shape (a flat list when it has no shape).
pub(crate) fn tensor_to_nested(tensor: &Tensor) -> Value {
    fn nest(values: &[f64], shape: &[u32]) -> Value {
        match shape {
            [] | [_] => Value::Array(values.iter().map(|v| json!(v)).collect()),
            [first, rest @ ..] => {
                let stride: usize = rest.iter().map(|d| *d as usize).product();
                let parts = (*first as usize).max(1);
                Value::Array(
                    (0..parts)
                        .map(|i| {
                            let end = ((i + 1) * stride).min(values.len());
                            let start = (i * stride).min(end);
                            nest(&values[start..end], rest)
                        })
                        .collect(),
                )
            }
        }
    }
    nest(&tensor.values, &tensor.shape)
}

/// Nested JSON number lists as a tensor; the lists must be rectangular.
pub(crate) fn nested_to_tensor(value: &Value, path: &str) -> Result<Tensor, ConvertError> {
    fn shape_of(value: &Value, shape: &mut Vec<u32>) {
        if let Value::Array(items) = value {
            shape.push(items.len() as u32);
            if let Some(first) = items.first() {
                shape_of(first, shape);
            }
        }
    }
    fn flatten(value: &Value, depth: usize, shape: &[u32], out: &mut Vec<f64>) -> bool {
        match value {
            Value::Array(items) => {
                shape.get(depth).is_some_and(|d| *d as usize == items.len())
                    && items.iter().all(|v| flatten(v, depth + 1, shape, out))
            }
            Value::Number(n) if depth == shape.len() => {
                out.push(n.as_f64().unwrap_or(f64::NAN));
                true
            }
            Value::Bool(b) if depth == shape.len() => {
                out.push(if *b { 1.0 } else { 0.0 });
                true
            }
            _ => false,
        }
    }
    let mut shape = Vec::new();
    shape_of(value, &mut shape);
    let mut values = Vec::new();
    if shape.is_empty() || !flatten(value, 0, &shape, &mut values) {
        return Err(ConvertError::new(
            path,
            "expected a rectangular nested list of numbers",
        ));
    }
    Ok(Tensor { shape, values })
}

/// The one thing a document that converts for docarray v1 can still fail on in v2: nested
/// documents (see [`nested_refused`]).
pub(crate) fn refuse_nested(doc: &Document, path: &str) -> Result<(), ConvertError> {
    for (name, docs) in [("chunks", &doc.chunks), ("matches", &doc.matches)] {
        if !docs.is_empty() {
            return Err(nested_refused(path, name));
        }
    }
    Ok(())
}

/// Why a document with chunks or matches cannot go to a docarray v2 Flow: docarray 0.40 cannot
/// decode `LegacyDocumentJina.chunks`/`.matches` (over gRPC the executor fails; the v2 HTTP
/// gateway fails too), so the event is refused before anything is sent rather than answered with
/// an executor error that Knative would retry forever.
pub(crate) fn nested_refused(path: &str, name: &str) -> ConvertError {
    ConvertError::new(
        &format!("{path}.{name}"),
        "a docarray v2 Flow (docarray >= 0.30, untyped LegacyDocument) cannot decode nested \
         documents; send chunks/matches to a docarray v1 Flow, or map them into tags",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_nest_by_shape_and_come_back() {
        let t = Tensor {
            shape: vec![2, 3],
            values: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.5],
        };
        let nested = tensor_to_nested(&t);
        assert_eq!(nested, json!([[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]]));
        assert_eq!(nested_to_tensor(&nested, "e").unwrap(), t);
        let flat = Tensor {
            shape: vec![],
            values: vec![0.5],
        };
        assert_eq!(tensor_to_nested(&flat), json!([0.5]));
        let err = nested_to_tensor(&json!([[1], [2, 3]]), "docs[0].embedding").unwrap_err();
        assert_eq!(err.path, "docs[0].embedding");
        assert!(nested_to_tensor(&json!("x"), "e").is_err());
    }
}
