//! `limits:` — what one client may take from the listener: the largest body, the read deadlines
//! of a request (head, body) and of an idle connection, the size and count of request headers,
//! open connections and HTTP/2 streams per connection. [`Limits`] is the validated block; the
//! listener ([`crate::server`]) and the ingress read it from the active config, so a reload
//! applies to new connections and requests.

use std::time::Duration;

use serde_norway::Value;

use super::check::{count, duration, size, size_bytes};
use super::path::{Path, Report};
use super::raw::RawLimits;

/// The validated `limits:` block (every key has a default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted request body, bytes (≥ 64 KiB): 413 `body_too_large` beyond.
    pub max_body: usize,
    /// From the first byte of an HTTP/1 request head to its end; the connection is closed when
    /// it runs out (slowloris).
    pub head_timeout: Duration,
    /// From the end of the head to the end of the body: 408 `body_timeout`, connection closed.
    pub body_timeout: Duration,
    /// A connection with no request in flight this long is closed (HTTP/1) or sent GOAWAY
    /// (HTTP/2).
    pub idle_timeout: Duration,
    /// Largest request head (request line and headers; HTTP/2: the decoded header list),
    /// bytes: 431 beyond.
    pub max_header_bytes: usize,
    /// Most header fields of an HTTP/1 request: 431 beyond.
    pub max_headers: usize,
    /// Most open connections on the events listener; one more is accepted and closed at once.
    /// An HTTP/1 connection that sent a request holds about 20 KiB (hyper's 8 KiB read and
    /// write buffers, its task): the default, 2,048, bounds them to about 40 MiB.
    pub max_connections: usize,
    /// Most concurrent streams of one HTTP/2 connection (advertised in SETTINGS; one more is
    /// refused with REFUSED_STREAM, which clients retry).
    pub max_h2_streams: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body: 4 << 20,
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            // Longer than the idle timeouts of the usual clients (Go's http.Transport: 90 s;
            // Envoy, the activator: longer still is theirs to close), so a client rarely sends
            // on a connection the server is closing at that moment.
            idle_timeout: Duration::from_secs(120),
            max_header_bytes: 64 << 10,
            max_headers: 100,
            max_connections: 2048,
            max_h2_streams: 256,
        }
    }
}

/// Smallest `max_header_bytes`: hyper's HTTP/1 read buffer cannot be smaller.
const MIN_HEADER_BYTES: u64 = 8 << 10;
/// Largest `max_header_bytes`: HTTP/2 advertises it in a 32-bit setting.
const MAX_HEADER_BYTES: u64 = 16 << 20;

/// `limits:`; `None` when a value is wrong (each problem recorded under `path`).
pub(super) fn limits(raw: Option<&RawLimits>, path: &Path, report: &mut Report) -> Option<Limits> {
    let defaults = Limits::default();
    let Some(raw) = raw else {
        return Some(defaults);
    };
    let or = |value: &Option<Value>, key: &str, report: &mut Report, default| match value {
        None => Some(default),
        Some(v) => duration(v, &path.key(key), report),
    };
    let head_timeout = or(
        &raw.head_timeout,
        "head_timeout",
        report,
        defaults.head_timeout,
    );
    let body_timeout = or(
        &raw.body_timeout,
        "body_timeout",
        report,
        defaults.body_timeout,
    );
    let idle_timeout = or(
        &raw.idle_timeout,
        "idle_timeout",
        report,
        defaults.idle_timeout,
    );
    let max_body = match &raw.max_body {
        None => Some(defaults.max_body),
        Some(v) => size(v, &path.key("max_body"), report),
    };
    let max_header_bytes = match &raw.max_header_bytes {
        None => Some(defaults.max_header_bytes),
        Some(v) => header_bytes(v, &path.key("max_header_bytes"), report),
    };
    let whole =
        |value: &Option<Value>, key: &str, max: u64, report: &mut Report, default| match value {
            None => Some(default),
            Some(v) => count(v, max, &path.key(key), report),
        };
    let d = &defaults;
    let max_headers = whole(
        &raw.max_headers,
        "max_headers",
        10_000,
        report,
        d.max_headers,
    );
    let max_connections = whole(
        &raw.max_connections,
        "max_connections",
        1 << 20,
        report,
        d.max_connections,
    );
    let max_h2_streams = whole(
        &raw.max_h2_streams,
        "max_h2_streams",
        1 << 16,
        report,
        usize::try_from(d.max_h2_streams).unwrap_or(usize::MAX),
    );
    Some(Limits {
        max_body: max_body?,
        head_timeout: head_timeout?,
        body_timeout: body_timeout?,
        idle_timeout: idle_timeout?,
        max_header_bytes: max_header_bytes?,
        max_headers: max_headers?,
        max_connections: max_connections?,
        max_h2_streams: u32::try_from(max_h2_streams?).ok()?,
    })
}

/// A size from 8 KiB to 16 MiB.
fn header_bytes(value: &Value, path: &Path, report: &mut Report) -> Option<usize> {
    match size_bytes(value) {
        Ok(b) if (MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&b) => usize::try_from(b).ok(),
        Ok(b) => {
            report.error(
                path.clone(),
                format!("must be from 8KiB to 16MiB, got {b} bytes"),
            );
            None
        }
        Err(message) => {
            report.error(path.clone(), message);
            None
        }
    }
}
