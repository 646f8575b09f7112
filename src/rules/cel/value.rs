//! Values across the CEL boundary: JSON and CloudEvents into CEL values (borrowing the event's
//! strings and bytes, not copying them), and CEL results back out: [`view`] for the shapes a
//! mapping reads, [`val_to_json`] for JSON (bytes → base64 text).
//!
//! Pure: no axum, tonic or tokio.

use std::collections::HashMap;

use ::cel::Value as CelValue;
use ::cel::common::types::{
    CelBool, CelBytes, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelOptional,
    CelString, CelUInt, Kind,
};
use ::cel::common::value::Val;
use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::model::{CloudEvent, Data, ExtValue, SpecVersion};

/// A CEL value as cel-rust evaluates it (re-exported so callers need not name the crate).
pub type CelVal<'v> = dyn Val + 'v;

// ---------------------------------------------------------------------------------------------
// JSON and events → CEL

/// A JSON value as a CEL value, borrowing its strings. Integers that fit `i64` become `int`,
/// other numbers `double`.
pub fn json_to_val(value: &Value) -> Box<CelVal<'_>> {
    match value {
        Value::Null => Box::new(CelNull),
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Box::new(CelInt::from(i)),
            None => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::String(s) => Box::new(CelString::from(s.as_str())),
        Value::Array(items) => {
            let list: Vec<Box<CelVal<'_>>> = items.iter().map(json_to_val).collect();
            Box::new(CelList::from(list))
        }
        Value::Object(map) => {
            let mut out = HashMap::with_capacity(map.len());
            for (k, v) in map {
                out.insert(CelMapKey::from(k.as_str()), json_to_val(v));
            }
            Box::new(CelMap::from(out))
        }
    }
}

fn str_val(s: &str) -> Box<CelVal<'_>> {
    Box::new(CelString::from(s))
}

/// The name the JSON format gives `dataschema` in this spec version.
pub fn dataschema_key(version: SpecVersion) -> &'static str {
    match version {
        SpecVersion::V03 => "schemaurl",
        SpecVersion::V10 => "dataschema",
    }
}

/// The CloudEvent as CEL's `event`: the JSON format's shape. Optional attributes and extensions
/// appear only when present (so `has(event.subject)` works); `data` is JSON for JSON content, a
/// string for text, bytes otherwise, and absent without data.
pub fn event_to_val(event: &CloudEvent) -> Box<CelVal<'_>> {
    let mut map: HashMap<CelMapKey<'_>, Box<CelVal<'_>>> =
        HashMap::with_capacity(8 + event.extensions.len());
    // Extensions first: a (spec-violating) extension named like an attribute is overwritten.
    for (name, value) in &event.extensions {
        let value: Box<CelVal<'_>> = match value {
            ExtValue::String(s) => str_val(s),
            ExtValue::Bool(b) => Box::new(CelBool::from(*b)),
            ExtValue::Integer(i) => Box::new(CelInt::from(*i)),
        };
        map.insert(CelMapKey::from(name.as_str()), value);
    }
    map.insert(
        CelMapKey::from("specversion"),
        str_val(event.specversion.as_str()),
    );
    map.insert(CelMapKey::from("id"), str_val(&event.id));
    map.insert(CelMapKey::from("source"), str_val(&event.source));
    map.insert(CelMapKey::from("type"), str_val(&event.ty));
    let optional = [
        ("datacontenttype", &event.datacontenttype),
        (dataschema_key(event.specversion), &event.dataschema),
        ("subject", &event.subject),
        ("time", &event.time),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            map.insert(CelMapKey::from(key), str_val(value));
        }
    }
    if let Some(data) = &event.data {
        let value: Box<CelVal<'_>> = match data {
            Data::Json(v) => json_to_val(v),
            Data::Text(s) => str_val(s),
            Data::Binary(b) => Box::new(CelBytes::from(b.as_ref())),
        };
        map.insert(CelMapKey::from("data"), value);
    }
    Box::new(CelMap::from(map))
}

// ---------------------------------------------------------------------------------------------
// CEL → Rust

/// A CEL value seen as one of the shapes mappings care about.
pub enum View<'b, 'v> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    String(&'b str),
    Bytes(&'b [u8]),
    List(&'b [Box<CelVal<'v>>]),
    Map(&'b HashMap<CelMapKey<'v>, Box<CelVal<'v>>>),
    /// Anything else (timestamps, durations, types, ...).
    Other,
}

/// Looks at a CEL value. A present optional is seen through; an absent one is `Null`.
pub fn view<'b, 'v>(value: &'b CelVal<'v>) -> View<'b, 'v> {
    match value.get_type().kind() {
        Kind::NullType => View::Null,
        Kind::Boolean => value
            .downcast_ref::<CelBool>()
            .map_or(View::Other, |b| View::Bool(*b.inner())),
        Kind::Int => value
            .downcast_ref::<CelInt>()
            .map_or(View::Other, |i| View::Int(*i.inner())),
        Kind::UInt => value
            .downcast_ref::<CelUInt>()
            .map_or(View::Other, |u| View::UInt(*u.inner())),
        Kind::Double => value
            .downcast_ref::<CelDouble>()
            .map_or(View::Other, |d| View::Double(*d.inner())),
        Kind::String => value
            .downcast_ref::<CelString>()
            .map_or(View::Other, |s| View::String(s.inner())),
        Kind::Bytes => value
            .downcast_ref::<CelBytes>()
            .map_or(View::Other, |b| View::Bytes(b.inner())),
        Kind::List => value
            .downcast_ref::<CelList>()
            .map_or(View::Other, |l| View::List(l.inner())),
        Kind::Map => value
            .downcast_ref::<CelMap>()
            .map_or(View::Other, |m| View::Map(m.inner())),
        _ => match value.downcast_ref::<CelOptional>() {
            Some(opt) => match opt.option() {
                Some(inner) => view(inner),
                None => View::Null,
            },
            None => View::Other,
        },
    }
}

/// The CEL type name of a value, for error messages.
pub fn type_name(value: &CelVal<'_>) -> String {
    value.get_type().name().to_string()
}

/// A map key as a string: strings as they are, `int`/`uint`/`bool` keys in their decimal or
/// `true`/`false` form.
pub fn key_to_string(key: &CelMapKey<'_>) -> String {
    match key {
        CelMapKey::String(s) => s.inner().to_string(),
        CelMapKey::Int(i) => i.inner().to_string(),
        CelMapKey::UInt(u) => u.inner().to_string(),
        CelMapKey::Bool(b) => b.inner().to_string(),
    }
}

/// The key as `&str` when it is a string key.
pub fn key_str<'b>(key: &'b CelMapKey<'_>) -> Option<&'b str> {
    match key {
        CelMapKey::String(s) => Some(s.inner()),
        _ => None,
    }
}

/// Converts a CEL result to JSON: bytes become base64 text, map keys are stringified,
/// timestamps become RFC 3339 text and durations seconds (`"1.5s"`). Non-finite doubles and
/// values with no JSON form are errors.
pub fn val_to_json(value: &CelVal<'_>) -> Result<Value, String> {
    Ok(match view(value) {
        View::Null => Value::Null,
        View::Bool(b) => Value::Bool(b),
        View::Int(i) => Value::from(i),
        View::UInt(u) => Value::from(u),
        View::Double(d) => Value::Number(
            Number::from_f64(d).ok_or_else(|| format!("{d} has no JSON representation"))?,
        ),
        View::String(s) => Value::String(s.to_string()),
        View::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        View::List(items) => Value::Array(
            items
                .iter()
                .map(|item| val_to_json(item.as_ref()))
                .collect::<Result<_, _>>()?,
        ),
        View::Map(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(key_to_string(k), val_to_json(v.as_ref())?);
            }
            Value::Object(out)
        }
        View::Other => other_to_json(value)?,
    })
}

/// The slow path: whatever cel-rust can turn into its owned `Value`.
fn other_to_json(value: &CelVal<'_>) -> Result<Value, String> {
    let owned = CelValue::try_from(value)
        .map_err(|_| format!("a {} has no JSON representation", type_name(value)))?;
    value_to_json(&owned)
}

fn value_to_json(value: &CelValue) -> Result<Value, String> {
    Ok(match value {
        CelValue::Null => Value::Null,
        CelValue::Bool(b) => Value::Bool(*b),
        CelValue::Int(i) => Value::from(*i),
        CelValue::UInt(u) => Value::from(*u),
        CelValue::Float(d) => Value::Number(
            Number::from_f64(*d).ok_or_else(|| format!("{d} has no JSON representation"))?,
        ),
        CelValue::String(s) => Value::String(s.to_string()),
        CelValue::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(&**b)),
        CelValue::List(items) => {
            Value::Array(items.iter().map(value_to_json).collect::<Result<_, _>>()?)
        }
        CelValue::Map(map) => {
            let mut out = Map::new();
            for (k, v) in map.map.iter() {
                let key = match k {
                    ::cel::objects::Key::String(s) => s.to_string(),
                    ::cel::objects::Key::Int(i) => i.to_string(),
                    ::cel::objects::Key::Uint(u) => u.to_string(),
                    ::cel::objects::Key::Bool(b) => b.to_string(),
                };
                out.insert(key, value_to_json(v)?);
            }
            Value::Object(out)
        }
        CelValue::Timestamp(ts) => Value::String(ts.to_rfc3339()),
        CelValue::Duration(d) => {
            let secs = d.num_milliseconds() as f64 / 1000.0;
            Value::String(format!("{secs}s"))
        }
        other => return Err(format!("a {} has no JSON representation", other.type_of())),
    })
}
