//! Tests of the docarray v2 conversions: the `LegacyDocumentJina` encoding, round trips through
//! wire bytes, refusals and reply paths.

use super::*;
use serde_json::json;
use std::collections::BTreeMap;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn sample() -> Document {
    let mut scores = BTreeMap::new();
    scores.insert("cosine".to_owned(), 0.5);
    Document {
        id: "d1".into(),
        text: Some("hello".into()),
        uri: Some("https://x/y".into()),
        blob: Some(Bytes::from_static(b"\x00\xff")),
        tags: obj(json!({"a": 1, "big": 5_000_000_000i64, "f": 1.5, "n": null,
                         "l": [1, "x", null], "d": {"b": true}})),
        embedding: Some(Tensor {
            shape: vec![2],
            values: vec![0.25, 0.5],
        }),
        tensor: Some(Tensor {
            shape: vec![1, 2],
            values: vec![0.0, -1.0],
        }),
        scores,
        ..Document::default()
    }
}

#[test]
fn nested_documents_are_refused_with_their_path() {
    let mut doc = sample();
    doc.matches = vec![Document {
        id: "m1".into(),
        ..Document::default()
    }];
    let err = document_to_v2(&doc, "docs[3]").unwrap_err();
    assert!(err.to_string().contains("docs[3].matches"), "{err}");
    assert!(err.to_string().contains("docarray v2"), "{err}");
}

#[test]
fn encodes_like_docarray_legacy_document() {
    let proto = document_to_v2(&sample(), "docs[0]").unwrap();
    let id = &proto.data["id"];
    assert_eq!(id.content, Some(node_proto::Content::Text("d1".into())));
    assert_eq!(
        id.docarray_type,
        Some(node_proto::DocarrayType::Type("id".into()))
    );
    assert_eq!(
        proto.data["url"].content,
        Some(node_proto::Content::Text("https://x/y".into()))
    );
    assert_eq!(proto.data["url"].docarray_type, None);
    let Some(node_proto::Content::Ndarray(e)) = &proto.data["embedding"].content else {
        panic!("embedding is not an ndarray");
    };
    assert_eq!(e.dense.as_ref().unwrap().dtype, "<f4");
    assert_eq!(
        proto.data["embedding"].docarray_type,
        Some(node_proto::DocarrayType::Type("ndarray_embedding".into()))
    );
    let Some(node_proto::Content::Dict(tags)) = &proto.data["tags"].content else {
        panic!("tags is not a dict");
    };
    assert_eq!(
        tags.data["a"].content,
        Some(node_proto::Content::Integer(1))
    );
    assert_eq!(
        tags.data["big"].content,
        Some(node_proto::Content::Float(5e9))
    );
    assert_eq!(tags.data["n"], NodeProto::default());
    assert!(!proto.data.contains_key("chunks"));
    assert!(!proto.data.contains_key("mime_type"));
}

#[test]
fn round_trips_through_wire_bytes() {
    let doc = sample();
    let bytes = encode_data(std::slice::from_ref(&doc)).unwrap();
    let back = decode_data(&bytes).unwrap();
    assert_eq!(back, vec![doc]);
}

#[test]
fn v1_bytes_are_not_mistaken_for_v2() {
    use prost::Message as _;
    let v1 = crate::flow::proto::jina::data_request_proto::DataContentProto {
        documents: Some(
            crate::flow::proto::jina::data_request_proto::data_content_proto::Documents::Docs(
                crate::flow::proto::docarray::DocumentArrayProto {
                    docs: vec![
                        super::super::v1::tests::document_to_proto(
                            &Document {
                                id: "d1".into(),
                                text: Some("hello".into()),
                                ..Document::default()
                            },
                            "d",
                        )
                        .unwrap(),
                    ],
                },
            ),
        ),
    };
    let err = decode_data(&v1.encode_to_vec()).unwrap_err();
    assert!(err.message.contains("docarray v1"), "{err}");
}

#[test]
fn reply_scores_accept_numbers_and_named_scores_and_skip_unknown_fields() {
    let mut data = std::collections::HashMap::new();
    data.insert(
        "id".to_owned(),
        typed(node_proto::Content::Text("x".into()), "id"),
    );
    data.insert(
        "scores".to_owned(),
        json_to_node(&json!({"a": 0.5, "b": {"value": 2}})),
    );
    data.insert(
        "bytes_".to_owned(),
        node(node_proto::Content::Blob(vec![1])),
    );
    let doc = document_from_v2(DocProto { data }, "docs[0]").unwrap();
    assert_eq!(doc.id, "x");
    assert_eq!(doc.scores["a"], 0.5);
    assert_eq!(doc.scores["b"], 2.0);
    assert_eq!(doc.blob, None);
}

#[test]
fn bad_reply_fields_name_their_path() {
    let mut data = std::collections::HashMap::new();
    data.insert("text".to_owned(), node(node_proto::Content::Integer(3)));
    let err = document_from_v2(DocProto { data }, "docs[2]").unwrap_err();
    assert_eq!(err.path, "docs[2].text");
}
