//! Conversions between flowbridge's model ([`Document`], [`Tensor`], JSON maps) and the docarray
//! v1 / jina wire types: `google.protobuf.Struct` ↔ JSON, `Document` ↔ `DocumentProto`,
//! `Tensor` ↔ `NdArrayProto`, and `FlowRequest` → `DataRequestProto` → `FlowResponse`.
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

use super::error::ConvertError;
use super::proto::docarray::{
    DenseNdArrayProto, DocumentProto, NamedScoreProto, NdArrayProto, document_proto, nd_array_proto,
};
use super::proto::jina::DataRequestProto;
#[cfg(test)]
use super::proto::jina::HeaderProto;
use super::proto::jina::data_request_proto::{DataContentProto, data_content_proto};
#[cfg(test)]
use crate::model::FlowRequest;
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

/// The message prost would write; requests are written by `wire_v1` without building it.
#[cfg(test)]
pub(crate) fn document_to_proto(doc: &Document, path: &str) -> Result<DocumentProto, ConvertError> {
    check_one_content(doc, path)?;
    let content = if let Some(text) = &doc.text {
        Some(document_proto::Content::Text(text.clone()))
    } else if let Some(blob) = &doc.blob {
        Some(document_proto::Content::Blob(blob.to_vec()))
    } else if let Some(tensor) = &doc.tensor {
        Some(document_proto::Content::Tensor(tensor_to_proto(
            tensor,
            SendDtype::F64,
            &format!("{path}.tensor"),
        )?))
    } else {
        None
    };
    let embedding = doc
        .embedding
        .as_ref()
        .map(|e| tensor_to_proto(e, SendDtype::F32, &format!("{path}.embedding")))
        .transpose()?;
    let chunks = doc
        .chunks
        .iter()
        .enumerate()
        .map(|(i, d)| document_to_proto(d, &format!("{path}.chunks[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let matches = doc
        .matches
        .iter()
        .enumerate()
        .map(|(i, d)| document_to_proto(d, &format!("{path}.matches[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DocumentProto {
        id: doc.id.clone(),
        content,
        uri: doc.uri.clone().unwrap_or_default(),
        mime_type: doc.mime_type.clone().unwrap_or_default(),
        modality: doc.modality.clone().unwrap_or_default(),
        weight: doc.weight.unwrap_or_default(),
        tags: (!doc.tags.is_empty()).then(|| json_to_struct(&doc.tags)),
        embedding,
        scores: doc
            .scores
            .iter()
            .map(|(name, value)| (name.clone(), score_proto(*value)))
            .collect(),
        chunks,
        matches,
        ..DocumentProto::default()
    })
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

#[cfg(test)]
pub(crate) fn build_request(
    request: &FlowRequest,
    request_id: &str,
) -> Result<DataRequestProto, ConvertError> {
    let docs = request
        .docs
        .iter()
        .enumerate()
        .map(|(i, d)| document_to_proto(d, &format!("docs[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(build_message(
        &request.endpoint,
        request.target_executor.as_deref(),
        &request.parameters,
        docs,
        request_id,
    ))
}

/// A DataRequest from its parts, documents already converted.
#[cfg(test)]
pub(crate) fn build_message(
    endpoint: &str,
    target_executor: Option<&str>,
    parameters: &Map<String, Value>,
    docs: Vec<DocumentProto>,
    request_id: &str,
) -> DataRequestProto {
    DataRequestProto {
        header: Some(HeaderProto {
            request_id: request_id.to_owned(),
            status: None,
            exec_endpoint: Some(endpoint.to_owned()),
            target_executor: target_executor.map(str::to_owned),
            timeout: None,
        }),
        parameters: Some(json_to_struct(parameters)),
        routes: Vec::new(),
        data: Some(DataContentProto {
            documents: Some(data_content_proto::Documents::Docs(
                super::proto::docarray::DocumentArrayProto { docs },
            )),
        }),
    }
}

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

/// [`encode_array`] of protos (tests).
#[cfg(test)]
pub(crate) fn encode_protos<'a>(docs: impl IntoIterator<Item = &'a DocumentProto>) -> Vec<u8> {
    let mut array = Vec::new();
    for doc in docs {
        prost::encoding::message::encode(1, doc, &mut array);
    }
    encode_array([&array[..]])
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
mod tests {
    use super::*;
    use prost::Message;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn struct_round_trip_keeps_json_and_restores_integers() {
        let input = obj(json!({
            "int": 3, "neg": -7, "float": 2.5, "s": "x", "b": true, "n": null,
            "list": [1, "two", [3.5]], "nested": {"deep": {"k": 0}}
        }));
        let s = json_to_struct(&input);
        // Numbers travel as doubles.
        assert_eq!(s.fields["int"].kind, Some(Kind::NumberValue(3.0)));
        let back = struct_to_json(&s);
        assert_eq!(Value::Object(back), Value::Object(input));
    }

    #[test]
    fn integral_doubles_become_integers_only_when_exact() {
        assert_eq!(number_to_json(1.0), json!(1));
        assert!(number_to_json(1.0).is_i64());
        assert_eq!(number_to_json(-4.0), json!(-4));
        assert!(number_to_json(0.5).is_f64());
        assert!(number_to_json(1e300).is_f64());
        assert!(number_to_json(2f64.powi(53)).is_i64());
        assert!(number_to_json(2f64.powi(54)).is_f64());
        assert_eq!(number_to_json(f64::NAN), Value::Null);
        assert_eq!(number_to_json(f64::INFINITY), Value::Null);
    }

    #[test]
    fn embedding_is_little_endian_f32_with_numpy_cls_name() {
        let t = Tensor {
            shape: vec![2, 2],
            values: vec![1.0, -2.0, 0.5, 3.25],
        };
        let nd = tensor_to_proto(&t, SendDtype::F32, "docs[0].embedding").unwrap();
        assert_eq!(nd.cls_name, "numpy");
        let Some(nd_array_proto::Content::Dense(dense)) = &nd.content else {
            panic!("not dense");
        };
        assert_eq!(dense.dtype, "<f4");
        assert_eq!(dense.shape, vec![2, 2]);
        let mut expected = Vec::new();
        for v in [1.0f32, -2.0, 0.5, 3.25] {
            expected.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(dense.buffer, expected);
        assert_eq!(tensor_from_proto(&nd, "x").unwrap(), Some(t));
    }

    #[test]
    fn empty_shape_means_one_dimension_and_bad_shape_is_named() {
        let t = Tensor {
            shape: vec![],
            values: vec![1.0, 2.0, 3.0],
        };
        let nd = tensor_to_proto(&t, SendDtype::F32, "p").unwrap();
        let Some(nd_array_proto::Content::Dense(dense)) = &nd.content else {
            panic!("not dense");
        };
        assert_eq!(dense.shape, vec![3]);

        let bad = Tensor {
            shape: vec![2, 2],
            values: vec![1.0, 2.0, 3.0],
        };
        let err = tensor_to_proto(&bad, SendDtype::F32, "docs[1].embedding").unwrap_err();
        assert_eq!(err.path, "docs[1].embedding");
        assert!(err.message.contains("[2, 2]"), "{err}");

        let huge = Tensor {
            shape: vec![1],
            values: vec![1e300],
        };
        let err = tensor_to_proto(&huge, SendDtype::F32, "e").unwrap_err();
        assert!(err.message.contains("float32"), "{err}");
    }

    fn dense(dtype: &str, shape: Vec<u32>, buffer: Vec<u8>) -> NdArrayProto {
        NdArrayProto {
            content: Some(nd_array_proto::Content::Dense(DenseNdArrayProto {
                buffer,
                shape,
                dtype: dtype.into(),
            })),
            cls_name: "numpy".into(),
            parameters: None,
        }
    }

    #[test]
    fn decodes_f8_i8_and_other_dtypes() {
        let f8: Vec<u8> = [0.1f64, -1e10]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let t = tensor_from_proto(&dense("<f8", vec![2], f8), "e")
            .unwrap()
            .unwrap();
        assert_eq!(t.values, vec![0.1, -1e10]);

        let i8: Vec<u8> = [-3i64, 1 << 40]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let t = tensor_from_proto(&dense("<i8", vec![1, 2], i8), "e")
            .unwrap()
            .unwrap();
        assert_eq!(t.shape, vec![1, 2]);
        assert_eq!(t.values, vec![-3.0, (1u64 << 40) as f64]);

        let i4: Vec<u8> = [7i32, -8].iter().flat_map(|v| v.to_le_bytes()).collect();
        let t = tensor_from_proto(&dense("<i4", vec![2], i4), "e")
            .unwrap()
            .unwrap();
        assert_eq!(t.values, vec![7.0, -8.0]);

        let t = tensor_from_proto(&dense("|u1", vec![3], vec![0, 200, 255]), "e")
            .unwrap()
            .unwrap();
        assert_eq!(t.values, vec![0.0, 200.0, 255.0]);

        let be: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let t = tensor_from_proto(&dense(">f4", vec![2], be), "e")
            .unwrap()
            .unwrap();
        assert_eq!(t.values, vec![1.5, -2.0]);

        // 1.0 and -2.5 in half precision.
        let f2 = [0x3c00u16, 0xc100]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let t = tensor_from_proto(&dense("<f2", vec![2], f2), "e")
            .unwrap()
            .unwrap();
        assert_eq!(t.values, vec![1.0, -2.5]);

        let t = tensor_from_proto(&dense("|b1", vec![2], vec![1, 0]), "e")
            .unwrap()
            .unwrap();
        assert_eq!(t.values, vec![1.0, 0.0]);
    }

    #[test]
    fn rejects_bad_dtype_size_and_sparse() {
        let err =
            tensor_from_proto(&dense("<c16", vec![1], vec![0; 16]), "docs[0].tensor").unwrap_err();
        assert_eq!(err.path, "docs[0].tensor");
        assert!(err.message.contains("\"<c16\""), "{err}");

        let err = tensor_from_proto(&dense("<f4", vec![3], vec![0; 8]), "e").unwrap_err();
        assert!(err.message.contains("8 bytes"), "{err}");

        let sparse = NdArrayProto {
            content: Some(nd_array_proto::Content::Sparse(Default::default())),
            cls_name: "scipy".into(),
            parameters: None,
        };
        let err = tensor_from_proto(&sparse, "e").unwrap_err();
        assert!(err.message.contains("sparse"), "{err}");

        assert_eq!(
            tensor_from_proto(&NdArrayProto::default(), "e").unwrap(),
            None
        );
    }

    fn sample_doc() -> Document {
        let mut scores = BTreeMap::new();
        scores.insert("cosine".to_owned(), 0.5);
        Document {
            id: "d1".into(),
            text: Some("hello".into()),
            uri: Some("https://x/y".into()),
            mime_type: Some("text/plain".into()),
            tags: obj(json!({"lang": "en", "n": 2, "f": 1.5, "nested": {"a": [true, null]}})),
            embedding: Some(Tensor {
                shape: vec![3],
                values: vec![0.25, 0.5, -1.0],
            }),
            weight: Some(2.0),
            modality: Some("text".into()),
            scores,
            chunks: vec![Document {
                id: "c1".into(),
                blob: Some(Bytes::from_static(b"\x00\x01")),
                mime_type: Some("application/octet-stream".into()),
                ..Document::default()
            }],
            matches: vec![Document {
                id: "m1".into(),
                tensor: Some(Tensor {
                    shape: vec![1, 2],
                    values: vec![0.1, 0.2],
                }),
                ..Document::default()
            }],
            ..Document::default()
        }
    }

    #[test]
    fn document_round_trips_through_wire_bytes() {
        let doc = sample_doc();
        let proto = document_to_proto(&doc, "docs[0]").unwrap();
        assert_eq!(
            proto.content,
            Some(document_proto::Content::Text("hello".into()))
        );
        let bytes = proto.encode_to_vec();
        let decoded = DocumentProto::decode(bytes.as_slice()).unwrap();
        let back = document_from_proto(decoded, "docs[0]").unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn document_with_text_and_blob_is_rejected_with_its_path() {
        let mut doc = sample_doc();
        doc.chunks[0].text = Some("also text".into());
        let err = document_to_proto(&doc, "docs[4]").unwrap_err();
        assert_eq!(err.path, "docs[4].chunks[0]");
        assert!(err.message.contains("text and blob"), "{err}");
    }

    #[test]
    fn tags_number_comes_back_as_integer_from_a_double() {
        let proto = DocumentProto {
            id: "x".into(),
            tags: Some(json_to_struct(&obj(json!({"count": 1, "ratio": 0.5})))),
            ..DocumentProto::default()
        };
        let doc = document_from_proto(proto, "docs[0]").unwrap();
        assert_eq!(Value::Object(doc.tags), json!({"count": 1, "ratio": 0.5}));
        assert_eq!(doc.weight, None);
        assert_eq!(doc.uri, None);
    }

    #[test]
    fn request_carries_header_parameters_and_docs() {
        let req = FlowRequest {
            endpoint: "/index".into(),
            target_executor: Some("indexer".into()),
            parameters: obj(json!({"tenant": "a", "k": 5})),
            docs: vec![sample_doc()],
        };
        let proto = build_request(&req, "abc123").unwrap();
        let header = proto.header.as_ref().unwrap();
        assert_eq!(header.request_id, "abc123");
        assert_eq!(header.exec_endpoint.as_deref(), Some("/index"));
        assert_eq!(header.target_executor.as_deref(), Some("indexer"));
        assert_eq!(
            Value::Object(struct_to_json(proto.parameters.as_ref().unwrap())),
            json!({"tenant": "a", "k": 5})
        );
        let resp = read_response(proto).unwrap();
        assert_eq!(resp.request_id, "abc123");
        assert_eq!(resp.docs, req.docs);
    }

    #[test]
    fn request_without_target_executor_leaves_the_field_absent() {
        let req = FlowRequest {
            endpoint: "/".into(),
            target_executor: None,
            parameters: Map::new(),
            docs: vec![],
        };
        let proto = build_request(&req, "r").unwrap();
        assert_eq!(proto.header.unwrap().target_executor, None);
    }

    #[test]
    fn encode_protos_writes_the_bytes_prost_writes_for_the_owned_message() {
        let docs: Vec<DocumentProto> = ["a", "bé", ""]
            .iter()
            .map(|t| {
                let doc = Document {
                    id: format!("id-{t}"),
                    text: (!t.is_empty()).then(|| (*t).to_owned()),
                    tags: obj(json!({"n": 1, "l": [true, null]})),
                    ..Document::default()
                };
                document_to_proto(&doc, "d").unwrap()
            })
            .collect();
        for n in 0..=docs.len() {
            let owned = DataContentProto {
                documents: Some(data_content_proto::Documents::Docs(
                    super::super::proto::docarray::DocumentArrayProto {
                        docs: docs[..n].to_vec(),
                    },
                )),
            };
            assert_eq!(encode_protos(&docs[..n]), owned.encode_to_vec(), "{n} docs");
        }
    }

    #[test]
    fn pickled_docs_bytes_response_is_an_error() {
        let proto = DataRequestProto {
            data: Some(DataContentProto {
                documents: Some(data_content_proto::Documents::DocsBytes(vec![1, 2])),
            }),
            ..DataRequestProto::default()
        };
        let err = read_response(proto).unwrap_err();
        assert_eq!(err.path, "data.docs_bytes");
    }

    #[test]
    fn bad_response_embedding_names_nested_path() {
        let proto = DocumentProto {
            id: "x".into(),
            matches: vec![DocumentProto {
                embedding: Some(dense("<f4", vec![2], vec![0; 4])),
                ..DocumentProto::default()
            }],
            ..DocumentProto::default()
        };
        let err = document_from_proto(proto, "docs[3]").unwrap_err();
        assert_eq!(err.path, "docs[3].matches[0].embedding");
    }
}
