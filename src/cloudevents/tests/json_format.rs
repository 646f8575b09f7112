//! The JSON event format: structured bodies (data rules, 0.3 `datacontentencoding`) and batches.

use super::*;

// ---- structured mode ----

#[test]
fn structured_data_rules() {
    let h = structured("application/cloudevents+json; charset=utf-8");
    let body = |v: Value| serde_json::to_vec(&v).expect("json");

    let e = one(&h, &body(with(minimal_json(), "data", json!({"a": 1}))));
    assert_eq!(
        e.data,
        Some(Data::Json(json!({"a": 1}))),
        "no dct means JSON"
    );

    let v = with(minimal_json(), "datacontenttype", json!("APPLICATION/JSON"));
    let e = one(&h, &body(with(v.clone(), "data", json!("{\"a\":1}"))));
    assert_eq!(
        e.data,
        Some(Data::Json(json!("{\"a\":1}"))),
        "a JSON string stays a string"
    );

    let v = with(minimal_json(), "datacontenttype", json!("text/plain"));
    let e = one(&h, &body(with(v.clone(), "data", json!("hello"))));
    assert_eq!(e.data, Some(Data::Text("hello".into())));
    let m = invalid(dec(&h, &body(with(v.clone(), "data", json!({"a": 1})))));
    assert!(m.starts_with("attribute \"data\": datacontenttype \"text/plain\" is not JSON"));

    let e = one(&h, &body(with(v.clone(), "data_base64", json!("aGk="))));
    assert_eq!(e.data, Some(Data::Binary(Bytes::from_static(b"hi"))));
    let e = one(
        &h,
        &body(with(minimal_json(), "data_base64", json!("eyJhIjoxfQ"))),
    );
    assert_eq!(e.data, Some(Data::Binary(Bytes::from_static(b"{\"a\":1}"))));

    let both = with(
        with(v.clone(), "data", json!("x")),
        "data_base64",
        json!("eA=="),
    );
    assert_eq!(
        invalid(dec(&h, &body(both))),
        "attribute \"data\": data and data_base64 are mutually exclusive"
    );
    let m = invalid(dec(&h, &body(with(v.clone(), "data_base64", json!("!!")))));
    assert!(
        m.starts_with("attribute \"data_base64\": is not valid base64"),
        "{m}"
    );
    let m = invalid(dec(&h, &body(with(v, "data_base64", json!(5)))));
    assert!(
        m.starts_with("attribute \"data_base64\": must be a base64 JSON string"),
        "{m}"
    );
}

#[test]
fn structured_body_wins_over_ce_headers() {
    let mut h = binary(&[("ce-id", "from-header")]);
    header(
        &mut h,
        "content-type",
        b"application/cloudevents+json",
        false,
    );
    let e = one(&h, &serde_json::to_vec(&minimal_json()).expect("json"));
    assert_eq!(e.id, "1");
}

#[test]
fn structured_body_must_be_a_json_object() {
    let h = structured("application/cloudevents+json");
    assert_eq!(invalid(dec(&h, b"")), "structured body is empty");
    assert!(invalid(dec(&h, b"{nope")).starts_with("structured body is not valid JSON"));
    assert_eq!(
        invalid(dec(&h, b"[]")),
        "an event must be a JSON object, found array"
    );
}

#[test]
fn v03_structured_with_datacontentencoding() {
    let v = json!({
        "specversion": "0.3", "id": "1", "source": "/s", "type": "t",
        "datacontenttype": "application/octet-stream",
        "datacontentencoding": "base64",
        "schemaurl": "schemas/rel",
        "data": "AAH/",
    });
    let body = serde_json::to_vec(&v).expect("json");
    let e = one(&structured("application/cloudevents+json"), &body);
    assert_eq!(e.specversion, SpecVersion::V03);
    assert_eq!(
        e.data,
        Some(Data::Binary(Bytes::from_static(b"\x00\x01\xff")))
    );
    assert_eq!(e.dataschema.as_deref(), Some("schemas/rel"));
    assert!(e.extensions.is_empty());
    // And back: 0.3 binary data is written with datacontentencoding.
    let back = to_json(&e);
    assert_eq!(back["datacontentencoding"], "base64");
    assert_eq!(back["data"], "AAH/");
    assert_eq!(from_json(&back), Ok(e));

    let bad = with(v.clone(), "datacontentencoding", json!("gzip"));
    assert!(json_invalid(bad).contains("datacontentencoding"));
    let bad = with(v, "data", json!("%%%"));
    assert!(json_invalid(bad).starts_with("attribute \"data\": is not valid base64"));
}

// ---- batched mode ----

#[test]
fn batches() {
    let h = structured("application/cloudevents-batch+json");
    let d = dec(&h, b"[]").expect("empty batch");
    assert_eq!((d.mode, d.events.len()), (Mode::Batched, 0));

    let two = json!([minimal_json(), with(minimal_json(), "id", json!("2"))]);
    let d = dec(&h, &serde_json::to_vec(&two).expect("json")).expect("valid");
    assert_eq!(d.events.len(), 2);
    assert_eq!(d.events[1].id, "2");

    let bad = json!([
        minimal_json(),
        minimal_json(),
        minimal_json(),
        with(minimal_json(), "time", json!("2018-04-05T18:31Z"))
    ]);
    assert_eq!(
        invalid(dec(&h, &serde_json::to_vec(&bad).expect("json"))),
        "batch[3].time: \"2018-04-05T18:31Z\" is not an RFC 3339 timestamp"
    );
    let bad = json!([minimal_json(), "not an object"]);
    assert_eq!(
        invalid(dec(&h, &serde_json::to_vec(&bad).expect("json"))),
        "batch[1]: an event must be a JSON object, found string"
    );
    let bad = json!([
        minimal_json(),
        with(minimal_json(), "specversion", json!("0.3"))
    ]);
    let m = invalid(dec(&h, &serde_json::to_vec(&bad).expect("json")));
    assert!(m.starts_with("batch[1].specversion: \"0.3\" differs from batch[0]'s \"1.0\""));
    let bad = json!([with(minimal_json(), "My.Ext", json!(1))]);
    let m = invalid(dec(&h, &serde_json::to_vec(&bad).expect("json")));
    assert!(m.starts_with("batch[0].\"My.Ext\": invalid name"), "{m}");
    assert_eq!(
        invalid(dec(&h, b"{}")),
        "batch body must be a JSON array, found object"
    );
}
