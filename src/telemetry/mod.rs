//! What flowbridge tells about itself: logs, metrics and traces.
//!
//! This file is the logging: a `tracing` subscriber writing to stderr (stdout belongs to CLI
//! output), filtered by `RUST_LOG` (default [`DEFAULT_FILTER`]), as text or JSON (`serve
//! --log-format`, `FLOWBRIDGE_LOG_FORMAT`). Knows no HTTP server and no config: callers hand in
//! what they record.
//!
//! * [`metrics`]: the Prometheus registry (prometheus-client) and its text on `GET /metrics`.
//! * [`trace`]: the OpenTelemetry spans and their OTLP export.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The target of the per-event log lines (`event processed`, `event failed`, `no route matched;
/// …`, a redelivery): failures are `warn`, successes `info`.
pub const EVENT_LOG: &str = "flowbridge::events";

/// The filter without `RUST_LOG`: `info`, except that an event's line is written only when it
/// failed. A success line per event is log volume at thousands of events per second (and about
/// 5 µs of CPU per event, docs/benchmarks.md) that metrics and traces already cover;
/// `RUST_LOG=info` writes it.
pub const DEFAULT_FILTER: &str = "info,flowbridge::events=warn";

/// Install the global subscriber; safe to call once per process.
pub fn init(json: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // Already initialised (e.g. by a test): keep the existing subscriber.
    let _ = result;
}

pub mod events;
pub mod metrics;
pub mod trace;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_filter_names_the_event_target() {
        assert!(DEFAULT_FILTER.contains(&format!("{EVENT_LOG}=warn")));
        assert!(EnvFilter::try_new(DEFAULT_FILTER).is_ok());
    }
}
