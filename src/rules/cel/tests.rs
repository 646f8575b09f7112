//! Tests of CEL programs: compile-time checks, the event as CEL sees it, JSON conversions, the
//! extension libraries and filter predicates.

use bytes::Bytes;
use serde_json::{Value, json};

use super::*;
use crate::model::{Data, ExtValue, SpecVersion};

fn event(data: Option<Data>) -> CloudEvent {
    CloudEvent {
        data,
        ..CloudEvent::new("e1", "/shop", "order.created")
    }
}

fn eval_json(source: &str, event: &CloudEvent) -> Result<Value, String> {
    let program = Program::compile(source, &["event"])?;
    let mut scope = Scope::new();
    scope.bind("event", event_to_val(event));
    program.eval(&scope, val_to_json)?
}

#[test]
fn predicate_true_false() {
    let ev = event(Some(Data::Json(json!({"priority": 7}))));
    let p = Predicate::compile("event.data.priority > 5 && event.type == 'order.created'").unwrap();
    assert_eq!(p.matches(&ev), Ok(true));
    let p = Predicate::compile("event.data.priority > 10").unwrap();
    assert_eq!(p.matches(&ev), Ok(false));
}

#[test]
fn predicate_runtime_error_and_non_bool_name_the_expression() {
    let ev = event(Some(Data::Json(json!({"priority": 7}))));
    let p = Predicate::compile("event.data.missing > 1").unwrap();
    let err = p.matches(&ev).unwrap_err();
    assert!(err.contains("event.data.missing > 1"), "{err}");
    assert!(err.contains("missing"), "{err}");
    let p = Predicate::compile("event.data.priority").unwrap();
    let err = p.matches(&ev).unwrap_err();
    assert!(err.contains("expected a bool result, got int"), "{err}");
    assert!(err.contains("`event.data.priority`"), "{err}");
}

#[test]
fn has_subject_follows_presence() {
    let mut ev = event(None);
    let p = Predicate::compile("has(event.subject)").unwrap();
    assert_eq!(p.matches(&ev), Ok(false));
    ev.subject = Some("a.pdf".into());
    assert_eq!(p.matches(&ev), Ok(true));
    let p = Predicate::compile("has(event.data)").unwrap();
    assert_eq!(p.matches(&ev), Ok(false));
    // optional syntax works too
    let p = Predicate::compile("event.?time.orValue('none') == 'none'").unwrap();
    assert_eq!(p.matches(&ev), Ok(true));
}

#[test]
fn event_shape_as_in_json_format() {
    let mut ev = event(Some(Data::Text("hello".into())));
    ev.time = Some("2024-01-01T00:00:00Z".into());
    ev.dataschema = Some("https://s".into());
    ev.extensions
        .insert("partition".into(), ExtValue::Integer(3));
    ev.extensions.insert("flag".into(), ExtValue::Bool(true));
    ev.extensions
        .insert("key".into(), ExtValue::String("k1".into()));
    let v = eval_json("event", &ev).unwrap();
    assert_eq!(
        v,
        json!({"specversion": "1.0", "id": "e1", "source": "/shop", "type": "order.created",
               "time": "2024-01-01T00:00:00Z", "dataschema": "https://s",
               "partition": 3, "flag": true, "key": "k1", "data": "hello"})
    );
    ev.specversion = SpecVersion::V03;
    let v = eval_json("event.schemaurl", &ev).unwrap();
    assert_eq!(v, json!("https://s"));
}

#[test]
fn binary_data_is_bytes_and_json_numbers_are_typed() {
    let ev = event(Some(Data::Binary(Bytes::from_static(b"\x00\x01"))));
    assert_eq!(eval_json("type(event.data) == bytes", &ev), Ok(json!(true)));
    // bytes results become base64 text
    assert_eq!(eval_json("event.data", &ev), Ok(json!("AAE=")));
    let ev = event(Some(Data::Json(
        json!({"i": 5, "f": 1.5, "big": 18446744073709551615u64}),
    )));
    assert_eq!(
        eval_json(
            "[type(event.data.i) == int, type(event.data.f) == double, type(event.data.big) == double]",
            &ev
        ),
        Ok(json!([true, true, true]))
    );
}

#[test]
fn json_roundtrip_and_key_stringification() {
    let ev = event(None);
    assert_eq!(
        eval_json("{1: 'a', true: 'b', 'k': [1u, 2.5, null, b'hi']}", &ev),
        Ok(json!({"1": "a", "true": "b", "k": [1, 2.5, null, "aGk="]}))
    );
    let err = eval_json("1.0 / 0.0", &ev).unwrap_err();
    assert!(err.contains("no JSON representation"), "{err}");
    assert_eq!(
        eval_json("timestamp('2024-01-01T00:00:00Z')", &ev),
        Ok(json!("2024-01-01T00:00:00+00:00"))
    );
}

#[test]
fn extensions_are_available() {
    let ev = event(None);
    assert_eq!(
        eval_json("'a/b'.split('/').map(s, s.upperAscii())", &ev),
        Ok(json!(["A", "B"]))
    );
    assert_eq!(eval_json("base64.encode(b'hi')", &ev), Ok(json!("aGk=")));
    assert_eq!(eval_json("math.greatest(1, 3, 2)", &ev), Ok(json!(3)));
}

#[test]
fn compile_checks_syntax_variables_and_functions() {
    let err = Program::compile("event.id == )", &["event"]).unwrap_err();
    assert!(
        err.starts_with("syntax error at line 1, column 13: mismatched input ')'"),
        "{err}"
    );
    let err = Program::compile("event.id +\n  )", &["event"]).unwrap_err();
    assert!(
        err.starts_with("syntax error at line 2, column 3:"),
        "{err}"
    );

    let err = Program::compile("evnt.id == 'x'", &["event"]).unwrap_err();
    assert_eq!(
        err,
        "line 1, column 1: unknown variable 'evnt' (available: event)"
    );

    let err = Program::compile("event.id.frobnicate()", &["event"]).unwrap_err();
    assert!(err.contains("unknown function 'frobnicate'"), "{err}");
    let err = Program::compile("size(event) > 0 && nope(1)", &["event"]).unwrap_err();
    assert!(err.contains("column 20: unknown function 'nope'"), "{err}");

    // comprehension variables, type names and namespaced functions are fine
    Program::compile(
        "event.data.items.map(i, {'t': i.title}).filter(x, type(x) == map) \
         .all(y, base64.encode(b'a') != '') && int(event.id) > 0",
        &["event"],
    )
    .unwrap();
    // a comprehension variable doesn't leak out of its comprehension
    let err = Program::compile("event.data.map(i, i) == i", &["event"]).unwrap_err();
    assert!(err.contains("unknown variable 'i'"), "{err}");
    // `docs` only where allowed
    assert!(Program::compile("docs", &["event"]).is_err());
    assert!(Program::compile("docs", &["event", "docs"]).is_ok());
}

#[test]
fn compiled_programs_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Predicate>();
    assert_send_sync::<Program>();
    assert_send_sync::<Context<'static, 'static>>();
}
