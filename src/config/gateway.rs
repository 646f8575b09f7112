//! Validation of one `gateways.<name>` entry: its URL (`grpc://`, `grpcs://`, `http://`,
//! `https://`, `ws://`, `wss://`), timeouts, message size, delivery settings (`concurrency`,
//! `rate`, `max_pending`, `batch`, `retry`, `autoscale`), `docarray` and TLS (`ca_file`, read now, and
//! `tls_server_name`). Knows nothing of routes or auth.

use std::time::Duration;

use serde_norway::Value;

use super::check::{NAME_RULE, count, duration, is_valid_name, only_keys, show, size};
use super::path::{Path, Report};
use super::raw::{RawBatch, RawGateway, RawRetry};
use crate::model::{
    Autoscale, BatchSpec, Concurrency, DocarrayMode, GRPC_CODES, GatewaySpec, GatewayTls, RetrySpec,
};

/// `gateways.*.timeout` default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// `gateways.*.max_message` default: 64 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 64 << 20;

/// Validates one gateway; `None` when errors were reported.
pub(super) fn gateway(
    name: &str,
    raw: &RawGateway,
    path: &Path,
    report: &mut Report,
) -> Option<GatewaySpec> {
    let mut ok = true;
    if !is_valid_name(name) {
        report.error(
            path.clone(),
            format!("invalid gateway name {name:?}: {NAME_RULE}"),
        );
        ok = false;
    }
    let url = match raw.url.as_deref() {
        None => {
            report.error(
                path.key("url"),
                "required: the Jina gateway, e.g. grpc://127.0.0.1:54321",
            );
            None
        }
        Some(u) => match gateway_url(u) {
            Ok(u) => Some(u),
            Err(msg) => {
                report.error(path.key("url"), msg);
                None
            }
        },
    };
    let timeout = match &raw.timeout {
        None => Some(DEFAULT_TIMEOUT),
        Some(v) => duration(v, &path.key("timeout"), report),
    };
    let max_message = match &raw.max_message {
        None => Some(DEFAULT_MAX_MESSAGE),
        Some(v) => size(v, &path.key("max_message"), report),
    };
    let defaults = GatewaySpec::with_defaults(name, "");
    let connect_timeout = match &raw.connect_timeout {
        None => Some(defaults.connect_timeout),
        Some(v) => duration(v, &path.key("connect_timeout"), report),
    };
    let autoscale = match &raw.autoscale {
        None | Some(Value::Null) => Some(None),
        Some(v) => autoscale(v, &path.key("autoscale"), report).map(Some),
    };
    // An adaptive limit without its own `max` goes, for an autoscaled Flow, up to the requests
    // that keep every replica it may have at its target.
    let default_max = autoscale
        .flatten()
        .and_then(|a| a.saturation())
        .map_or(Concurrency::DEFAULT_MAX, |m| {
            m.min(MAX_CONCURRENCY as usize)
        });
    let concurrency = match &raw.concurrency {
        None => Some(Concurrency::Auto {
            min: 1,
            max: default_max,
        }),
        Some(v) => concurrency(v, default_max, &path.key("concurrency"), report),
    };
    let rate = match &raw.rate {
        None | Some(Value::Null) => Some(None),
        Some(v) => rate(v, &path.key("rate"), report).map(Some),
    };
    let max_pending = match &raw.max_pending {
        None => Some(defaults.max_pending),
        Some(v) => count(v, 100_000_000, &path.key("max_pending"), report),
    };
    let batch = batch(raw.batch.as_ref(), &path.key("batch"), report);
    let retry = retry(raw.retry.as_ref(), &path.key("retry"), report);
    let docarray = match &raw.docarray {
        None => Some(DocarrayMode::Auto),
        Some(Value::String(s)) if s.trim() == "v1" => Some(DocarrayMode::V1),
        Some(Value::String(s)) if s.trim() == "v2" => Some(DocarrayMode::V2),
        Some(Value::String(s)) if s.trim() == "auto" => Some(DocarrayMode::Auto),
        Some(other) => {
            report.error(
                path.key("docarray"),
                format!(
                    "expected v1 (docarray < 0.30), v2 (docarray >= 0.30) or auto (ask the \
                     gateway), got {}",
                    show(other)
                ),
            );
            None
        }
    };
    let tls = gateway_tls(raw, url.as_deref(), path, report);
    if !ok {
        return None;
    }
    Some(GatewaySpec {
        name: name.to_string(),
        url: url?,
        timeout: timeout?,
        max_message_bytes: max_message?,
        connect_timeout: connect_timeout?,
        concurrency: concurrency?,
        rate: rate?,
        max_pending: max_pending?,
        batch: batch?,
        retry: retry?,
        autoscale: autoscale?,
        docarray: docarray?,
        tls: tls?,
    })
}

/// `ca_file` and `tls_server_name` of a gateway: only for TLS gateways (`grpcs://`,
/// `https://`, `wss://`); the bundle is read now.
fn gateway_tls(
    raw: &RawGateway,
    url: Option<&str>,
    path: &Path,
    report: &mut Report,
) -> Option<GatewayTls> {
    let mut tls = GatewayTls::default();
    let mut ok = true;
    let plain = url.is_some_and(|u| {
        !u.starts_with("grpcs://") && !u.starts_with("https://") && !u.starts_with("wss://")
    });
    if let Some(file) = raw.ca_file.as_deref().map(str::trim) {
        let file = std::path::PathBuf::from(file);
        if plain {
            report.error(
                path.key("ca_file"),
                "only for TLS gateways (grpcs://, https://, wss://); this gateway's url is none of them",
            );
            ok = false;
        } else {
            match std::fs::read(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))
                .and_then(|bytes| {
                    crate::tls::certs_from_pem(&bytes)
                        .map_err(|e| format!("{}: {e}", file.display()))?;
                    String::from_utf8(bytes)
                        .map_err(|_| format!("{}: not UTF-8 PEM text", file.display()))
                }) {
                Ok(pem) => {
                    tls.ca_pem = Some(pem);
                    tls.ca_file = Some(file);
                }
                Err(message) => {
                    report.error(path.key("ca_file"), message);
                    ok = false;
                }
            }
        }
    }
    if let Some(name) = raw.tls_server_name.as_deref().map(str::trim) {
        if plain {
            report.error(
                path.key("tls_server_name"),
                "only for TLS gateways (grpcs://, https://, wss://); this gateway's url is none of them",
            );
            ok = false;
        } else if rustls::pki_types::ServerName::try_from(name).is_err() {
            report.error(
                path.key("tls_server_name"),
                format!("{name:?} is not a DNS name or IP address"),
            );
            ok = false;
        } else {
            tls.server_name = Some(name.to_string());
        }
    }
    ok.then_some(tls)
}

/// Most in-flight requests of a gateway, `MAX_CONCURRENCY` at most.
const MAX_CONCURRENCY: u64 = 100_000;

/// `concurrency:` — `auto` (adaptive, 1 to `default_max`: 64, or an autoscaled Flow's
/// `max_scale × target`), `{min, max}` (adaptive between them, either optional) or a whole
/// number (fixed).
fn concurrency(
    value: &Value,
    default_max: usize,
    path: &Path,
    report: &mut Report,
) -> Option<Concurrency> {
    match value {
        Value::String(s) if s.trim() == "auto" => Some(Concurrency::Auto {
            min: 1,
            max: default_max,
        }),
        Value::Mapping(m) => {
            let ok = only_keys(
                m,
                &["min", "max"],
                "an adaptive concurrency takes min and max",
                path,
                report,
            );
            let bound = |key: &str, default: usize, report: &mut Report| match m.get(key) {
                None => Some(default),
                Some(v) => count(v, MAX_CONCURRENCY, &path.key(key), report),
            };
            let min = bound("min", 1, report);
            let max = bound("max", default_max.max(min.unwrap_or(1)), report);
            let (min, max) = (min?, max?);
            if min > max {
                report.error(path.key("min"), format!("min {min} is above max {max}"));
                return None;
            }
            ok.then_some(Concurrency::Auto { min, max })
        }
        Value::Number(_) => count(value, MAX_CONCURRENCY, path, report).map(Concurrency::Fixed),
        other => {
            report.error(
                path.clone(),
                format!(
                    "expected auto, {{min: N, max: N}} or a whole number from 1 to \
                     {MAX_CONCURRENCY}, got {}",
                    show(other)
                ),
            );
            None
        }
    }
}

/// `autoscale: {target, max_scale}`: the Knative annotations of the Flow's gateway Service
/// (`autoscaling.knative.dev/target`, `…/max-scale`), as `flowbridge knative` writes them.
fn autoscale(value: &Value, path: &Path, report: &mut Report) -> Option<Autoscale> {
    let Value::Mapping(m) = value else {
        report.error(
            path.clone(),
            format!(
                "expected {{target: N, max_scale: N}} (the Flow's Knative concurrency target \
                 and max-scale), got {}",
                show(value)
            ),
        );
        return None;
    };
    let ok = only_keys(
        m,
        &["target", "max_scale"],
        "autoscale takes target and max_scale",
        path,
        report,
    );
    let target = match m.get("target") {
        None => {
            report.error(
                path.key("target"),
                "required: the Flow's autoscaling.knative.dev/target (concurrent requests per \
                 replica)",
            );
            None
        }
        Some(v) => match v.as_f64() {
            Some(t) if t.is_finite() && t > 0.0 => Some(t),
            _ => {
                report.error(
                    path.key("target"),
                    format!(
                        "expected a positive number of requests per replica, got {}",
                        show(v)
                    ),
                );
                None
            }
        },
    };
    let max_scale = match m.get("max_scale") {
        None => Some(0),
        Some(v) => match v.as_u64() {
            Some(n) if n <= 100_000 => Some(n as u32),
            _ => {
                report.error(
                    path.key("max_scale"),
                    format!(
                        "expected a whole number of replicas from 0 (unlimited) to 100000, got {}",
                        show(v)
                    ),
                );
                None
            }
        },
    };
    let (target, max_scale) = (target?, max_scale?);
    ok.then_some(Autoscale { target, max_scale })
}

/// Requests per second: a positive number.
fn rate(value: &Value, path: &Path, report: &mut Report) -> Option<f64> {
    match value.as_f64() {
        Some(r) if r.is_finite() && r > 0.0 => Some(r),
        _ => {
            report.error(
                path.clone(),
                format!(
                    "expected a positive number of requests per second (or null for no limit), got {}",
                    show(value)
                ),
            );
            None
        }
    }
}

fn batch(raw: Option<&RawBatch>, path: &Path, report: &mut Report) -> Option<BatchSpec> {
    let defaults = BatchSpec::default();
    let Some(raw) = raw else {
        return Some(defaults);
    };
    let max_docs = match &raw.max_docs {
        None => Some(defaults.max_docs),
        Some(v) => count(v, 1_000_000, &path.key("max_docs"), report),
    };
    let max_bytes = match &raw.max_bytes {
        None => Some(defaults.max_bytes),
        Some(v) => size(v, &path.key("max_bytes"), report),
    };
    let linger = match &raw.linger {
        None => Some(defaults.linger),
        Some(Value::Number(n)) if n.as_u64() == Some(0) => Some(Duration::ZERO),
        Some(Value::String(s))
            if humantime::parse_duration(s.trim()).is_ok_and(|d| d.is_zero()) =>
        {
            Some(Duration::ZERO)
        }
        Some(v) => duration(v, &path.key("linger"), report),
    };
    Some(BatchSpec {
        max_docs: max_docs?,
        max_bytes: max_bytes?,
        linger: linger?,
    })
}

fn retry(raw: Option<&RawRetry>, path: &Path, report: &mut Report) -> Option<RetrySpec> {
    let defaults = RetrySpec::default();
    let Some(raw) = raw else {
        return Some(defaults);
    };
    let initial = match &raw.initial_backoff {
        None => Some(defaults.initial_backoff),
        Some(v) => duration(v, &path.key("initial_backoff"), report),
    };
    let max = match &raw.max_backoff {
        None => Some(defaults.max_backoff),
        Some(v) => duration(v, &path.key("max_backoff"), report),
    };
    if let (Some(i), Some(m)) = (initial, max)
        && m < i
    {
        report.error(
            path.key("max_backoff"),
            format!(
                "must not be below initial_backoff ({} < {})",
                humantime::format_duration(m),
                humantime::format_duration(i)
            ),
        );
    }
    let codes = match &raw.codes {
        None => Some(defaults.codes),
        Some(Value::Sequence(items)) => {
            let mut codes = Vec::new();
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                let name = item.as_str().map(|s| s.trim().to_ascii_uppercase());
                match name {
                    Some(n) if n != "OK" && GRPC_CODES.contains(&n.as_str()) => codes.push(n),
                    _ => {
                        report.error(
                            path.key("codes").index(i),
                            format!(
                                "expected a gRPC status code name other than OK ({}), got {}",
                                GRPC_CODES[1..].join(", "),
                                show(item)
                            ),
                        );
                        ok = false;
                    }
                }
            }
            ok.then_some(codes)
        }
        Some(other) => {
            report.error(
                path.key("codes"),
                format!(
                    "expected a list of gRPC status code names such as [UNAVAILABLE], got {}",
                    show(other)
                ),
            );
            None
        }
    };
    Some(RetrySpec {
        initial_backoff: initial?,
        max_backoff: max?,
        codes: codes?,
    })
}

/// Checks a gateway URL: `grpc://` or `grpcs://` (gRPC gateway), `http://` or `https://` (HTTP
/// gateway), `ws://` or `wss://` (WebSocket gateway), host
/// and port, nothing else. Returns it in the
/// normal form `scheme://host:port`.
pub fn gateway_url(text: &str) -> Result<String, String> {
    let uri: http::Uri = text
        .trim()
        .parse()
        .map_err(|e| format!("not a URL ({e}): {text:?}; expected grpc://host:port"))?;
    let scheme = match uri.scheme_str() {
        Some(s @ ("grpc" | "grpcs" | "http" | "https" | "ws" | "wss")) => s,
        Some(other) => {
            return Err(format!(
                "unsupported scheme {other}:// in {text:?}; use grpc:// (plain HTTP/2) or grpcs:// \
                 (TLS) for a gRPC gateway, http:// or https:// (TLS) for an HTTP gateway, ws:// \
                 or wss:// (TLS) for a WebSocket gateway"
            ));
        }
        None => return Err(format!("{text:?} has no scheme; expected grpc://host:port")),
    };
    let Some(authority) = uri.authority() else {
        return Err(format!("{text:?} has no host; expected grpc://host:port"));
    };
    if authority.as_str().contains('@') {
        return Err(format!("{text:?}: user info is not supported"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{text:?} has no host; expected grpc://host:port"));
    }
    if uri.port_u16().is_none() {
        return Err(format!(
            "{text:?} has no port; expected {scheme}://{}:PORT",
            authority.host()
        ));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "{text:?}: a gateway URL has no path or query; expected {scheme}://{authority}"
        ));
    }
    Ok(format!("{scheme}://{authority}"))
}
