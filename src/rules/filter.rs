//! Knative Trigger filter dialect (`exact`, `prefix`, `suffix`, `all`, `any`, `not`, `cesql`)
//! plus our `cel` predicate, evaluated against an event's attributes and extensions.
//!
//! Semantics follow Knative's `filters` field (the CloudEvents Subscriptions API dialects):
//! `exact`/`prefix`/`suffix` compare one attribute's string value, case-sensitively; an attribute
//! the event does not carry never matches; `all` needs every sub-filter, `any` at least one, `not`
//! inverts. Extension values compare in their canonical string form (`true`, `42`), as they travel
//! in HTTP headers. `cesql` is a CloudEvents SQL expression ([`crate::rules::cesql`]); it matches
//! only when it evaluates to `true` without error. A `cel` or `cesql` evaluation error counts as
//! no match, is logged at debug level, and (CESQL) is counted in
//! [`cesql_evaluation_errors`]. Building filters (and rejecting bad ones) is the config module's
//! job; this module only evaluates them.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::CloudEvent;
use crate::rules::cel::Predicate;
use crate::rules::cesql::Expression;

/// CESQL filter evaluations that ended in an error (and so did not match), process-wide.
static CESQL_EVALUATION_ERRORS: AtomicU64 = AtomicU64::new(0);

/// How many `cesql` filter evaluations failed with an error since the process started (each
/// such event was treated as not matching). A plain counter until metrics are exported.
pub fn cesql_evaluation_errors() -> u64 {
    CESQL_EVALUATION_ERRORS.load(Ordering::Relaxed)
}

/// One compiled filter.
#[derive(Debug)]
pub enum Filter {
    /// The attribute equals `value`.
    Exact { attribute: String, value: String },
    /// The attribute starts with `value`.
    Prefix { attribute: String, value: String },
    /// The attribute ends with `value`.
    Suffix { attribute: String, value: String },
    /// Every sub-filter matches.
    All(Vec<Filter>),
    /// At least one sub-filter matches.
    Any(Vec<Filter>),
    /// The sub-filter does not match.
    Not(Box<Filter>),
    /// A CEL predicate over `event`; an evaluation error counts as no match.
    Cel(Predicate),
    /// A CESQL (CloudEvents SQL) expression; only `true` without an error matches.
    Cesql(Expression),
}

impl Filter {
    pub fn matches(&self, event: &CloudEvent) -> bool {
        self.decide(event, &mut None)
    }

    /// Like [`Filter::matches`], and records in `error` the first `cel`/`cesql` evaluation
    /// error met while deciding (for `flowbridge explain`).
    pub fn decide(&self, event: &CloudEvent, error: &mut Option<String>) -> bool {
        match self {
            Filter::Exact { attribute, value } => {
                attribute_value(event, attribute).is_some_and(|v| v == *value)
            }
            Filter::Prefix { attribute, value } => {
                attribute_value(event, attribute).is_some_and(|v| v.starts_with(value.as_str()))
            }
            Filter::Suffix { attribute, value } => {
                attribute_value(event, attribute).is_some_and(|v| v.ends_with(value.as_str()))
            }
            Filter::All(filters) => filters.iter().all(|f| f.decide(event, error)),
            Filter::Any(filters) => filters.iter().any(|f| f.decide(event, error)),
            Filter::Not(filter) => !filter.decide(event, error),
            Filter::Cel(predicate) => match predicate.matches(event) {
                Ok(matched) => matched,
                Err(e) => {
                    tracing::debug!(
                        event.id = %event.id,
                        cel = %predicate.source,
                        error = %e,
                        "cel filter failed to evaluate; treated as no match"
                    );
                    error.get_or_insert_with(|| e.to_string());
                    false
                }
            },
            Filter::Cesql(expression) => match expression.matches(event) {
                Ok(matched) => matched,
                Err(e) => {
                    CESQL_EVALUATION_ERRORS.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        event.id = %event.id,
                        cesql = %expression,
                        error = %e,
                        "cesql filter failed to evaluate; treated as no match"
                    );
                    error.get_or_insert_with(|| e.to_string());
                    false
                }
            },
        }
    }
}

/// The string value of a context attribute or extension, `None` when the event lacks it.
///
/// `schemaurl` (CloudEvents 0.3) and `dataschema` (1.0) name the same field.
pub fn attribute_value(event: &CloudEvent, name: &str) -> Option<String> {
    match name {
        "specversion" => Some(event.specversion.as_str().to_string()),
        "id" => Some(event.id.clone()),
        "source" => Some(event.source.clone()),
        "type" => Some(event.ty.clone()),
        "subject" => event.subject.clone(),
        "datacontenttype" => event.datacontenttype.clone(),
        "dataschema" | "schemaurl" => event.dataschema.clone(),
        "time" => event.time.clone(),
        other => event.extensions.get(other).map(|v| v.to_canonical()),
    }
}

/// Whether `name` may be used as a filter attribute: lower-case letters and digits, as Knative
/// (and the CloudEvents naming rule) require.
pub fn is_valid_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A compact one-line rendering for `flowbridge check`: `type == "a"`, `source ^= "/shop/"`,
/// `subject $= ".pdf"`, `all(...)`, `any(...)`, `not(...)`, `cel(...)`, `cesql(...)`.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list(f: &mut fmt::Formatter<'_>, name: &str, filters: &[Filter]) -> fmt::Result {
            write!(f, "{name}(")?;
            for (i, filter) in filters.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{filter}")?;
            }
            f.write_str(")")
        }
        match self {
            Filter::Exact { attribute, value } => write!(f, "{attribute} == {value:?}"),
            Filter::Prefix { attribute, value } => write!(f, "{attribute} ^= {value:?}"),
            Filter::Suffix { attribute, value } => write!(f, "{attribute} $= {value:?}"),
            Filter::All(filters) => list(f, "all", filters),
            Filter::Any(filters) => list(f, "any", filters),
            Filter::Not(filter) => write!(f, "not({filter})"),
            Filter::Cel(predicate) => write!(f, "cel({:?})", predicate.source),
            Filter::Cesql(expression) => write!(f, "cesql({:?})", expression.source()),
        }
    }
}

#[cfg(test)]
mod tests {
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
        let f = cesql(
            "type = 'com.example.order.created' AND source LIKE '/shop/%' AND EXISTS subject",
        );
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
}
