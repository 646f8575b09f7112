//! Logging: a `tracing` subscriber writing to stderr (stdout belongs to CLI output), filtered by
//! `RUST_LOG` (default `info`), as text or JSON (`serve --log-format`, `FLOWBRIDGE_LOG_FORMAT`).
//! [`metrics`] owns the Prometheus registry; [`trace`] the OpenTelemetry spans and their OTLP
//! export.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Install the global subscriber; safe to call once per process.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
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

pub mod metrics;
pub mod trace;
