//! Tests of the docarray v1 conversions, and the reference builders other tests compare against:
//! [`document_to_proto`] (the `DocumentProto` message prost writes, which `wire_v1` must match
//! byte for byte), [`encode_protos`] and the whole DataRequest ([`build_request`]). Only tests use
//! them; requests are written by `wire_v1` without building protos.

use super::*;
use prost::Message;
use serde_json::json;
use std::collections::BTreeMap;

use crate::flow::proto::jina::HeaderProto;
use crate::model::FlowRequest;

/// The message prost would write; requests are written by `wire_v1` without building it.
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

fn build_request(
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
fn build_message(
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
                crate::flow::proto::docarray::DocumentArrayProto { docs },
            )),
        }),
    }
}

/// [`encode_array`] of protos (tests).
pub(crate) fn encode_protos<'a>(docs: impl IntoIterator<Item = &'a DocumentProto>) -> Vec<u8> {
    let mut array = Vec::new();
    for doc in docs {
        prost::encoding::message::encode(1, doc, &mut array);
    }
    encode_array([&array[..]])
}

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
                crate::flow::proto::docarray::DocumentArrayProto {
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
