//! Media types: the `Content-Type` header, a media type's essence (`type/subtype`, lower-cased,
//! parameters dropped), whether it denotes JSON, the RFC 2046 shape `datacontenttype` must have,
//! and the charset parameter. The CloudEvents media types that select structured and batched
//! mode are here too.
//!
//! Pure: reads an `http::HeaderMap`, nothing else of HTTP; no I/O.

use http::HeaderMap;
use http::header::CONTENT_TYPE;

use super::error::{BindingError, echo};

/// The structured-mode media type of the JSON event format.
pub(super) const STRUCTURED_JSON: &str = "application/cloudevents+json";
/// The batched-mode media type of the JSON event format.
pub(super) const BATCH_JSON: &str = "application/cloudevents-batch+json";

/// Whether a media type (`datacontenttype`) denotes JSON: `*/json` or `*/*+json`, compared
/// case-insensitively, parameters ignored.
pub fn is_json_media_type(media_type: &str) -> bool {
    let essence = media_essence(media_type);
    match essence.split_once('/') {
        Some((_, subtype)) => subtype == "json" || subtype.ends_with("+json"),
        None => false,
    }
}

/// The `Content-Type` header, if present and non-blank. More than one is an error.
pub(super) fn content_type(headers: &HeaderMap) -> Result<Option<String>, BindingError> {
    let mut values = headers.get_all(CONTENT_TYPE).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(BindingError::Invalid(
            "header Content-Type appears more than once; a message has one content type".into(),
        ));
    }
    let text = String::from_utf8_lossy(first.as_bytes()).trim().to_owned();
    Ok((!text.is_empty()).then_some(text))
}

/// `type/subtype` of a media type: lower-cased, parameters and whitespace removed.
pub(super) fn media_essence(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// RFC 2046 shape: `type/subtype` made of tokens, optional parameters, no control characters.
pub(super) fn check_media_type(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{} contains control characters", echo(value)));
    }
    let essence = value.split(';').next().unwrap_or_default().trim();
    let shaped = match essence.split_once('/') {
        Some((ty, sub)) => {
            !ty.is_empty()
                && !sub.is_empty()
                && ty.chars().all(is_tchar)
                && sub.chars().all(is_tchar)
        }
        None => false,
    };
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "{} is not an RFC 2046 media type (expected type/subtype)",
            echo(value)
        ))
    }
}

/// A `charset` parameter other than UTF-8 / US-ASCII: such text is kept as bytes.
pub(super) fn declares_foreign_charset(media_type: &str) -> bool {
    media_type.split(';').skip(1).any(|param| {
        let Some((key, value)) = param.split_once('=') else {
            return false;
        };
        let value = value.trim().trim_matches('"').to_ascii_lowercase();
        key.trim().eq_ignore_ascii_case("charset")
            && !matches!(value.as_str(), "utf-8" | "utf8" | "us-ascii")
    })
}
