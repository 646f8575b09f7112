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
//!
//! Pure and synchronous: no axum, tonic or tokio. Tests: `filter/tests.rs`.

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
mod tests;
