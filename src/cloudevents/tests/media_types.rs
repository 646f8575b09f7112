//! Media types: the content mode from `Content-Type`, which media types are JSON, and the
//! RFC 2046 shape of `datacontenttype`.

use super::*;

// ---- mode detection ----

#[test]
fn mode_detection_table() {
    let cases: &[(Option<&str>, Result<Mode, &str>)] = &[
        (None, Ok(Mode::Binary)),
        (Some("application/json"), Ok(Mode::Binary)),
        (Some("text/plain; charset=utf-8"), Ok(Mode::Binary)),
        (Some("application/cloudevents+json"), Ok(Mode::Structured)),
        (
            Some("application/cloudevents+json; charset=utf-8"),
            Ok(Mode::Structured),
        ),
        (Some("Application/CloudEvents+JSON"), Ok(Mode::Structured)),
        (
            Some(" application/cloudevents+json ;charset=UTF-8"),
            Ok(Mode::Structured),
        ),
        (
            Some("application/cloudevents-batch+json"),
            Ok(Mode::Batched),
        ),
        (
            Some("APPLICATION/CLOUDEVENTS-BATCH+JSON; charset=utf-8"),
            Ok(Mode::Batched),
        ),
        (
            Some("application/cloudevents+avro"),
            Err("application/cloudevents+avro"),
        ),
        (
            Some("application/cloudevents"),
            Err("application/cloudevents"),
        ),
        (
            Some("application/cloudevents-batch+avro"),
            Err("application/cloudevents-batch+avro"),
        ),
    ];
    for (ct, want) in cases {
        let mut h = HeaderMap::new();
        if let Some(ct) = ct {
            header(&mut h, "content-type", ct.as_bytes(), false);
        }
        match (detect_mode(&h), want) {
            (Ok(got), Ok(want)) => assert_eq!(got, *want, "{ct:?}"),
            (Err(BindingError::NotCloudEvent(m)), Err(fragment)) => {
                assert!(m.contains(fragment), "{ct:?}: {m}")
            }
            (got, want) => panic!("{ct:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn cloudevents_avro_is_415_even_with_ce_headers() {
    let h = binary(&[("content-type", "application/cloudevents+avro")]);
    match dec(&h, b"x") {
        Err(BindingError::NotCloudEvent(m)) => {
            assert!(m.contains("\"application/cloudevents+avro\""), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_specversion_is_not_a_cloudevent() {
    let h = without(
        binary(&[("content-type", "application/json")]),
        "ce-specversion",
    );
    assert_eq!(
        dec(&h, b"{}").unwrap_err(),
        BindingError::NotCloudEvent(
            "not a CloudEvent: no ce-specversion header and Content-Type \"application/json\" \
             is not a CloudEvents media type"
                .into()
        )
    );
    let h = without(binary(&[]), "ce-specversion");
    assert!(matches!(
        dec(&h, b""),
        Err(BindingError::NotCloudEvent(m)) if m.contains("no Content-Type")
    ));
}

#[test]
fn two_content_type_headers_are_invalid() {
    let mut h = binary(&[]);
    header(&mut h, "content-type", b"text/plain", true);
    header(&mut h, "content-type", b"application/json", true);
    assert!(invalid(dec(&h, b"x")).contains("Content-Type"));
}

// ---- media types ----

#[test]
fn json_media_type_table() {
    let json_types = [
        "application/json",
        "APPLICATION/JSON",
        "application/json; charset=utf-8",
        "text/json",
        "application/vnd.foo+json; charset=utf-8",
        "application/cloudevents+json",
        " Application/Ld+JSON ",
    ];
    let other = [
        "application/jsonx",
        "application/json-seq",
        "application/xml",
        "text/plain",
        "json",
        "application/json+xml",
    ];
    for t in json_types {
        assert!(is_json_media_type(t), "{t}");
    }
    for t in other {
        assert!(!is_json_media_type(t), "{t}");
    }
}

#[test]
fn datacontenttype_must_be_rfc2046_shaped() {
    for bad in ["xyz", "", "text/", "/plain", "te xt/plain", "a/b/c d"] {
        let m = json_invalid(with(minimal_json(), "datacontenttype", json!(bad)));
        assert!(
            m.starts_with("attribute \"datacontenttype\": "),
            "{bad}: {m}"
        );
    }
    for good in [
        "text/plain",
        "application/vnd.a+json; charset=\"utf-8\"",
        "a/b;x=y",
    ] {
        let v = with(minimal_json(), "datacontenttype", json!(good));
        assert!(from_json(&v).is_ok(), "{good}");
    }
    let m = invalid(dec(&binary(&[("content-type", "xyz")]), b"x"));
    assert!(m.contains("\"xyz\" is not an RFC 2046 media type"), "{m}");
}

#[test]
fn datacontenttype_is_trimmed_like_the_content_type_header() {
    let v = with(
        minimal_json(),
        "datacontenttype",
        json!(" text/plain\u{3000}"),
    );
    let event = from_json(&with(v, "data", json!("x"))).expect("valid");
    assert_eq!(event.datacontenttype.as_deref(), Some("text/plain"));
    let (h, body) = encode_binary(&event);
    assert_eq!(one(&h, &body), event);
    let from_header = one(&binary(&[("ce-datacontenttype", "%20text/plain%20")]), b"x");
    assert_eq!(from_header.datacontenttype.as_deref(), Some("text/plain"));
}
