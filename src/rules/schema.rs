//! `schema:` on a route: a JSON Schema the event's `data` must satisfy before it is mapped.
//!
//! The schema compiles once at load (an invalid schema is a config error with its path); per
//! event, `data` is validated and a failure names the JSON pointer of the offending value, the
//! rule (keyword) that failed and where that rule sits in the schema. The data validated is what
//! CEL sees as `event.data`: JSON data as is, text as a JSON string, no data as `null`; bytes
//! cannot satisfy a schema. Remote `$ref`s are not fetched (the validator is built without
//! resolvers): a schema must be self-contained, which `check` enforces.
//!
//! Crate: `jsonschema` (drafts 4, 6, 7, 2019-09 and 2020-12; the draft comes from `$schema`,
//! 2020-12 when absent).
//!
//! Pure and synchronous: no axum, tonic or tokio. Tests: `schema/tests.rs`.

use serde_json::Value;

use crate::model::{CloudEvent, Data};

/// Most violations listed in one error message (the total is always given).
const MAX_LISTED: usize = 3;
/// Longest echo of an offending value.
const MAX_ECHO: usize = 80;

/// A compiled schema.
#[derive(Debug)]
pub struct DataSchema {
    validator: jsonschema::Validator,
    /// The file it was read from, if any (a reload watches it).
    file: Option<std::path::PathBuf>,
}

/// One violation: where in the data, which rule, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer into `data` (`""` for the whole value).
    pub pointer: String,
    /// The keyword that failed (`required`, `type`, `minimum`, …).
    pub rule: String,
    /// JSON pointer of that keyword in the schema.
    pub schema_path: String,
    pub message: String,
}

/// Why `data` does not match: the first few violations and how many there were.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.violations, *.total))]
pub struct SchemaMismatch {
    pub violations: Vec<Violation>,
    pub total: usize,
}

fn render(violations: &[Violation], total: usize) -> String {
    let mut out = String::from("data does not match the route's schema: ");
    for (i, v) in violations.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        let at = if v.pointer.is_empty() {
            "data".to_string()
        } else {
            format!("data{}", v.pointer)
        };
        out.push_str(&format!(
            "at {at}: {} (rule {} at schema {})",
            v.message, v.rule, v.schema_path
        ));
    }
    if total > violations.len() {
        out.push_str(&format!(" (and {} more)", total - violations.len()));
    }
    out
}

impl DataSchema {
    /// Compile `schema`; the error says what is wrong with it and where.
    pub fn compile(schema: &Value) -> Result<DataSchema, String> {
        if !matches!(schema, Value::Object(_) | Value::Bool(_)) {
            return Err(format!(
                "a JSON Schema is an object (or true/false), found {}",
                kind(schema)
            ));
        }
        jsonschema::validator_for(schema)
            .map(|validator| DataSchema {
                validator,
                file: None,
            })
            .map_err(|e| {
                let at = e.instance_path().to_string();
                let at = if at.is_empty() { "/".to_string() } else { at };
                format!("invalid JSON Schema at {at}: {e}")
            })
    }

    /// This schema, read from `file`.
    pub fn from_file(self, file: impl Into<std::path::PathBuf>) -> DataSchema {
        DataSchema {
            file: Some(file.into()),
            ..self
        }
    }

    /// The file the schema was read from.
    pub fn file(&self) -> Option<&std::path::Path> {
        self.file.as_deref()
    }

    /// Check the event's data.
    pub fn check(&self, event: &CloudEvent) -> Result<(), SchemaMismatch> {
        let owned;
        let data: &Value = match &event.data {
            None => &Value::Null,
            Some(Data::Json(value)) => value,
            Some(Data::Text(text)) => {
                owned = Value::String(text.clone());
                &owned
            }
            Some(Data::Binary(bytes)) => {
                return Err(SchemaMismatch {
                    violations: vec![Violation {
                        pointer: String::new(),
                        rule: "type".to_string(),
                        schema_path: String::new(),
                        message: format!(
                            "data is {} bytes of {}, not JSON or text; a schema validates JSON",
                            bytes.len(),
                            event
                                .datacontenttype
                                .as_deref()
                                .unwrap_or("application/octet-stream")
                        ),
                    }],
                    total: 1,
                });
            }
        };
        if self.validator.is_valid(data) {
            return Ok(());
        }
        let mut violations = Vec::new();
        let mut total = 0;
        for error in self.validator.iter_errors(data) {
            total += 1;
            if violations.len() < MAX_LISTED {
                violations.push(Violation {
                    pointer: error.instance_path().to_string(),
                    rule: error.kind().keyword().to_string(),
                    schema_path: error.schema_path().to_string(),
                    message: shorten(&error.to_string()),
                });
            }
        }
        Err(SchemaMismatch { violations, total })
    }
}

fn shorten(message: &str) -> String {
    if message.chars().count() <= MAX_ECHO * 2 {
        return message.to_string();
    }
    let cut: String = message.chars().take(MAX_ECHO * 2).collect();
    format!("{cut}…")
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
