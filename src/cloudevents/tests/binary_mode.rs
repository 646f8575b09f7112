//! Binary mode: `ce-*` headers and the decoding of their values, the body read by its content
//! type (or by looking at it), events shaped as Knative sources send them, and 0.3.

use super::*;

// ---- headers ----

#[test]
fn minimal_binary_event() {
    let e = one(&binary(&[]), b"");
    assert_eq!(e.specversion, SpecVersion::V10);
    assert_eq!(
        (e.id.as_str(), e.source.as_str(), e.ty.as_str()),
        ("1", "/s", "t")
    );
    assert_eq!(e.data, None);
    assert_eq!(e.datacontenttype, None);
    assert!(e.extensions.is_empty());
}

#[test]
fn duplicate_attribute_headers_are_invalid() {
    let mut h = binary(&[]);
    header(&mut h, "ce-id", b"2", true);
    let m = invalid(dec(&h, b""));
    assert!(
        m.starts_with("attribute \"id\": header ce-id appears 2 times"),
        "{m}"
    );
}

#[test]
fn header_names_are_case_insensitive() {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("CE-SpecVersion", "1.0"),
        ("Ce-Id", "1"),
        ("CE-SOURCE", "/s"),
        ("ce-Type", "t"),
        ("Ce-MyExt", "v"),
    ] {
        header(&mut h, k, v.as_bytes(), false);
    }
    let e = one(&h, b"");
    assert_eq!(e.extensions["myext"], ExtValue::String("v".into()));
}

// ---- header value decoding ----

#[test]
fn spec_euro_emoji_example_decodes_and_encodes() {
    assert_eq!(
        subject_of(b"Euro%20%E2%82%AC%20%F0%9F%98%80").as_deref(),
        Ok("Euro € 😀")
    );
    let mut e = one(&binary(&[]), b"");
    e.subject = Some("Euro € 😀".into());
    let (h, _) = encode_binary(&e);
    assert_eq!(h["ce-subject"], "Euro%20%E2%82%AC%20%F0%9F%98%80");
}

#[test]
fn lower_case_hex_and_unnecessary_encoding_are_accepted() {
    assert_eq!(subject_of(b"Euro%20%e2%82%ac").as_deref(), Ok("Euro €"));
    assert_eq!(subject_of(b"%61%62c").as_deref(), Ok("abc"));
    assert_eq!(
        one(&binary(&[("ce-time", "2018-04-05T17%3A31%3A00Z")]), b"")
            .time
            .as_deref(),
        Some("2018-04-05T17:31:00Z")
    );
}

#[test]
fn overlong_utf8_is_rejected() {
    let m = subject_of(b"a%C0%A0b").unwrap_err();
    assert_eq!(
        m,
        "attribute \"subject\": header value is not valid UTF-8 after percent-decoding \
         (byte 0xC0 at offset 1)"
    );
}

#[test]
fn exactly_one_round_of_percent_decoding() {
    assert_eq!(subject_of(b"100%2525").as_deref(), Ok("100%25"));
}

#[test]
fn quoted_strings_are_unquoted() {
    assert_eq!(subject_of(b"\"hello world\"").as_deref(), Ok("hello world"));
    assert_eq!(subject_of(b"\"a\\\"b\\\\c\"").as_deref(), Ok("a\"b\\c"));
    // Unquoting happens before percent-decoding.
    assert_eq!(subject_of(b"\"a%20b\"").as_deref(), Ok("a b"));
    // Not a well-formed quoted-string: kept literally.
    assert_eq!(subject_of(b"\"a\"b\"").as_deref(), Ok("\"a\"b\""));
    assert_eq!(subject_of(b"\"").as_deref(), Ok("\""));
}

#[test]
fn knative_sender_leniency() {
    // Raw UTF-8 bytes (obs-text), as sdk-go writes them.
    assert_eq!(
        subject_of("café au lait".as_bytes()).as_deref(),
        Ok("café au lait")
    );
    // Literal spaces and stray percent signs.
    assert_eq!(subject_of(b"a b").as_deref(), Ok("a b"));
    assert_eq!(subject_of(b"100%").as_deref(), Ok("100%"));
    assert_eq!(subject_of(b"50%zz off %4").as_deref(), Ok("50%zz off %4"));
    // Raw bytes that are not UTF-8 (Latin-1 é) are still rejected.
    assert!(
        subject_of(b"caf\xe9")
            .unwrap_err()
            .contains("not valid UTF-8")
    );
}

#[test]
fn encode_escapes_space_quote_percent_and_non_printable() {
    let mut e = one(&binary(&[]), b"");
    e.subject = Some("a b\"c%d\te~!".into());
    let (h, _) = encode_binary(&e);
    assert_eq!(h["ce-subject"], "a%20b%22c%25d%09e~!");
    let round = one(&h, b"");
    assert_eq!(round.subject, e.subject);
}

// ---- data interpretation ----

#[test]
fn binary_body_by_content_type() {
    let e = one(
        &binary(&[("content-type", "application/json")]),
        br#"{"a":1}"#,
    );
    assert_eq!(e.data, Some(Data::Json(json!({"a": 1}))));
    assert_eq!(e.datacontenttype.as_deref(), Some("application/json"));

    let ct = "Application/Vnd.Foo+JSON; charset=utf-8";
    let e = one(&binary(&[("content-type", ct)]), b"[1,2]");
    assert_eq!(e.data, Some(Data::Json(json!([1, 2]))));
    assert_eq!(e.datacontenttype.as_deref(), Some(ct));

    let e = one(
        &binary(&[("content-type", "text/plain")]),
        "héllo".as_bytes(),
    );
    assert_eq!(e.data, Some(Data::Text("héllo".into())));

    let e = one(
        &binary(&[("content-type", "application/octet-stream")]),
        b"\x00\xff",
    );
    assert_eq!(e.data, Some(Data::Binary(Bytes::from_static(b"\x00\xff"))));

    let e = one(&binary(&[("content-type", "application/json")]), b"");
    assert_eq!(e.data, None);
}

#[test]
fn binary_body_without_content_type_is_read_as_json_then_text_then_bytes() {
    let cases: [(&[u8], Data, ReadAs); 5] = [
        (br#"{"a":1}"#, Data::Json(json!({"a": 1})), ReadAs::Json),
        (br#""hi""#, Data::Json(json!("hi")), ReadAs::Json),
        (b"42", Data::Json(json!(42)), ReadAs::Json),
        ("héllo".as_bytes(), Data::Text("héllo".into()), ReadAs::Text),
        (
            b"\x00\xff",
            Data::Binary(Bytes::from_static(b"\x00\xff")),
            ReadAs::Bytes,
        ),
    ];
    for (body, data, read_as) in cases {
        let d = dec(&binary(&[]), body).expect("valid");
        let e = &d.events[0];
        assert_eq!(e.data.as_ref(), Some(&data), "{body:?}");
        // The event's own attributes are unchanged: it still has no datacontenttype.
        assert_eq!(e.datacontenttype, None);
        assert_eq!(
            d.inferred,
            Some(Inferred {
                declared: Declared::None,
                read_as
            })
        );
        assert!(d.warnings.is_empty());
    }
    // No body: nothing to infer.
    let d = dec(&binary(&[]), b"").expect("valid");
    assert_eq!((d.events[0].data.as_ref(), d.inferred), (None, None));
    // A declared type is never second-guessed when it fits.
    let d = dec(&binary(&[("content-type", "application/json")]), b"{}").expect("valid");
    assert_eq!(d.inferred, None);
    let d = dec(&binary(&[("content-type", "text/plain")]), b"{}").expect("valid");
    assert_eq!(d.events[0].data, Some(Data::Text("{}".into())));
    assert_eq!(d.inferred, None);
}

#[test]
fn json_content_type_over_a_body_that_is_not_json_is_its_text() {
    // The JavaScript SDK's HTTP.binary for string data: unquoted, labelled JSON.
    let ct = "application/json; charset=utf-8";
    let d = dec(&binary(&[("content-type", ct)]), b"hello world").expect("not a 400");
    let e = &d.events[0];
    assert_eq!(e.data, Some(Data::Text("hello world".into())));
    assert_eq!(e.datacontenttype.as_deref(), Some(ct));
    assert_eq!(
        d.inferred,
        Some(Inferred {
            declared: Declared::Json,
            read_as: ReadAs::Text
        })
    );
    // Not UTF-8 either: the bytes.
    let d = dec(
        &binary(&[("content-type", "application/vnd.acme+json")]),
        b"{\xff",
    )
    .expect("not a 400");
    assert_eq!(
        d.events[0].data,
        Some(Data::Binary(Bytes::from_static(b"{\xff")))
    );
    assert_eq!(d.inferred.map(|i| i.read_as), Some(ReadAs::Bytes));
}

#[test]
fn text_body_that_is_not_utf8_is_invalid() {
    let m = invalid(dec(&binary(&[("content-type", "text/plain")]), b"caf\xe9"));
    assert!(m.contains("not valid UTF-8"), "{m}");
    // A declared non-UTF-8 charset keeps the bytes.
    let e = one(
        &binary(&[("content-type", "text/plain; charset=ISO-8859-1")]),
        b"caf\xe9",
    );
    assert_eq!(e.data, Some(Data::Binary(Bytes::from_static(b"caf\xe9"))));
}

#[test]
fn ce_datacontenttype_header_is_tolerated() {
    let h = binary(&[
        ("content-type", "application/json"),
        ("ce-datacontenttype", "text/plain"),
    ]);
    let d = dec(&h, b"{}").expect("lenient");
    assert_eq!(
        d.events[0].datacontenttype.as_deref(),
        Some("application/json")
    );
    assert_eq!(d.events[0].data, Some(Data::Json(json!({}))));
    assert_eq!(d.warnings.len(), 1);
    assert!(d.warnings[0].contains("ce-datacontenttype"));

    let d = dec(&binary(&[("ce-datacontenttype", "text/plain")]), b"hi").expect("lenient");
    assert_eq!(d.events[0].data, Some(Data::Text("hi".into())));
    assert_eq!(d.warnings.len(), 1);
}

// ---- sources seen behind Knative ----

#[test]
fn kafkasource_shaped_event() {
    let h = binary(&[
        ("ce-id", "partition:0/offset:564"),
        (
            "ce-source",
            "/apis/v1/namespaces/default/kafkasources/orders#orders",
        ),
        ("ce-type", "dev.knative.kafka.event"),
        ("ce-subject", "partition:0#564"),
        ("ce-time", "2024-05-01T10:00:00.123Z"),
        ("ce-key", "customer-17"),
        ("ce-partitionkey", "customer-17"),
        ("ce-kafkaheaderxrequestid", "abc 123"),
        ("ce-knativearrivaltime", "2024-05-01T10:00:00.456Z"),
        ("content-type", "application/json"),
        (
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
        ("tracestate", "rojo=00f067aa0ba902b7"),
        ("prefer", "reply"),
        ("kn-namespace", "default"),
    ]);
    let d = dec(&h, br#"{"order":17}"#).expect("valid");
    // kafkaheader<name> easily exceeds 20 characters: accepted, with a warning.
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    assert!(d.warnings[0].contains("\"kafkaheaderxrequestid\""));
    let e = &d.events[0];
    assert_eq!(e.id, "partition:0/offset:564");
    assert_eq!(
        e.source,
        "/apis/v1/namespaces/default/kafkasources/orders#orders"
    );
    assert_eq!(e.subject.as_deref(), Some("partition:0#564"));
    assert_eq!(e.data, Some(Data::Json(json!({"order": 17}))));
    let names: Vec<&str> = e.extensions.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "kafkaheaderxrequestid",
            "key",
            "knativearrivaltime",
            "partitionkey"
        ]
    );
    assert_eq!(
        e.extensions["kafkaheaderxrequestid"],
        ExtValue::String("abc 123".into())
    );
}

#[test]
fn pingsource_without_content_type() {
    let h = binary(&[
        ("ce-type", "dev.knative.sources.ping"),
        ("ce-source", "/apis/v1/namespaces/default/pingsources/ping"),
        ("ce-time", "2024-05-01T10:00:00.000Z"),
        ("kn-namespace", "default"),
    ]);
    let e = one(&h, br#"{"message": "Hello world!"}"#);
    assert_eq!(e.datacontenttype, None);
    // Read as JSON, the way sdk-go and the Python SDK read a body without a content type.
    assert_eq!(e.data, Some(Data::Json(json!({"message": "Hello world!"}))));
    // dataBase64 with contentType text/plain: the decoded bytes arrive as the body.
    let e = one(&binary(&[("content-type", "text/plain")]), b"data");
    assert_eq!(e.data, Some(Data::Text("data".into())));
}

// ---- v0.3 ----

#[test]
fn v03_binary_with_schemaurl_and_map_header() {
    let h = binary(&[
        ("ce-specversion", "0.3"),
        ("ce-schemaurl", "/schemas/order"),
        ("ce-traceinfo-span", "x"),
        ("content-type", "application/json"),
    ]);
    let d = dec(&h, b"1").expect("valid");
    let e = &d.events[0];
    assert_eq!(e.specversion, SpecVersion::V03);
    assert_eq!(e.dataschema.as_deref(), Some("/schemas/order"));
    assert!(e.extensions.is_empty(), "{:?}", e.extensions);
    assert_eq!(d.warnings.len(), 1);
    assert!(d.warnings[0].contains("ce-traceinfo-span"));
    // A 1.0 event has no schemaurl: it is just an extension; dashes are invalid there.
    let e = one(&binary(&[("ce-schemaurl", "/x")]), b"");
    assert_eq!(e.dataschema, None);
    assert_eq!(e.extensions["schemaurl"], ExtValue::String("/x".into()));
    assert!(invalid(dec(&binary(&[("ce-traceinfo-span", "x")]), b"")).contains("invalid name"));
    let (h, _) = encode_binary(&one(&h, b""));
    assert_eq!(h["ce-schemaurl"], "/schemas/order");
    assert!(!h.contains_key("ce-dataschema"));
}
