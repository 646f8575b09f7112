//! Errors of the codec: [`BindingError`] (the public one, 415 or 400 at the ingress), the
//! internal `Fault` a validation step returns before it knows whether it concerns a single
//! event (`attribute "time": ...`) or a batch element (`batch[3].time: ...`), and the helpers
//! that keep messages short (they may end up in a dead-letter header).
//!
//! Pure: no I/O, no HTTP types; knows nothing of status codes (ingress maps the variants).

use serde_json::Value;

/// Why a message was refused. The text is the whole message: ingress puts it in the error body
/// as it is (and maps the variant to a status in `ingress/error.rs`).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BindingError {
    /// Not a CloudEvent at all (no `ce-specversion`, not a cloudevents media type): 415.
    #[error("{0}")]
    NotCloudEvent(String),
    /// A CloudEvent that breaks the spec: 400. The message names the attribute and the rule.
    #[error("{0}")]
    Invalid(String),
}

/// Longest error message produced (the message may end up in a dead-letter header).
pub(super) const MAX_MESSAGE_CHARS: usize = 300;
/// Longest echo of a received value inside an error message.
const MAX_ECHO_CHARS: usize = 60;

/// A validation failure, before it is placed (single event or batch element).
#[derive(Debug)]
pub(super) struct Fault {
    /// The attribute concerned, if any.
    attr: Option<String>,
    /// The rule that was broken, phrased to follow `attribute "x": `.
    rule: String,
}

impl Fault {
    pub(super) fn attr(name: &str, rule: impl Into<String>) -> Self {
        Fault {
            attr: Some(truncate(name, MAX_ECHO_CHARS)),
            rule: rule.into(),
        }
    }

    pub(super) fn general(rule: impl Into<String>) -> Self {
        Fault {
            attr: None,
            rule: rule.into(),
        }
    }

    /// As the error of a single event: `attribute "time": ...`.
    pub(super) fn single(self) -> BindingError {
        BindingError::Invalid(cap(match self.attr {
            Some(attr) => format!("attribute {:?}: {}", attr, self.rule),
            None => self.rule,
        }))
    }

    /// As the error of batch element `index`: `batch[3].time: ...`.
    pub(super) fn in_batch(self, index: usize) -> BindingError {
        BindingError::Invalid(cap(match self.attr {
            Some(attr) if is_plain_name(&attr) => format!("batch[{index}].{attr}: {}", self.rule),
            Some(attr) => format!("batch[{index}].{attr:?}: {}", self.rule),
            None => format!("batch[{index}]: {}", self.rule),
        }))
    }
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

/// A received value, quoted and shortened for an error message.
pub(super) fn echo(s: &str) -> String {
    format!("{:?}", truncate(s, MAX_ECHO_CHARS))
}

pub(super) fn cap(message: String) -> String {
    if message.chars().count() <= MAX_MESSAGE_CHARS {
        message
    } else {
        truncate(&message, MAX_MESSAGE_CHARS - 1)
    }
}

pub(super) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
