//! Tests of `wire_v1`: the bytes written straight from a [`Document`] are those prost writes for
//! the reference message (`v1::tests::document_to_proto`), refusals included.

use super::*;
use crate::model::Tensor;
use bytes::Bytes;
use serde_json::json;

use crate::flow::docarray::v1::tests::document_to_proto;
use crate::flow::proto::docarray::DocumentProto;

/// What prost would write for the message `document_to_proto` builds (tests).
fn prost_bytes(doc: &Document) -> Result<Vec<u8>, ConvertError> {
    use prost::Message as _;
    Ok(document_to_proto(doc, "d")?.encode_to_vec())
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn direct(doc: &Document) -> Result<Vec<u8>, ConvertError> {
    let mut out = Vec::new();
    encode_document(doc, "d", &mut out)?;
    Ok(out)
}

fn tags_of_every_kind() -> Map<String, Value> {
    obj(json!({
        "": "empty key",
        "n": 1, "neg": -2.5, "zero": 0, "big": 9007199254740993u64, "f": 1e300,
        "s": "", "u": "héllo ✓", "t": true, "fa": false, "null": null,
        "l": [1, "two", null, [], {}, [true, {"x": [0.5]}]],
        "o": {"a": {"b": {"c": "deep"}}, "": null},
        "long": "x".repeat(300),
        "cloudevent": {"id": "1", "source": "/s", "type": "t", "specversion": "1.0",
                       "extensions": {"traceparent": "00-ab-cd-01", "n": 3}},
    }))
}

#[test]
fn documents_are_the_bytes_prost_writes() {
    let tensor = Tensor {
        shape: vec![2, 2],
        values: vec![1.0, -2.0, 3.5, 0.0],
    };
    let chunk = Document {
        id: "c".into(),
        text: Some("chunk".into()),
        tags: obj(json!({"k": [1, 2]})),
        ..Document::default()
    };
    let docs = [
        Document::default(),
        Document {
            id: "plain".into(),
            text: Some(String::new()),
            ..Document::default()
        },
        Document {
            id: "every field".into(),
            text: Some("hello".into()),
            uri: Some("https://x/y".into()),
            mime_type: Some("text/plain".into()),
            modality: Some("text".into()),
            weight: Some(0.25),
            tags: tags_of_every_kind(),
            embedding: Some(tensor.clone()),
            scores: [("cosine".to_string(), 0.5), ("zero".to_string(), 0.0)]
                .into_iter()
                .collect(),
            chunks: vec![chunk.clone(), Document::default()],
            matches: vec![Document {
                chunks: vec![chunk],
                ..Document::default()
            }],
            ..Document::default()
        },
        Document {
            id: "blob".into(),
            blob: Some(Bytes::from_static(b"\x89PNG\xff")),
            mime_type: Some(String::new()),
            weight: Some(0.0),
            ..Document::default()
        },
        Document {
            id: "empty blob".into(),
            blob: Some(Bytes::new()),
            ..Document::default()
        },
        Document {
            id: "tensor".into(),
            tensor: Some(tensor),
            tags: obj(json!({"only": null})),
            ..Document::default()
        },
    ];
    for doc in &docs {
        let (ours, theirs) = (direct(doc).unwrap(), prost_bytes(doc).unwrap());
        if doc.scores.len() > 1 {
            // `DocumentProto.scores` is a HashMap: prost writes its entries in iteration order,
            // which changes from run to run, while ours are in key order. Same entries, same
            // length; the order of map entries means nothing on the wire.
            use prost::Message as _;
            assert_eq!(ours.len(), theirs.len(), "{doc:?}");
            assert_eq!(
                DocumentProto::decode(ours.as_slice()).unwrap(),
                DocumentProto::decode(theirs.as_slice()).unwrap(),
                "{doc:?}"
            );
        } else {
            assert_eq!(ours, theirs, "{doc:?}");
        }
    }
}

#[test]
fn a_document_field_is_its_key_length_and_body() {
    let doc = Document {
        id: "x".repeat(200),
        tags: tags_of_every_kind(),
        ..Document::default()
    };
    let body = prost_bytes(&doc).unwrap();
    let mut out = vec![7];
    let mut scratch = vec![1, 2, 3];
    encode_document_field(1, &doc, "d", &mut scratch, &mut out).unwrap();
    let mut expected = vec![7];
    prost::encoding::message::encode(1, &document_to_proto(&doc, "d").unwrap(), &mut expected);
    assert_eq!(out, expected);
    assert_eq!(&out[out.len() - body.len()..], &body[..]);
}

#[test]
fn refusals_are_those_of_the_proto_conversion() {
    let two_contents = Document {
        text: Some("t".into()),
        blob: Some(Bytes::from_static(b"b")),
        ..Document::default()
    };
    let bad_tensor = Document {
        chunks: vec![Document {
            tensor: Some(Tensor {
                shape: vec![3],
                values: vec![1.0],
            }),
            ..Document::default()
        }],
        ..Document::default()
    };
    for doc in [two_contents, bad_tensor] {
        let ours = direct(&doc).unwrap_err().to_string();
        let theirs = document_to_proto(&doc, "d").unwrap_err().to_string();
        assert_eq!(ours, theirs);
    }
}
