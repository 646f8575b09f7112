//! Validation of `state:` (shared state for replicas): the Redis URL (`redis://` or
//! `rediss://`), its CA bundle (read now), the password (from a file or the environment, read
//! now), `key_prefix`, the timeouts and the `on_state_error` policy of each feature. Produces
//! the plain data of [`crate::state::spec`]; connects to nothing.

use serde_norway::Value;

use super::auth::secret;
use super::check::{Context, duration, show};
use super::path::{Path, Report};
use super::raw::RawState;
use crate::state::spec::{Policies, Policy, StateSpec};

/// Longest accepted `command_timeout`: longer would let Redis hold events for seconds.
const MAX_COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Validates `state:`. `Some(None)`: no block; `None`: errors were reported.
pub(super) fn state(
    raw: Option<&RawState>,
    path: &Path,
    ctx: &Context<'_>,
    report: &mut Report,
) -> Option<Option<StateSpec>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    let mut ok = true;
    let url = match raw.redis.as_deref().map(str::trim) {
        None | Some("") => {
            report.error(
                path.key("redis"),
                "required with `state`: the Redis (or Valkey) URL, e.g. redis://redis:6379/0",
            );
            None
        }
        Some(url) => match redis_url(url) {
            Ok(()) => Some(url.to_string()),
            Err(message) => {
                report.error(path.key("redis"), message);
                None
            }
        },
    };
    let mut spec = StateSpec::with_defaults(url.as_deref().unwrap_or(""));
    if let Some(file) = raw.ca_file.as_deref().map(str::trim) {
        if url.as_deref().is_some_and(|u| !u.starts_with("rediss://")) {
            report.error(
                path.key("ca_file"),
                "only for rediss:// (Redis over TLS); this url is redis://",
            );
            ok = false;
        } else {
            match std::fs::read(file)
                .map_err(|e| format!("cannot read {file}: {e}"))
                .and_then(|bytes| {
                    crate::tls::certs_from_pem(&bytes).map_err(|e| format!("{file}: {e}"))?;
                    String::from_utf8(bytes).map_err(|_| format!("{file}: not UTF-8 PEM text"))
                }) {
                Ok(pem) => {
                    spec.ca_pem = Some(pem);
                    spec.ca_file = Some(file.into());
                }
                Err(message) => {
                    report.error(path.key("ca_file"), message);
                    ok = false;
                }
            }
        }
    }
    if let Some(password) = &raw.password {
        match secret(password, &path.key("password"), "password", ctx, report) {
            Some(secret) => match String::from_utf8(secret.expose().to_vec()) {
                Ok(text) => {
                    spec.password_file = secret.file().map(std::path::Path::to_path_buf);
                    spec.password = Some(text);
                }
                Err(_) => {
                    report.error(path.key("password"), "the password is not UTF-8 text");
                    ok = false;
                }
            },
            None => ok = false,
        }
    }
    if let Some(prefix) = &raw.key_prefix {
        if prefix.len() > 128 || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
            report.error(
                path.key("key_prefix"),
                format!("expected at most 128 characters without spaces, got {prefix:?}"),
            );
            ok = false;
        } else {
            spec.key_prefix = prefix.clone();
        }
    }
    if let Some(v) = &raw.connect_timeout {
        match duration(v, &path.key("connect_timeout"), report) {
            Some(d) => spec.connect_timeout = d,
            None => ok = false,
        }
    }
    if let Some(v) = &raw.command_timeout {
        match duration(v, &path.key("command_timeout"), report) {
            Some(d) if d > MAX_COMMAND_TIMEOUT => {
                report.error(
                    path.key("command_timeout"),
                    "at most 10s: every event waits for it when Redis is slow",
                );
                ok = false;
            }
            Some(d) => spec.command_timeout = d,
            None => ok = false,
        }
    }
    if let Some(v) = &raw.on_state_error {
        match policies(v, &path.key("on_state_error"), report) {
            Some(p) => spec.on_state_error = p,
            None => ok = false,
        }
    }
    (ok && url.is_some()).then_some(Some(spec))
}

/// `redis://` or `rediss://` with a host; a database number if any.
fn redis_url(text: &str) -> Result<(), String> {
    let rest = text
        .strip_prefix("redis://")
        .or_else(|| text.strip_prefix("rediss://"))
        .ok_or_else(|| {
            format!("{text:?}: expected redis://host:port/db or rediss://host:port/db")
        })?;
    let (authority, db) = rest.split_once('/').unwrap_or((rest, ""));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("{text:?} has no host"));
    }
    let db = db.split('?').next().unwrap_or_default();
    if !db.is_empty() && db.parse::<u32>().is_err() {
        return Err(format!(
            "{text:?}: the path is the database number, e.g. /0, not {db:?}"
        ));
    }
    redis::IntoConnectionInfo::into_connection_info(text)
        .map(|_| ())
        .map_err(|e| format!("{text:?}: {e}"))
}

/// `open`/`closed` for both features, or a mapping with `dedup` and `rate`.
fn policies(value: &Value, path: &Path, report: &mut Report) -> Option<Policies> {
    let one = |v: &Value, path: &Path, report: &mut Report| match v.as_str().map(str::trim) {
        Some("open") => Some(Policy::Open),
        Some("closed") => Some(Policy::Closed),
        _ => {
            report.error(
                path.clone(),
                format!(
                    "expected open (go on without the shared state) or closed (answer 503), \
                     got {}",
                    show(v)
                ),
            );
            None
        }
    };
    match value {
        Value::Mapping(m) => {
            let mut policies = Policies::default();
            let mut ok = true;
            for (key, v) in m {
                match key.as_str() {
                    Some("dedup") => match one(v, &path.key("dedup"), report) {
                        Some(p) => policies.dedup = p,
                        None => ok = false,
                    },
                    Some("rate") => match one(v, &path.key("rate"), report) {
                        Some(p) => policies.rate = p,
                        None => ok = false,
                    },
                    other => {
                        report.error(
                            path.key(other.unwrap_or("?")),
                            "unknown feature; on_state_error takes dedup and rate",
                        );
                        ok = false;
                    }
                }
            }
            ok.then_some(policies)
        }
        v => one(v, path, report).map(|p| Policies { dedup: p, rate: p }),
    }
}
