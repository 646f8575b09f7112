//! The two ways a mapping fails: [`FieldError`] when a route's CEL does not compile (a config
//! error, listed by `check`), [`MappingError`] when an event cannot be mapped (a 422).
//!
//! Pure: no axum, tonic or tokio; it only knows the compiled [`Program`] whose source an error
//! quotes.

use std::fmt;

use crate::rules::cel::Program;

/// A compile problem in one field of the mapping (`docs`, `parameters`, `endpoint`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// Mapping failed for this event (CEL runtime error, bad document shape): 422.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct MappingError {
    pub field: String,
    pub message: String,
}

impl MappingError {
    pub(super) fn new(field: impl fmt::Display, message: impl Into<String>) -> MappingError {
        MappingError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// A CEL evaluation error of `program` in `field`, quoting the (shortened) source.
pub(super) fn runtime_error(field: &str, program: &Program, error: String) -> MappingError {
    MappingError::new(field, format!("`{}`: {error}", program.short_source()))
}
