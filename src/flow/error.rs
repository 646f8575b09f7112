//! [`FlowError`]: every way a Flow call can fail, in the terms the HTTP layer needs to pick a
//! status code (see the variant docs), and the constructors the transports share (each takes the
//! gateway's name, so no transport needs the client). Knows no transport and no HTTP status
//! itself (`ingress::error` maps the variants).

use std::time::Duration;

/// Why a Flow call (or building the client) failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FlowError {
    /// Gateway unreachable / UNAVAILABLE until the deadline: 503.
    #[error("gateway {gateway} unavailable: {message}")]
    Unavailable { gateway: String, message: String },
    /// A call to the shared state (Redis) failed under `on_state_error: closed`, so the event
    /// was not run (dedup) or not sent (rate): 503, the sender retries later.
    #[error("gateway {gateway}: {message}")]
    StateUnavailable { gateway: String, message: String },
    /// The gateway's queue already holds `max_pending` events: 429 with `Retry-After`.
    #[error(
        "gateway {gateway} is overloaded: {max_pending} events already wait for it (max_pending)"
    )]
    Overloaded { gateway: String, max_pending: usize },
    /// The call's deadline passed: 504.
    #[error("gateway {gateway} did not answer within {timeout_ms} ms")]
    Deadline { gateway: String, timeout_ms: u64 },
    /// An executor raised: 502.
    #[error("executor {executor} raised {exception}: {message}")]
    Executor {
        executor: String,
        exception: String,
        message: String,
    },
    /// Any other gRPC failure or a response we cannot use: 502.
    #[error("gateway {gateway} failed: {message}")]
    Gateway { gateway: String, message: String },
    /// The request cannot be expressed as a Jina DataRequest (e.g. a document with both `text`
    /// and `blob`, or an embedding whose shape does not match its values). Nothing was sent; the
    /// event's mapping is at fault: 422.
    #[error("invalid Flow request: {message}")]
    InvalidRequest { message: String },
    /// The gateway settings cannot be used (bad URL, TLS setup failed). Only returned by
    /// [`FlowClient::new`](super::FlowClient::new), i.e. at startup.
    #[error("gateway {gateway}: {message}")]
    Config { gateway: String, message: String },
}

impl FlowError {
    /// [`FlowError::Unavailable`] of gateway `gateway`.
    pub fn unavailable(gateway: &str, message: String) -> FlowError {
        FlowError::Unavailable {
            gateway: gateway.to_owned(),
            message,
        }
    }

    /// [`FlowError::Deadline`] of gateway `gateway` after `timeout`.
    pub fn deadline(gateway: &str, timeout: Duration) -> FlowError {
        FlowError::Deadline {
            gateway: gateway.to_owned(),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// [`FlowError::Gateway`] of gateway `gateway`.
    pub fn gateway(gateway: &str, message: String) -> FlowError {
        FlowError::Gateway {
            gateway: gateway.to_owned(),
            message,
        }
    }

    /// [`FlowError::InvalidRequest`].
    pub fn invalid_request(message: String) -> FlowError {
        FlowError::InvalidRequest { message }
    }
}
