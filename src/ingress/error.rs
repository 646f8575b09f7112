//! [`IngressError`]: every way handling an HTTP delivery can fail, and the single table that turns
//! each into a status code and a short JSON body (`{"error":{"code","message"}}`, under 1 KiB —
//! Knative copies it into dead-letter events as `knativeerrordata`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::{AuthError, Reason};
use crate::flow::FlowError;
use crate::ingress::binding::BindingError;
use crate::rules::mapping::MappingError;
use crate::rules::schema::SchemaMismatch;

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
    #[error(
        "no route matched event (type {ty:?}, source {event_source:?}) and unmatched is reject"
    )]
    NoRoute { ty: String, event_source: String },
    #[error("route {route}: {error}")]
    Schema {
        route: String,
        error: SchemaMismatch,
    },
    #[error("route {route}: mapping failed: {error}")]
    Mapping { route: String, error: MappingError },
    #[error("route {route}: {error}")]
    Flow { route: String, error: FlowError },
    #[error("route {route}: reply failed: {error}")]
    Reply { route: String, error: MappingError },
    #[error("route {route}: reply sink {url} did not accept the reply: {message}")]
    ReplySink {
        route: String,
        url: String,
        message: String,
    },
    #[error("route {route}: gateway {gateway} is not configured")]
    NoGateway { route: String, gateway: String },
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
    pub const CODES: [&'static str; 20] = [
        "not_cloudevent",
        "invalid_event",
        "body_too_large",
        "body_unreadable",
        "no_route",
        "schema_mismatch",
        "mapping_failed",
        "reply_failed",
        "gateway_unavailable",
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
            IngressError::BodyRead(_) => StatusCode::BAD_REQUEST,
            IngressError::NoRoute { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            IngressError::Schema { .. }
            | IngressError::Mapping { .. }
            | IngressError::Reply { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            IngressError::Flow { error, .. } => match error {
                FlowError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
                FlowError::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
                FlowError::Deadline { .. } => StatusCode::GATEWAY_TIMEOUT,
                FlowError::Executor { .. } | FlowError::Gateway { .. } => StatusCode::BAD_GATEWAY,
                FlowError::InvalidRequest { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                FlowError::Config { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            },
            IngressError::ReplySink { .. } => StatusCode::BAD_GATEWAY,
            IngressError::NoGateway { .. } => StatusCode::INTERNAL_SERVER_ERROR,
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
            IngressError::NoRoute { .. } => "no_route",
            IngressError::Schema { .. } => "schema_mismatch",
            IngressError::Mapping { .. } => "mapping_failed",
            IngressError::Reply { .. } => "reply_failed",
            IngressError::Flow { error, .. } => match error {
                FlowError::Unavailable { .. } => "gateway_unavailable",
                FlowError::Overloaded { .. } => "overloaded",
                FlowError::Deadline { .. } => "gateway_timeout",
                FlowError::Executor { .. } => "executor_error",
                FlowError::Gateway { .. } => "gateway_error",
                FlowError::InvalidRequest { .. } => "mapping_failed",
                FlowError::Config { .. } => "internal",
            },
            IngressError::ReplySink { .. } => "reply_sink_failed",
            IngressError::NoGateway { .. } => "internal",
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
            IngressError::Flow {
                error: FlowError::Overloaded { .. },
                ..
            } => Some(RETRY_AFTER_SECS),
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

/// Cut `s` to at most `max` bytes on a char boundary, marking the cut with "…".
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
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

    fn flow(error: FlowError) -> IngressError {
        IngressError::Flow {
            route: "r".into(),
            error,
        }
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
                IngressError::NoRoute {
                    ty: "t".into(),
                    event_source: "s".into(),
                },
                422,
            ),
            (
                IngressError::Schema {
                    route: "r".into(),
                    error: SchemaMismatch {
                        violations: Vec::new(),
                        total: 1,
                    },
                },
                422,
            ),
            (
                IngressError::Mapping {
                    route: "r".into(),
                    error: MappingError {
                        field: "docs".into(),
                        message: "m".into(),
                    },
                },
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
    fn every_code_is_listed() {
        let mapping = || MappingError {
            field: "docs".into(),
            message: "m".into(),
        };
        let (g, m) = (|| "g".to_string(), || "m".to_string());
        let errors = [
            IngressError::Binding(BindingError::NotCloudEvent("x".into())),
            IngressError::Binding(BindingError::Invalid("x".into())),
            IngressError::TooLarge { limit: 1 },
            IngressError::BodyRead(m()),
            IngressError::NoRoute {
                ty: "t".into(),
                event_source: "s".into(),
            },
            IngressError::Schema {
                route: "r".into(),
                error: SchemaMismatch {
                    violations: Vec::new(),
                    total: 1,
                },
            },
            IngressError::Mapping {
                route: "r".into(),
                error: mapping(),
            },
            IngressError::Reply {
                route: "r".into(),
                error: mapping(),
            },
            flow(FlowError::Unavailable {
                gateway: g(),
                message: m(),
            }),
            flow(FlowError::Overloaded {
                gateway: g(),
                max_pending: 1,
            }),
            flow(FlowError::Deadline {
                gateway: g(),
                timeout_ms: 1,
            }),
            flow(FlowError::Executor {
                executor: "E".into(),
                exception: "ValueError".into(),
                message: m(),
            }),
            flow(FlowError::Gateway {
                gateway: g(),
                message: m(),
            }),
            flow(FlowError::InvalidRequest { message: m() }),
            flow(FlowError::Config {
                gateway: g(),
                message: m(),
            }),
            IngressError::ReplySink {
                route: "r".into(),
                url: "http://sink".into(),
                message: m(),
            },
            IngressError::NoGateway {
                route: "r".into(),
                gateway: g(),
            },
            auth(Reason::Expired),
            auth(Reason::SubjectNotAllowed),
            auth(Reason::KeysUnavailable),
            IngressError::UnknownWebhook {
                name: "gh".into(),
                known: Vec::new(),
            },
            IngressError::Webhook {
                name: "gh".into(),
                message: m(),
            },
        ];
        let codes: std::collections::BTreeSet<_> = errors.iter().map(IngressError::code).collect();
        let listed: std::collections::BTreeSet<_> = IngressError::CODES.into_iter().collect();
        assert_eq!(codes, listed);
        assert_eq!(listed.len(), IngressError::CODES.len(), "listed twice");
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
