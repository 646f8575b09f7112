//! The encoders (`encode_binary`, `to_json`) and their round trips through `decode`.

use super::*;

fn representative_events() -> Vec<CloudEvent> {
    let base = CloudEvent {
        specversion: SpecVersion::V10,
        id: "partition:0/offset:564".into(),
        source: "/apis/v1/namespaces/default/kafkasources/orders#orders".into(),
        ty: "dev.knative.kafka.event".into(),
        datacontenttype: Some("application/json".into()),
        dataschema: Some("https://example.com/schema.json".into()),
        subject: Some("Euro € 😀 \"quoted\" 100%".into()),
        time: Some("2024-05-01T10:00:00.123+02:00".into()),
        extensions: BTreeMap::from([
            ("key".into(), ExtValue::String("customer 17".into())),
            (
                "knativearrivaltime".into(),
                ExtValue::String("2024-05-01T08:00:01Z".into()),
            ),
        ]),
        data: Some(Data::Json(json!({"order": 17, "items": ["a", "é"]}))),
    };
    vec![
        base.clone(),
        CloudEvent {
            datacontenttype: Some("text/plain; charset=utf-8".into()),
            data: Some(Data::Text("Hello, 🌎!\n".into())),
            ..base.clone()
        },
        CloudEvent {
            datacontenttype: Some("application/octet-stream".into()),
            data: Some(Data::Binary(Bytes::from_static(b"\x00\x01\xfe\xff"))),
            ..base.clone()
        },
        CloudEvent {
            datacontenttype: None,
            data: Some(Data::Binary(Bytes::from_static(b"raw"))),
            subject: None,
            time: None,
            dataschema: None,
            extensions: BTreeMap::new(),
            ..base.clone()
        },
        CloudEvent {
            data: None,
            ..base.clone()
        },
        CloudEvent {
            specversion: SpecVersion::V03,
            dataschema: Some("/relative/schema".into()),
            ..base
        },
    ]
}

#[test]
fn binary_round_trip() {
    for event in representative_events() {
        let (headers, body) = encode_binary(&event);
        for (name, value) in &headers {
            assert!(
                value.as_bytes().iter().all(|b| (0x21..=0x7e).contains(b)) || name == CONTENT_TYPE,
                "{name}: {value:?}"
            );
        }
        let d = decode(&headers, &body).expect("decodes");
        assert_eq!(d.mode, Mode::Binary);
        assert!(d.warnings.is_empty());
        assert_eq!(d.inferred, None, "the encoder always says what the data is");
        let mut expected = event;
        if expected.datacontenttype.is_none() && matches!(expected.data, Some(Data::Binary(_))) {
            expected.datacontenttype = Some("application/octet-stream".into());
        }
        assert_eq!(d.events, vec![expected]);
    }
}

#[test]
fn json_round_trip_and_structure() {
    for event in representative_events() {
        let value = to_json(&event);
        assert_eq!(from_json(&value).as_ref(), Ok(&event), "{value}");
        let d = decode(
            &structured("application/cloudevents+json"),
            &Bytes::from(serde_json::to_vec(&value).expect("json")),
        )
        .expect("structured");
        assert_eq!(d.events, vec![event]);
    }
    let events = representative_events();
    let v = to_json(&events[0]);
    assert_eq!(v["key"], "customer 17", "extensions are top level");
    assert_eq!(v["data"], json!({"order": 17, "items": ["a", "é"]}));
    assert_eq!(to_json(&events[1])["data"], "Hello, 🌎!\n");
    assert_eq!(to_json(&events[2])["data_base64"], "AAH+/w==");
    assert!(to_json(&events[2]).get("data").is_none());
    assert!(to_json(&events[4]).get("data").is_none());
    assert_eq!(to_json(&events[5])["schemaurl"], "/relative/schema");
}

#[test]
fn typed_extensions_become_canonical_strings_in_headers() {
    let mut e = representative_events().remove(4);
    e.extensions = BTreeMap::from([
        ("flag".into(), ExtValue::Bool(true)),
        ("count".into(), ExtValue::Integer(-7)),
    ]);
    let (h, body) = encode_binary(&e);
    assert_eq!(h["ce-flag"], "true");
    assert_eq!(h["ce-count"], "-7");
    assert!(body.is_empty());
    let back = one(&h, &body);
    assert_eq!(back.extensions["flag"], ExtValue::String("true".into()));
    assert_eq!(to_json(&e)["count"], json!(-7));
}

#[test]
fn encode_defaults_content_type_for_untyped_data() {
    let mut e = representative_events().remove(0);
    e.datacontenttype = None;
    let (h, body) = encode_binary(&e);
    assert_eq!(h[CONTENT_TYPE], "application/json");
    assert_eq!(
        serde_json::from_slice::<Value>(&body).expect("json"),
        json!({"order": 17, "items": ["a", "é"]})
    );
    e.data = Some(Data::Binary(Bytes::from_static(b"x")));
    assert_eq!(
        encode_binary(&e).0[CONTENT_TYPE],
        "application/octet-stream"
    );
    e.data = None;
    assert!(!encode_binary(&e).0.contains_key(CONTENT_TYPE));
}
