//! Context attributes: required ones, spec versions, value rules (`time`, `dataschema`,
//! `subject`), extension names and values, and how long an error message may get.

use super::*;

#[test]
fn missing_or_empty_required_attributes_are_invalid() {
    for name in ["id", "source", "type"] {
        let m = invalid(dec(&without(binary(&[]), &format!("ce-{name}")), b""));
        assert_eq!(
            m,
            format!("attribute \"{name}\": required attribute is missing (no ce- header for it)")
        );
        let m = invalid(dec(&binary(&[(&format!("ce-{name}"), "")]), b""));
        assert_eq!(m, format!("attribute \"{name}\": must not be empty"));
    }
    let m = invalid(dec(&binary(&[("ce-specversion", "")]), b""));
    assert_eq!(m, "attribute \"specversion\": must not be empty");
}

#[test]
fn unknown_specversion_is_invalid() {
    let m = invalid(dec(&binary(&[("ce-specversion", "1.1")]), b""));
    assert_eq!(
        m,
        "attribute \"specversion\": \"1.1\" is not a supported spec version (expected \"1.0\" or \"0.3\")"
    );
}

#[test]
fn rfc3339_table() {
    let valid = [
        "2018-04-05T17:31:00Z",
        "2018-04-05t17:31:00z",
        "2018-04-05T17:31:00.000000000Z",
        "2018-04-05T18:31:00+01:00",
        "2018-04-05T16:31:00-01:00",
        "2020-02-29T23:59:60.5+23:59",
    ];
    let invalid = [
        "lunchtime",
        "2018-04-05T18:31Z",
        "2018-04-05T18:31:00X",
        "2018-04-05T18:31:00+25:00",
        "2018-04-05T18:31:00+xx:00",
        "2018-04-05T18:31:00+05",
        "2018-04-05T18:31:00",
        "2018-04-05 18:31:00Z",
        "2018-13-05T18:31:00Z",
        "2019-02-29T18:31:00Z",
        "2018-04-31T18:31:00Z",
        "2018-04-05T24:00:00Z",
        "2018-04-05T18:31:00.Z",
        "2018-04-05T18:31:00+01:60",
        "2018-04-05T18:31:00Z ",
        "",
    ];
    for t in valid {
        assert!(is_rfc3339(t), "{t} should be valid");
    }
    for t in invalid {
        assert!(!is_rfc3339(t), "{t} should be invalid");
    }
    let m = json_invalid(with(minimal_json(), "time", json!("2018-04-05T18:31Z")));
    assert_eq!(
        m,
        "attribute \"time\": \"2018-04-05T18:31Z\" is not an RFC 3339 timestamp"
    );
}

#[test]
fn dataschema_must_be_absolute_uri() {
    let m = invalid(dec(&binary(&[("ce-dataschema", "/rel")]), b""));
    assert_eq!(
        m,
        "attribute \"dataschema\": \"/rel\" is not an absolute URI"
    );
    let e = one(
        &binary(&[("ce-dataschema", "https://example.com/s.json")]),
        b"",
    );
    assert_eq!(e.dataschema.as_deref(), Some("https://example.com/s.json"));
    assert!(json_invalid(with(minimal_json(), "dataschema", json!(""))).contains("dataschema"));
    assert!(!is_absolute_uri("1http://x"));
    assert!(!is_absolute_uri("http://a b"));
    assert!(is_absolute_uri("urn:isbn:123"));
}

#[test]
fn subject_must_be_non_empty_if_present() {
    let m = json_invalid(with(minimal_json(), "subject", json!("")));
    assert_eq!(m, "attribute \"subject\": must not be empty");
    assert!(invalid(dec(&binary(&[("ce-subject", "")]), b"")).contains("subject"));
}

#[test]
fn extension_names() {
    for bad in ["ce-my_ext", "ce-my-ext", "ce-data"] {
        let m = invalid(dec(&binary(&[(bad, "v")]), b""));
        assert!(m.starts_with(&format!("attribute {:?}", &bad[3..])), "{m}");
    }
    for bad in ["MyExtension", "my.extension", "my_ext", ""] {
        let m = json_invalid(with(minimal_json(), bad, json!("v")));
        assert!(m.contains("name"), "{bad}: {m}");
    }
    // 1.0 allows a leading digit; 0.3 does not.
    assert!(from_json(&with(minimal_json(), "1abc", json!("v"))).is_ok());
    let v03 = with(minimal_json(), "specversion", json!("0.3"));
    let m = json_invalid(with(v03, "1abc", json!("v")));
    assert!(m.contains("must begin with a letter"), "{m}");
}

#[test]
fn long_extension_names_only_warn() {
    let name = "abcdefghijklmnopqrstuvwxyz";
    let d = dec(&binary(&[(&format!("ce-{name}"), "v")]), b"").expect("accepted");
    assert_eq!(d.events[0].extensions[name], ExtValue::String("v".into()));
    assert_eq!(d.warnings.len(), 1);
    assert!(d.warnings[0].contains(name), "{:?}", d.warnings);
    let d = dec(&binary(&[("ce-exactlytwentychars", "v")]), b"").expect("accepted");
    assert!(d.warnings.is_empty());
}

#[test]
fn extension_values_in_json() {
    let v = with(
        with(
            with(minimal_json(), "b", json!(true)),
            "i",
            json!(-2147483648i64),
        ),
        "s",
        json!("x"),
    );
    let v = with(v, "n", Value::Null);
    let e = from_json(&v).expect("valid");
    assert_eq!(e.extensions["b"], ExtValue::Bool(true));
    assert_eq!(e.extensions["i"], ExtValue::Integer(-2147483648));
    assert_eq!(e.extensions["s"], ExtValue::String("x".into()));
    assert!(!e.extensions.contains_key("n"), "null means unset");

    let cases = [
        (json!(1.5), "is not an Integer"),
        (json!(10.0), "is not an Integer"),
        (
            json!(2147483648i64),
            "outside the CloudEvents Integer range",
        ),
        (json!(1u64 << 40), "outside the CloudEvents Integer range"),
        (json!(u64::MAX), "outside the CloudEvents Integer range"),
        (json!({"a": 1}), "found object"),
        (json!([1]), "found array"),
    ];
    for (value, fragment) in cases {
        let m = json_invalid(with(minimal_json(), "ext", value.clone()));
        assert!(
            m.starts_with("attribute \"ext\": ") && m.contains(fragment),
            "{value}: {m}"
        );
    }
}

#[test]
fn json_core_attributes_must_be_strings() {
    let m = json_invalid(with(minimal_json(), "id", json!(25)));
    assert_eq!(m, "attribute \"id\": must be a JSON string, found integer");
    let m = json_invalid(with(minimal_json(), "id", json!({"xyz": "abc"})));
    assert_eq!(m, "attribute \"id\": must be a JSON string, found object");
    let m = json_invalid(with(minimal_json(), "specversion", json!(1.0)));
    assert_eq!(
        m,
        "attribute \"specversion\": must be a JSON string, found number"
    );
    let m = json_invalid(with(minimal_json(), "id", Value::Null));
    assert_eq!(m, "attribute \"id\": required attribute is missing");
    let m = json_invalid(json!([1]));
    assert_eq!(m, "an event must be a JSON object, found array");
}

#[test]
fn null_optionals_are_unset() {
    let mut v = minimal_json();
    for k in ["datacontenttype", "dataschema", "subject", "time", "data"] {
        v[k] = Value::Null;
    }
    assert_eq!(from_json(&v), from_json(&minimal_json()));
    assert_eq!(from_json(&v).expect("valid").data, None);
}

#[test]
fn error_messages_are_short() {
    let long = "x".repeat(5000);
    let m = json_invalid(with(minimal_json(), "time", json!(long)));
    assert!(m.chars().count() < 300, "{}", m.len());
    assert!(m.contains('…'));
    let m = json_invalid(with(minimal_json(), &format!("A{long}"), json!(1)));
    assert!(m.chars().count() < 300);
    let m = invalid(dec(&binary(&[("ce-dataschema", &long)]), b""));
    assert!(m.chars().count() < 300);
}
