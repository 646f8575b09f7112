//! Conversions between flowbridge's [`Document`] and docarray v2 protobuf (`DocProto`, a map of
//! field name → `NodeProto`), the format of a jina gateway running with docarray ≥ 0.30.
//! Pure: no I/O, no transport, no gateway.
//!
//! A v2 document has no fixed schema: each executor declares its own pydantic model, and an
//! executor without type annotations gets jina's `LegacyDocumentJina` (the docarray 0.21 field
//! set: `id, text, url, blob, tensor, embedding, tags, scores, chunks, matches`). flowbridge
//! encodes a document the way docarray itself encodes a `LegacyDocumentJina` (checked against
//! docarray 0.40's `to_protobuf`):
//!
//! | model | v2 field | node |
//! |---|---|---|
//! | `id` | `id` | `text` + type `"id"` |
//! | `text` | `text` | `text` |
//! | `uri` | `url` | `text` (LegacyDocument's `url` is a plain `str`) |
//! | `blob` | `blob` | `blob` |
//! | `tensor` | `tensor` | `ndarray` (`<f8`) + type `"ndarray"` |
//! | `embedding` | `embedding` | `ndarray` (`<f4`) + type `"ndarray_embedding"` |
//! | `tags` | `tags` | `dict`; ints in i32 range → `integer`, other numbers → `float`, null → empty node |
//! | `scores` | `scores` | `dict` of `float` (v2 scores are plain numbers, not NamedScore) |
//! | `chunks` / `matches` | same | `doc_array` |
//! | `mime_type`, `modality`, `weight` | same names | `text` / `text` / `float` |
//!
//! Fields that are unset or empty are left out (docarray reads a missing field as its default).
//! The last row has no `LegacyDocumentJina` field: docarray skips unknown fields when decoding, so
//! they reach only executors whose schema declares them. On the way back, unknown fields of a
//! reply document are ignored, and `scores` entries may be numbers or `{value: ...}` objects.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::v1::{self, SendDtype};
use super::{ConvertError, refuse_nested, tensor_to_nested};
use crate::flow::proto::v2::docarray::{
    DenseNdArrayProto, DictOfAnyProto, DocListProto, DocProto, ListOfAnyProto, NdArrayProto,
    NodeProto, node_proto,
};
use crate::flow::proto::v2::jina::data_request_proto::{DataContentProto, data_content_proto};
use crate::model::{Document, Tensor};

fn node(content: node_proto::Content) -> NodeProto {
    NodeProto {
        content: Some(content),
        docarray_type: None,
    }
}

fn typed(content: node_proto::Content, ty: &str) -> NodeProto {
    NodeProto {
        content: Some(content),
        docarray_type: Some(node_proto::DocarrayType::Type(ty.to_owned())),
    }
}

fn ndarray(tensor: &Tensor, dtype: SendDtype, path: &str) -> Result<NdArrayProto, ConvertError> {
    let v1 = v1::tensor_to_proto(tensor, dtype, path)?;
    let dense = match v1.content {
        Some(crate::flow::proto::docarray::nd_array_proto::Content::Dense(d)) => d,
        _ => return Err(ConvertError::new(path, "not a dense array")),
    };
    Ok(NdArrayProto {
        dense: Some(DenseNdArrayProto {
            buffer: dense.buffer,
            shape: dense.shape,
            dtype: dense.dtype,
        }),
        parameters: None,
    })
}

/// A JSON value as a v2 node (tags, parameters-like dicts).
pub(crate) fn json_to_node(value: &Value) -> NodeProto {
    use node_proto::Content;
    match value {
        Value::Null => NodeProto::default(),
        Value::Bool(b) => node(Content::Boolean(*b)),
        Value::Number(n) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
            Some(i) => node(Content::Integer(i)),
            None => node(Content::Float(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::String(s) => node(Content::Text(s.clone())),
        Value::Array(items) => node(Content::List(ListOfAnyProto {
            data: items.iter().map(json_to_node).collect(),
        })),
        Value::Object(map) => node(Content::Dict(dict_of(map))),
    }
}

fn dict_of(map: &Map<String, Value>) -> DictOfAnyProto {
    DictOfAnyProto {
        data: map
            .iter()
            .map(|(k, v)| (k.clone(), json_to_node(v)))
            .collect(),
    }
}

/// A v2 node as JSON (for tags and other untyped values). Arrays become nested lists of numbers,
/// blobs base64 text, nested documents objects.
pub(crate) fn node_to_json(value: &NodeProto, path: &str) -> Result<Value, ConvertError> {
    use node_proto::Content;
    Ok(match &value.content {
        None => Value::Null,
        Some(Content::Text(s)) => Value::String(s.clone()),
        Some(Content::Integer(i)) => Value::from(*i),
        // Like v1 Struct numbers: an integral double exact in an i64 reads as an integer.
        Some(Content::Float(f)) => v1::number_to_json(*f),
        Some(Content::Boolean(b)) => Value::Bool(*b),
        Some(Content::Blob(b)) => {
            use base64::Engine as _;
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(Content::Ndarray(a)) => match tensor_from_v2(a, path)? {
            Some(t) => tensor_to_nested(&t),
            None => Value::Null,
        },
        Some(Content::Doc(d)) => Value::Object(
            d.data
                .iter()
                .map(|(k, v)| Ok((k.clone(), node_to_json(v, &format!("{path}.{k}"))?)))
                .collect::<Result<_, ConvertError>>()?,
        ),
        Some(Content::DocArray(list)) => Value::Array(
            list.docs
                .iter()
                .enumerate()
                .map(|(i, d)| node_to_json(&node(Content::Doc(d.clone())), &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Some(Content::List(l) | Content::Set(l) | Content::Tuple(l)) => Value::Array(
            l.data
                .iter()
                .enumerate()
                .map(|(i, v)| node_to_json(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Some(Content::Dict(d)) => Value::Object(
            d.data
                .iter()
                .map(|(k, v)| Ok((k.clone(), node_to_json(v, &format!("{path}.{k}"))?)))
                .collect::<Result<_, ConvertError>>()?,
        ),
    })
}

fn tensor_from_v2(array: &NdArrayProto, path: &str) -> Result<Option<Tensor>, ConvertError> {
    let Some(dense) = &array.dense else {
        return Ok(None);
    };
    use crate::flow::proto::docarray as v1_proto;
    let v1 = v1_proto::NdArrayProto {
        content: Some(v1_proto::nd_array_proto::Content::Dense(
            v1_proto::DenseNdArrayProto {
                buffer: dense.buffer.clone(),
                shape: dense.shape.clone(),
                dtype: dense.dtype.clone(),
            },
        )),
        cls_name: "numpy".to_owned(),
        parameters: None,
    };
    v1::tensor_from_proto(&v1, path)
}

/// One model document as a v2 `DocProto` (see the module docs for the field mapping).
pub(crate) fn document_to_v2(doc: &Document, path: &str) -> Result<DocProto, ConvertError> {
    use node_proto::Content;
    let mut data = std::collections::HashMap::new();
    data.insert("id".to_owned(), typed(Content::Text(doc.id.clone()), "id"));
    if let Some(text) = &doc.text {
        data.insert("text".to_owned(), node(Content::Text(text.clone())));
    }
    if let Some(uri) = &doc.uri {
        data.insert("url".to_owned(), node(Content::Text(uri.clone())));
    }
    if let Some(blob) = &doc.blob {
        data.insert("blob".to_owned(), node(Content::Blob(blob.to_vec())));
    }
    if let Some(tensor) = &doc.tensor {
        let array = ndarray(tensor, SendDtype::F64, &format!("{path}.tensor"))?;
        data.insert(
            "tensor".to_owned(),
            typed(Content::Ndarray(array), "ndarray"),
        );
    }
    if let Some(embedding) = &doc.embedding {
        let array = ndarray(embedding, SendDtype::F32, &format!("{path}.embedding"))?;
        data.insert(
            "embedding".to_owned(),
            typed(Content::Ndarray(array), "ndarray_embedding"),
        );
    }
    if !doc.tags.is_empty() {
        data.insert("tags".to_owned(), node(Content::Dict(dict_of(&doc.tags))));
    }
    if !doc.scores.is_empty() {
        let scores = DictOfAnyProto {
            data: doc
                .scores
                .iter()
                .map(|(k, v)| (k.clone(), node(Content::Float(*v))))
                .collect(),
        };
        data.insert("scores".to_owned(), node(Content::Dict(scores)));
    }
    refuse_nested(doc, path)?;
    if let Some(mime) = &doc.mime_type {
        data.insert("mime_type".to_owned(), node(Content::Text(mime.clone())));
    }
    if let Some(modality) = &doc.modality {
        data.insert("modality".to_owned(), node(Content::Text(modality.clone())));
    }
    if let Some(weight) = doc.weight {
        data.insert("weight".to_owned(), node(Content::Float(f64::from(weight))));
    }
    Ok(DocProto { data })
}

fn text_of(node: &NodeProto, path: &str) -> Result<Option<String>, ConvertError> {
    match &node.content {
        None => Ok(None),
        Some(node_proto::Content::Text(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ConvertError::new(
            path,
            format!("expected a text node, got {}", content_name(other)),
        )),
    }
}

fn content_name(content: &node_proto::Content) -> &'static str {
    use node_proto::Content;
    match content {
        Content::Text(_) => "text",
        Content::Integer(_) => "integer",
        Content::Float(_) => "float",
        Content::Boolean(_) => "boolean",
        Content::Blob(_) => "blob",
        Content::Ndarray(_) => "ndarray",
        Content::Doc(_) => "doc",
        Content::DocArray(_) => "doc_array",
        Content::List(_) => "list",
        Content::Set(_) => "set",
        Content::Tuple(_) => "tuple",
        Content::Dict(_) => "dict",
    }
}

fn docs_of(node: &NodeProto, path: &str) -> Result<Vec<Document>, ConvertError> {
    use node_proto::Content;
    let docs: Vec<DocProto> = match &node.content {
        None => return Ok(Vec::new()),
        Some(Content::DocArray(list)) => list.docs.clone(),
        Some(Content::List(list)) => list
            .data
            .iter()
            .enumerate()
            .map(|(i, n)| match &n.content {
                Some(Content::Doc(d)) => Ok(d.clone()),
                _ => Err(ConvertError::new(
                    &format!("{path}[{i}]"),
                    "expected a document node",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(ConvertError::new(
                path,
                format!("expected a list of documents, got {}", content_name(other)),
            ));
        }
    };
    docs.into_iter()
        .enumerate()
        .map(|(i, d)| document_from_v2(d, &format!("{path}[{i}]")))
        .collect()
}

fn tensor_of(node: &NodeProto, path: &str) -> Result<Option<Tensor>, ConvertError> {
    match &node.content {
        None => Ok(None),
        Some(node_proto::Content::Ndarray(a)) => tensor_from_v2(a, path),
        Some(other) => Err(ConvertError::new(
            path,
            format!("expected an ndarray node, got {}", content_name(other)),
        )),
    }
}

/// One v2 reply document as a model [`Document`].
pub(crate) fn document_from_v2(doc: DocProto, path: &str) -> Result<Document, ConvertError> {
    use node_proto::Content;
    let mut out = Document::default();
    for (name, value) in &doc.data {
        let at = format!("{path}.{name}");
        match name.as_str() {
            "id" => out.id = text_of(value, &at)?.unwrap_or_default(),
            "text" => out.text = text_of(value, &at)?,
            "url" | "uri" => out.uri = text_of(value, &at)?,
            "mime_type" => out.mime_type = text_of(value, &at)?,
            "modality" => out.modality = text_of(value, &at)?,
            "blob" => {
                out.blob = match &value.content {
                    None => None,
                    Some(Content::Blob(b)) => Some(Bytes::from(b.clone())),
                    Some(Content::Text(s)) => Some(Bytes::from(s.clone().into_bytes())),
                    Some(other) => {
                        return Err(ConvertError::new(
                            &at,
                            format!("expected a blob node, got {}", content_name(other)),
                        ));
                    }
                }
            }
            "tensor" => out.tensor = tensor_of(value, &at)?,
            "embedding" => out.embedding = tensor_of(value, &at)?,
            "weight" => {
                out.weight = match node_to_json(value, &at)? {
                    Value::Number(n) => n.as_f64().map(|f| f as f32),
                    _ => None,
                }
            }
            "tags" => {
                out.tags = match node_to_json(value, &at)? {
                    Value::Object(map) => map,
                    Value::Null => Map::new(),
                    other => {
                        return Err(ConvertError::new(
                            &at,
                            format!("expected a dict, got {other}"),
                        ));
                    }
                }
            }
            "scores" => {
                if let Value::Object(map) = node_to_json(value, &at)? {
                    for (k, v) in map {
                        let score = match &v {
                            Value::Number(n) => n.as_f64(),
                            Value::Object(o) => o.get("value").and_then(Value::as_f64),
                            _ => None,
                        };
                        if let Some(score) = score {
                            out.scores.insert(k, score);
                        }
                    }
                }
            }
            "chunks" => out.chunks = docs_of(value, &at)?,
            "matches" => out.matches = docs_of(value, &at)?,
            _ => {}
        }
    }
    Ok(out)
}

/// `DataRequestProto.data` (field 4) for a v2 gateway, encoded.
pub(crate) fn encode_data<'a>(
    docs: impl IntoIterator<Item = &'a Document>,
) -> Result<Vec<u8>, ConvertError> {
    use prost::Message as _;
    let docs = docs
        .into_iter()
        .enumerate()
        .map(|(i, d)| document_to_v2(d, &format!("docs[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let data = DataContentProto {
        documents: Some(data_content_proto::Documents::Docs(DocListProto { docs })),
    };
    Ok(data.encode_to_vec())
}

/// The documents of an encoded v2 `DataRequestProto.data`.
pub(crate) fn decode_data(bytes: &[u8]) -> Result<Vec<Document>, ConvertError> {
    use prost::Message as _;
    let data = DataContentProto::decode(bytes).map_err(|e| {
        ConvertError::new(
            "data",
            format!("not a docarray v2 DocListProto ({e}); is the gateway docarray v1?"),
        )
    })?;
    match data.documents {
        None => Ok(Vec::new()),
        Some(data_content_proto::Documents::Docs(list)) => list
            .docs
            .into_iter()
            .enumerate()
            .map(|(i, d)| document_from_v2(d, &format!("docs[{i}]")))
            .collect(),
        Some(data_content_proto::Documents::DocsBytes(_)) => Err(ConvertError::new(
            "data.docs_bytes",
            "the response carries serialized docs_bytes instead of data.docs; flowbridge can \
             only read protobuf documents",
        )),
    }
}

#[cfg(test)]
mod tests;
