//! [`IngressError`]: every way handling an HTTP delivery can fail, and the single table that turns
//! each into a status code and a short JSON body (`{"error":{"code","message"}}`, under 1 KiB —
//! Knative copies it into dead-letter events as `knativeerrordata`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::{AuthError, Reason};
use crate::cloudevents::BindingError;
use crate::flow::FlowError;
use crate::pipeline::EventError;
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
    /// The status table (see README "Status codes").
    pub fn status(&self) -> StatusCode {
        match self {
            IngressError::Binding(BindingError::NotCloudEvent(_)) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            IngressError::Binding(BindingError::Invalid(_)) => StatusCode::BAD_REQUEST,
            IngressError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
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
            FlowError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
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
mod tests {
    use super::*;
    use crate::rules::mapping::MappingError;
    use crate::rules::schema::SchemaMismatch;

    fn flow(error: FlowError) -> IngressError {
        IngressError::Event(EventError::Flow {
            route: "r".into(),
            error,
        })
    }

    #[test]
    fn status_table() {
        let cases = [
            (
                IngressError::Binding(BindingError::NotCloudEvent("x".into())),
                415,
            ),
            (
                IngressError::Binding(BindingError::Invalid("x".into())),
                400,
            ),
            (IngressError::TooLarge { limit: 1 }, 413),
            (
                IngressError::Event(EventError::NoRoute {
                    ty: "t".into(),
                    event_source: "s".into(),
                }),
                422,
            ),
            (
                IngressError::Event(EventError::Schema {
                    route: "r".into(),
                    error: SchemaMismatch {
                        violations: Vec::new(),
                        total: 1,
                    },
                }),
                422,
            ),
            (
                IngressError::Event(EventError::Mapping {
                    route: "r".into(),
                    error: MappingError {
                        field: "docs".into(),
                        message: "m".into(),
                    },
                }),
                422,
            ),
            (
                flow(FlowError::Executor {
                    executor: "E".into(),
                    exception: "ValueError".into(),
                    message: "boom".into(),
                }),
                502,
            ),
            (
                flow(FlowError::Unavailable {
                    gateway: "g".into(),
                    message: "m".into(),
                }),
                503,
            ),
            (
                flow(FlowError::Deadline {
                    gateway: "g".into(),
                    timeout_ms: 5,
                }),
                504,
            ),
            (
                flow(FlowError::Overloaded {
                    gateway: "g".into(),
                    max_pending: 5,
                }),
                429,
            ),
            (
                flow(FlowError::Gateway {
                    gateway: "g".into(),
                    message: "m".into(),
                }),
                502,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(error.status().as_u16(), status, "{error}");
        }
    }

    fn auth(reason: Reason) -> IngressError {
        IngressError::Auth {
            endpoint: "POST /".into(),
            error: AuthError {
                method: "oidc",
                reason,
                detail: "token expired at 2030-01-01T00:00:00+00:00".into(),
                challenge: "Bearer realm=\"flowbridge\", error=\"invalid_token\"".into(),
            },
        }
    }

    #[test]
    fn auth_statuses_and_challenge() {
        let expired = error_response(&auth(Reason::Expired), "");
        assert_eq!(expired.status().as_u16(), 401);
        assert_eq!(
            expired.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"flowbridge\", error=\"invalid_token\""
        );
        let forbidden = error_response(&auth(Reason::SubjectNotAllowed), "");
        assert_eq!(forbidden.status().as_u16(), 403);
        assert!(forbidden.headers().get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(auth(Reason::SubjectNotAllowed).code(), "forbidden");
        assert_eq!(auth(Reason::KeysUnavailable).status().as_u16(), 503);
        assert_eq!(auth(Reason::Missing).code(), "unauthenticated");
        let body = auth(Reason::Expired).body("");
        assert!(body.contains("oidc: token expired"), "{body}");
        let unknown = IngressError::UnknownWebhook {
            name: "gh".into(),
            known: vec!["github".into()],
        };
        assert_eq!(unknown.status().as_u16(), 404);
    }

    #[test]
    fn overload_is_429_with_retry_after() {
        let error = flow(FlowError::Overloaded {
            gateway: "g".into(),
            max_pending: 10,
        });
        assert_eq!(error.code(), "overloaded");
        let response = error_response(&error, "");
        assert_eq!(response.status().as_u16(), 429);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let other = flow(FlowError::Unavailable {
            gateway: "g".into(),
            message: "m".into(),
        });
        assert!(
            error_response(&other, "")
                .headers()
                .get(header::RETRY_AFTER)
                .is_none()
        );
    }

    #[test]
    fn body_is_short_json() {
        let error = IngressError::Binding(BindingError::Invalid("x".repeat(5000)));
        let body = error.body("batch[1]: ");
        assert!(body.len() < 1024, "{}", body.len());
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], "invalid_event");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("batch[1]: ")
        );
    }
}
