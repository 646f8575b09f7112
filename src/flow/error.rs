//! [`FlowError`]: every way a Flow call can fail, in the terms the HTTP layer needs to pick a
//! status code (see the variant docs), plus the internal conversion error type.

use std::fmt;

/// Why a Flow call (or building the client) failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FlowError {
    /// Gateway unreachable / UNAVAILABLE until the deadline: 503.
    #[error("gateway {gateway} unavailable: {message}")]
    Unavailable { gateway: String, message: String },
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

/// A document or value that cannot be converted, with the path of the offending field
/// (e.g. `docs[2].chunks[0].embedding`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConvertError {
    pub path: String,
    pub message: String,
}

impl ConvertError {
    pub(crate) fn new(path: &str, message: impl Into<String>) -> ConvertError {
        ConvertError {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}
