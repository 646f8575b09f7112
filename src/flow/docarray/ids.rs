//! Reading only the document ids of a Flow's answer, for batches where no event needs the
//! documents back (no reply to build: the common `202 Accepted` case). The ids are what the
//! dispatcher needs to hand each event its outcome (`dispatch::batch::split`); decoding every
//! document (tags as protobuf `Struct`s into JSON, tensors into numbers) only to drop it cost as
//! much as encoding the request.
//!
//! These messages declare only the fields on the path to the id, with the field numbers of
//! `proto/docarray.proto` (v1: `DataContentProto.docs` 1 → `DocumentArrayProto.docs` 1 →
//! `DocumentProto.id` 1) and `proto/v2/docarray.proto` (v2: … → `DocProto.data` 1, the node under
//! key `"id"` → `NodeProto.text` 1); prost skips every other field without building it. Tests
//! check them against the full messages. Pure: no I/O.

use std::collections::HashMap;

use super::ConvertError;
use crate::flow::format::DocFormat;

#[derive(Clone, PartialEq, prost::Message)]
struct DataIds {
    #[prost(message, optional, tag = "1")]
    docs: Option<ListIds>,
    /// `docs_bytes`: pickled documents; only its presence matters.
    #[prost(bytes = "vec", optional, tag = "2")]
    docs_bytes: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ListIds {
    #[prost(message, repeated, tag = "1")]
    docs: Vec<DocIdV1>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct DocIdV1 {
    #[prost(string, tag = "1")]
    id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ListIdsV2 {
    #[prost(message, repeated, tag = "1")]
    docs: Vec<DocIdV2>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct DocIdV2 {
    #[prost(map = "string, message", tag = "1")]
    data: HashMap<String, TextNode>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TextNode {
    #[prost(string, optional, tag = "1")]
    text: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct DataIdsV2 {
    #[prost(message, optional, tag = "1")]
    docs: Option<ListIdsV2>,
    #[prost(bytes = "vec", optional, tag = "2")]
    docs_bytes: Option<Vec<u8>>,
}

/// The ids of the documents in a `DataContentProto` (`bytes`), in order.
pub(crate) fn decode_ids(format: DocFormat, bytes: &[u8]) -> Result<Vec<String>, ConvertError> {
    use prost::Message as _;
    let not = |e: prost::DecodeError| {
        ConvertError::new(
            "data",
            format!("not a docarray {} document list ({e})", format.as_str()),
        )
    };
    let bytes_refused = || {
        ConvertError::new(
            "data.docs_bytes",
            "the response carries serialized docs_bytes instead of data.docs; flowbridge can \
             only read protobuf documents",
        )
    };
    match format {
        DocFormat::V1 => {
            let data = DataIds::decode(bytes).map_err(not)?;
            if data.docs.is_none() && data.docs_bytes.is_some() {
                return Err(bytes_refused());
            }
            Ok(data
                .docs
                .map(|l| l.docs.into_iter().map(|d| d.id).collect())
                .unwrap_or_default())
        }
        DocFormat::V2 => {
            let data = DataIdsV2::decode(bytes).map_err(not)?;
            if data.docs.is_none() && data.docs_bytes.is_some() {
                return Err(bytes_refused());
            }
            Ok(data
                .docs
                .map(|l| {
                    l.docs
                        .into_iter()
                        .map(|mut d| d.data.remove("id").and_then(|n| n.text).unwrap_or_default())
                        .collect()
                })
                .unwrap_or_default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Document;
    use serde_json::json;

    fn docs() -> Vec<Document> {
        let mut tagged = Document {
            id: "a".into(),
            text: Some("hello".into()),
            ..Document::default()
        };
        tagged
            .tags
            .insert("deep".into(), json!({"k": [1, 2, {"x": "y"}]}));
        vec![
            tagged,
            Document {
                id: "b/1".into(),
                blob: Some(bytes::Bytes::from_static(b"\x00\x01")),
                ..Document::default()
            },
            Document::default(),
        ]
    }

    #[test]
    fn ids_match_the_full_decoding_in_both_formats() {
        let docs = docs();
        let protos: Vec<_> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| super::super::v1::tests::document_to_proto(d, &format!("docs[{i}]")))
            .collect::<Result<_, _>>()
            .expect("v1 protos");
        let v1 = super::super::v1::tests::encode_protos(&protos);
        let v2 = super::super::v2::encode_data(&docs).expect("v2");
        for (format, bytes) in [(DocFormat::V1, v1), (DocFormat::V2, v2)] {
            let full: Vec<String> = match format {
                DocFormat::V1 => super::super::v1::decode_data(&bytes),
                DocFormat::V2 => super::super::v2::decode_data(&bytes),
            }
            .expect("full decode")
            .into_iter()
            .map(|d| d.id)
            .collect();
            assert_eq!(decode_ids(format, &bytes).expect("ids"), full, "{format:?}");
            assert_eq!(full[..2], ["a", "b/1"]);
        }
        assert_eq!(
            decode_ids(DocFormat::V1, b"").expect("empty"),
            Vec::<String>::new()
        );
        assert!(decode_ids(DocFormat::V1, b"\xff\xff").is_err());
    }
}
