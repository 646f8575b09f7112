//! Context attributes: the name grammar, the value rules (RFC 3339 `time`, absolute-URI
//! `dataschema`, the spec versions, the CloudEvents Integer range of extension values) and
//! `Partial`, the event builder both the binary mode and the JSON format fill attribute by
//! attribute and then check as a whole. Also the string attributes both encoders write.
//!
//! Pure: no HTTP types, no I/O.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::{Fault, echo, json_kind};
use super::media::check_media_type;
use crate::model::{CloudEvent, Data, ExtValue, SpecVersion};

/// Recommended maximum attribute name length; longer names only produce a warning.
const RECOMMENDED_NAME_CHARS: usize = 20;

/// The context attributes both encodings write as strings, in spec order: the required ones, then
/// `dataschema` (`schemaurl` in 0.3), `subject` and `time` when set. `datacontenttype` is not
/// among them (binary mode carries it as `Content-Type`), nor are extensions.
pub(super) fn string_attributes(event: &CloudEvent) -> impl Iterator<Item = (&'static str, &str)> {
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

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, with range checks.
pub(super) fn is_rfc3339(s: &str) -> bool {
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
pub(super) fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Attribute name grammar: `[a-z0-9]+`, 0.3 additionally starts with a letter, `data` reserved.
pub(super) fn check_name(name: &str, spec: SpecVersion) -> Result<(), String> {
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

/// `specversion`: the two versions this codec reads.
pub(super) fn parse_specversion(value: &str) -> Result<SpecVersion, Fault> {
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

/// The name of the schema attribute: `dataschema` in 1.0, `schemaurl` in 0.3.
fn schema_attribute(spec: SpecVersion) -> &'static str {
    match spec {
        SpecVersion::V10 => "dataschema",
        SpecVersion::V03 => "schemaurl",
    }
}

/// Attributes collected for one event (from headers or a JSON object), then checked as a whole.
pub(super) struct Partial {
    spec: SpecVersion,
    id: Option<String>,
    source: Option<String>,
    ty: Option<String>,
    pub(super) datacontenttype: Option<String>,
    dataschema: Option<String>,
    subject: Option<String>,
    time: Option<String>,
    /// 0.3 `datacontentencoding` (only `base64` is defined).
    pub(super) base64_encoded: bool,
    extensions: BTreeMap<String, ExtValue>,
}

impl Partial {
    pub(super) fn new(spec: SpecVersion) -> Self {
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

    pub(super) fn is_core(&self, name: &str) -> bool {
        matches!(
            name,
            "id" | "source" | "type" | "datacontenttype" | "subject" | "time"
        ) || name == schema_attribute(self.spec)
            || (self.spec == SpecVersion::V03 && name == "datacontentencoding")
    }

    /// Set a core attribute (a string; `name` must satisfy [`Partial::is_core`]).
    pub(super) fn set_core(&mut self, name: &str, value: String) -> Result<(), Fault> {
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

    pub(super) fn set_extension(
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

    pub(super) fn finish(
        self,
        data: Option<Data>,
        missing_hint: &str,
    ) -> Result<CloudEvent, Fault> {
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

/// An extension value in the JSON format: string, boolean, or Integer (signed 32-bit).
pub(super) fn extension_value(value: &Value) -> Result<ExtValue, String> {
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
