//! Tests of the mapping: the default document, CEL `docs` and their shape errors, ids and
//! event context, parameters/endpoint/target executor, compile errors and reply data.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{Value, json};

use super::reply_data::tensor_to_json;
use super::*;
use crate::model::{CloudEvent, Data, Document, ExtValue, FlowRequest, Tensor};

fn event(data: Option<Data>) -> CloudEvent {
    CloudEvent {
        data,
        ..CloudEvent::new("e1", "/shop", "order.created")
    }
}

fn json_event(data: Value) -> CloudEvent {
    let mut ev = event(Some(Data::Json(data)));
    ev.datacontenttype = Some("application/json".into());
    ev
}

fn docs_mapping(docs: &str) -> Mapping {
    Mapping::compile(&MappingSpec {
        docs: Some(docs.into()),
        ..MappingSpec::default()
    })
    .unwrap()
}

fn apply_docs(docs: &str, ev: &CloudEvent) -> Result<Vec<Document>, MappingError> {
    docs_mapping(docs).apply(ev).map(|r| r.docs)
}

fn default_request(ev: &CloudEvent) -> FlowRequest {
    Mapping::compile(&MappingSpec::default())
        .unwrap()
        .apply(ev)
        .unwrap()
}

/// Tags without the `cloudevent` context, to compare the rest.
fn user_tags(doc: &Document) -> Value {
    let mut tags = doc.tags.clone();
    tags.remove("cloudevent");
    Value::Object(tags)
}

#[test]
fn default_mapping_json_object() {
    let ev = json_event(json!({"text": "hello", "lang": "en"}));
    let req = default_request(&ev);
    assert_eq!(req.endpoint, "/");
    assert_eq!(req.target_executor, None);
    assert!(req.parameters.is_empty());
    assert_eq!(req.docs.len(), 1);
    let doc = &req.docs[0];
    assert_eq!(doc.id, "e1");
    assert_eq!(doc.text.as_deref(), Some("hello"));
    assert_eq!(user_tags(doc), json!({"text": "hello", "lang": "en"}));
    assert_eq!(
        doc.tags["cloudevent"],
        json!({"id": "e1", "source": "/shop", "type": "order.created",
               "specversion": "1.0", "datacontenttype": "application/json"})
    );
    // a non-string `text` field stays a tag only
    let req = default_request(&json_event(json!({"text": 5})));
    assert_eq!(req.docs[0].text, None);
    assert_eq!(user_tags(&req.docs[0]), json!({"text": 5}));
}

#[test]
fn default_mapping_json_string_number_and_array() {
    let req = default_request(&json_event(json!("just text")));
    assert_eq!(req.docs[0].text.as_deref(), Some("just text"));
    assert_eq!(user_tags(&req.docs[0]), json!({}));
    let req = default_request(&json_event(json!(42)));
    assert_eq!(req.docs[0].text, None);
    assert_eq!(user_tags(&req.docs[0]), json!({"data": 42}));
    let req = default_request(&json_event(json!([1, "a"])));
    assert_eq!(user_tags(&req.docs[0]), json!({"data": [1, "a"]}));
    let req = default_request(&json_event(Value::Null));
    assert_eq!(user_tags(&req.docs[0]), json!({"data": null}));
}

#[test]
fn default_mapping_text_binary_and_no_data() {
    let mut ev = event(Some(Data::Text("plain".into())));
    ev.datacontenttype = Some("text/plain".into());
    let doc = &default_request(&ev).docs[0];
    assert_eq!(doc.text.as_deref(), Some("plain"));
    assert_eq!(doc.blob, None);

    let mut ev = event(Some(Data::Binary(Bytes::from_static(b"\x89PNG"))));
    ev.datacontenttype = Some("image/png".into());
    let doc = &default_request(&ev).docs[0];
    assert_eq!(doc.blob.as_deref(), Some(&b"\x89PNG"[..]));
    assert_eq!(doc.mime_type.as_deref(), Some("image/png"));
    assert_eq!(doc.text, None);

    let ev = event(Some(Data::Binary(Bytes::from_static(b"\x00"))));
    let doc = &default_request(&ev).docs[0];
    assert_eq!(doc.mime_type.as_deref(), Some("application/octet-stream"));

    let mut ev = event(None);
    ev.subject = Some("s1".into());
    ev.time = Some("2024-05-01T10:00:00Z".into());
    ev.extensions
        .insert("partition".into(), ExtValue::Integer(2));
    let doc = &default_request(&ev).docs[0];
    assert_eq!(doc.id, "e1");
    assert_eq!((doc.text.as_ref(), doc.blob.as_ref()), (None, None));
    assert_eq!(
        Value::Object(doc.tags.clone()),
        json!({"cloudevent": {"id": "e1", "source": "/shop", "type": "order.created",
            "specversion": "1.0", "subject": "s1", "time": "2024-05-01T10:00:00Z",
            "extensions": {"partition": 2}}})
    );
}

#[test]
fn cel_docs_list_with_tags_and_embeddings() {
    let ev = json_event(json!({"items": [
        {"title": "a", "lang": "en", "vec": [1, 2.5, 3]},
        {"title": "b", "lang": "de", "vec": [[1, 2], [3, 4]]}
    ]}));
    let docs = apply_docs(
        "event.data.items.map(i, {'text': i.title, 'tags': {'lang': i.lang}, 'embedding': i.vec})",
        &ev,
    )
    .unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].id, "e1/0");
    assert_eq!(docs[1].id, "e1/1");
    assert_eq!(docs[0].text.as_deref(), Some("a"));
    assert_eq!(user_tags(&docs[1]), json!({"lang": "de"}));
    assert_eq!(docs[1].tags["cloudevent"]["id"], json!("e1"));
    assert_eq!(
        docs[0].embedding,
        Some(Tensor {
            shape: vec![3],
            values: vec![1.0, 2.5, 3.0]
        })
    );
    assert_eq!(
        docs[1].embedding,
        Some(Tensor {
            shape: vec![2, 2],
            values: vec![1.0, 2.0, 3.0, 4.0]
        })
    );
}

#[test]
fn embedding_errors() {
    let ev = event(None);
    let err = apply_docs("{'embedding': [[1, 2], [3]]}", &ev).unwrap_err();
    assert_eq!(err.field, "docs.embedding[1]");
    assert!(err.message.contains("ragged"), "{err}");
    let err = apply_docs("[{'embedding': [1, 'x']}]", &ev).unwrap_err();
    assert_eq!(
        err.to_string(),
        "docs[0].embedding[1]: expected a number, got string"
    );
    let err = apply_docs("{'embedding': [1, [2]]}", &ev).unwrap_err();
    assert!(err.message.contains("ragged"), "{err}");
    let err = apply_docs("{'embedding': 'x'}", &ev).unwrap_err();
    assert_eq!(err.field, "docs.embedding");
}

#[test]
fn single_map_gets_event_id_and_explicit_ids_are_kept() {
    let ev = event(None);
    let docs = apply_docs("{'text': 'x'}", &ev).unwrap();
    assert_eq!(docs[0].id, "e1");
    let docs = apply_docs("[{'text': 'only'}]", &ev).unwrap();
    assert_eq!(docs[0].id, "e1");
    let docs = apply_docs("[{'id': 'a'}, {'text': 't'}, {'id': 'b'}]", &ev).unwrap();
    let ids: Vec<_> = docs.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["a", "e1/1", "b"]);
}

#[test]
fn duplicate_and_bad_ids_are_errors() {
    let ev = event(None);
    let err = apply_docs("[{'id': 'a'}, {'id': 'b'}, {'id': 'a'}]", &ev).unwrap_err();
    assert_eq!(err.field, "docs[2].id");
    assert!(err.message.contains("duplicate document id \"a\""), "{err}");
    assert!(err.message.contains("docs[0]"), "{err}");
    // a generated id colliding with an explicit one
    let err = apply_docs("[{'id': 'e1/1'}, {}]", &ev).unwrap_err();
    assert_eq!(err.field, "docs[1].id");
    let err = apply_docs("[{'id': ''}]", &ev).unwrap_err();
    assert_eq!(err.to_string(), "docs[0].id: must not be empty");
    let err = apply_docs("[{'id': 7}]", &ev).unwrap_err();
    assert_eq!(
        err.to_string(),
        "docs[0].id: expected a non-empty string, got int"
    );
}

#[test]
fn unknown_key_lists_allowed_keys() {
    let ev = event(None);
    let err = apply_docs("[{'text': 'a'}, {'text': 'b', 'embeding': [1]}]", &ev).unwrap_err();
    assert_eq!(
        err.to_string(),
        "docs[1].embeding: unknown document field; allowed: id, text, uri, blob, \
         mime_type, tags, embedding, weight, modality, chunks, matches"
    );
    let err = apply_docs("{'text': 'a', 'zz': 1, 'aa': 2}", &ev).unwrap_err();
    assert_eq!(
        err.field, "docs.aa",
        "the first unknown key in sorted order"
    );
}

#[test]
fn wrong_types_name_field_and_expected_type() {
    let ev = event(None);
    let err = apply_docs("{'text': 1}", &ev).unwrap_err();
    assert_eq!(err.to_string(), "docs.text: expected a string, got int");
    let err = apply_docs("{'tags': [1]}", &ev).unwrap_err();
    assert_eq!(err.to_string(), "docs.tags: expected a map, got list");
    let err = apply_docs("{'weight': 'heavy'}", &ev).unwrap_err();
    assert_eq!(
        err.to_string(),
        "docs.weight: expected a number, got string"
    );
    let err = apply_docs("'text'", &ev).unwrap_err();
    assert_eq!(
        err.to_string(),
        "docs: expected a document map or a list of document maps, got string"
    );
    let err = apply_docs("[1]", &ev).unwrap_err();
    assert_eq!(err.to_string(), "docs[0]: expected a document map, got int");
    let err = apply_docs("{'chunks': {'text': 'x'}}", &ev).unwrap_err();
    assert_eq!(err.field, "docs.chunks");
}

#[test]
fn blob_from_bytes_and_base64_string() {
    let ev = event(Some(Data::Binary(Bytes::from_static(b"\x01\x02"))));
    let docs = apply_docs("{'blob': event.data, 'mime_type': 'image/png'}", &ev).unwrap();
    assert_eq!(docs[0].blob.as_deref(), Some(&b"\x01\x02"[..]));
    assert_eq!(docs[0].mime_type.as_deref(), Some("image/png"));
    let docs = apply_docs("[{'blob': 'aGk='}, {'blob': 'aGk'}]", &ev).unwrap();
    assert_eq!(docs[0].blob.as_deref(), Some(&b"hi"[..]));
    assert_eq!(
        docs[1].blob.as_deref(),
        Some(&b"hi"[..]),
        "unpadded accepted"
    );
    let err = apply_docs("{'blob': 'not base64!'}", &ev).unwrap_err();
    assert_eq!(err.field, "docs.blob");
    assert!(err.message.contains("not valid base64"), "{err}");
}

#[test]
fn chunks_and_matches_are_nested_documents() {
    let ev = event(None);
    let docs = apply_docs(
        "{'id': 'p', 'text': 'parent', 'weight': 0.5, 'modality': 'text', 'uri': 'u://x', \
          'chunks': [{'text': 'c0'}, {'id': 'c1', 'chunks': [{'text': 'cc'}]}], \
          'matches': [{'id': 'm', 'tags': {'k': 1}, 'embedding': [0.5]}]}",
        &ev,
    )
    .unwrap();
    let doc = &docs[0];
    assert_eq!(doc.weight, Some(0.5));
    assert_eq!(doc.modality.as_deref(), Some("text"));
    assert_eq!(doc.uri.as_deref(), Some("u://x"));
    assert_eq!(doc.chunks.len(), 2);
    assert_eq!(doc.chunks[0].id, "p/chunks/0");
    assert_eq!(doc.chunks[0].text.as_deref(), Some("c0"));
    assert_eq!(doc.chunks[1].id, "c1");
    assert_eq!(doc.chunks[1].chunks[0].id, "c1/chunks/0");
    assert_eq!(doc.matches[0].id, "m");
    assert_eq!(Value::Object(doc.matches[0].tags.clone()), json!({"k": 1}));
    // event context only on top-level documents
    assert!(doc.tags.contains_key("cloudevent"));
    assert!(!doc.chunks[0].tags.contains_key("cloudevent"));
    // nested documents follow the same rules
    let err = apply_docs("{'matches': [{'txt': 'x'}]}", &ev).unwrap_err();
    assert_eq!(err.field, "docs.matches[0].txt");
}

#[test]
fn user_cloudevent_tag_is_kept() {
    let ev = event(None);
    let docs = apply_docs("{'tags': {'cloudevent': 'mine'}}", &ev).unwrap();
    assert_eq!(docs[0].tags["cloudevent"], json!("mine"));
}

#[test]
fn null_fields_count_as_absent() {
    let ev = event(None);
    let docs = apply_docs("{'id': null, 'text': null, 'embedding': null}", &ev).unwrap();
    assert_eq!(docs[0].id, "e1");
    assert_eq!(docs[0].text, None);
    assert_eq!(docs[0].embedding, None);
}

#[test]
fn parameters_endpoint_and_target_executor() {
    let mut ev = json_event(json!({"kind": "search"}));
    ev.subject = Some("exec-a".into());
    let mapping = Mapping::compile(&MappingSpec {
        endpoint: Some(Expr::Cel("'/' + event.data.kind".into())),
        target_executor: Some(Expr::Cel(
            "has(event.subject) ? event.subject : null".into(),
        )),
        parameters: Some("{'tenant': event.source, 'limit': 3, 'nested': {'x': [true]}}".into()),
        docs: None,
    })
    .unwrap();
    let req = mapping.apply(&ev).unwrap();
    assert_eq!(req.endpoint, "/search");
    assert_eq!(req.target_executor.as_deref(), Some("exec-a"));
    assert_eq!(
        Value::Object(req.parameters),
        json!({"tenant": "/shop", "limit": 3, "nested": {"x": [true]}})
    );
    ev.subject = None;
    assert_eq!(mapping.apply(&ev).unwrap().target_executor, None);

    let literal = Mapping::compile(&MappingSpec {
        endpoint: Some(Expr::Literal("/index".into())),
        target_executor: Some(Expr::Literal("indexer".into())),
        ..MappingSpec::default()
    })
    .unwrap();
    let req = literal.apply(&ev).unwrap();
    assert_eq!(
        (req.endpoint.as_str(), req.target_executor.as_deref()),
        ("/index", Some("indexer"))
    );
}

#[test]
fn runtime_type_errors_name_the_field() {
    let ev = json_event(json!({"n": 1}));
    let m = Mapping::compile(&MappingSpec {
        endpoint: Some(Expr::Cel("event.data.n".into())),
        ..MappingSpec::default()
    })
    .unwrap();
    assert_eq!(
        m.apply(&ev).unwrap_err().to_string(),
        "endpoint: expected a string, got int"
    );
    let m = Mapping::compile(&MappingSpec {
        parameters: Some("[1]".into()),
        ..MappingSpec::default()
    })
    .unwrap();
    assert_eq!(
        m.apply(&ev).unwrap_err().to_string(),
        "parameters: expected a map, got list"
    );
    let err = apply_docs("event.data.items.map(i, {'text': i})", &ev).unwrap_err();
    assert_eq!(err.field, "docs");
    assert!(
        err.message
            .starts_with("`event.data.items.map(i, {'text': i})`: "),
        "{err}"
    );
    assert!(err.message.contains("items"), "{err}");
}

#[test]
fn compile_errors_name_the_field() {
    let errors = Mapping::compile(&MappingSpec {
        endpoint: Some(Expr::Cel("evnt.id".into())),
        target_executor: Some(Expr::Cel("nosuch(event)".into())),
        parameters: Some("{'a': ".into()),
        docs: Some("event.data.map(i, {'text': i".into()),
    })
    .unwrap_err();
    let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
    assert_eq!(
        fields,
        ["endpoint", "target_executor", "parameters", "docs"]
    );
    assert_eq!(
        errors[0].message,
        "line 1, column 1: unknown variable 'evnt' (available: event)"
    );
    assert_eq!(
        errors[1].message,
        "line 1, column 1: unknown function 'nosuch'"
    );
    assert!(
        errors[2].message.starts_with("syntax error at line 1"),
        "{}",
        errors[2].message
    );
    assert!(
        errors[3].message.starts_with("syntax error at line 1"),
        "{}",
        errors[3].message
    );
    // `docs` is not a variable of the request mapping
    let errors = Mapping::compile(&MappingSpec {
        docs: Some("docs".into()),
        ..MappingSpec::default()
    })
    .unwrap_err();
    assert_eq!(errors[0].field, "docs");
}

#[test]
fn reply_data_default_and_cel() {
    let ev = json_event(json!({"q": "x"}));
    let result = vec![
        Document {
            id: "r1".into(),
            text: Some("hit".into()),
            tags: json!({"k": "v"}).as_object().cloned().unwrap_or_default(),
            embedding: Some(Tensor {
                shape: vec![2, 2],
                values: vec![1.0, 2.0, 3.0, 4.0],
            }),
            weight: Some(0.1),
            scores: BTreeMap::from([("cosine".to_string(), 0.25)]),
            blob: Some(Bytes::from_static(b"hi")),
            matches: vec![Document {
                id: "m1".into(),
                ..Document::default()
            }],
            ..Document::default()
        },
        Document {
            id: "r2".into(),
            ..Document::default()
        },
    ];
    let default = ReplyData::compile(None).unwrap();
    assert_eq!(
        default.render(&ev, &result).unwrap(),
        json!([
            {"id": "r1", "text": "hit", "tags": {"k": "v"}, "embedding": [[1.0, 2.0], [3.0, 4.0]],
             "weight": 0.1, "scores": {"cosine": 0.25}, "blob": "aGk=", "matches": [{"id": "m1"}]},
            {"id": "r2"}
        ])
    );
    let cel = ReplyData::compile(Some(
        "{'query': event.data.q, 'hits': docs.map(d, {'id': d.id, 'text': d.text, 'n': size(d.matches), 'tags': d.tags})}",
    ))
    .unwrap();
    // Unset fields are present in the view (null / empty), so plain field access works.
    assert_eq!(
        cel.render(&ev, &result).unwrap(),
        json!({"query": "x", "hits": [
            {"id": "r1", "text": "hit", "n": 1, "tags": {"k": "v"}},
            {"id": "r2", "text": null, "n": 0, "tags": {}}
        ]})
    );
    let bad = ReplyData::compile(Some("docs[5]")).unwrap();
    let err = bad.render(&ev, &result).unwrap_err();
    assert_eq!(err.field, "reply.data");
    assert!(ReplyData::compile(Some("dcos.size()")).is_err());
    assert!(ReplyData::compile(Some("docs.size(")).is_err());
}

#[test]
fn tensor_json_shapes() {
    let t = |shape: Vec<u32>, values: Vec<f64>| tensor_to_json(&Tensor { shape, values });
    assert_eq!(t(vec![3], vec![1.0, 2.0, 3.0]), json!([1.0, 2.0, 3.0]));
    assert_eq!(
        t(vec![2, 1, 2], vec![1.0, 2.0, 3.0, 4.0]),
        json!([[[1.0, 2.0]], [[3.0, 4.0]]])
    );
    assert_eq!(t(vec![], vec![7.0]), json!(7.0));
    assert_eq!(
        t(vec![5], vec![1.0]),
        json!([1.0]),
        "inconsistent shape comes out flat"
    );
}

#[test]
fn mapping_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Mapping>();
    assert_send_sync::<ReplyData>();
}
