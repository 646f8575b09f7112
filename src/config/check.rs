//! The checkers every part of validation shares: what validation may consult besides the file
//! ([`Context`], with the [`Compilers`] test seam), names, URLs, sizes, durations, and how a YAML
//! value is shown in a message. Each reports its problem at the path it is given and returns
//! `None`; none knows which section it checks.
//!
//! Naming rule (route, gateway and webhook names): 1 to 63 characters, lower-case ASCII letters,
//! digits, `-`, `_` and `.`, starting with a letter or digit. Names appear in logs, error bodies
//! and the default reply source `/flowbridge/<route>`, so they stay URL- and log-safe.
//!
//! Pure: no I/O, no other file of `config` but [`super::path`].

use std::net::SocketAddr;
use std::time::Duration;

use serde_norway::Value;

use super::path::{Path, Report};
use crate::rules::cel::Predicate;
use crate::rules::mapping::{FieldError, Mapping, MappingSpec, ReplyData};

/// Smallest accepted `max_body` / `max_message`: 64 KiB.
pub const MIN_SIZE: u64 = 64 << 10;

/// The compilers validation calls. Production uses the real CEL and mapping compilers; tests
/// substitute failing ones to exercise error paths.
pub struct Compilers {
    pub predicate: fn(&str) -> Result<Predicate, String>,
    pub mapping: fn(&MappingSpec) -> Result<Mapping, Vec<FieldError>>,
    pub reply_data: fn(Option<&str>) -> Result<ReplyData, String>,
}

impl Compilers {
    pub const REAL: Compilers = Compilers {
        predicate: Predicate::compile,
        mapping: Mapping::compile,
        reply_data: ReplyData::compile,
    };
}

/// What validation may consult besides the file.
pub struct Context<'a> {
    pub compilers: &'a Compilers,
    /// Environment lookup for `reply.to: $NAME`.
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// A valid route or gateway name (see the module doc).
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase() | bytes[0].is_ascii_digit()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(b))
}

pub(super) const NAME_RULE: &str = "1-63 characters: lower-case letters, digits, '-', '_' and '.', starting with a letter or digit";

/// Parse an `admin_listen` value: `IP:port`, or `""` / `off` for no admin listener.
pub fn parse_admin_listen(text: &str) -> Result<Option<SocketAddr>, String> {
    let text = text.trim();
    if text.is_empty() || text == "off" {
        return Ok(None);
    }
    text.parse::<SocketAddr>().map(Some).map_err(|_| {
        format!("expected IP:port such as 0.0.0.0:9095, or \"\" / off to disable, got {text:?}")
    })
}

/// Checks an `http(s)` URL with a host (reply sinks).
pub fn http_url(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    let uri: http::Uri = trimmed
        .parse()
        .map_err(|e| format!("not a URL ({e}): {text:?}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => {
            return Err(format!(
                "{text:?}: scheme must be http or https, not {other}"
            ));
        }
        None => return Err(format!("{text:?} is not an absolute http(s) URL")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{text:?} has no host"));
    }
    Ok(trimmed.to_string())
}

/// Parses a size: a plain integer (bytes), or a number with a unit: `B`, `KB`/`MB`/`GB`
/// (powers of 1000), `KiB`/`MiB`/`GiB` (powers of 1024); units are case-insensitive and may be
/// separated by a space.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    if number.is_empty() {
        return Err(format!(
            "expected a size such as 4MiB, 64KiB, 1MB or a number of bytes, got {text:?}"
        ));
    }
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000 * 1000,
        "gb" => 1000 * 1000 * 1000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown size unit in {text:?}; use B, KB, MB, GB, KiB, MiB or GiB"
            ));
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("size {text:?} is too large"))
}

/// A size as written: `4MiB` ([`parse_size`]) or a whole number of bytes.
pub(super) fn size_bytes(value: &Value) -> Result<u64, String> {
    match value {
        Value::String(s) => parse_size(s),
        Value::Number(n) => n.as_u64().ok_or_else(|| {
            format!("expected a whole number of bytes or a size such as 4MiB, got {n}")
        }),
        _ => Err("expected a size such as 4MiB, 64KiB, 1MB or a number of bytes".to_string()),
    }
}

pub(super) fn size(value: &Value, path: &Path, report: &mut Report) -> Option<usize> {
    let bytes = match size_bytes(value) {
        Ok(b) => b,
        Err(msg) => {
            report.error(path.clone(), msg);
            return None;
        }
    };
    if bytes < MIN_SIZE {
        report.error(
            path.clone(),
            format!("must be at least 64KiB (65536 bytes), got {bytes} bytes"),
        );
        return None;
    }
    match usize::try_from(bytes) {
        Ok(b) => Some(b),
        Err(_) => {
            report.error(path.clone(), format!("{bytes} bytes is too large"));
            None
        }
    }
}

pub(super) fn duration(value: &Value, path: &Path, report: &mut Report) -> Option<Duration> {
    let parsed = match value {
        Value::String(s) => humantime::parse_duration(s.trim())
            .map_err(|e| format!("expected a duration such as 60s, 2m or 1m30s, got {s:?} ({e})")),
        Value::Number(n) => Err(format!("{n} needs a unit, e.g. {n}s")),
        _ => Err("expected a duration such as 60s, 2m or 1m30s".to_string()),
    };
    match parsed {
        Ok(d) if d.is_zero() => {
            report.error(path.clone(), "must be greater than 0");
            None
        }
        Ok(d) => Some(d),
        Err(msg) => {
            report.error(path.clone(), msg);
            None
        }
    }
}

/// A YAML value as it would be written, for messages.
pub(super) fn show(value: &Value) -> String {
    serde_norway::to_string(value)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| format!("{value:?}"))
}

/// Report every key of `m` that is not in `allowed`, at its path, as "unknown key; `takes`";
/// whether there was none.
pub(super) fn only_keys(
    m: &serde_norway::Mapping,
    allowed: &[&str],
    takes: &str,
    path: &Path,
    report: &mut Report,
) -> bool {
    let mut ok = true;
    for key in m.keys() {
        if !key.as_str().is_some_and(|k| allowed.contains(&k)) {
            report.error(
                path.key(key.as_str().unwrap_or("?")),
                format!("unknown key; {takes}"),
            );
            ok = false;
        }
    }
    ok
}

/// A whole number in `1..=max`.
pub(super) fn count(value: &Value, max: u64, path: &Path, report: &mut Report) -> Option<usize> {
    match value.as_u64() {
        Some(n) if (1..=max).contains(&n) => usize::try_from(n).ok(),
        _ => {
            report.error(
                path.clone(),
                format!(
                    "expected a whole number from 1 to {max}, got {}",
                    show(value)
                ),
            );
            None
        }
    }
}
