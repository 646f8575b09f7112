//! The JSON bodies of jina's HTTP gateway, for both docarray formats: request bodies built from
//! model documents, and documents read back from response bodies. Pure: the bodies only; the
//! HTTP exchange is `flow::http`'s.
//!
//! * **v1** (`POST /post`): `{data, execEndpoint, targetExecutor, parameters}`; documents are
//!   docarray's `PydanticDocument` (snake_case keys): `blob` base64, `embedding`/`tensor` nested
//!   number lists, `scores` `{name: {value}}`.
//! * **v2** (`POST /<endpoint>`): `{data, parameters, header: {requestId, targetExecutor}}`;
//!   documents are jina's `LegacyDocumentJina` (`id, text, url, blob, tensor, embedding, tags,
//!   scores`). Two limits of the jina 3.34 + docarray 0.40 HTTP gateway are refused up front
//!   instead of failing inside the Flow: `chunks`/`matches` (even an empty list makes the
//!   executor fail with `AttributeError('docs')`), and a `blob` that is not UTF-8 (pydantic reads
//!   a JSON string into bytes as its UTF-8 encoding, so only UTF-8 blobs arrive unchanged).
//!   `mime_type`, `modality` and `weight` have no LegacyDocument field and are not sent.
//!
//! Tensors travel as nested lists shaped like the tensor (`docarray::tensor_to_nested`); on the
//! way back the nesting gives the shape.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::{ConvertError, nested_refused, nested_to_tensor, tensor_to_nested};
use crate::model::{Document, Tensor};

/// One document as docarray v1 `PydanticDocument` JSON.
pub(crate) fn document_to_v1(doc: &Document) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(doc.id));
    if let Some(text) = &doc.text {
        out.insert("text".into(), json!(text));
    }
    if let Some(blob) = &doc.blob {
        out.insert(
            "blob".into(),
            json!(base64::engine::general_purpose::STANDARD.encode(blob)),
        );
    }
    if let Some(t) = &doc.tensor {
        out.insert("tensor".into(), tensor_to_nested(t));
    }
    if let Some(e) = &doc.embedding {
        out.insert("embedding".into(), tensor_to_nested(e));
    }
    if let Some(uri) = &doc.uri {
        out.insert("uri".into(), json!(uri));
    }
    if let Some(m) = &doc.mime_type {
        out.insert("mime_type".into(), json!(m));
    }
    if let Some(m) = &doc.modality {
        out.insert("modality".into(), json!(m));
    }
    if let Some(w) = doc.weight {
        out.insert("weight".into(), json!(w));
    }
    if !doc.tags.is_empty() {
        out.insert("tags".into(), Value::Object(doc.tags.clone()));
    }
    if !doc.scores.is_empty() {
        let scores: Map<String, Value> = doc
            .scores
            .iter()
            .map(|(k, v)| (k.clone(), json!({ "value": v })))
            .collect();
        out.insert("scores".into(), Value::Object(scores));
    }
    if !doc.chunks.is_empty() {
        out.insert(
            "chunks".into(),
            Value::Array(doc.chunks.iter().map(document_to_v1).collect()),
        );
    }
    if !doc.matches.is_empty() {
        out.insert(
            "matches".into(),
            Value::Array(doc.matches.iter().map(document_to_v1).collect()),
        );
    }
    Value::Object(out)
}

/// One document as docarray v2 `LegacyDocumentJina` JSON (see the module docs for what is
/// refused).
pub(crate) fn document_to_v2(doc: &Document, path: &str) -> Result<Value, ConvertError> {
    let mut out = Map::new();
    out.insert("id".into(), json!(doc.id));
    if let Some(text) = &doc.text {
        out.insert("text".into(), json!(text));
    }
    if let Some(uri) = &doc.uri {
        out.insert("url".into(), json!(uri));
    }
    if let Some(blob) = &doc.blob {
        let text = std::str::from_utf8(blob).map_err(|_| {
            ConvertError::new(
                &format!("{path}.blob"),
                "the HTTP gateway of a docarray v2 Flow reads a blob as the UTF-8 bytes of a \
                 JSON string, so a non-UTF-8 blob cannot reach the executor unchanged; use the \
                 gRPC gateway",
            )
        })?;
        out.insert("blob".into(), json!(text));
    }
    if let Some(t) = &doc.tensor {
        out.insert("tensor".into(), tensor_to_nested(t));
    }
    if let Some(e) = &doc.embedding {
        out.insert("embedding".into(), tensor_to_nested(e));
    }
    if !doc.tags.is_empty() {
        out.insert("tags".into(), Value::Object(doc.tags.clone()));
    }
    if !doc.scores.is_empty() {
        let scores: Map<String, Value> = doc
            .scores
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        out.insert("scores".into(), Value::Object(scores));
    }
    for (name, docs) in [("chunks", &doc.chunks), ("matches", &doc.matches)] {
        if !docs.is_empty() {
            return Err(nested_refused(path, name));
        }
    }
    Ok(Value::Object(out))
}

fn opt_string(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).map(str::to_owned)
}

/// A document of an HTTP response (v1 `PydanticDocument` or v2 `LegacyDocumentJina` JSON; the
/// keys that differ, `uri`/`url` and the blob encoding, are told apart by `v2`).
pub(crate) fn document_from_json(
    value: &Value,
    v2: bool,
    path: &str,
) -> Result<Document, ConvertError> {
    let Value::Object(map) = value else {
        return Err(ConvertError::new(path, "expected a document object"));
    };
    let tensor = |key: &str| -> Result<Option<Tensor>, ConvertError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => nested_to_tensor(v, &format!("{path}.{key}")).map(Some),
        }
    };
    let blob = match map.get("blob") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if v2 => Some(Bytes::from(s.clone().into_bytes())),
        Some(Value::String(s)) => Some(Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| ConvertError::new(&format!("{path}.blob"), format!("{e}")))?,
        )),
        Some(_) => return Err(ConvertError::new(&format!("{path}.blob"), "not a string")),
    };
    let docs = |key: &str| -> Result<Vec<Document>, ConvertError> {
        match map.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, d)| document_from_json(d, v2, &format!("{path}.{key}[{i}]")))
                .collect(),
            _ => Ok(Vec::new()),
        }
    };
    let mut scores = std::collections::BTreeMap::new();
    if let Some(Value::Object(s)) = map.get("scores") {
        for (k, v) in s {
            let score = match v {
                Value::Number(n) => n.as_f64(),
                Value::Object(o) => o.get("value").and_then(Value::as_f64),
                _ => None,
            };
            if let Some(score) = score {
                scores.insert(k.clone(), score);
            }
        }
    }
    Ok(Document {
        id: opt_string(map.get("id")).unwrap_or_default(),
        text: opt_string(map.get("text")),
        uri: opt_string(map.get(if v2 { "url" } else { "uri" })),
        blob,
        mime_type: opt_string(map.get("mime_type")).filter(|s| !s.is_empty()),
        tags: match map.get("tags") {
            Some(Value::Object(t)) => t.clone(),
            _ => Map::new(),
        },
        embedding: tensor("embedding")?,
        tensor: tensor("tensor")?,
        weight: map
            .get("weight")
            .and_then(Value::as_f64)
            .map(|w| w as f32)
            .filter(|w| *w != 0.0),
        modality: opt_string(map.get("modality")).filter(|s| !s.is_empty()),
        scores,
        chunks: docs("chunks")?,
        matches: docs("matches")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_json_uses_pydantic_document_keys() {
        let doc = Document {
            id: "d".into(),
            blob: Some(Bytes::from_static(b"hello")),
            uri: Some("u".into()),
            scores: [("cosine".to_owned(), 0.5)].into_iter().collect(),
            ..Document::default()
        };
        let v = document_to_v1(&doc);
        assert_eq!(
            v,
            json!({"id": "d", "blob": "aGVsbG8=", "uri": "u", "scores": {"cosine": {"value": 0.5}}})
        );
        assert_eq!(document_from_json(&v, false, "docs[0]").unwrap(), doc);
    }

    #[test]
    fn v2_json_uses_legacy_document_keys_and_refuses_what_the_gateway_breaks() {
        let doc = Document {
            id: "d".into(),
            blob: Some(Bytes::from_static(b"hello")),
            uri: Some("u".into()),
            mime_type: Some("text/plain".into()),
            ..Document::default()
        };
        let v = document_to_v2(&doc, "docs[0]").unwrap();
        assert_eq!(v, json!({"id": "d", "blob": "hello", "url": "u"}));
        let back = document_from_json(&v, true, "docs[0]").unwrap();
        assert_eq!(back.blob, doc.blob);
        assert_eq!(back.uri, doc.uri);

        let binary = Document {
            blob: Some(Bytes::from_static(b"\xff")),
            ..doc.clone()
        };
        let err = document_to_v2(&binary, "docs[1]").unwrap_err();
        assert_eq!(err.path, "docs[1].blob");
        let nested = Document {
            chunks: vec![Document::default()],
            ..doc
        };
        let err = document_to_v2(&nested, "docs[2]").unwrap_err();
        assert_eq!(err.path, "docs[2].chunks");
    }
}
