//! Tests of route `schema:`: compiling a JSON Schema and checking event data against it.

use super::*;
use serde_json::json;

fn order_schema() -> DataSchema {
    DataSchema::compile(&json!({
        "type": "object",
        "required": ["id", "items"],
        "properties": {
            "id": {"type": "string"},
            "items": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "object", "properties": {"qty": {"type": "integer", "minimum": 1}}}
            }
        }
    }))
    .expect("valid schema")
}

fn event(data: Option<Data>) -> CloudEvent {
    CloudEvent {
        data,
        ..CloudEvent::new("1", "/s", "t")
    }
}

#[test]
fn valid_data_passes() {
    let schema = order_schema();
    let ok = event(Some(Data::Json(json!({"id": "o1", "items": [{"qty": 2}]}))));
    assert_eq!(schema.check(&ok), Ok(()));
}

#[test]
fn a_mismatch_names_pointer_rule_and_schema_path() {
    let schema = order_schema();
    let bad = event(Some(Data::Json(json!({"id": "o1", "items": [{"qty": 0}]}))));
    let e = schema.check(&bad).expect_err("qty 0 < 1");
    assert_eq!(e.total, 1);
    let v = &e.violations[0];
    assert_eq!(v.pointer, "/items/0/qty");
    assert_eq!(v.rule, "minimum");
    assert_eq!(
        v.schema_path,
        "/properties/items/items/properties/qty/minimum"
    );
    let text = e.to_string();
    assert!(
        text.starts_with("data does not match the route's schema: at data/items/0/qty: 0 is less than the minimum of 1 (rule minimum at schema /properties/items/items/properties/qty/minimum)"),
        "{text}"
    );

    let missing = event(Some(Data::Json(json!({"items": []}))));
    let e = schema.check(&missing).expect_err("two problems");
    assert_eq!(e.total, 2);
    let rules: Vec<&str> = e.violations.iter().map(|v| v.rule.as_str()).collect();
    assert!(
        rules.contains(&"required") && rules.contains(&"minItems"),
        "{rules:?}"
    );
}

#[test]
fn text_none_and_bytes() {
    let strings = DataSchema::compile(&json!({"type": "string", "maxLength": 3})).expect("ok");
    assert_eq!(
        strings.check(&event(Some(Data::Text("abc".into())))),
        Ok(())
    );
    let e = strings
        .check(&event(Some(Data::Text("abcd".into()))))
        .expect_err("too long");
    assert_eq!(e.violations[0].rule, "maxLength");
    let e = strings
        .check(&event(None))
        .expect_err("null is not a string");
    assert_eq!(e.violations[0].rule, "type");
    let e = strings
        .check(&event(Some(Data::Binary(bytes::Bytes::from_static(
            b"\x00",
        )))))
        .expect_err("bytes");
    assert!(
        e.to_string()
            .contains("1 bytes of application/octet-stream"),
        "{e}"
    );
}

#[test]
fn a_long_list_is_cut_with_a_count() {
    let schema = DataSchema::compile(&json!({"items": {"type": "integer"}})).expect("ok");
    let e = schema
        .check(&event(Some(Data::Json(json!(["a", "b", "c", "d", "e"])))))
        .expect_err("five strings");
    assert_eq!((e.violations.len(), e.total), (3, 5));
    assert!(e.to_string().ends_with("(and 2 more)"), "{e}");
}

#[test]
fn invalid_schemas_are_refused_with_where() {
    let e = DataSchema::compile(&json!({"type": "strin"})).expect_err("bad type");
    assert!(e.starts_with("invalid JSON Schema at "), "{e}");
    let e = DataSchema::compile(&json!("string")).expect_err("not an object");
    assert!(e.contains("found a string"), "{e}");
    let e = DataSchema::compile(&json!({"$ref": "https://example.com/s.json"}))
        .expect_err("remote refs are not fetched");
    assert!(e.starts_with("invalid JSON Schema"), "{e}");
}
