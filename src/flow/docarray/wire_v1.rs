//! docarray v1 documents written straight to protobuf bytes from flowbridge's [`Document`],
//! without first building the `DocumentProto` / `google.protobuf.Struct` messages. Pure: no I/O.
//!
//! An event's tags (`tags.cloudevent` and the event's data by default) are a JSON tree; as a
//! `Struct` every key and string would be copied into new maps, encoded, then freed, once per
//! event. The profile of the per-event path showed that conversion as about a seventh of all
//! allocations (docs/benchmarks.md), so tags are written from the JSON values themselves.
//! Tensors, embeddings and scores (rare in requests) still go through their protos.
//!
//! The bytes are exactly those prost writes for `v1::tests::document_to_proto`'s message (fields
//! in number order, proto3 defaults left out, `Struct` keys sorted as serde_json keeps them); the
//! tests compare both for every kind of document.

use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};
use serde_json::{Map, Value};

use super::ConvertError;
use super::v1::{self, SendDtype};
use crate::flow::proto::docarray::NamedScoreProto;
use crate::model::Document;

/// Append `doc` as field `field` of the enclosing message (key, length, body). `scratch` is a
/// buffer the caller may reuse between documents.
pub(crate) fn encode_document_field(
    field: u32,
    doc: &Document,
    path: &str,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(), ConvertError> {
    scratch.clear();
    encode_document(doc, path, scratch)?;
    encode_key(field, WireType::LengthDelimited, out);
    encode_varint(scratch.len() as u64, out);
    out.extend_from_slice(scratch);
    Ok(())
}

/// The body of `doc`'s `DocumentProto` (what follows its key and length).
fn encode_document(doc: &Document, path: &str, out: &mut Vec<u8>) -> Result<(), ConvertError> {
    v1::check_one_content(doc, path)?;
    if !doc.id.is_empty() {
        bytes_field(1, doc.id.as_bytes(), out);
    }
    // The content oneof: written even when empty, as prost writes a set oneof.
    if let Some(text) = &doc.text {
        bytes_field(4, text.as_bytes(), out);
    } else if let Some(blob) = &doc.blob {
        bytes_field(2, blob, out);
    } else if let Some(tensor) = &doc.tensor {
        let proto = v1::tensor_to_proto(tensor, SendDtype::F64, &format!("{path}.tensor"))?;
        prost::encoding::message::encode(3, &proto, out);
    }
    // Checked before the nested documents, as the proto conversion does.
    let embedding = doc
        .embedding
        .as_ref()
        .map(|e| v1::tensor_to_proto(e, SendDtype::F32, &format!("{path}.embedding")))
        .transpose()?;
    if let Some(weight) = doc.weight
        && weight != 0.0
    {
        encode_key(8, WireType::ThirtyTwoBit, out);
        out.extend_from_slice(&weight.to_le_bytes());
    }
    for (field, value) in [(9, &doc.uri), (10, &doc.modality), (11, &doc.mime_type)] {
        if let Some(value) = value.as_deref()
            && !value.is_empty()
        {
            bytes_field(field, value.as_bytes(), out);
        }
    }
    for (field, name, docs) in [(14, "chunks", &doc.chunks), (15, "matches", &doc.matches)] {
        for (i, nested) in docs.iter().enumerate() {
            encode_document_field(
                field,
                nested,
                &format!("{path}.{name}[{i}]"),
                &mut Vec::new(),
                out,
            )?;
        }
    }
    if let Some(proto) = &embedding {
        prost::encoding::message::encode(16, proto, out);
    }
    if !doc.tags.is_empty() {
        encode_key(17, WireType::LengthDelimited, out);
        encode_varint(struct_len(&doc.tags) as u64, out);
        encode_struct(&doc.tags, out);
    }
    if !doc.scores.is_empty() {
        let scores: std::collections::BTreeMap<String, NamedScoreProto> = doc
            .scores
            .iter()
            .map(|(name, value)| (name.clone(), v1::score_proto(*value)))
            .collect();
        prost::encoding::btree_map::encode(
            prost::encoding::string::encode,
            prost::encoding::string::encoded_len,
            prost::encoding::message::encode,
            prost::encoding::message::encoded_len,
            18,
            &scores,
            out,
        );
    }
    Ok(())
}

fn bytes_field(field: u32, bytes: &[u8], out: &mut Vec<u8>) {
    encode_key(field, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// Length of a length-delimited field of `len` bytes, key of a field number below 16 included.
fn delimited_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

/// `google.protobuf.Struct`: `map<string, Value> fields = 1`, each entry a message with the key
/// as field 1 (left out when empty, as prost does) and the value as field 2.
fn struct_len(map: &Map<String, Value>) -> usize {
    map.iter()
        .map(|(key, value)| delimited_len(entry_len(key, value)))
        .sum()
}

fn entry_len(key: &str, value: &Value) -> usize {
    let key_len = if key.is_empty() {
        0
    } else {
        delimited_len(key.len())
    };
    key_len + delimited_len(value_len(value))
}

fn encode_struct(map: &Map<String, Value>, out: &mut Vec<u8>) {
    for (key, value) in map {
        encode_key(1, WireType::LengthDelimited, out);
        encode_varint(entry_len(key, value) as u64, out);
        if !key.is_empty() {
            bytes_field(1, key.as_bytes(), out);
        }
        encode_key(2, WireType::LengthDelimited, out);
        encode_varint(value_len(value) as u64, out);
        encode_value(value, out);
    }
}

/// `google.protobuf.Value`: a oneof of null (1), number (2), string (3), bool (4), struct (5),
/// list (6, `ListValue` with `repeated Value values = 1`).
fn value_len(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 2,
        Value::Number(_) => 9,
        Value::String(s) => delimited_len(s.len()),
        Value::Array(items) => delimited_len(list_len(items)),
        Value::Object(map) => delimited_len(struct_len(map)),
    }
}

fn list_len(items: &[Value]) -> usize {
    items.iter().map(|v| delimited_len(value_len(v))).sum()
}

fn encode_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => {
            encode_key(1, WireType::Varint, out);
            encode_varint(0, out);
        }
        Value::Number(n) => {
            encode_key(2, WireType::SixtyFourBit, out);
            // As v1::json_to_value: serde_json always has an f64 view of a number.
            out.extend_from_slice(&n.as_f64().unwrap_or(f64::NAN).to_le_bytes());
        }
        Value::String(s) => bytes_field(3, s.as_bytes(), out),
        Value::Bool(b) => {
            encode_key(4, WireType::Varint, out);
            encode_varint(u64::from(*b), out);
        }
        Value::Object(map) => {
            encode_key(5, WireType::LengthDelimited, out);
            encode_varint(struct_len(map) as u64, out);
            encode_struct(map, out);
        }
        Value::Array(items) => {
            encode_key(6, WireType::LengthDelimited, out);
            encode_varint(list_len(items) as u64, out);
            for item in items {
                encode_key(1, WireType::LengthDelimited, out);
                encode_varint(value_len(item) as u64, out);
                encode_value(item, out);
            }
        }
    }
}

#[cfg(test)]
mod tests;
