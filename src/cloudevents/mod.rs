//! The CloudEvents HTTP protocol binding (1.0 and 0.3): mode detection from `Content-Type`,
//! binary-mode header decoding, the JSON event format (structured and batched) and validation.
//! Also encodes events to binary mode (for reply events and `flowbridge send`).
//!
//! Pure: only `http`, `bytes` and `serde_json` types; no I/O, no axum.
//!
//! Decisions where the specs leave room (or where Knative's senders break them):
//! * Mode comes from `Content-Type` only (case-insensitive, parameters ignored, batch checked
//!   first). A CloudEvents media type with a format other than JSON is answered with
//!   [`BindingError::NotCloudEvent`] (415) instead of being forwarded as binary.
//! * Binary header values are decoded per the binding (unquote an RFC 7230 quoted-string, then one
//!   round of percent-decoding, the result must be UTF-8), but the raw UTF-8 bytes, literal spaces
//!   and stray `%` that sdk-go / sdk-java senders emit are accepted as they are. A value that a Go
//!   sender meant literally but that happens to contain `%XY` is decoded; that ambiguity is
//!   inherent in the wire format.
//! * `ce-datacontenttype` next to `Content-Type` is tolerated: `Content-Type` wins and a warning
//!   is returned. `ce-datacontenttype` alone is used as the content type (with a warning).
//! * `ce-datacontentencoding` (0.3) in binary mode is ignored with a warning: the body is the raw
//!   data. Flattened 0.3 map headers (`ce-x-y`) are ignored with a warning (no Map type here).
//! * `"data": null` in the JSON format means "no data", like `null` for every attribute.
//! * A `data` member that is not a string while `datacontenttype` is not JSON is rejected (the
//!   JSON format allows either; rejecting keeps `Data` unambiguous).
//! * `source` is only checked for being non-empty (URI-reference syntax is not enforced, matching
//!   sdk-go); control characters inside string values are not rejected.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode, utf8_percent_encode};
use serde_json::{Map, Value};

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
const MAX_MESSAGE_CHARS: usize = 300;
/// Longest echo of a received value inside an error message.
const MAX_ECHO_CHARS: usize = 60;
/// Recommended maximum attribute name length; longer names only produce a warning.
const RECOMMENDED_NAME_CHARS: usize = 20;

const STRUCTURED_JSON: &str = "application/cloudevents+json";
const BATCH_JSON: &str = "application/cloudevents-batch+json";

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
        Mode::Structured => {
            let value = parse_body_json(body, "structured")?;
            vec![parse_event(&value, &mut warnings).map_err(Fault::single)?]
        }
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

/// Parse one event in the JSON event format (a structured-mode body or a batch element).
pub fn from_json(value: &serde_json::Value) -> Result<CloudEvent, BindingError> {
    parse_event(value, &mut Vec::new()).map_err(Fault::single)
}

/// Whether a media type (`datacontenttype`) denotes JSON: `*/json` or `*/*+json`, compared
/// case-insensitively, parameters ignored.
pub fn is_json_media_type(media_type: &str) -> bool {
    let essence = media_essence(media_type);
    match essence.split_once('/') {
        Some((_, subtype)) => subtype == "json" || subtype.ends_with("+json"),
        None => false,
    }
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

/// The context attributes both encodings write as strings, in spec order: the required ones, then
/// `dataschema` (`schemaurl` in 0.3), `subject` and `time` when set. `datacontenttype` is not
/// among them (binary mode carries it as `Content-Type`), nor are extensions.
fn string_attributes(event: &CloudEvent) -> impl Iterator<Item = (&'static str, &str)> {
    [
        ("specversion", Some(event.specversion.as_str())),
        ("id", Some(event.id.as_str())),
        ("source", Some(event.source.as_str())),
        ("type", Some(event.ty.as_str())),
        (
            schema_attribute(event.specversion),
            event.dataschema.as_deref(),
        ),
        ("subject", event.subject.as_deref()),
        ("time", event.time.as_deref()),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| (name, v)))
}

/// The JSON event format of an event (what structured mode sends).
pub fn to_json(event: &CloudEvent) -> serde_json::Value {
    let mut obj = Map::new();
    for (name, value) in string_attributes(event) {
        obj.insert(name.to_owned(), Value::String(value.to_owned()));
    }
    if let Some(v) = &event.datacontenttype {
        obj.insert("datacontenttype".to_owned(), Value::String(v.clone()));
    }
    for (name, value) in &event.extensions {
        obj.insert(name.clone(), value.to_json());
    }
    match &event.data {
        None => {}
        Some(Data::Json(v)) => {
            obj.insert("data".into(), v.clone());
        }
        Some(Data::Text(s)) => {
            obj.insert("data".into(), Value::String(s.clone()));
        }
        Some(Data::Binary(b)) => {
            let encoded = Value::String(STANDARD.encode(b));
            match event.specversion {
                SpecVersion::V10 => {
                    obj.insert("data_base64".into(), encoded);
                }
                SpecVersion::V03 => {
                    obj.insert("datacontentencoding".into(), "base64".into());
                    obj.insert("data".into(), encoded);
                }
            }
        }
    }
    Value::Object(obj)
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

// ---------------------------------------------------------------------------------------------
// Errors

/// A validation failure, before it is placed (single event or batch element).
#[derive(Debug)]
struct Fault {
    /// The attribute concerned, if any.
    attr: Option<String>,
    /// The rule that was broken, phrased to follow `attribute "x": `.
    rule: String,
}

impl Fault {
    fn attr(name: &str, rule: impl Into<String>) -> Self {
        Fault {
            attr: Some(truncate(name, MAX_ECHO_CHARS)),
            rule: rule.into(),
        }
    }

    fn general(rule: impl Into<String>) -> Self {
        Fault {
            attr: None,
            rule: rule.into(),
        }
    }

    /// As the error of a single event: `attribute "time": ...`.
    fn single(self) -> BindingError {
        BindingError::Invalid(cap(match self.attr {
            Some(attr) => format!("attribute {:?}: {}", attr, self.rule),
            None => self.rule,
        }))
    }

    /// As the error of batch element `index`: `batch[3].time: ...`.
    fn in_batch(self, index: usize) -> BindingError {
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
fn echo(s: &str) -> String {
    format!("{:?}", truncate(s, MAX_ECHO_CHARS))
}

fn cap(message: String) -> String {
    if message.chars().count() <= MAX_MESSAGE_CHARS {
        message
    } else {
        truncate(&message, MAX_MESSAGE_CHARS - 1)
    }
}

fn json_kind(value: &Value) -> &'static str {
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

// ---------------------------------------------------------------------------------------------
// Media types

/// The `Content-Type` header, if present and non-blank. More than one is an error.
fn content_type(headers: &HeaderMap) -> Result<Option<String>, BindingError> {
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
fn media_essence(media_type: &str) -> String {
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
fn check_media_type(value: &str) -> Result<(), String> {
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

// ---------------------------------------------------------------------------------------------
// Attribute values

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, with range checks.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |from: usize, to: usize| -> Option<u32> {
        let part = b.get(from..to)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(part.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
    };
    let at = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        digits(0, 4),
        digits(5, 7),
        digits(8, 10),
        digits(11, 13),
        digits(14, 16),
        digits(17, 19),
    ) else {
        return false;
    };
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt") && at(13, b":") && at(16, b":")) {
        return false;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > month_days || hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut i = 19;
    if at(i, b".") {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i..) {
        Some(b"Z") | Some(b"z") => true,
        Some([sign, _, _, b':', _, _]) if *sign == b'+' || *sign == b'-' => {
            matches!((digits(i + 1, i + 3), digits(i + 4, i + 6)), (Some(h), Some(m)) if h <= 23 && m <= 59)
        }
        _ => false,
    }
}

/// An absolute URI: a valid scheme, `:`, and no whitespace or control characters.
fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Attribute name grammar: `[a-z0-9]+`, 0.3 additionally starts with a letter, `data` reserved.
fn check_name(name: &str, spec: SpecVersion) -> Result<(), String> {
    if name.is_empty() {
        return Err("attribute names must not be empty".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err("invalid name: only lower-case letters a-z and digits 0-9 are allowed".into());
    }
    if spec == SpecVersion::V03 && !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("invalid name: CloudEvents 0.3 names must begin with a letter".into());
    }
    if name == "data" {
        return Err("\"data\" is reserved and cannot be an attribute name".into());
    }
    Ok(())
}

fn parse_specversion(value: &str) -> Result<SpecVersion, Fault> {
    match value {
        "1.0" => Ok(SpecVersion::V10),
        "0.3" => Ok(SpecVersion::V03),
        "" => Err(Fault::attr("specversion", "must not be empty")),
        other => Err(Fault::attr(
            "specversion",
            format!(
                "{} is not a supported spec version (expected \"1.0\" or \"0.3\")",
                echo(other)
            ),
        )),
    }
}

fn schema_attribute(spec: SpecVersion) -> &'static str {
    match spec {
        SpecVersion::V10 => "dataschema",
        SpecVersion::V03 => "schemaurl",
    }
}

/// Attributes collected for one event (from headers or a JSON object), then checked as a whole.
struct Partial {
    spec: SpecVersion,
    id: Option<String>,
    source: Option<String>,
    ty: Option<String>,
    datacontenttype: Option<String>,
    dataschema: Option<String>,
    subject: Option<String>,
    time: Option<String>,
    /// 0.3 `datacontentencoding` (only `base64` is defined).
    base64_encoded: bool,
    extensions: BTreeMap<String, ExtValue>,
}

impl Partial {
    fn new(spec: SpecVersion) -> Self {
        Partial {
            spec,
            id: None,
            source: None,
            ty: None,
            datacontenttype: None,
            dataschema: None,
            subject: None,
            time: None,
            base64_encoded: false,
            extensions: BTreeMap::new(),
        }
    }

    fn is_core(&self, name: &str) -> bool {
        matches!(
            name,
            "id" | "source" | "type" | "datacontenttype" | "subject" | "time"
        ) || name == schema_attribute(self.spec)
            || (self.spec == SpecVersion::V03 && name == "datacontentencoding")
    }

    /// Set a core attribute (a string; `name` must satisfy [`Partial::is_core`]).
    fn set_core(&mut self, name: &str, value: String) -> Result<(), Fault> {
        let fail = |rule: String| Fault::attr(name, rule);
        // A content type travels as the Content-Type header in binary mode, whose value is
        // trimmed on the way in (`content_type`); trimming here too keeps an event the same in
        // both modes (a break of the fuzz targets' binary round-trip invariant).
        let value = match name {
            "datacontenttype" => value.trim().to_owned(),
            _ => value,
        };
        match name {
            "id" | "source" | "type" | "subject" | "dataschema" | "schemaurl"
                if value.is_empty() =>
            {
                return Err(fail("must not be empty".into()));
            }
            "datacontenttype" => check_media_type(&value).map_err(fail)?,
            "time" if !is_rfc3339(&value) => {
                return Err(fail(format!(
                    "{} is not an RFC 3339 timestamp",
                    echo(&value)
                )));
            }
            "dataschema" if !is_absolute_uri(&value) => {
                return Err(fail(format!("{} is not an absolute URI", echo(&value))));
            }
            "datacontentencoding" if !value.eq_ignore_ascii_case("base64") => {
                return Err(fail(format!(
                    "{} is not supported (only \"base64\" is defined)",
                    echo(&value)
                )));
            }
            _ => {}
        }
        let slot = match name {
            "id" => &mut self.id,
            "source" => &mut self.source,
            "type" => &mut self.ty,
            "datacontenttype" => &mut self.datacontenttype,
            "subject" => &mut self.subject,
            "time" => &mut self.time,
            "datacontentencoding" => {
                self.base64_encoded = true;
                return Ok(());
            }
            _ => &mut self.dataschema,
        };
        *slot = Some(value);
        Ok(())
    }

    fn set_extension(
        &mut self,
        name: &str,
        value: ExtValue,
        warnings: &mut Vec<String>,
    ) -> Result<(), Fault> {
        check_name(name, self.spec).map_err(|rule| Fault::attr(name, rule))?;
        if name.len() > RECOMMENDED_NAME_CHARS {
            warnings.push(format!(
                "extension {} has a name longer than {RECOMMENDED_NAME_CHARS} characters \
                 (CloudEvents recommends at most {RECOMMENDED_NAME_CHARS})",
                echo(name)
            ));
        }
        self.extensions.insert(name.to_owned(), value);
        Ok(())
    }

    fn finish(self, data: Option<Data>, missing_hint: &str) -> Result<CloudEvent, Fault> {
        let required = |value: Option<String>, name: &str| {
            value.ok_or_else(|| {
                Fault::attr(name, format!("required attribute is missing{missing_hint}"))
            })
        };
        Ok(CloudEvent {
            specversion: self.spec,
            id: required(self.id, "id")?,
            source: required(self.source, "source")?,
            ty: required(self.ty, "type")?,
            datacontenttype: self.datacontenttype,
            dataschema: self.dataschema,
            subject: self.subject,
            time: self.time,
            extensions: self.extensions,
            data,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Binary mode

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

/// A `charset` parameter other than UTF-8 / US-ASCII: such text is kept as bytes.
fn declares_foreign_charset(media_type: &str) -> bool {
    media_type.split(';').skip(1).any(|param| {
        let Some((key, value)) = param.split_once('=') else {
            return false;
        };
        let value = value.trim().trim_matches('"').to_ascii_lowercase();
        key.trim().eq_ignore_ascii_case("charset")
            && !matches!(value.as_str(), "utf-8" | "utf8" | "us-ascii")
    })
}

// ---------------------------------------------------------------------------------------------
// JSON event format (structured and batched)

fn parse_body_json(body: &Bytes, what: &str) -> Result<Value, BindingError> {
    if body.is_empty() {
        return Err(BindingError::Invalid(format!("{what} body is empty")));
    }
    serde_json::from_slice(body)
        .map_err(|e| BindingError::Invalid(cap(format!("{what} body is not valid JSON: {e}"))))
}

fn decode_batch(body: &Bytes, warnings: &mut Vec<String>) -> Result<Vec<CloudEvent>, BindingError> {
    let value = parse_body_json(body, "batch")?;
    let Value::Array(items) = value else {
        return Err(BindingError::Invalid(format!(
            "batch body must be a JSON array, found {}",
            json_kind(&value)
        )));
    };
    let mut events: Vec<CloudEvent> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let event = parse_event(item, warnings).map_err(|f| f.in_batch(index))?;
        if let Some(first) = events.first()
            && first.specversion != event.specversion
        {
            return Err(Fault::attr(
                "specversion",
                format!(
                    "\"{}\" differs from batch[0]'s \"{}\"; all events in a batch share specversion",
                    event.specversion.as_str(),
                    first.specversion.as_str()
                ),
            )
            .in_batch(index));
        }
        events.push(event);
    }
    Ok(events)
}

fn parse_event(value: &Value, warnings: &mut Vec<String>) -> Result<CloudEvent, Fault> {
    let Value::Object(obj) = value else {
        return Err(Fault::general(format!(
            "an event must be a JSON object, found {}",
            json_kind(value)
        )));
    };
    let present = |name: &str| obj.get(name).filter(|v| !v.is_null());
    let spec = match present("specversion") {
        None => return Err(Fault::attr("specversion", "required attribute is missing")),
        Some(Value::String(s)) => parse_specversion(s)?,
        Some(other) => {
            return Err(Fault::attr(
                "specversion",
                format!("must be a JSON string, found {}", json_kind(other)),
            ));
        }
    };
    let mut partial = Partial::new(spec);
    let (data, data_base64) = match spec {
        SpecVersion::V10 => (present("data"), present("data_base64")),
        SpecVersion::V03 => (present("data"), None),
    };
    for (name, value) in obj {
        if value.is_null()
            || name == "specversion"
            || name == "data"
            || (spec == SpecVersion::V10 && name == "data_base64")
        {
            continue;
        }
        if partial.is_core(name) {
            let Value::String(s) = value else {
                return Err(Fault::attr(
                    name,
                    format!("must be a JSON string, found {}", json_kind(value)),
                ));
            };
            partial.set_core(name, s.clone())?;
        } else {
            let ext = extension_value(value).map_err(|rule| Fault::attr(name, rule))?;
            partial.set_extension(name, ext, warnings)?;
        }
    }
    let data = json_data(&partial, data, data_base64)?;
    partial.finish(data, "")
}

/// An extension value in the JSON format: string, boolean, or Integer (signed 32-bit).
fn extension_value(value: &Value) -> Result<ExtValue, String> {
    match value {
        Value::String(s) => Ok(ExtValue::String(s.clone())),
        Value::Bool(b) => Ok(ExtValue::Bool(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) if i32::try_from(i).is_ok() => Ok(ExtValue::Integer(i)),
            Some(_) => Err(format!(
                "{n} is outside the CloudEvents Integer range (signed 32-bit)"
            )),
            None if n.is_u64() => Err(format!(
                "{n} is outside the CloudEvents Integer range (signed 32-bit)"
            )),
            None => Err(format!("{n} is not an Integer (no fractions or exponents)")),
        },
        other => Err(format!(
            "must be a string, boolean or integer, found {}",
            json_kind(other)
        )),
    }
}

fn json_data(
    partial: &Partial,
    data: Option<&Value>,
    data_base64: Option<&Value>,
) -> Result<Option<Data>, Fault> {
    let base64 = |name: &str, value: &Value| -> Result<Data, Fault> {
        let Value::String(s) = value else {
            return Err(Fault::attr(
                name,
                format!("must be a base64 JSON string, found {}", json_kind(value)),
            ));
        };
        STANDARD_PAD_INDIFFERENT
            .decode(s)
            .map(|bytes| Data::Binary(Bytes::from(bytes)))
            .map_err(|e| Fault::attr(name, format!("is not valid base64: {e}")))
    };
    match (data, data_base64) {
        (Some(_), Some(_)) => Err(Fault::attr(
            "data",
            "data and data_base64 are mutually exclusive",
        )),
        (None, Some(b64)) => base64("data_base64", b64).map(Some),
        (None, None) => Ok(None),
        (Some(value), None) if partial.base64_encoded => base64("data", value).map(Some),
        (Some(value), None) => match partial.datacontenttype.as_deref() {
            None => Ok(Some(Data::Json(value.clone()))),
            Some(dct) if is_json_media_type(dct) => Ok(Some(Data::Json(value.clone()))),
            Some(dct) => match value {
                Value::String(s) => Ok(Some(Data::Text(s.clone()))),
                other => Err(Fault::attr(
                    "data",
                    format!(
                        "datacontenttype {} is not JSON, so data must be a JSON string, found {}",
                        echo(dct),
                        json_kind(other)
                    ),
                )),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header(h: &mut HeaderMap, name: &str, value: &[u8], append: bool) {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("test header name");
        let value = HeaderValue::from_bytes(value).expect("test header value");
        if append {
            h.append(name, value);
        } else {
            h.insert(name, value);
        }
    }

    /// Minimal valid binary headers (1.0) with `extra` inserted (overriding).
    fn binary(extra: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("ce-specversion", "1.0"),
            ("ce-id", "1"),
            ("ce-source", "/s"),
            ("ce-type", "t"),
        ] {
            header(&mut h, k, v.as_bytes(), false);
        }
        for (k, v) in extra {
            header(&mut h, k, v.as_bytes(), false);
        }
        h
    }

    fn without(mut h: HeaderMap, name: &str) -> HeaderMap {
        h.remove(name);
        h
    }

    fn structured(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        header(&mut h, "content-type", ct.as_bytes(), false);
        h
    }

    fn dec(h: &HeaderMap, body: &[u8]) -> Result<Decoded, BindingError> {
        decode(h, &Bytes::copy_from_slice(body))
    }

    fn one(h: &HeaderMap, body: &[u8]) -> CloudEvent {
        let mut d = dec(h, body).expect("decodes");
        assert_eq!(d.events.len(), 1);
        d.events.remove(0)
    }

    fn invalid(r: Result<Decoded, BindingError>) -> String {
        match r {
            Err(BindingError::Invalid(m)) => {
                assert!(m.chars().count() <= MAX_MESSAGE_CHARS, "too long: {m}");
                m
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn json_invalid(v: Value) -> String {
        match from_json(&v) {
            Err(BindingError::Invalid(m)) => m,
            other => panic!("expected Invalid for {v}, got {other:?}"),
        }
    }

    fn minimal_json() -> Value {
        json!({"specversion": "1.0", "id": "1", "source": "/s", "type": "t"})
    }

    fn with(mut v: Value, key: &str, val: Value) -> Value {
        v[key] = val;
        v
    }

    fn subject_of(raw: &[u8]) -> Result<String, String> {
        let mut h = binary(&[]);
        header(&mut h, "ce-subject", raw, false);
        match dec(&h, b"") {
            Ok(d) => Ok(d.events[0].subject.clone().expect("subject")),
            Err(e) => Err(e.to_string()),
        }
    }

    // ---- mode detection ----

    #[test]
    fn mode_detection_table() {
        let cases: &[(Option<&str>, Result<Mode, &str>)] = &[
            (None, Ok(Mode::Binary)),
            (Some("application/json"), Ok(Mode::Binary)),
            (Some("text/plain; charset=utf-8"), Ok(Mode::Binary)),
            (Some("application/cloudevents+json"), Ok(Mode::Structured)),
            (
                Some("application/cloudevents+json; charset=utf-8"),
                Ok(Mode::Structured),
            ),
            (Some("Application/CloudEvents+JSON"), Ok(Mode::Structured)),
            (
                Some(" application/cloudevents+json ;charset=UTF-8"),
                Ok(Mode::Structured),
            ),
            (
                Some("application/cloudevents-batch+json"),
                Ok(Mode::Batched),
            ),
            (
                Some("APPLICATION/CLOUDEVENTS-BATCH+JSON; charset=utf-8"),
                Ok(Mode::Batched),
            ),
            (
                Some("application/cloudevents+avro"),
                Err("application/cloudevents+avro"),
            ),
            (
                Some("application/cloudevents"),
                Err("application/cloudevents"),
            ),
            (
                Some("application/cloudevents-batch+avro"),
                Err("application/cloudevents-batch+avro"),
            ),
        ];
        for (ct, want) in cases {
            let mut h = HeaderMap::new();
            if let Some(ct) = ct {
                header(&mut h, "content-type", ct.as_bytes(), false);
            }
            match (detect_mode(&h), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{ct:?}"),
                (Err(BindingError::NotCloudEvent(m)), Err(fragment)) => {
                    assert!(m.contains(fragment), "{ct:?}: {m}")
                }
                (got, want) => panic!("{ct:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn cloudevents_avro_is_415_even_with_ce_headers() {
        let h = binary(&[("content-type", "application/cloudevents+avro")]);
        match dec(&h, b"x") {
            Err(BindingError::NotCloudEvent(m)) => {
                assert!(m.contains("\"application/cloudevents+avro\""), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_specversion_is_not_a_cloudevent() {
        let h = without(
            binary(&[("content-type", "application/json")]),
            "ce-specversion",
        );
        assert_eq!(
            dec(&h, b"{}").unwrap_err(),
            BindingError::NotCloudEvent(
                "not a CloudEvent: no ce-specversion header and Content-Type \"application/json\" \
                 is not a CloudEvents media type"
                    .into()
            )
        );
        let h = without(binary(&[]), "ce-specversion");
        assert!(matches!(
            dec(&h, b""),
            Err(BindingError::NotCloudEvent(m)) if m.contains("no Content-Type")
        ));
    }

    #[test]
    fn two_content_type_headers_are_invalid() {
        let mut h = binary(&[]);
        header(&mut h, "content-type", b"text/plain", true);
        header(&mut h, "content-type", b"application/json", true);
        assert!(invalid(dec(&h, b"x")).contains("Content-Type"));
    }

    // ---- binary mode: required attributes and spec versions ----

    #[test]
    fn minimal_binary_event() {
        let e = one(&binary(&[]), b"");
        assert_eq!(e.specversion, SpecVersion::V10);
        assert_eq!(
            (e.id.as_str(), e.source.as_str(), e.ty.as_str()),
            ("1", "/s", "t")
        );
        assert_eq!(e.data, None);
        assert_eq!(e.datacontenttype, None);
        assert!(e.extensions.is_empty());
    }

    #[test]
    fn missing_or_empty_required_attributes_are_invalid() {
        for name in ["id", "source", "type"] {
            let m = invalid(dec(&without(binary(&[]), &format!("ce-{name}")), b""));
            assert_eq!(
                m,
                format!(
                    "attribute \"{name}\": required attribute is missing (no ce- header for it)"
                )
            );
            let m = invalid(dec(&binary(&[(&format!("ce-{name}"), "")]), b""));
            assert_eq!(m, format!("attribute \"{name}\": must not be empty"));
        }
        let m = invalid(dec(&binary(&[("ce-specversion", "")]), b""));
        assert_eq!(m, "attribute \"specversion\": must not be empty");
    }

    #[test]
    fn unknown_specversion_is_invalid() {
        let m = invalid(dec(&binary(&[("ce-specversion", "1.1")]), b""));
        assert_eq!(
            m,
            "attribute \"specversion\": \"1.1\" is not a supported spec version (expected \"1.0\" or \"0.3\")"
        );
    }

    #[test]
    fn duplicate_attribute_headers_are_invalid() {
        let mut h = binary(&[]);
        header(&mut h, "ce-id", b"2", true);
        let m = invalid(dec(&h, b""));
        assert!(
            m.starts_with("attribute \"id\": header ce-id appears 2 times"),
            "{m}"
        );
    }

    #[test]
    fn header_names_are_case_insensitive() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("CE-SpecVersion", "1.0"),
            ("Ce-Id", "1"),
            ("CE-SOURCE", "/s"),
            ("ce-Type", "t"),
            ("Ce-MyExt", "v"),
        ] {
            header(&mut h, k, v.as_bytes(), false);
        }
        let e = one(&h, b"");
        assert_eq!(e.extensions["myext"], ExtValue::String("v".into()));
    }

    // ---- header value decoding ----

    #[test]
    fn spec_euro_emoji_example_decodes_and_encodes() {
        assert_eq!(
            subject_of(b"Euro%20%E2%82%AC%20%F0%9F%98%80").as_deref(),
            Ok("Euro € 😀")
        );
        let mut e = one(&binary(&[]), b"");
        e.subject = Some("Euro € 😀".into());
        let (h, _) = encode_binary(&e);
        assert_eq!(h["ce-subject"], "Euro%20%E2%82%AC%20%F0%9F%98%80");
    }

    #[test]
    fn lower_case_hex_and_unnecessary_encoding_are_accepted() {
        assert_eq!(subject_of(b"Euro%20%e2%82%ac").as_deref(), Ok("Euro €"));
        assert_eq!(subject_of(b"%61%62c").as_deref(), Ok("abc"));
        assert_eq!(
            one(&binary(&[("ce-time", "2018-04-05T17%3A31%3A00Z")]), b"")
                .time
                .as_deref(),
            Some("2018-04-05T17:31:00Z")
        );
    }

    #[test]
    fn overlong_utf8_is_rejected() {
        let m = subject_of(b"a%C0%A0b").unwrap_err();
        assert_eq!(
            m,
            "attribute \"subject\": header value is not valid UTF-8 after percent-decoding \
             (byte 0xC0 at offset 1)"
        );
    }

    #[test]
    fn exactly_one_round_of_percent_decoding() {
        assert_eq!(subject_of(b"100%2525").as_deref(), Ok("100%25"));
    }

    #[test]
    fn quoted_strings_are_unquoted() {
        assert_eq!(subject_of(b"\"hello world\"").as_deref(), Ok("hello world"));
        assert_eq!(subject_of(b"\"a\\\"b\\\\c\"").as_deref(), Ok("a\"b\\c"));
        // Unquoting happens before percent-decoding.
        assert_eq!(subject_of(b"\"a%20b\"").as_deref(), Ok("a b"));
        // Not a well-formed quoted-string: kept literally.
        assert_eq!(subject_of(b"\"a\"b\"").as_deref(), Ok("\"a\"b\""));
        assert_eq!(subject_of(b"\"").as_deref(), Ok("\""));
    }

    #[test]
    fn knative_sender_leniency() {
        // Raw UTF-8 bytes (obs-text), as sdk-go writes them.
        assert_eq!(
            subject_of("café au lait".as_bytes()).as_deref(),
            Ok("café au lait")
        );
        // Literal spaces and stray percent signs.
        assert_eq!(subject_of(b"a b").as_deref(), Ok("a b"));
        assert_eq!(subject_of(b"100%").as_deref(), Ok("100%"));
        assert_eq!(subject_of(b"50%zz off %4").as_deref(), Ok("50%zz off %4"));
        // Raw bytes that are not UTF-8 (Latin-1 é) are still rejected.
        assert!(
            subject_of(b"caf\xe9")
                .unwrap_err()
                .contains("not valid UTF-8")
        );
    }

    #[test]
    fn encode_escapes_space_quote_percent_and_non_printable() {
        let mut e = one(&binary(&[]), b"");
        e.subject = Some("a b\"c%d\te~!".into());
        let (h, _) = encode_binary(&e);
        assert_eq!(h["ce-subject"], "a%20b%22c%25d%09e~!");
        let round = one(&h, b"");
        assert_eq!(round.subject, e.subject);
    }

    // ---- attribute validation ----

    #[test]
    fn rfc3339_table() {
        let valid = [
            "2018-04-05T17:31:00Z",
            "2018-04-05t17:31:00z",
            "2018-04-05T17:31:00.000000000Z",
            "2018-04-05T18:31:00+01:00",
            "2018-04-05T16:31:00-01:00",
            "2020-02-29T23:59:60.5+23:59",
        ];
        let invalid = [
            "lunchtime",
            "2018-04-05T18:31Z",
            "2018-04-05T18:31:00X",
            "2018-04-05T18:31:00+25:00",
            "2018-04-05T18:31:00+xx:00",
            "2018-04-05T18:31:00+05",
            "2018-04-05T18:31:00",
            "2018-04-05 18:31:00Z",
            "2018-13-05T18:31:00Z",
            "2019-02-29T18:31:00Z",
            "2018-04-31T18:31:00Z",
            "2018-04-05T24:00:00Z",
            "2018-04-05T18:31:00.Z",
            "2018-04-05T18:31:00+01:60",
            "2018-04-05T18:31:00Z ",
            "",
        ];
        for t in valid {
            assert!(is_rfc3339(t), "{t} should be valid");
        }
        for t in invalid {
            assert!(!is_rfc3339(t), "{t} should be invalid");
        }
        let m = json_invalid(with(minimal_json(), "time", json!("2018-04-05T18:31Z")));
        assert_eq!(
            m,
            "attribute \"time\": \"2018-04-05T18:31Z\" is not an RFC 3339 timestamp"
        );
    }

    #[test]
    fn dataschema_must_be_absolute_uri() {
        let m = invalid(dec(&binary(&[("ce-dataschema", "/rel")]), b""));
        assert_eq!(
            m,
            "attribute \"dataschema\": \"/rel\" is not an absolute URI"
        );
        let e = one(
            &binary(&[("ce-dataschema", "https://example.com/s.json")]),
            b"",
        );
        assert_eq!(e.dataschema.as_deref(), Some("https://example.com/s.json"));
        assert!(json_invalid(with(minimal_json(), "dataschema", json!(""))).contains("dataschema"));
        assert!(!is_absolute_uri("1http://x"));
        assert!(!is_absolute_uri("http://a b"));
        assert!(is_absolute_uri("urn:isbn:123"));
    }

    #[test]
    fn datacontenttype_must_be_rfc2046_shaped() {
        for bad in ["xyz", "", "text/", "/plain", "te xt/plain", "a/b/c d"] {
            let m = json_invalid(with(minimal_json(), "datacontenttype", json!(bad)));
            assert!(
                m.starts_with("attribute \"datacontenttype\": "),
                "{bad}: {m}"
            );
        }
        for good in [
            "text/plain",
            "application/vnd.a+json; charset=\"utf-8\"",
            "a/b;x=y",
        ] {
            let v = with(minimal_json(), "datacontenttype", json!(good));
            assert!(from_json(&v).is_ok(), "{good}");
        }
        let m = invalid(dec(&binary(&[("content-type", "xyz")]), b"x"));
        assert!(m.contains("\"xyz\" is not an RFC 2046 media type"), "{m}");
    }

    #[test]
    fn datacontenttype_is_trimmed_like_the_content_type_header() {
        let v = with(
            minimal_json(),
            "datacontenttype",
            json!(" text/plain\u{3000}"),
        );
        let event = from_json(&with(v, "data", json!("x"))).expect("valid");
        assert_eq!(event.datacontenttype.as_deref(), Some("text/plain"));
        let (h, body) = encode_binary(&event);
        assert_eq!(one(&h, &body), event);
        let from_header = one(&binary(&[("ce-datacontenttype", "%20text/plain%20")]), b"x");
        assert_eq!(from_header.datacontenttype.as_deref(), Some("text/plain"));
    }

    #[test]
    fn subject_must_be_non_empty_if_present() {
        let m = json_invalid(with(minimal_json(), "subject", json!("")));
        assert_eq!(m, "attribute \"subject\": must not be empty");
        assert!(invalid(dec(&binary(&[("ce-subject", "")]), b"")).contains("subject"));
    }

    #[test]
    fn extension_names() {
        for bad in ["ce-my_ext", "ce-my-ext", "ce-data"] {
            let m = invalid(dec(&binary(&[(bad, "v")]), b""));
            assert!(m.starts_with(&format!("attribute {:?}", &bad[3..])), "{m}");
        }
        for bad in ["MyExtension", "my.extension", "my_ext", ""] {
            let m = json_invalid(with(minimal_json(), bad, json!("v")));
            assert!(m.contains("name"), "{bad}: {m}");
        }
        // 1.0 allows a leading digit; 0.3 does not.
        assert!(from_json(&with(minimal_json(), "1abc", json!("v"))).is_ok());
        let v03 = with(minimal_json(), "specversion", json!("0.3"));
        let m = json_invalid(with(v03, "1abc", json!("v")));
        assert!(m.contains("must begin with a letter"), "{m}");
    }

    #[test]
    fn long_extension_names_only_warn() {
        let name = "abcdefghijklmnopqrstuvwxyz";
        let d = dec(&binary(&[(&format!("ce-{name}"), "v")]), b"").expect("accepted");
        assert_eq!(d.events[0].extensions[name], ExtValue::String("v".into()));
        assert_eq!(d.warnings.len(), 1);
        assert!(d.warnings[0].contains(name), "{:?}", d.warnings);
        let d = dec(&binary(&[("ce-exactlytwentychars", "v")]), b"").expect("accepted");
        assert!(d.warnings.is_empty());
    }

    #[test]
    fn extension_values_in_json() {
        let v = with(
            with(
                with(minimal_json(), "b", json!(true)),
                "i",
                json!(-2147483648i64),
            ),
            "s",
            json!("x"),
        );
        let v = with(v, "n", Value::Null);
        let e = from_json(&v).expect("valid");
        assert_eq!(e.extensions["b"], ExtValue::Bool(true));
        assert_eq!(e.extensions["i"], ExtValue::Integer(-2147483648));
        assert_eq!(e.extensions["s"], ExtValue::String("x".into()));
        assert!(!e.extensions.contains_key("n"), "null means unset");

        let cases = [
            (json!(1.5), "is not an Integer"),
            (json!(10.0), "is not an Integer"),
            (
                json!(2147483648i64),
                "outside the CloudEvents Integer range",
            ),
            (json!(1u64 << 40), "outside the CloudEvents Integer range"),
            (json!(u64::MAX), "outside the CloudEvents Integer range"),
            (json!({"a": 1}), "found object"),
            (json!([1]), "found array"),
        ];
        for (value, fragment) in cases {
            let m = json_invalid(with(minimal_json(), "ext", value.clone()));
            assert!(
                m.starts_with("attribute \"ext\": ") && m.contains(fragment),
                "{value}: {m}"
            );
        }
    }

    #[test]
    fn json_core_attributes_must_be_strings() {
        let m = json_invalid(with(minimal_json(), "id", json!(25)));
        assert_eq!(m, "attribute \"id\": must be a JSON string, found integer");
        let m = json_invalid(with(minimal_json(), "id", json!({"xyz": "abc"})));
        assert_eq!(m, "attribute \"id\": must be a JSON string, found object");
        let m = json_invalid(with(minimal_json(), "specversion", json!(1.0)));
        assert_eq!(
            m,
            "attribute \"specversion\": must be a JSON string, found number"
        );
        let m = json_invalid(with(minimal_json(), "id", Value::Null));
        assert_eq!(m, "attribute \"id\": required attribute is missing");
        let m = json_invalid(json!([1]));
        assert_eq!(m, "an event must be a JSON object, found array");
    }

    #[test]
    fn null_optionals_are_unset() {
        let mut v = minimal_json();
        for k in ["datacontenttype", "dataschema", "subject", "time", "data"] {
            v[k] = Value::Null;
        }
        assert_eq!(from_json(&v), from_json(&minimal_json()));
        assert_eq!(from_json(&v).expect("valid").data, None);
    }

    #[test]
    fn error_messages_are_short() {
        let long = "x".repeat(5000);
        let m = json_invalid(with(minimal_json(), "time", json!(long)));
        assert!(m.chars().count() < 300, "{}", m.len());
        assert!(m.contains('…'));
        let m = json_invalid(with(minimal_json(), &format!("A{long}"), json!(1)));
        assert!(m.chars().count() < 300);
        let m = invalid(dec(&binary(&[("ce-dataschema", &long)]), b""));
        assert!(m.chars().count() < 300);
    }

    // ---- data interpretation ----

    #[test]
    fn json_media_type_table() {
        let json_types = [
            "application/json",
            "APPLICATION/JSON",
            "application/json; charset=utf-8",
            "text/json",
            "application/vnd.foo+json; charset=utf-8",
            "application/cloudevents+json",
            " Application/Ld+JSON ",
        ];
        let other = [
            "application/jsonx",
            "application/json-seq",
            "application/xml",
            "text/plain",
            "json",
            "application/json+xml",
        ];
        for t in json_types {
            assert!(is_json_media_type(t), "{t}");
        }
        for t in other {
            assert!(!is_json_media_type(t), "{t}");
        }
    }

    #[test]
    fn binary_body_by_content_type() {
        let e = one(
            &binary(&[("content-type", "application/json")]),
            br#"{"a":1}"#,
        );
        assert_eq!(e.data, Some(Data::Json(json!({"a": 1}))));
        assert_eq!(e.datacontenttype.as_deref(), Some("application/json"));

        let ct = "Application/Vnd.Foo+JSON; charset=utf-8";
        let e = one(&binary(&[("content-type", ct)]), b"[1,2]");
        assert_eq!(e.data, Some(Data::Json(json!([1, 2]))));
        assert_eq!(e.datacontenttype.as_deref(), Some(ct));

        let e = one(
            &binary(&[("content-type", "text/plain")]),
            "héllo".as_bytes(),
        );
        assert_eq!(e.data, Some(Data::Text("héllo".into())));

        let e = one(
            &binary(&[("content-type", "application/octet-stream")]),
            b"\x00\xff",
        );
        assert_eq!(e.data, Some(Data::Binary(Bytes::from_static(b"\x00\xff"))));

        let e = one(&binary(&[("content-type", "application/json")]), b"");
        assert_eq!(e.data, None);
    }

    #[test]
    fn binary_body_without_content_type_is_read_as_json_then_text_then_bytes() {
        let cases: [(&[u8], Data, ReadAs); 5] = [
            (br#"{"a":1}"#, Data::Json(json!({"a": 1})), ReadAs::Json),
            (br#""hi""#, Data::Json(json!("hi")), ReadAs::Json),
            (b"42", Data::Json(json!(42)), ReadAs::Json),
            ("héllo".as_bytes(), Data::Text("héllo".into()), ReadAs::Text),
            (
                b"\x00\xff",
                Data::Binary(Bytes::from_static(b"\x00\xff")),
                ReadAs::Bytes,
            ),
        ];
        for (body, data, read_as) in cases {
            let d = dec(&binary(&[]), body).expect("valid");
            let e = &d.events[0];
            assert_eq!(e.data.as_ref(), Some(&data), "{body:?}");
            // The event's own attributes are unchanged: it still has no datacontenttype.
            assert_eq!(e.datacontenttype, None);
            assert_eq!(
                d.inferred,
                Some(Inferred {
                    declared: Declared::None,
                    read_as
                })
            );
            assert!(d.warnings.is_empty());
        }
        // No body: nothing to infer.
        let d = dec(&binary(&[]), b"").expect("valid");
        assert_eq!((d.events[0].data.as_ref(), d.inferred), (None, None));
        // A declared type is never second-guessed when it fits.
        let d = dec(&binary(&[("content-type", "application/json")]), b"{}").expect("valid");
        assert_eq!(d.inferred, None);
        let d = dec(&binary(&[("content-type", "text/plain")]), b"{}").expect("valid");
        assert_eq!(d.events[0].data, Some(Data::Text("{}".into())));
        assert_eq!(d.inferred, None);
    }

    #[test]
    fn json_content_type_over_a_body_that_is_not_json_is_its_text() {
        // The JavaScript SDK's HTTP.binary for string data: unquoted, labelled JSON.
        let ct = "application/json; charset=utf-8";
        let d = dec(&binary(&[("content-type", ct)]), b"hello world").expect("not a 400");
        let e = &d.events[0];
        assert_eq!(e.data, Some(Data::Text("hello world".into())));
        assert_eq!(e.datacontenttype.as_deref(), Some(ct));
        assert_eq!(
            d.inferred,
            Some(Inferred {
                declared: Declared::Json,
                read_as: ReadAs::Text
            })
        );
        // Not UTF-8 either: the bytes.
        let d = dec(
            &binary(&[("content-type", "application/vnd.acme+json")]),
            b"{\xff",
        )
        .expect("not a 400");
        assert_eq!(
            d.events[0].data,
            Some(Data::Binary(Bytes::from_static(b"{\xff")))
        );
        assert_eq!(d.inferred.map(|i| i.read_as), Some(ReadAs::Bytes));
    }

    #[test]
    fn text_body_that_is_not_utf8_is_invalid() {
        let m = invalid(dec(&binary(&[("content-type", "text/plain")]), b"caf\xe9"));
        assert!(m.contains("not valid UTF-8"), "{m}");
        // A declared non-UTF-8 charset keeps the bytes.
        let e = one(
            &binary(&[("content-type", "text/plain; charset=ISO-8859-1")]),
            b"caf\xe9",
        );
        assert_eq!(e.data, Some(Data::Binary(Bytes::from_static(b"caf\xe9"))));
    }

    #[test]
    fn ce_datacontenttype_header_is_tolerated() {
        let h = binary(&[
            ("content-type", "application/json"),
            ("ce-datacontenttype", "text/plain"),
        ]);
        let d = dec(&h, b"{}").expect("lenient");
        assert_eq!(
            d.events[0].datacontenttype.as_deref(),
            Some("application/json")
        );
        assert_eq!(d.events[0].data, Some(Data::Json(json!({}))));
        assert_eq!(d.warnings.len(), 1);
        assert!(d.warnings[0].contains("ce-datacontenttype"));

        let d = dec(&binary(&[("ce-datacontenttype", "text/plain")]), b"hi").expect("lenient");
        assert_eq!(d.events[0].data, Some(Data::Text("hi".into())));
        assert_eq!(d.warnings.len(), 1);
    }

    // ---- sources seen behind Knative ----

    #[test]
    fn kafkasource_shaped_event() {
        let h = binary(&[
            ("ce-id", "partition:0/offset:564"),
            (
                "ce-source",
                "/apis/v1/namespaces/default/kafkasources/orders#orders",
            ),
            ("ce-type", "dev.knative.kafka.event"),
            ("ce-subject", "partition:0#564"),
            ("ce-time", "2024-05-01T10:00:00.123Z"),
            ("ce-key", "customer-17"),
            ("ce-partitionkey", "customer-17"),
            ("ce-kafkaheaderxrequestid", "abc 123"),
            ("ce-knativearrivaltime", "2024-05-01T10:00:00.456Z"),
            ("content-type", "application/json"),
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
            ("tracestate", "rojo=00f067aa0ba902b7"),
            ("prefer", "reply"),
            ("kn-namespace", "default"),
        ]);
        let d = dec(&h, br#"{"order":17}"#).expect("valid");
        // kafkaheader<name> easily exceeds 20 characters: accepted, with a warning.
        assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
        assert!(d.warnings[0].contains("\"kafkaheaderxrequestid\""));
        let e = &d.events[0];
        assert_eq!(e.id, "partition:0/offset:564");
        assert_eq!(
            e.source,
            "/apis/v1/namespaces/default/kafkasources/orders#orders"
        );
        assert_eq!(e.subject.as_deref(), Some("partition:0#564"));
        assert_eq!(e.data, Some(Data::Json(json!({"order": 17}))));
        let names: Vec<&str> = e.extensions.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "kafkaheaderxrequestid",
                "key",
                "knativearrivaltime",
                "partitionkey"
            ]
        );
        assert_eq!(
            e.extensions["kafkaheaderxrequestid"],
            ExtValue::String("abc 123".into())
        );
    }

    #[test]
    fn pingsource_without_content_type() {
        let h = binary(&[
            ("ce-type", "dev.knative.sources.ping"),
            ("ce-source", "/apis/v1/namespaces/default/pingsources/ping"),
            ("ce-time", "2024-05-01T10:00:00.000Z"),
            ("kn-namespace", "default"),
        ]);
        let e = one(&h, br#"{"message": "Hello world!"}"#);
        assert_eq!(e.datacontenttype, None);
        // Read as JSON, the way sdk-go and the Python SDK read a body without a content type.
        assert_eq!(e.data, Some(Data::Json(json!({"message": "Hello world!"}))));
        // dataBase64 with contentType text/plain: the decoded bytes arrive as the body.
        let e = one(&binary(&[("content-type", "text/plain")]), b"data");
        assert_eq!(e.data, Some(Data::Text("data".into())));
    }

    // ---- v0.3 ----

    #[test]
    fn v03_binary_with_schemaurl_and_map_header() {
        let h = binary(&[
            ("ce-specversion", "0.3"),
            ("ce-schemaurl", "/schemas/order"),
            ("ce-traceinfo-span", "x"),
            ("content-type", "application/json"),
        ]);
        let d = dec(&h, b"1").expect("valid");
        let e = &d.events[0];
        assert_eq!(e.specversion, SpecVersion::V03);
        assert_eq!(e.dataschema.as_deref(), Some("/schemas/order"));
        assert!(e.extensions.is_empty(), "{:?}", e.extensions);
        assert_eq!(d.warnings.len(), 1);
        assert!(d.warnings[0].contains("ce-traceinfo-span"));
        // A 1.0 event has no schemaurl: it is just an extension; dashes are invalid there.
        let e = one(&binary(&[("ce-schemaurl", "/x")]), b"");
        assert_eq!(e.dataschema, None);
        assert_eq!(e.extensions["schemaurl"], ExtValue::String("/x".into()));
        assert!(invalid(dec(&binary(&[("ce-traceinfo-span", "x")]), b"")).contains("invalid name"));
        let (h, _) = encode_binary(&one(&h, b""));
        assert_eq!(h["ce-schemaurl"], "/schemas/order");
        assert!(!h.contains_key("ce-dataschema"));
    }

    #[test]
    fn v03_structured_with_datacontentencoding() {
        let v = json!({
            "specversion": "0.3", "id": "1", "source": "/s", "type": "t",
            "datacontenttype": "application/octet-stream",
            "datacontentencoding": "base64",
            "schemaurl": "schemas/rel",
            "data": "AAH/",
        });
        let body = serde_json::to_vec(&v).expect("json");
        let e = one(&structured("application/cloudevents+json"), &body);
        assert_eq!(e.specversion, SpecVersion::V03);
        assert_eq!(
            e.data,
            Some(Data::Binary(Bytes::from_static(b"\x00\x01\xff")))
        );
        assert_eq!(e.dataschema.as_deref(), Some("schemas/rel"));
        assert!(e.extensions.is_empty());
        // And back: 0.3 binary data is written with datacontentencoding.
        let back = to_json(&e);
        assert_eq!(back["datacontentencoding"], "base64");
        assert_eq!(back["data"], "AAH/");
        assert_eq!(from_json(&back), Ok(e));

        let bad = with(v.clone(), "datacontentencoding", json!("gzip"));
        assert!(json_invalid(bad).contains("datacontentencoding"));
        let bad = with(v, "data", json!("%%%"));
        assert!(json_invalid(bad).starts_with("attribute \"data\": is not valid base64"));
    }

    // ---- structured mode ----

    #[test]
    fn structured_data_rules() {
        let h = structured("application/cloudevents+json; charset=utf-8");
        let body = |v: Value| serde_json::to_vec(&v).expect("json");

        let e = one(&h, &body(with(minimal_json(), "data", json!({"a": 1}))));
        assert_eq!(
            e.data,
            Some(Data::Json(json!({"a": 1}))),
            "no dct means JSON"
        );

        let v = with(minimal_json(), "datacontenttype", json!("APPLICATION/JSON"));
        let e = one(&h, &body(with(v.clone(), "data", json!("{\"a\":1}"))));
        assert_eq!(
            e.data,
            Some(Data::Json(json!("{\"a\":1}"))),
            "a JSON string stays a string"
        );

        let v = with(minimal_json(), "datacontenttype", json!("text/plain"));
        let e = one(&h, &body(with(v.clone(), "data", json!("hello"))));
        assert_eq!(e.data, Some(Data::Text("hello".into())));
        let m = invalid(dec(&h, &body(with(v.clone(), "data", json!({"a": 1})))));
        assert!(m.starts_with("attribute \"data\": datacontenttype \"text/plain\" is not JSON"));

        let e = one(&h, &body(with(v.clone(), "data_base64", json!("aGk="))));
        assert_eq!(e.data, Some(Data::Binary(Bytes::from_static(b"hi"))));
        let e = one(
            &h,
            &body(with(minimal_json(), "data_base64", json!("eyJhIjoxfQ"))),
        );
        assert_eq!(e.data, Some(Data::Binary(Bytes::from_static(b"{\"a\":1}"))));

        let both = with(
            with(v.clone(), "data", json!("x")),
            "data_base64",
            json!("eA=="),
        );
        assert_eq!(
            invalid(dec(&h, &body(both))),
            "attribute \"data\": data and data_base64 are mutually exclusive"
        );
        let m = invalid(dec(&h, &body(with(v.clone(), "data_base64", json!("!!")))));
        assert!(
            m.starts_with("attribute \"data_base64\": is not valid base64"),
            "{m}"
        );
        let m = invalid(dec(&h, &body(with(v, "data_base64", json!(5)))));
        assert!(
            m.starts_with("attribute \"data_base64\": must be a base64 JSON string"),
            "{m}"
        );
    }

    #[test]
    fn structured_body_wins_over_ce_headers() {
        let mut h = binary(&[("ce-id", "from-header")]);
        header(
            &mut h,
            "content-type",
            b"application/cloudevents+json",
            false,
        );
        let e = one(&h, &serde_json::to_vec(&minimal_json()).expect("json"));
        assert_eq!(e.id, "1");
    }

    #[test]
    fn structured_body_must_be_a_json_object() {
        let h = structured("application/cloudevents+json");
        assert_eq!(invalid(dec(&h, b"")), "structured body is empty");
        assert!(invalid(dec(&h, b"{nope")).starts_with("structured body is not valid JSON"));
        assert_eq!(
            invalid(dec(&h, b"[]")),
            "an event must be a JSON object, found array"
        );
    }

    // ---- batched mode ----

    #[test]
    fn batches() {
        let h = structured("application/cloudevents-batch+json");
        let d = dec(&h, b"[]").expect("empty batch");
        assert_eq!((d.mode, d.events.len()), (Mode::Batched, 0));

        let two = json!([minimal_json(), with(minimal_json(), "id", json!("2"))]);
        let d = dec(&h, &serde_json::to_vec(&two).expect("json")).expect("valid");
        assert_eq!(d.events.len(), 2);
        assert_eq!(d.events[1].id, "2");

        let bad = json!([
            minimal_json(),
            minimal_json(),
            minimal_json(),
            with(minimal_json(), "time", json!("2018-04-05T18:31Z"))
        ]);
        assert_eq!(
            invalid(dec(&h, &serde_json::to_vec(&bad).expect("json"))),
            "batch[3].time: \"2018-04-05T18:31Z\" is not an RFC 3339 timestamp"
        );
        let bad = json!([minimal_json(), "not an object"]);
        assert_eq!(
            invalid(dec(&h, &serde_json::to_vec(&bad).expect("json"))),
            "batch[1]: an event must be a JSON object, found string"
        );
        let bad = json!([
            minimal_json(),
            with(minimal_json(), "specversion", json!("0.3"))
        ]);
        let m = invalid(dec(&h, &serde_json::to_vec(&bad).expect("json")));
        assert!(m.starts_with("batch[1].specversion: \"0.3\" differs from batch[0]'s \"1.0\""));
        let bad = json!([with(minimal_json(), "My.Ext", json!(1))]);
        let m = invalid(dec(&h, &serde_json::to_vec(&bad).expect("json")));
        assert!(m.starts_with("batch[0].\"My.Ext\": invalid name"), "{m}");
        assert_eq!(
            invalid(dec(&h, b"{}")),
            "batch body must be a JSON array, found object"
        );
    }

    // ---- encoding ----

    fn representative_events() -> Vec<CloudEvent> {
        let base = CloudEvent {
            specversion: SpecVersion::V10,
            id: "partition:0/offset:564".into(),
            source: "/apis/v1/namespaces/default/kafkasources/orders#orders".into(),
            ty: "dev.knative.kafka.event".into(),
            datacontenttype: Some("application/json".into()),
            dataschema: Some("https://example.com/schema.json".into()),
            subject: Some("Euro € 😀 \"quoted\" 100%".into()),
            time: Some("2024-05-01T10:00:00.123+02:00".into()),
            extensions: BTreeMap::from([
                ("key".into(), ExtValue::String("customer 17".into())),
                (
                    "knativearrivaltime".into(),
                    ExtValue::String("2024-05-01T08:00:01Z".into()),
                ),
            ]),
            data: Some(Data::Json(json!({"order": 17, "items": ["a", "é"]}))),
        };
        vec![
            base.clone(),
            CloudEvent {
                datacontenttype: Some("text/plain; charset=utf-8".into()),
                data: Some(Data::Text("Hello, 🌎!\n".into())),
                ..base.clone()
            },
            CloudEvent {
                datacontenttype: Some("application/octet-stream".into()),
                data: Some(Data::Binary(Bytes::from_static(b"\x00\x01\xfe\xff"))),
                ..base.clone()
            },
            CloudEvent {
                datacontenttype: None,
                data: Some(Data::Binary(Bytes::from_static(b"raw"))),
                subject: None,
                time: None,
                dataschema: None,
                extensions: BTreeMap::new(),
                ..base.clone()
            },
            CloudEvent {
                data: None,
                ..base.clone()
            },
            CloudEvent {
                specversion: SpecVersion::V03,
                dataschema: Some("/relative/schema".into()),
                ..base
            },
        ]
    }

    #[test]
    fn binary_round_trip() {
        for event in representative_events() {
            let (headers, body) = encode_binary(&event);
            for (name, value) in &headers {
                assert!(
                    value.as_bytes().iter().all(|b| (0x21..=0x7e).contains(b))
                        || name == CONTENT_TYPE,
                    "{name}: {value:?}"
                );
            }
            let d = decode(&headers, &body).expect("decodes");
            assert_eq!(d.mode, Mode::Binary);
            assert!(d.warnings.is_empty());
            assert_eq!(d.inferred, None, "the encoder always says what the data is");
            let mut expected = event;
            if expected.datacontenttype.is_none() && matches!(expected.data, Some(Data::Binary(_)))
            {
                expected.datacontenttype = Some("application/octet-stream".into());
            }
            assert_eq!(d.events, vec![expected]);
        }
    }

    #[test]
    fn json_round_trip_and_structure() {
        for event in representative_events() {
            let value = to_json(&event);
            assert_eq!(from_json(&value).as_ref(), Ok(&event), "{value}");
            let d = decode(
                &structured("application/cloudevents+json"),
                &Bytes::from(serde_json::to_vec(&value).expect("json")),
            )
            .expect("structured");
            assert_eq!(d.events, vec![event]);
        }
        let events = representative_events();
        let v = to_json(&events[0]);
        assert_eq!(v["key"], "customer 17", "extensions are top level");
        assert_eq!(v["data"], json!({"order": 17, "items": ["a", "é"]}));
        assert_eq!(to_json(&events[1])["data"], "Hello, 🌎!\n");
        assert_eq!(to_json(&events[2])["data_base64"], "AAH+/w==");
        assert!(to_json(&events[2]).get("data").is_none());
        assert!(to_json(&events[4]).get("data").is_none());
        assert_eq!(to_json(&events[5])["schemaurl"], "/relative/schema");
    }

    #[test]
    fn typed_extensions_become_canonical_strings_in_headers() {
        let mut e = representative_events().remove(4);
        e.extensions = BTreeMap::from([
            ("flag".into(), ExtValue::Bool(true)),
            ("count".into(), ExtValue::Integer(-7)),
        ]);
        let (h, body) = encode_binary(&e);
        assert_eq!(h["ce-flag"], "true");
        assert_eq!(h["ce-count"], "-7");
        assert!(body.is_empty());
        let back = one(&h, &body);
        assert_eq!(back.extensions["flag"], ExtValue::String("true".into()));
        assert_eq!(to_json(&e)["count"], json!(-7));
    }

    #[test]
    fn encode_defaults_content_type_for_untyped_data() {
        let mut e = representative_events().remove(0);
        e.datacontenttype = None;
        let (h, body) = encode_binary(&e);
        assert_eq!(h[CONTENT_TYPE], "application/json");
        assert_eq!(
            serde_json::from_slice::<Value>(&body).expect("json"),
            json!({"order": 17, "items": ["a", "é"]})
        );
        e.data = Some(Data::Binary(Bytes::from_static(b"x")));
        assert_eq!(
            encode_binary(&e).0[CONTENT_TYPE],
            "application/octet-stream"
        );
        e.data = None;
        assert!(!encode_binary(&e).0.contains_key(CONTENT_TYPE));
    }
}
