//! The HTTP protocol binding: the content mode from `Content-Type` ([`detect_mode`]), the
//! [`decode`] entry point for a request or response, binary mode both ways (`ce-*` headers with
//! their percent-encoding, the body read by its content type or, when that does not say,
//! by looking at it: [`Inferred`]) and the body of a plain webhook request ([`plain_body`]).
//! Structured and batched bodies go to the JSON format (`json.rs`).
//!
//! Pure: `http::HeaderMap`/`HeaderValue` and `bytes::Bytes` in, events out; no axum, no tokio,
//! no I/O, nothing of routes, config or metrics.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode, utf8_percent_encode};
use serde_json::Value;

use super::attributes::{Partial, check_name, parse_specversion, string_attributes};
use super::error::{BindingError, Fault, cap, echo};
use super::json::{decode_batch, decode_structured};
use super::media::{
    BATCH_JSON, STRUCTURED_JSON, check_media_type, content_type, declares_foreign_charset,
    is_json_media_type, media_essence,
};
use crate::model::{CloudEvent, Data, ExtValue, SpecVersion};

/// How the event(s) arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Binary,
    Structured,
    Batched,
}

/// Result of decoding one HTTP message.
#[derive(Debug)]
pub struct Decoded {
    pub mode: Mode,
    pub events: Vec<CloudEvent>,
    /// Things accepted but worth a log line (e.g. extension names longer than 20 chars).
    pub warnings: Vec<String>,
    /// Binary-mode bodies whose content type did not say how to read them (absent, or JSON that
    /// does not parse), and how they were read instead; at most one (binary mode is one event).
    pub inferred: Option<Inferred>,
}

/// A body read by looking at it, because its content type did not settle how: absent (the
/// Python SDK's `to_binary`, a PingSource without `contentType`) or JSON that does not parse
/// (the JavaScript SDK labels string data `application/json` without quoting it). The event
/// keeps the `datacontenttype` it arrived with (none, or the JSON one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inferred {
    /// What the content type said.
    pub declared: Declared,
    /// How the body was read.
    pub read_as: ReadAs,
}

/// The content type behind an [`Inferred`] reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declared {
    /// No `Content-Type` (nor `ce-datacontenttype`).
    None,
    /// A JSON media type over a body that is not JSON.
    Json,
}

/// How an [`Inferred`] body was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAs {
    Json,
    Text,
    Bytes,
}

impl Declared {
    pub fn as_str(self) -> &'static str {
        match self {
            Declared::None => "none",
            Declared::Json => "json",
        }
    }
}

impl ReadAs {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadAs::Json => "json",
            ReadAs::Text => "text",
            ReadAs::Bytes => "bytes",
        }
    }
}

/// Bytes the binding says to percent-encode: space, `"`, `%` and everything outside U+0021–U+007E
/// (non-ASCII bytes are always encoded by `percent_encoding`).
const HEADER_ENCODE_SET: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'%');

/// Decode an HTTP message (request or response) into events.
pub fn decode(headers: &HeaderMap, body: &Bytes) -> Result<Decoded, BindingError> {
    let mode = detect_mode(headers)?;
    let mut warnings = Vec::new();
    let mut inferred = None;
    let events = match mode {
        Mode::Binary => vec![decode_binary(headers, body, &mut warnings, &mut inferred)?],
        Mode::Structured => vec![decode_structured(body, &mut warnings)?],
        Mode::Batched => decode_batch(body, &mut warnings)?,
    };
    Ok(Decoded {
        mode,
        events,
        warnings,
        inferred,
    })
}

/// The content mode of a message, from its `Content-Type` alone (case-insensitive, parameters
/// ignored). Unsupported CloudEvents formats (e.g. `+avro`) are [`BindingError::NotCloudEvent`].
/// Whether a binary message really is a CloudEvent (`ce-specversion`) is checked by [`decode`].
pub fn detect_mode(headers: &HeaderMap) -> Result<Mode, BindingError> {
    let Some(content_type) = content_type(headers)? else {
        return Ok(Mode::Binary);
    };
    let essence = media_essence(&content_type);
    if essence.starts_with("application/cloudevents-batch") {
        if essence == BATCH_JSON {
            return Ok(Mode::Batched);
        }
        return Err(BindingError::NotCloudEvent(cap(format!(
            "unsupported CloudEvents batch format {}: only {BATCH_JSON} is supported",
            echo(&essence)
        ))));
    }
    if essence.starts_with("application/cloudevents") {
        if essence == STRUCTURED_JSON {
            return Ok(Mode::Structured);
        }
        return Err(BindingError::NotCloudEvent(cap(format!(
            "unsupported CloudEvents event format {}: only {STRUCTURED_JSON} is supported",
            echo(&essence)
        ))));
    }
    Ok(Mode::Binary)
}

/// The body of a plain (non-CloudEvents) request as event data, read by its `Content-Type` like
/// a binary-mode body (JSON parsed, `text/*` as text, anything else as bytes; without a content
/// type, JSON if it parses, else text, else bytes): the content type and the data. Used by
/// webhooks, which stay strict where a CloudEvent is lenient: a
/// body that breaks its JSON content type is invalid (a plain webhook sender has no dead-letter
/// sink to lose it to, and a broken body there is a sender bug worth a 400).
pub fn plain_body(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Option<String>, Option<Data>), BindingError> {
    let content_type = content_type(headers)?;
    if let Some(ct) = &content_type {
        check_media_type(ct).map_err(|rule| Fault::attr("datacontenttype", rule).single())?;
    }
    let mut inferred = None;
    let data = binary_data(content_type.as_deref(), body, &mut inferred).map_err(Fault::single)?;
    if let (
        Some(ct),
        Some(Inferred {
            declared: Declared::Json,
            ..
        }),
    ) = (&content_type, inferred)
    {
        let error = serde_json::from_slice::<Value>(body).err();
        let why = error.map(|e| format!(": {e}")).unwrap_or_default();
        return Err(Fault::attr(
            "datacontenttype",
            format!("{} says JSON but the body is not valid JSON{why}", echo(ct)),
        )
        .single());
    }
    Ok((content_type, data))
}

/// Binary-mode encoding: `ce-*` headers (percent-encoded per the binding), `Content-Type` from
/// `datacontenttype`, and the body.
///
/// Without `datacontenttype`, JSON data gets `Content-Type: application/json` (the JSON format's
/// default made explicit), text data `text/plain; charset=utf-8` and binary data
/// `application/octet-stream` (without a content type, receivers read a body as JSON or text when
/// it looks like one, as [`decode`] does).
/// Attributes whose names cannot be header names are skipped (events built by [`decode`] never
/// have such names).
pub fn encode_binary(event: &CloudEvent) -> (HeaderMap, Bytes) {
    let mut headers = HeaderMap::new();
    let mut put = |name: &str, value: &str| {
        let encoded = utf8_percent_encode(value, HEADER_ENCODE_SET).to_string();
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(format!("ce-{name}").as_bytes()),
            HeaderValue::from_str(&encoded),
        ) {
            headers.insert(name, value);
        }
    };
    for (name, value) in string_attributes(event) {
        put(name, value);
    }
    for (name, value) in &event.extensions {
        put(name, &value.to_canonical());
    }
    let content_type = match (&event.datacontenttype, &event.data) {
        (Some(ct), _) => Some(ct.as_str()),
        (None, Some(Data::Json(_))) => Some("application/json"),
        (None, Some(Data::Text(_))) => Some("text/plain; charset=utf-8"),
        (None, Some(Data::Binary(_))) => Some("application/octet-stream"),
        (None, None) => None,
    };
    if let Some(value) = content_type.and_then(|ct| HeaderValue::from_bytes(ct.as_bytes()).ok()) {
        headers.insert(CONTENT_TYPE, value);
    }
    let body = match &event.data {
        None => Bytes::new(),
        Some(Data::Json(v)) => Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
        Some(Data::Text(s)) => Bytes::from(s.clone()),
        Some(Data::Binary(b)) => b.clone(),
    };
    (headers, body)
}

/// Undo an RFC 7230 quoted-string (only if the value is one, well-formed), then one round of
/// lenient percent-decoding (a `%` not followed by two hex digits stays), then require UTF-8.
fn decode_header_value(raw: &[u8]) -> Result<String, String> {
    let unquoted = unquote(raw);
    let bytes: Vec<u8> = percent_decode(unquoted.as_deref().unwrap_or(raw)).collect();
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let byte = e.as_bytes().get(at).copied().unwrap_or_default();
        format!("header value is not valid UTF-8 after percent-decoding (byte 0x{byte:02X} at offset {at})")
    })
}

/// The content of a well-formed quoted-string with quoted-pairs resolved; `None` otherwise.
fn unquote(raw: &[u8]) -> Option<Vec<u8>> {
    let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    let mut out = Vec::with_capacity(inner.len());
    let mut bytes = inner.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => out.push(*bytes.next()?),
            b'"' => return None,
            _ => out.push(b),
        }
    }
    Some(out)
}

fn decode_binary(
    headers: &HeaderMap,
    body: &Bytes,
    warnings: &mut Vec<String>,
    inferred: &mut Option<Inferred>,
) -> Result<CloudEvent, BindingError> {
    let content_type = content_type(headers)?;
    if !headers.contains_key("ce-specversion") {
        return Err(BindingError::NotCloudEvent(cap(match &content_type {
            Some(ct) => format!(
                "not a CloudEvent: no ce-specversion header and Content-Type {} is not a \
                 CloudEvents media type",
                echo(ct)
            ),
            None => "not a CloudEvent: no ce-specversion header and no Content-Type".into(),
        })));
    }
    binary_event(headers, content_type, body, warnings, inferred).map_err(Fault::single)
}

fn binary_event(
    headers: &HeaderMap,
    content_type: Option<String>,
    body: &Bytes,
    warnings: &mut Vec<String>,
    inferred: &mut Option<Inferred>,
) -> Result<CloudEvent, Fault> {
    let mut attrs: BTreeMap<&str, String> = BTreeMap::new();
    for name in headers.keys() {
        let Some(attr) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        let mut values = headers.get_all(name).iter();
        let count = headers.get_all(name).iter().count();
        if count > 1 {
            return Err(Fault::attr(
                attr,
                format!(
                    "header ce-{attr} appears {count} times; an attribute appears at most once"
                ),
            ));
        }
        if let Some(value) = values.next() {
            let decoded =
                decode_header_value(value.as_bytes()).map_err(|r| Fault::attr(attr, r))?;
            attrs.insert(attr, decoded);
        }
    }

    let spec = parse_specversion(attrs.remove("specversion").as_deref().unwrap_or_default())?;
    let mut partial = Partial::new(spec);

    let header_dct = attrs.remove("datacontenttype");
    let dct = match (content_type, header_dct) {
        (Some(ct), Some(_)) => {
            warnings.push(
                "both Content-Type and ce-datacontenttype present; the binding forbids \
                 ce-datacontenttype, Content-Type was used"
                    .into(),
            );
            Some(ct)
        }
        (None, Some(header)) => {
            warnings.push(
                "ce-datacontenttype header used as the content type; binary mode carries it in \
                 Content-Type"
                    .into(),
            );
            Some(header)
        }
        (ct, None) => ct,
    };
    if let Some(dct) = dct {
        partial.set_core("datacontenttype", dct)?;
    }

    for (name, value) in attrs {
        if partial.is_core(name) {
            if name == "datacontentencoding" {
                warnings.push(
                    "ce-datacontentencoding ignored: in binary mode the body is the raw data"
                        .into(),
                );
            }
            partial.set_core(name, value)?;
        } else if spec == SpecVersion::V03
            && name.contains('-')
            && name.split('-').all(|part| check_name(part, spec).is_ok())
        {
            warnings.push(format!(
                "header ce-{name} ignored: flattened CloudEvents 0.3 map attributes are not \
                 supported"
            ));
        } else {
            partial.set_extension(name, ExtValue::String(value), warnings)?;
        }
    }

    let data = binary_data(partial.datacontenttype.as_deref(), body, inferred)?;
    partial.finish(data, " (no ce- header for it)")
}

/// Interpret a binary-mode body according to its content type.
///
/// Two cases are read by looking at the body, the way the Python SDK's receiver (and sdk-go,
/// which registers its JSON codec for an empty content type) reads them, and reported in
/// `inferred`:
/// * no content type: JSON if it parses, else UTF-8 text, else bytes (the JSON event format
///   implies `application/json` when `datacontenttype` is omitted; binary mode now agrees);
/// * a JSON content type over a body that does not parse (the JavaScript SDK's `HTTP.binary`
///   sends string data unquoted as `application/json`): the text, or bytes if not UTF-8. The
///   event's attributes are valid, and a 400 would make Knative dead-letter it.
fn binary_data(
    dct: Option<&str>,
    body: &Bytes,
    inferred: &mut Option<Inferred>,
) -> Result<Option<Data>, Fault> {
    if body.is_empty() {
        return Ok(None);
    }
    let Some(dct) = dct else {
        let (data, read_as) = match serde_json::from_slice(body) {
            Ok(value) => (Data::Json(value), ReadAs::Json),
            Err(_) => text_or_bytes(body),
        };
        *inferred = Some(Inferred {
            declared: Declared::None,
            read_as,
        });
        return Ok(Some(data));
    };
    if is_json_media_type(dct) {
        return Ok(Some(match serde_json::from_slice(body) {
            Ok(value) => Data::Json(value),
            Err(_) => {
                let (data, read_as) = text_or_bytes(body);
                *inferred = Some(Inferred {
                    declared: Declared::Json,
                    read_as,
                });
                data
            }
        }));
    }
    if media_essence(dct).starts_with("text/") {
        return match std::str::from_utf8(body) {
            Ok(text) => Ok(Some(Data::Text(text.to_owned()))),
            Err(_) if declares_foreign_charset(dct) => Ok(Some(Data::Binary(body.clone()))),
            Err(e) => Err(Fault::attr(
                "datacontenttype",
                format!(
                    "{} is text but the body is not valid UTF-8 (at byte {})",
                    echo(dct),
                    e.valid_up_to()
                ),
            )),
        };
    }
    Ok(Some(Data::Binary(body.clone())))
}

/// A body that is not JSON: its UTF-8 text, or its bytes.
fn text_or_bytes(body: &Bytes) -> (Data, ReadAs) {
    match std::str::from_utf8(body) {
        Ok(text) => (Data::Text(text.to_owned()), ReadAs::Text),
        Err(_) => (Data::Binary(body.clone()), ReadAs::Bytes),
    }
}
