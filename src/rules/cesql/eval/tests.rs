//! Tests of CESQL evaluation: attribute lookup, casts, operators and the errors they raise.

use std::collections::BTreeMap;

use super::super::{Evaluation, Expression};
use super::*;
use crate::model::SpecVersion;

fn event() -> CloudEvent {
    let mut extensions = BTreeMap::new();
    extensions.insert("seq".to_string(), ExtValue::String("10".into()));
    extensions.insert("big".to_string(), ExtValue::Integer(1 << 40));
    extensions.insert("n".to_string(), ExtValue::Integer(7));
    extensions.insert("flag".to_string(), ExtValue::Bool(true));
    CloudEvent {
        specversion: SpecVersion::V10,
        id: "e-1".into(),
        source: "/shop/eu".into(),
        ty: "com.example.order.created".into(),
        datacontenttype: None,
        dataschema: None,
        subject: Some("invoice.pdf".into()),
        time: None,
        extensions,
        data: None,
    }
}

fn run(src: &str) -> Evaluation {
    Expression::parse(src).expect("parses").evaluate(&event())
}

fn ok(src: &str) -> Value<'static> {
    let e = run(src);
    assert!(e.errors.is_empty(), "{src}: {:?}", e.errors);
    e.value
}

fn kinds(src: &str) -> (Value<'static>, Vec<ErrorKind>) {
    let e = run(src);
    (e.value, e.errors.iter().map(|e| e.kind).collect())
}

#[test]
fn attributes_and_typed_extensions() {
    assert_eq!(ok("type"), Value::Str("com.example.order.created".into()));
    assert_eq!(ok("n + 1"), Value::Int(8));
    assert_eq!(ok("seq = 10"), Value::Bool(true));
    assert_eq!(ok("flag AND TRUE"), Value::Bool(true));
    assert_eq!(ok("big"), Value::Str("1099511627776".into()));
    assert_eq!(ok("specversion = '1.0'"), Value::Bool(true));
    assert_eq!(ok("EXISTS subject AND NOT EXISTS time"), Value::Bool(true));
}

#[test]
fn missing_attribute_zeroes_the_enclosing_subexpression() {
    assert_eq!(
        kinds("time"),
        (Value::Bool(false), vec![ErrorKind::MissingAttribute])
    );
    assert_eq!(
        kinds("NOT (time = 'x')"),
        (Value::Bool(false), vec![ErrorKind::MissingAttribute])
    );
    assert_eq!(
        kinds("LENGTH(time)"),
        (Value::Int(0), vec![ErrorKind::MissingAttribute])
    );
    let e = run("type = 'a' OR\n  nope = 1");
    assert_eq!(e.errors[0].pos, Pos { line: 2, column: 3 });
    assert!(e.errors[0].message.contains("nope"), "{:?}", e.errors);
}

#[test]
fn casts_and_their_errors() {
    assert_eq!(kinds("'x' + 1"), (Value::Int(1), vec![ErrorKind::Cast]));
    assert_eq!(
        kinds("1 AND TRUE"),
        (Value::Bool(false), vec![ErrorKind::Cast])
    );
    // `=` casts the left operand to the right one's type.
    assert_eq!(
        kinds("1 = TRUE"),
        (Value::Bool(false), vec![ErrorKind::Cast])
    );
    assert_eq!(ok("TRUE = 1"), Value::Bool(true));
    assert_eq!(ok("'TRUE' = true"), Value::Bool(true));
    assert_eq!(ok("true = 'TRUE'"), Value::Bool(false));
    assert_eq!(ok("BOOL(10)"), Value::Bool(true));
    assert_eq!(
        ok("IS_INT('-3') AND NOT IS_INT('x') AND IS_BOOL('False')"),
        Value::Bool(true)
    );
}

#[test]
fn arithmetic_overflow_is_a_math_error() {
    assert_eq!(
        kinds("2147483647 + 1"),
        (Value::Int(0), vec![ErrorKind::Math])
    );
    assert_eq!(
        kinds("-2147483648 / -1"),
        (Value::Int(0), vec![ErrorKind::Math])
    );
    assert_eq!(ok("-7 % 3"), Value::Int(-1));
    assert_eq!(ok("-7 / 2"), Value::Int(-3));
}

#[test]
fn short_circuit_skips_errors_on_the_right() {
    assert_eq!(ok("type = 'no' AND nope = 1"), Value::Bool(false));
    assert_eq!(ok("EXISTS id OR 1 / 0 = 1"), Value::Bool(true));
    assert_eq!(
        kinds("nope = 1 OR TRUE"),
        (Value::Bool(false), vec![ErrorKind::MissingAttribute])
    );
}

#[test]
fn filter_view() {
    let e = event();
    let m = |s: &str| Expression::compile(s).expect("compiles").matches(&e);
    assert_eq!(
        m("type = 'com.example.order.created' AND source LIKE '/shop/%' AND EXISTS subject"),
        Ok(true)
    );
    assert_eq!(m("source LIKE '/store/%'"), Ok(false));
    assert_eq!(m("'abc'"), Ok(false), "a non-Boolean result never matches");
    let err = m("time = 'x'").expect_err("missing attribute");
    assert_eq!(err.kind, ErrorKind::MissingAttribute);
    assert_eq!(m("n IN ('7', 'x')"), Ok(true));
}
