//! Tests of route filters: exact, prefix, suffix, all/any/not, CESQL and CEL, and how each
//! renders for `check` and `explain`.

use std::collections::BTreeMap;

use super::*;
use crate::model::{ExtValue, SpecVersion};

fn event() -> CloudEvent {
    let mut extensions = BTreeMap::new();
    extensions.insert("key".to_string(), ExtValue::String("user-42".into()));
    extensions.insert("partition".to_string(), ExtValue::Integer(3));
    extensions.insert("sampled".to_string(), ExtValue::Bool(true));
    CloudEvent {
        specversion: SpecVersion::V10,
        id: "e-1".into(),
        source: "/shop/eu".into(),
        ty: "com.example.order.created".into(),
        datacontenttype: Some("application/json".into()),
        dataschema: None,
        subject: Some("invoice.pdf".into()),
        time: Some("2024-05-01T10:00:00Z".into()),
        extensions,
        data: None,
    }
}

fn exact(attribute: &str, value: &str) -> Filter {
    Filter::Exact {
        attribute: attribute.into(),
        value: value.into(),
    }
}

fn prefix(attribute: &str, value: &str) -> Filter {
    Filter::Prefix {
        attribute: attribute.into(),
        value: value.into(),
    }
}

fn suffix(attribute: &str, value: &str) -> Filter {
    Filter::Suffix {
        attribute: attribute.into(),
        value: value.into(),
    }
}

#[test]
fn exact_compares_whole_value_case_sensitively() {
    let e = event();
    assert!(exact("type", "com.example.order.created").matches(&e));
    assert!(!exact("type", "com.example.order").matches(&e));
    assert!(!exact("type", "COM.example.order.created").matches(&e));
    assert!(exact("specversion", "1.0").matches(&e));
    assert!(exact("id", "e-1").matches(&e));
    assert!(exact("time", "2024-05-01T10:00:00Z").matches(&e));
    assert!(exact("datacontenttype", "application/json").matches(&e));
}

#[test]
fn prefix_and_suffix() {
    let e = event();
    assert!(prefix("source", "/shop/").matches(&e));
    assert!(!prefix("source", "/store/").matches(&e));
    assert!(suffix("subject", ".pdf").matches(&e));
    assert!(!suffix("subject", ".png").matches(&e));
}

#[test]
fn extensions_compare_in_canonical_string_form() {
    let e = event();
    assert!(exact("key", "user-42").matches(&e));
    assert!(exact("partition", "3").matches(&e));
    assert!(exact("sampled", "true").matches(&e));
    assert!(prefix("key", "user-").matches(&e));
    assert!(!exact("partition", "4").matches(&e));
}

#[test]
fn missing_attribute_never_matches() {
    let mut e = event();
    e.subject = None;
    assert!(!exact("subject", "invoice.pdf").matches(&e));
    assert!(!suffix("subject", "").matches(&e));
    assert!(!exact("dataschema", "x").matches(&e));
    assert!(!prefix("nosuchext", "").matches(&e));
    // ...but `not` of a filter on a missing attribute does.
    assert!(Filter::Not(Box::new(exact("subject", "draft"))).matches(&e));
}

#[test]
fn schemaurl_and_dataschema_are_the_same_field() {
    let mut e = event();
    e.specversion = SpecVersion::V03;
    e.dataschema = Some("https://example.com/s.json".into());
    assert!(exact("schemaurl", "https://example.com/s.json").matches(&e));
    assert!(exact("dataschema", "https://example.com/s.json").matches(&e));
    assert!(exact("specversion", "0.3").matches(&e));
}

#[test]
fn all_any_not_combine() {
    let e = event();
    let all = Filter::All(vec![
        exact("type", "com.example.order.created"),
        prefix("source", "/shop/"),
    ]);
    assert!(all.matches(&e));
    let all_one_fails = Filter::All(vec![
        exact("type", "com.example.order.created"),
        prefix("source", "/store/"),
    ]);
    assert!(!all_one_fails.matches(&e));

    let any = Filter::Any(vec![
        suffix("subject", ".png"),
        Filter::Not(Box::new(exact("subject", "draft"))),
    ]);
    assert!(any.matches(&e));
    let any_none = Filter::Any(vec![suffix("subject", ".png"), exact("key", "other")]);
    assert!(!any_none.matches(&e));

    assert!(!Filter::Not(Box::new(all)).matches(&e));
    assert!(Filter::Not(Box::new(any_none)).matches(&e));
}

#[test]
fn cel_evaluation_error_is_no_match() {
    // `event.nosuchfield` does not exist, so evaluation fails; the filter must say "no".
    let predicate = Predicate::compile("event.nosuchfield == 1").expect("compiles");
    let filter = Filter::Cel(predicate);
    assert!(!filter.matches(&event()));
    assert!(Filter::Not(Box::new(filter)).matches(&event()));
}

fn cesql(source: &str) -> Filter {
    Filter::Cesql(Expression::compile(source).expect("compiles"))
}

#[test]
fn cesql_matches_like_a_knative_trigger() {
    let e = event();
    let f =
        cesql("type = 'com.example.order.created' AND source LIKE '/shop/%' AND EXISTS subject");
    assert!(f.matches(&e));
    let mut other = event();
    other.source = "/store/eu".into();
    assert!(!f.matches(&other));
    assert!(cesql("partition > 2 AND sampled AND key LIKE 'user-%'").matches(&e));
    assert!(!cesql("'not a boolean'").matches(&e));
}

#[test]
fn cesql_evaluation_error_is_no_match_and_counted() {
    let mut e = event();
    e.subject = None;
    let f = cesql("subject = 'invoice.pdf' OR TRUE");
    let before = cesql_evaluation_errors();
    let mut error = None;
    assert!(!f.decide(&e, &mut error));
    assert!(cesql_evaluation_errors() > before);
    let error = error.expect("the error is reported");
    assert!(error.contains("subject"), "{error}");
    assert!(error.contains("line 1, column 1"), "{error}");
    // As with CEL, `not` of a failed filter matches.
    assert!(Filter::Not(Box::new(f)).matches(&e));
}

#[test]
fn display_is_compact() {
    let f = Filter::All(vec![
        exact("type", "a"),
        Filter::Any(vec![
            suffix("subject", ".pdf"),
            Filter::Not(Box::new(prefix("source", "/x"))),
        ]),
    ]);
    assert_eq!(
        f.to_string(),
        r#"all(type == "a", any(subject $= ".pdf", not(source ^= "/x")))"#
    );
    assert_eq!(cesql("type = 'a'").to_string(), r#"cesql("type = 'a'")"#);
}

#[test]
fn attribute_names() {
    assert!(is_valid_attribute_name("type"));
    assert!(is_valid_attribute_name("kafkaheaderx1"));
    assert!(!is_valid_attribute_name("Type"));
    assert!(!is_valid_attribute_name("my-ext"));
    assert!(!is_valid_attribute_name(""));
}
