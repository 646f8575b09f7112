//! Conversions between flowbridge's model ([`Document`], [`Tensor`], JSON maps) and the docarray
//! v1 / jina wire types: `google.protobuf.Struct` ↔ JSON, `Document` ↔ `DocumentProto`,
//! `Tensor` ↔ `NdArrayProto`, and the documents of a v1 `DataRequestProto.data` both ways
//! (request documents are written by `wire_v1`; `v1/tests.rs` builds the reference messages).
//! Pure: no I/O, no transport, no gateway.
//!
//! Choices made here (the wire format is in proto/README.md):
//! * A docarray v1 document holds at most one of `text`, `blob`, `tensor` (a proto `oneof`).
//!   A request document with more than one of them is rejected, naming the document and fields,
//!   rather than silently dropping one.
//! * Request embeddings are sent as float32 (`"<f4"`), request tensors as float64 (`"<f8"`, so
//!   no precision is lost); both with `cls_name: "numpy"`, without which docarray decodes the
//!   array to `None` and executors silently see no embedding.
//! * Responses accept dense arrays of dtype `f2/f4/f8`, `i1..i8`, `u1..u8` and `b1` in either
//!   byte order (`<`, `>`, `|`, `=` meaning little-endian); sparse arrays are an error.
//! * `Struct` numbers are doubles on the wire; on the way back an integral double that is exact
//!   in an `i64` (|v| ≤ 2^53) becomes a JSON integer, and a non-finite one becomes `null`.
//! * Proto3 defaults read as "absent": an empty `uri`/`mime_type`/`modality` and a weight of 0
//!   come back as `None`.

use bytes::Bytes;
use prost_types::value::Kind;
use serde_json::{Map, Number, Value};

use super::ConvertError;
use crate::flow::proto::docarray::{
    DenseNdArrayProto, DocumentProto, NamedScoreProto, NdArrayProto, document_proto, nd_array_proto,
};
use crate::flow::proto::jina::DataRequestProto;
use crate::flow::proto::jina::data_request_proto::{DataContentProto, data_content_proto};
use crate::model::{Document, FlowResponse, Tensor};

/// Largest integer magnitude a double represents exactly.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;

// ---------------------------------------------------------------- Struct <-> JSON

pub(crate) fn json_to_struct(map: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map
            .iter()
            .map(|(k, v)| (k.clone(), json_to_value(v)))
            .collect(),
    }
}

pub(crate) fn json_to_value(value: &Value) -> prost_types::Value {
    let kind = match value {
        Value::Null => Kind::NullValue(prost_types::NullValue::NullValue as i32),
        Value::Bool(b) => Kind::BoolValue(*b),
        // serde_json (without arbitrary_precision) always has an f64 view of a number.
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        Value::Object(map) => Kind::StructValue(json_to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

pub(crate) fn struct_to_json(s: &prost_types::Struct) -> Map<String, Value> {
    s.fields
        .iter()
        .map(|(k, v)| (k.clone(), value_to_json(v)))
        .collect()
}

pub(crate) fn value_to_json(value: &prost_types::Value) -> Value {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::NumberValue(n)) => number_to_json(*n),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.iter().map(value_to_json).collect())
        }
        Some(Kind::StructValue(s)) => Value::Object(struct_to_json(s)),
    }
}

pub(crate) fn number_to_json(n: f64) -> Value {
    if n.is_finite() && n.fract() == 0.0 && n.abs() <= MAX_EXACT_INT {
        // Exact: |n| ≤ 2^53 fits an i64 without rounding.
        Value::from(n as i64)
    } else {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

// ---------------------------------------------------------------- Tensor <-> NdArrayProto

/// Element type used when sending a [`Tensor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendDtype {
    F32,
    F64,
}

pub(crate) fn tensor_to_proto(
    tensor: &Tensor,
    dtype: SendDtype,
    path: &str,
) -> Result<NdArrayProto, ConvertError> {
    let len = tensor.values.len();
    let shape = if tensor.shape.is_empty() {
        vec![u32::try_from(len).map_err(|_| {
            ConvertError::new(path, format!("{len} values are more than a u32 dimension"))
        })?]
    } else {
        let product = tensor
            .shape
            .iter()
            .try_fold(1u64, |acc, d| acc.checked_mul(u64::from(*d)));
        if product != Some(len as u64) {
            return Err(ConvertError::new(
                path,
                format!("shape {:?} does not match {len} values", tensor.shape),
            ));
        }
        tensor.shape.clone()
    };
    let (buffer, dtype_str) = match dtype {
        SendDtype::F32 => {
            let mut buf = Vec::with_capacity(len * 4);
            for (i, v) in tensor.values.iter().enumerate() {
                let f = *v as f32;
                if v.is_finite() && !f.is_finite() {
                    return Err(ConvertError::new(
                        path,
                        format!("value {v} at index {i} does not fit a float32"),
                    ));
                }
                buf.extend_from_slice(&f.to_le_bytes());
            }
            (buf, "<f4")
        }
        SendDtype::F64 => {
            let mut buf = Vec::with_capacity(len * 8);
            for v in &tensor.values {
                buf.extend_from_slice(&v.to_le_bytes());
            }
            (buf, "<f8")
        }
    };
    Ok(NdArrayProto {
        content: Some(nd_array_proto::Content::Dense(DenseNdArrayProto {
            buffer,
            shape,
            dtype: dtype_str.to_owned(),
        })),
        cls_name: "numpy".to_owned(),
        parameters: None,
    })
}

/// Decode an array; `Ok(None)` when the proto carries no content at all.
pub(crate) fn tensor_from_proto(
    array: &NdArrayProto,
    path: &str,
) -> Result<Option<Tensor>, ConvertError> {
    match &array.content {
        None => Ok(None),
        Some(nd_array_proto::Content::Sparse(_)) => Err(ConvertError::new(
            path,
            format!(
                "sparse arrays (cls_name {:?}) are not supported",
                array.cls_name
            ),
        )),
        Some(nd_array_proto::Content::Dense(dense)) => dense_to_tensor(dense, path).map(Some),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElemKind {
    Float,
    Int,
    Uint,
    Bool,
}

fn parse_dtype(dtype: &str, path: &str) -> Result<(bool, ElemKind, usize), ConvertError> {
    let unsupported = || {
        ConvertError::new(
            path,
            format!(
                "unsupported dtype {dtype:?} (expected a numpy dtype string such as \"<f4\", \
                 \"<f8\", \"<i8\", \"|u1\": byte order <, >, | or =, then f2/f4/f8, \
                 i1/i2/i4/i8, u1/u2/u4/u8 or b1)"
            ),
        )
    };
    let mut chars = dtype.chars();
    let big_endian = match chars.next() {
        Some('<' | '|' | '=') => false,
        Some('>') => true,
        _ => return Err(unsupported()),
    };
    let kind = match chars.next() {
        Some('f') => ElemKind::Float,
        Some('i') => ElemKind::Int,
        Some('u') => ElemKind::Uint,
        Some('b') => ElemKind::Bool,
        _ => return Err(unsupported()),
    };
    let size: usize = chars.as_str().parse().map_err(|_| unsupported())?;
    let ok = match kind {
        ElemKind::Float => matches!(size, 2 | 4 | 8),
        ElemKind::Int | ElemKind::Uint => matches!(size, 1 | 2 | 4 | 8),
        ElemKind::Bool => size == 1,
    };
    if ok {
        Ok((big_endian, kind, size))
    } else {
        Err(unsupported())
    }
}

fn dense_to_tensor(dense: &DenseNdArrayProto, path: &str) -> Result<Tensor, ConvertError> {
    let (big_endian, kind, size) = parse_dtype(&dense.dtype, path)?;
    let count = dense
        .shape
        .iter()
        .try_fold(1usize, |acc, d| acc.checked_mul(*d as usize))
        .ok_or_else(|| ConvertError::new(path, format!("shape {:?} overflows", dense.shape)))?;
    if count.checked_mul(size) != Some(dense.buffer.len()) {
        return Err(ConvertError::new(
            path,
            format!(
                "buffer of {} bytes does not hold shape {:?} of dtype {:?}",
                dense.buffer.len(),
                dense.shape,
                dense.dtype
            ),
        ));
    }
    let values = dense
        .buffer
        .chunks_exact(size)
        .map(|chunk| {
            let mut raw = [0u8; 8];
            raw[..size].copy_from_slice(chunk);
            if big_endian {
                raw[..size].reverse();
            }
            // `raw` now holds the element little-endian in its first `size` bytes.
            element_to_f64(kind, size, raw)
        })
        .collect();
    Ok(Tensor {
        shape: dense.shape.clone(),
        values,
    })
}

fn element_to_f64(kind: ElemKind, size: usize, raw: [u8; 8]) -> f64 {
    let [b0, b1, b2, b3, ..] = raw;
    match (kind, size) {
        (ElemKind::Float, 2) => f16_to_f64(u16::from_le_bytes([b0, b1])),
        (ElemKind::Float, 4) => f64::from(f32::from_le_bytes([b0, b1, b2, b3])),
        (ElemKind::Float, _) => f64::from_le_bytes(raw),
        (ElemKind::Int, 1) => f64::from(b0 as i8),
        (ElemKind::Int, 2) => f64::from(i16::from_le_bytes([b0, b1])),
        (ElemKind::Int, 4) => f64::from(i32::from_le_bytes([b0, b1, b2, b3])),
        (ElemKind::Int, _) => i64::from_le_bytes(raw) as f64,
        (ElemKind::Uint, 1) | (ElemKind::Bool, _) => f64::from(b0),
        (ElemKind::Uint, 2) => f64::from(u16::from_le_bytes([b0, b1])),
        (ElemKind::Uint, 4) => f64::from(u32::from_le_bytes([b0, b1, b2, b3])),
        (ElemKind::Uint, _) => u64::from_le_bytes(raw) as f64,
    }
}

/// IEEE 754 half precision to double.
fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f64::from(bits & 0x3ff);
    let magnitude = match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    };
    sign * magnitude
}

// ---------------------------------------------------------------- Document <-> DocumentProto

/// A docarray v1 document holds at most one of text, blob and tensor.
pub(crate) fn check_one_content(doc: &Document, path: &str) -> Result<(), ConvertError> {
    let mut present = Vec::new();
    if doc.text.is_some() {
        present.push("text");
    }
    if doc.blob.is_some() {
        present.push("blob");
    }
    if doc.tensor.is_some() {
        present.push("tensor");
    }
    if present.len() > 1 {
        return Err(ConvertError::new(
            path,
            format!(
                "a docarray v1 document holds at most one of text, blob and tensor, got {}",
                present.join(" and ")
            ),
        ));
    }
    Ok(())
}

/// The `NamedScoreProto` of a score (only its value is set).
pub(crate) fn score_proto(value: f64) -> NamedScoreProto {
    NamedScoreProto {
        value: value as f32,
        ..NamedScoreProto::default()
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

pub(crate) fn document_from_proto(
    proto: DocumentProto,
    path: &str,
) -> Result<Document, ConvertError> {
    let (text, blob, tensor) = match proto.content {
        None => (None, None, None),
        Some(document_proto::Content::Text(t)) => (Some(t), None, None),
        Some(document_proto::Content::Blob(b)) => (None, Some(Bytes::from(b)), None),
        Some(document_proto::Content::Tensor(t)) => (
            None,
            None,
            tensor_from_proto(&t, &format!("{path}.tensor"))?,
        ),
    };
    let embedding = match &proto.embedding {
        Some(e) => tensor_from_proto(e, &format!("{path}.embedding"))?,
        None => None,
    };
    let chunks = proto
        .chunks
        .into_iter()
        .enumerate()
        .map(|(i, d)| document_from_proto(d, &format!("{path}.chunks[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let matches = proto
        .matches
        .into_iter()
        .enumerate()
        .map(|(i, d)| document_from_proto(d, &format!("{path}.matches[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Document {
        id: proto.id,
        text,
        uri: non_empty(proto.uri),
        blob,
        mime_type: non_empty(proto.mime_type),
        tags: proto.tags.as_ref().map(struct_to_json).unwrap_or_default(),
        embedding,
        tensor,
        weight: (proto.weight != 0.0).then_some(proto.weight),
        modality: non_empty(proto.modality),
        scores: proto
            .scores
            .into_iter()
            .map(|(name, score)| (name, f64::from(score.value)))
            .collect(),
        chunks,
        matches,
    })
}

// ---------------------------------------------------------------- requests and responses

/// Encoded v1 `DataRequestProto.data` (`DataContentProto`, oneof `docs` = field 1, a
/// `DocumentArrayProto` whose field 1 repeats the documents) from documents already encoded as
/// such entries (`wire_v1`, one slice per event): the same bytes prost writes for the message.
pub(crate) fn encode_array<'a>(parts: impl IntoIterator<Item = &'a [u8]> + Clone) -> Vec<u8> {
    use prost::encoding::{WireType, encode_key, encode_varint};
    let len: usize = parts.clone().into_iter().map(<[u8]>::len).sum();
    let mut data = Vec::with_capacity(len + 11);
    encode_key(1, WireType::LengthDelimited, &mut data);
    encode_varint(len as u64, &mut data);
    for part in parts {
        data.extend_from_slice(part);
    }
    data
}

/// The documents of an encoded v1 `DataRequestProto.data`.
pub(crate) fn decode_data(bytes: &[u8]) -> Result<Vec<Document>, ConvertError> {
    use prost::Message as _;
    let data = DataContentProto::decode(bytes).map_err(|e| {
        ConvertError::new(
            "data",
            format!("not a docarray v1 DocumentArrayProto ({e}); is the gateway docarray v2?"),
        )
    })?;
    read_response(DataRequestProto {
        data: Some(data),
        ..DataRequestProto::default()
    })
    .map(|r| r.docs)
}

/// Decode a successful response (the executor status is checked by the caller).
pub(crate) fn read_response(response: DataRequestProto) -> Result<FlowResponse, ConvertError> {
    let request_id = response.header.map(|h| h.request_id).unwrap_or_default();
    let docs = match response.data.and_then(|d| d.documents) {
        None => Vec::new(),
        Some(data_content_proto::Documents::Docs(array)) => array
            .docs
            .into_iter()
            .enumerate()
            .map(|(i, d)| document_from_proto(d, &format!("docs[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(data_content_proto::Documents::DocsBytes(_)) => {
            return Err(ConvertError::new(
                "data.docs_bytes",
                "the response carries pickled docs_bytes instead of data.docs; flowbridge \
                 can only read docarray v1 protobuf documents",
            ));
        }
    };
    Ok(FlowResponse {
        request_id,
        docs,
        parameters: response
            .parameters
            .as_ref()
            .map(struct_to_json)
            .unwrap_or_default(),
    })
}

#[cfg(test)]
pub(super) mod tests;
