//! Raw config → typed [`Config`]: checks every value, compiles filters, CEL programs and
//! mappings, resolves gateways and `$ENV` sinks, and records every problem with its path instead
//! of stopping at the first.
//!
//! Naming rule (route and gateway names): 1 to 63 characters, lower-case ASCII letters, digits,
//! `-`, `_` and `.`, starting with a letter or digit. Names appear in logs, error bodies and the
//! default reply source `/flowbridge/<route>`, so they stay URL- and log-safe.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use serde_norway::Value;

use super::Config;
use super::path::{Path, Report};
use super::raw::{
    RawBatch, RawConfig, RawFilter, RawGateway, RawReply, RawRetry, RawRoute, RawTls,
};
use crate::model::{
    BatchSpec, Concurrency, DocarrayMode, GRPC_CODES, GatewaySpec, GatewayTls, RetrySpec,
};
use crate::rules::cel::Predicate;
use crate::rules::filter::{Filter, is_valid_attribute_name};
use crate::rules::mapping::{Expr, FieldError, Mapping, MappingSpec, ReplyData};
use crate::rules::schema::DataSchema;
use crate::rules::{ReplySpec, Route, RuleSet, Unmatched};

/// `listen` when the file does not say.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// `admin_listen` when the file does not say. Not 9090/9091: in a Knative pod those belong to
/// the queue-proxy sidecar (autoscaler and user metrics; Serving reserves them with 8012, 8013,
/// 8022 and 8008), which shares the pod's network namespace.
pub const DEFAULT_ADMIN_LISTEN: &str = "0.0.0.0:9095";
/// `limits.max_body` default: 4 MiB.
pub const DEFAULT_MAX_BODY: usize = 4 << 20;
/// Smallest accepted `max_body` / `max_message`: 64 KiB.
pub const MIN_SIZE: u64 = 64 << 10;
/// `gateways.*.timeout` default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// `gateways.*.max_message` default: 64 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 64 << 20;
/// `shutdown_grace` default (Knative's default `terminationGracePeriodSeconds` is the revision
/// timeout, 300 s; 30 s keeps a rolling update quick).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

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

/// Validates `raw`; returns the config (warnings left empty, see `report.warnings`) when no error
/// was found.
pub fn validate(raw: RawConfig, ctx: &Context<'_>, report: &mut Report) -> Option<Config> {
    let root = Path::root();

    let listen = listen(raw.listen.as_deref(), &root.key("listen"), report);
    let admin_listen = match super::parse_admin_listen(
        raw.admin_listen.as_deref().unwrap_or(DEFAULT_ADMIN_LISTEN),
    ) {
        Ok(addr) => Some(addr),
        Err(message) => {
            report.error(root.key("admin_listen"), message);
            None
        }
    };

    let max_body = match raw.limits.as_ref().and_then(|l| l.max_body.as_ref()) {
        None => Some(DEFAULT_MAX_BODY),
        Some(v) => size(v, &root.key("limits").key("max_body"), report),
    };

    let unmatched = match raw.unmatched.as_deref() {
        None | Some("accept") => Some(Unmatched::Accept),
        Some("reject") => Some(Unmatched::Reject),
        Some(other) => {
            report.error(
                root.key("unmatched"),
                format!("expected `accept` or `reject`, got {other:?}"),
            );
            None
        }
    };

    let shutdown_grace = match &raw.shutdown_grace {
        None => Some(DEFAULT_SHUTDOWN_GRACE),
        Some(v) => duration(v, &root.key("shutdown_grace"), report),
    };

    let tls = match &raw.tls {
        None => Some(None),
        Some(t) => listener_tls(t, &root.key("tls"), report).map(Some),
    };

    let raw_gateways = raw.gateways.unwrap_or_default();
    if raw_gateways.is_empty() {
        report.error(
            root.key("gateways"),
            "at least one gateway is required, e.g. `gateways: {default: {url: grpc://127.0.0.1:54321}}`",
        );
    }
    let mut gateways = BTreeMap::new();
    for (name, gw) in &raw_gateways {
        if let Some(spec) = gateway(name, gw, &root.key("gateways").key(name), report) {
            gateways.insert(name.clone(), spec);
        }
    }
    let gateway_names: Vec<&str> = raw_gateways.keys().map(String::as_str).collect();

    let raw_routes = raw.routes.unwrap_or_default();
    if raw_routes.is_empty() {
        report.warn(
            root.key("routes"),
            "no routes: no event will match (each gets the `unmatched` answer)",
        );
    }
    let mut first_use: HashMap<String, usize> = HashMap::new();
    let mut routes = Vec::with_capacity(raw_routes.len());
    for (i, r) in raw_routes.iter().enumerate() {
        let path = root.key("routes").index(i);
        if let Some(name) = &r.name {
            if let Some(first) = first_use.get(name) {
                report.error(
                    path.key("name"),
                    format!("duplicate route name {name:?} (first used by routes[{first}])"),
                );
            } else {
                first_use.insert(name.clone(), i);
            }
        }
        if let Some(route) = route(r, &path, &gateway_names, ctx, report) {
            routes.push(route);
        }
    }

    let auth = super::auth::auth(raw.auth.as_ref(), &root.key("auth"), false, ctx, report);
    let webhooks =
        super::auth::webhooks(raw.webhooks.as_deref(), &root.key("webhooks"), ctx, report);

    if report.has_errors() {
        return None;
    }
    Some(Config {
        listen: listen?,
        admin_listen: admin_listen?,
        max_body: max_body?,
        unmatched: unmatched?,
        gateways,
        rules: RuleSet { routes },
        shutdown_grace: shutdown_grace?,
        auth: auth?,
        webhooks: webhooks?,
        tls: tls?,
        warnings: Vec::new(),
    })
}

/// `tls:`: both files required; they are read and checked now (key fits certificate).
fn listener_tls(raw: &RawTls, path: &Path, report: &mut Report) -> Option<crate::tls::ServerTls> {
    let required = |value: &Option<String>, key: &str, report: &mut Report| match value
        .as_deref()
        .map(str::trim)
    {
        Some(v) if !v.is_empty() => Some(std::path::PathBuf::from(v)),
        _ => {
            report.error(
                path.key(key),
                "required with `tls`: a PEM file path, e.g. /etc/flowbridge/tls/tls.crt",
            );
            None
        }
    };
    let cert = required(&raw.cert_file, "cert_file", report);
    let key = required(&raw.key_file, "key_file", report);
    let client_ca = raw
        .client_ca_file
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from);
    let (cert, key) = (cert?, key?);
    match crate::tls::server_config(&cert, &key, client_ca.as_deref()) {
        Ok(tls) => Some(tls),
        Err(problems) => {
            for (field, message) in problems {
                report.error(path.key(field.key()), message);
            }
            None
        }
    }
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

fn listen(text: Option<&str>, path: &Path, report: &mut Report) -> Option<SocketAddr> {
    let text = text.unwrap_or(DEFAULT_LISTEN);
    match text.trim().parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            report.error(
                path.clone(),
                format!("expected IP:port such as 0.0.0.0:8080 or [::]:8080, got {text:?}"),
            );
            None
        }
    }
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

fn gateway(name: &str, raw: &RawGateway, path: &Path, report: &mut Report) -> Option<GatewaySpec> {
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
    let concurrency = match &raw.concurrency {
        None => Some(defaults.concurrency),
        Some(v) => concurrency(v, &path.key("concurrency"), report),
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
        docarray: docarray?,
        tls: tls?,
    })
}

/// A whole number in `1..=max`.
fn count(value: &Value, max: u64, path: &Path, report: &mut Report) -> Option<usize> {
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

/// Most in-flight requests of a gateway, `MAX_CONCURRENCY` at most.
const MAX_CONCURRENCY: u64 = 100_000;

/// `concurrency:` — `auto` (adaptive, 1 to the default max), `{min, max}` (adaptive between
/// them, either optional) or a whole number (fixed).
fn concurrency(value: &Value, path: &Path, report: &mut Report) -> Option<Concurrency> {
    match value {
        Value::String(s) if s.trim() == "auto" => Some(Concurrency::DEFAULT),
        Value::Mapping(m) => {
            let mut ok = true;
            for key in m.keys() {
                if !matches!(key.as_str(), Some("min" | "max")) {
                    report.error(
                        path.key(key.as_str().unwrap_or("?")),
                        "unknown key; an adaptive concurrency takes min and max",
                    );
                    ok = false;
                }
            }
            let bound = |key: &str, default: usize, report: &mut Report| match m.get(key) {
                None => Some(default),
                Some(v) => count(v, MAX_CONCURRENCY, &path.key(key), report),
            };
            let min = bound("min", 1, report);
            let max = bound(
                "max",
                Concurrency::DEFAULT_MAX.max(min.unwrap_or(1)),
                report,
            );
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

/// A YAML value as it would be written, for messages.
fn show(value: &Value) -> String {
    serde_norway::to_string(value)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| format!("{value:?}"))
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

fn size(value: &Value, path: &Path, report: &mut Report) -> Option<usize> {
    let parsed = match value {
        Value::String(s) => parse_size(s),
        Value::Number(n) => n.as_u64().ok_or_else(|| {
            format!("expected a whole number of bytes or a size such as 4MiB, got {n}")
        }),
        _ => Err("expected a size such as 4MiB, 64KiB, 1MB or a number of bytes".to_string()),
    };
    let bytes = match parsed {
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

fn route(
    raw: &RawRoute,
    path: &Path,
    gateways: &[&str],
    ctx: &Context<'_>,
    report: &mut Report,
) -> Option<Route> {
    let errors_before = report.errors.len();

    let name = match raw.name.as_deref() {
        None => {
            report.error(
                path.key("name"),
                "required: every route needs a unique name",
            );
            None
        }
        Some(n) if !is_valid_name(n) => {
            report.error(
                path.key("name"),
                format!("invalid route name {n:?}: {NAME_RULE}"),
            );
            None
        }
        Some(n) => Some(n.to_string()),
    };

    let mut filters = Vec::new();
    for (j, f) in raw.filters.iter().flatten().enumerate() {
        if let Some(filter) = filter(f, &path.key("filters").index(j), ctx, report) {
            filters.push(filter);
        }
    }

    let gateway = match raw.gateway.as_deref() {
        Some(g) if gateways.contains(&g) => Some(g.to_string()),
        Some(g) => {
            let known = if gateways.is_empty() {
                "no gateways are defined".to_string()
            } else {
                format!("known: {}", gateways.join(", "))
            };
            report.error(
                path.key("gateway"),
                format!("unknown gateway {g:?} ({known})"),
            );
            None
        }
        None => match gateways {
            [only] => Some((*only).to_string()),
            // Already reported at `gateways`.
            [] => None,
            several => {
                report.error(
                    path.key("gateway"),
                    format!(
                        "required when several gateways are defined (known: {})",
                        several.join(", ")
                    ),
                );
                None
            }
        },
    };

    let spec = MappingSpec {
        endpoint: expr(raw.endpoint.as_ref(), &path.key("endpoint"), report),
        target_executor: expr(
            raw.target_executor.as_ref(),
            &path.key("target_executor"),
            report,
        ),
        parameters: raw.parameters.clone(),
        docs: raw.docs.clone(),
    };
    let mapping = match (ctx.compilers.mapping)(&spec) {
        Ok(m) => Some(m),
        Err(field_errors) => {
            for fe in field_errors {
                let mut p = path.clone();
                for part in fe.field.split('.') {
                    p = p.key(part);
                }
                report.error(p, fe.message);
            }
            None
        }
    };

    let reply = match &raw.reply {
        None => None,
        Some(r) => reply(r, name.as_deref(), &path.key("reply"), ctx, report),
    };
    if let (Some(reply_ty), Some(rs)) = (raw.reply.as_ref().and_then(|r| r.ty.as_deref()), &reply)
        && reply_may_loop(&filters, reply_ty, &rs.source)
    {
        report.warn(
            path.key("reply").key("type"),
            format!(
                "this route's filters also match its own reply ({reply_ty:?}): a Broker would \
                 deliver the reply back to this route in a loop; give the reply a type the \
                 filters exclude"
            ),
        );
    }

    let dedup = match &raw.dedup {
        None | Some(Value::Null) => Some(None),
        Some(v) => duration(v, &path.key("dedup"), report).map(Some),
    };

    let schema = match &raw.schema {
        None | Some(Value::Null) => Some(None),
        Some(v) => data_schema(v, &path.key("schema"), report).map(Some),
    };

    if report.errors.len() > errors_before {
        return None;
    }
    Some(Route {
        name: name?,
        gateway: gateway?,
        filters,
        schema: schema?,
        mapping: mapping?,
        reply,
        dedup: dedup?,
    })
}

/// `schema:` — a file (JSON, or YAML, which JSON is a subset of) or an inline mapping, compiled.
fn data_schema(value: &Value, path: &Path, report: &mut Report) -> Option<DataSchema> {
    let (schema, file): (serde_json::Value, Option<&str>) = match value {
        Value::String(file) => {
            let text = match std::fs::read_to_string(file) {
                Ok(text) => text,
                Err(e) => {
                    report.error(path.clone(), format!("cannot read schema file {file}: {e}"));
                    return None;
                }
            };
            match serde_norway::from_str::<serde_json::Value>(&text) {
                Ok(schema) => (schema, Some(file.as_str())),
                Err(e) => {
                    report.error(
                        path.clone(),
                        format!("schema file {file} is not JSON or YAML: {e}"),
                    );
                    return None;
                }
            }
        }
        Value::Mapping(_) | Value::Bool(_) => match serde_json::to_value(value) {
            Ok(schema) => (schema, None),
            Err(e) => {
                report.error(path.clone(), format!("cannot read the inline schema: {e}"));
                return None;
            }
        },
        other => {
            report.error(
                path.clone(),
                format!(
                    "expected a schema file path or an inline JSON Schema mapping, got {}",
                    show(other)
                ),
            );
            return None;
        }
    };
    match (DataSchema::compile(&schema), file) {
        (Ok(compiled), Some(file)) => Some(compiled.from_file(file)),
        (Ok(compiled), None) => Some(compiled),
        (Err(e), file) => {
            let origin = file.map(|f| format!("{f}: ")).unwrap_or_default();
            report.error(path.clone(), format!("{origin}{e}"));
            None
        }
    }
}

/// `endpoint` / `target_executor`: a string, or `{cel: expression}`.
fn expr(value: Option<&Value>, path: &Path, report: &mut Report) -> Option<Expr> {
    let bad = "expected a string or {cel: expression}";
    match value? {
        Value::String(s) if s.is_empty() => {
            report.error(path.clone(), "must not be empty");
            None
        }
        Value::String(s) => Some(Expr::Literal(s.clone())),
        Value::Mapping(m) => {
            let keys: Vec<String> = m.keys().map(key_text).collect();
            if keys != ["cel"] {
                report.error(
                    path.clone(),
                    format!("{bad}; found keys {}", keys.join(", ")),
                );
                return None;
            }
            match m.get("cel") {
                Some(Value::String(s)) if !s.trim().is_empty() => Some(Expr::Cel(s.clone())),
                _ => {
                    report.error(path.key("cel"), "expected a CEL expression (a string)");
                    None
                }
            }
        }
        _ => {
            report.error(path.clone(), bad);
            None
        }
    }
}

fn reply(
    raw: &RawReply,
    route_name: Option<&str>,
    path: &Path,
    ctx: &Context<'_>,
    report: &mut Report,
) -> Option<ReplySpec> {
    let ty = match raw.ty.as_deref().map(str::trim) {
        None | Some("") => {
            report.error(
                path.key("type"),
                "required: the type of the reply event, e.g. com.example.order.indexed",
            );
            None
        }
        Some(t) => Some(t.to_string()),
    };
    let source = match raw.source.as_deref().map(str::trim) {
        Some("") => {
            report.error(path.key("source"), "must not be empty");
            None
        }
        Some(s) => Some(s.to_string()),
        None => route_name.map(|n| format!("/flowbridge/{n}")),
    };
    let data = match (ctx.compilers.reply_data)(raw.data.as_deref()) {
        Ok(d) => Some(d),
        Err(msg) => {
            report.error(path.key("data"), msg);
            None
        }
    };
    let to = match raw.to.as_deref() {
        None => Some(None),
        Some(t) => match sink(t, ctx.env) {
            Ok(url) => Some(Some(url)),
            Err(msg) => {
                report.error(path.key("to"), msg);
                None
            }
        },
    };
    Some(ReplySpec {
        ty: ty?,
        source: source?,
        data: data?,
        to: to?,
    })
}

/// `reply.to`: an http(s) URL, or `$NAME` / `${NAME}` read from the environment now.
fn sink(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let Some(var) = text.trim().strip_prefix('$') else {
        return http_url(text);
    };
    let name = var
        .strip_prefix('{')
        .and_then(|v| v.strip_suffix('}'))
        .unwrap_or(var);
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "{text:?} is not a valid environment variable reference"
        ));
    }
    match env(name) {
        None => Err(format!(
            "environment variable {name} is not set (a Knative SinkBinding sets K_SINK)"
        )),
        Some(v) if v.trim().is_empty() => Err(format!("environment variable {name} is empty")),
        Some(v) => http_url(&v).map_err(|e| format!("${name}: {e}")),
    }
}

/// Whether the route's own filters would also accept its reply event. Only the filters that
/// always apply (top level and inside `all`, possibly under one `not`) on `type` and `source`
/// are judged; `any`, `cel`, `cesql` and other attributes are not decidable here and are ignored. A route
/// without filters matches everything, its reply included; otherwise at least one judged filter
/// must be on `type`.
fn reply_may_loop(filters: &[Filter], reply_type: &str, reply_source: &str) -> bool {
    /// `(attribute, accepts reply)` for each judged filter.
    fn walk(filters: &[Filter], ty: &str, source: &str, out: &mut Vec<(bool, bool)>) {
        for f in filters {
            match f {
                Filter::All(inner) => walk(inner, ty, source, out),
                Filter::Not(inner) => {
                    if let Some((on_type, accepts)) = judge(inner, ty, source) {
                        out.push((on_type, !accepts));
                    }
                }
                other => out.extend(judge(other, ty, source)),
            }
        }
    }
    /// `(is on type, accepts the reply)` for an attribute filter on `type` or `source`.
    fn judge(f: &Filter, ty: &str, source: &str) -> Option<(bool, bool)> {
        let (attribute, value, test): (&str, &str, fn(&str, &str) -> bool) = match f {
            Filter::Exact { attribute, value } => (attribute, value, |a, v| a == v),
            Filter::Prefix { attribute, value } => (attribute, value, |a, v| a.starts_with(v)),
            Filter::Suffix { attribute, value } => (attribute, value, |a, v| a.ends_with(v)),
            _ => return None,
        };
        match attribute {
            "type" => Some((true, test(ty, value))),
            "source" => Some((false, test(source, value))),
            _ => None,
        }
    }
    if filters.is_empty() {
        return true;
    }
    let mut judged = Vec::new();
    walk(filters, reply_type, reply_source, &mut judged);
    judged.iter().any(|(on_type, _)| *on_type) && judged.iter().all(|(_, accepts)| *accepts)
}

const DIALECTS: &str = "exact, prefix, suffix, all, any, not, cel, cesql";

fn filter(raw: &RawFilter, path: &Path, ctx: &Context<'_>, report: &mut Report) -> Option<Filter> {
    let present: Vec<&str> = [
        ("exact", raw.exact.is_some()),
        ("prefix", raw.prefix.is_some()),
        ("suffix", raw.suffix.is_some()),
        ("all", raw.all.is_some()),
        ("any", raw.any.is_some()),
        ("not", raw.not.is_some()),
        ("cel", raw.cel.is_some()),
        ("cesql", raw.cesql.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, set)| set.then_some(k))
    .collect();
    match present.as_slice() {
        [] => {
            report.error(
                path.clone(),
                format!("empty filter: needs exactly one of {DIALECTS}"),
            );
            return None;
        }
        [_] => {}
        several => {
            report.error(
                path.clone(),
                format!(
                    "a filter holds exactly one dialect, found {}; put them in separate \
                     entries (all must match) or inside `all`/`any`",
                    several.join(" and ")
                ),
            );
            return None;
        }
    }

    if let Some(v) = &raw.exact {
        let (attribute, value) = attribute_value(v, &path.key("exact"), report)?;
        return Some(Filter::Exact { attribute, value });
    }
    if let Some(v) = &raw.prefix {
        let (attribute, value) = attribute_value(v, &path.key("prefix"), report)?;
        return Some(Filter::Prefix { attribute, value });
    }
    if let Some(v) = &raw.suffix {
        let (attribute, value) = attribute_value(v, &path.key("suffix"), report)?;
        return Some(Filter::Suffix { attribute, value });
    }
    if let Some(list) = &raw.all {
        return filter_list(list, &path.key("all"), ctx, report).map(Filter::All);
    }
    if let Some(list) = &raw.any {
        return filter_list(list, &path.key("any"), ctx, report).map(Filter::Any);
    }
    if let Some(inner) = &raw.not {
        return filter(inner, &path.key("not"), ctx, report).map(|f| Filter::Not(Box::new(f)));
    }
    if let Some(source) = &raw.cel {
        return match (ctx.compilers.predicate)(source) {
            Ok(p) => Some(Filter::Cel(p)),
            Err(msg) => {
                report.error(path.key("cel"), msg);
                None
            }
        };
    }
    let source = raw.cesql.as_deref().unwrap_or_default();
    match cesql_filter(source) {
        Ok(expression) => Some(Filter::Cesql(expression)),
        Err(msg) => {
            report.error(path.key("cesql"), msg);
            None
        }
    }
}

/// Compile a `cesql` filter: syntax, known functions and arities, and a result that can be
/// Boolean (a filter matches only on `true`). Messages carry the line and column.
fn cesql_filter(source: &str) -> Result<crate::rules::cesql::Expression, String> {
    use crate::rules::cesql::{Expression, Type};
    let expression = Expression::compile(source).map_err(|e| e.to_string())?;
    match expression.result_type() {
        Some(ty) if ty != Type::Boolean => Err(format!(
            "a filter expression must be Boolean, this one is {ty} (e.g. compare it: `... = 'x'`)"
        )),
        _ => Ok(expression),
    }
}

fn filter_list(
    list: &[RawFilter],
    path: &Path,
    ctx: &Context<'_>,
    report: &mut Report,
) -> Option<Vec<Filter>> {
    if list.is_empty() {
        report.error(path.clone(), "needs at least one filter");
        return None;
    }
    let mut out = Vec::with_capacity(list.len());
    let mut ok = true;
    for (i, raw) in list.iter().enumerate() {
        match filter(raw, &path.index(i), ctx, report) {
            Some(f) => out.push(f),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// The single `attribute: value` pair of an `exact`/`prefix`/`suffix` filter (Knative allows
/// exactly one per filter, and neither name nor value may be empty).
fn attribute_value(value: &Value, path: &Path, report: &mut Report) -> Option<(String, String)> {
    let example = "e.g. {type: com.example.created}";
    let Value::Mapping(map) = value else {
        report.error(
            path.clone(),
            format!("expected one attribute and its value, {example}"),
        );
        return None;
    };
    let mut entries = map.iter();
    let (key, val) = match (entries.next(), map.len()) {
        (Some(entry), 1) => entry,
        (None, _) => {
            report.error(path.clone(), format!("needs one attribute, {example}"));
            return None;
        }
        (Some(_), n) => {
            let keys: Vec<String> = map.keys().map(key_text).collect();
            report.error(
                path.clone(),
                format!(
                    "has {n} attributes ({}); Knative allows exactly one per filter, so list \
                     them as separate filters (all must match)",
                    keys.join(", ")
                ),
            );
            return None;
        }
    };
    let name = key_text(key);
    if !is_valid_attribute_name(&name) {
        report.error(
            path.key(&name),
            "attribute names are lower-case letters and digits (CloudEvents attributes such as \
             type, source, subject, or extension names)",
        );
        return None;
    }
    let text = match val {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        _ => {
            report.error(path.key(&name), "expected a string value");
            return None;
        }
    };
    if text.is_empty() {
        report.error(path.key(&name), "the value must not be empty");
        return None;
    }
    Some((name, text))
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        _ => "<complex key>".to_string(),
    }
}
