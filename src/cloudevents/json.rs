//! The JSON event format: one event as a JSON object ([`from_json`], [`to_json`]), the body of
//! structured mode and the array of batched mode. Data rules: `data` is JSON unless
//! `datacontenttype` says otherwise (then it must be a string), `data_base64` (1.0) or
//! `datacontentencoding: base64` (0.3) carries bytes.
//!
//! Pure: no HTTP types, no I/O.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use bytes::Bytes;
use serde_json::{Map, Value};

use super::attributes::{Partial, extension_value, parse_specversion, string_attributes};
use super::error::{BindingError, Fault, cap, echo, json_kind};
use super::media::is_json_media_type;
use crate::model::{CloudEvent, Data, SpecVersion};

/// Parse one event in the JSON event format (a structured-mode body or a batch element).
pub fn from_json(value: &serde_json::Value) -> Result<CloudEvent, BindingError> {
    parse_event(value, &mut Vec::new()).map_err(Fault::single)
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

fn parse_body_json(body: &Bytes, what: &str) -> Result<Value, BindingError> {
    if body.is_empty() {
        return Err(BindingError::Invalid(format!("{what} body is empty")));
    }
    serde_json::from_slice(body)
        .map_err(|e| BindingError::Invalid(cap(format!("{what} body is not valid JSON: {e}"))))
}

/// A structured-mode body: one event in the JSON format.
pub(super) fn decode_structured(
    body: &Bytes,
    warnings: &mut Vec<String>,
) -> Result<CloudEvent, BindingError> {
    let value = parse_body_json(body, "structured")?;
    parse_event(&value, warnings).map_err(Fault::single)
}

/// A batched-mode body: a JSON array of events sharing one `specversion`.
pub(super) fn decode_batch(
    body: &Bytes,
    warnings: &mut Vec<String>,
) -> Result<Vec<CloudEvent>, BindingError> {
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
