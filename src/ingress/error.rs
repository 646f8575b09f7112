//! [`IngressError`]: every way handling an HTTP delivery can fail, and the single table that turns
//! each into a status code and a short JSON body (`{"error":{"code","message"}}`, under 1 KiB —
//! Knative copies it into dead-letter events as `knativeerrordata`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::{AuthError, Reason};
use crate::cloudevents::BindingError;
use crate::flow::FlowError;
use crate::pipeline::EventError;
use crate::telemetry::metrics::Limit;
use crate::text::truncate;

/// Upper bound of the `message` text in an error body, in bytes.
const MAX_MESSAGE: usize = 800;
/// `Retry-After` of a 429: a queue of events drains within about a second at the rates a Flow
/// sustains; Knative's retry backoff adds its own delay on top.
const RETRY_AFTER_SECS: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error(transparent)]
    Binding(#[from] BindingError),
    #[error("request body exceeds limits.max_body ({limit} bytes)")]
    TooLarge { limit: usize },
    #[error(
        "the request body did not arrive within limits.body_timeout ({}s)",
        limit.as_secs_f64()
    )]
    BodyTimeout { limit: std::time::Duration },
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    /// The event was read; the pipeline failed it.
    #[error(transparent)]
    Event(#[from] EventError),
    /// Refused by the endpoint's `auth` (401, 403 for a subject not allowed, 503 when the
    /// issuer's keys cannot be loaded).
    #[error("{endpoint}: not authorized ({error})")]
    Auth { endpoint: String, error: AuthError },
    #[error(
        "no webhook named {name:?} (configured: {known:?}); webhooks are served at POST /webhooks/<name>"
    )]
    UnknownWebhook { name: String, known: Vec<String> },
    #[error("webhook {name}: {message}")]
    Webhook { name: String, message: String },
}

impl IngressError {
    /// Every [`IngressError::code`]: the `reason` series of `flowbridge_events_rejected_total`
    /// created at 0 at start (`every_code_is_listed` checks the two agree; a code missing here
    /// is still counted, from its first error on).
    pub const CODES: [&'static str; 22] = [
        "not_cloudevent",
        "invalid_event",
        "body_too_large",
        "body_timeout",
        "body_unreadable",
        "no_route",
        "schema_mismatch",
        "mapping_failed",
        "reply_failed",
        "gateway_unavailable",
        "state_unavailable",
        "overloaded",
        "gateway_timeout",
        "executor_error",
        "gateway_error",
        "reply_sink_failed",
        "internal",
        "unauthenticated",
        "forbidden",
        "auth_unavailable",
        "unknown_webhook",
        "invalid_webhook_request",
    ];

    /// The status table (see README "Status codes").
    pub fn status(&self) -> StatusCode {
        match self {
            IngressError::Binding(BindingError::NotCloudEvent(_)) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            IngressError::Binding(BindingError::Invalid(_)) => StatusCode::BAD_REQUEST,
            IngressError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            IngressError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            IngressError::BodyRead(_) => StatusCode::BAD_REQUEST,
            IngressError::Event(e) => event_status(e),
            IngressError::Auth { error, .. } => match error.reason {
                Reason::SubjectNotAllowed => StatusCode::FORBIDDEN,
                Reason::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNAUTHORIZED,
            },
            IngressError::UnknownWebhook { .. } => StatusCode::NOT_FOUND,
            IngressError::Webhook { .. } => StatusCode::BAD_REQUEST,
        }
    }

    /// Stable machine-readable code of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            IngressError::Binding(BindingError::NotCloudEvent(_)) => "not_cloudevent",
            IngressError::Binding(BindingError::Invalid(_)) => "invalid_event",
            IngressError::TooLarge { .. } => "body_too_large",
            IngressError::BodyTimeout { .. } => "body_timeout",
            IngressError::BodyRead(_) => "body_unreadable",
            IngressError::Event(e) => e.code(),
            IngressError::Auth { error, .. } => match error.reason {
                Reason::SubjectNotAllowed => "forbidden",
                Reason::KeysUnavailable => "auth_unavailable",
                _ => "unauthenticated",
            },
            IngressError::UnknownWebhook { .. } => "unknown_webhook",
            IngressError::Webhook { .. } => "invalid_webhook_request",
        }
    }

    /// Seconds a sender should wait before retrying (`Retry-After`), for overload answers.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            IngressError::Event(EventError::Flow {
                error: FlowError::Overloaded { .. },
                ..
            }) => Some(RETRY_AFTER_SECS),
            IngressError::Auth { error, .. } if error.reason == Reason::KeysUnavailable => {
                Some(RETRY_AFTER_SECS)
            }
            _ => None,
        }
    }

    /// The server limit (`limits:`) this error enforces, for `flowbridge_limits_total`.
    pub fn limit(&self) -> Option<Limit> {
        match self {
            IngressError::TooLarge { .. } => Some(Limit::MaxBody),
            IngressError::BodyTimeout { .. } => Some(Limit::BodyTimeout),
            _ => None,
        }
    }

    /// The JSON error body, message truncated so the body stays under 1 KiB.
    pub fn body(&self, prefix: &str) -> String {
        let message = truncate(&format!("{prefix}{self}"), MAX_MESSAGE);
        serde_json::json!({"error": {"code": self.code(), "message": message}}).to_string()
    }
}

/// The status of an event the pipeline failed.
pub fn event_status(error: &EventError) -> StatusCode {
    match error {
        EventError::NoRoute { .. }
        | EventError::Schema { .. }
        | EventError::Mapping { .. }
        | EventError::Reply { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        EventError::Flow { error, .. } => match error {
            FlowError::Unavailable { .. } | FlowError::StateUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            FlowError::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
            FlowError::Deadline { .. } => StatusCode::GATEWAY_TIMEOUT,
            FlowError::Executor { .. } | FlowError::Gateway { .. } => StatusCode::BAD_GATEWAY,
            FlowError::InvalidRequest { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            FlowError::Config { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        },
        EventError::ReplySink { .. } => StatusCode::BAD_GATEWAY,
        EventError::NoGateway { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error response with an optional message prefix (e.g. `batch[2] (id x): `).
pub fn error_response(error: &IngressError, prefix: &str) -> Response {
    let mut response = (error.status(), error.body(prefix)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(secs) = error.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if matches!(error, IngressError::BodyTimeout { .. }) {
        // The rest of the body may still be on its way: this connection cannot carry another
        // request (HTTP/1; HTTP/2 drops the header and resets only the stream).
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let IngressError::Auth { error: auth, .. } = error
        && error.status() == StatusCode::UNAUTHORIZED
        && let Ok(value) = HeaderValue::from_str(&auth.challenge)
    {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

impl IntoResponse for IngressError {
    fn into_response(self) -> Response {
        error_response(&self, "")
    }
}

#[cfg(test)]
mod tests;
