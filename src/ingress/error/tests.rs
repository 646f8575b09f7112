//! Tests of `crate::ingress::error`.

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
            IngressError::BodyTimeout {
                limit: std::time::Duration::from_secs(1),
            },
            408,
        ),
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
        IngressError::BodyTimeout {
            limit: std::time::Duration::from_secs(1),
        },
        IngressError::BodyRead(m()),
        IngressError::Event(EventError::NoRoute {
            ty: "t".into(),
            event_source: "s".into(),
        }),
        IngressError::Event(EventError::Schema {
            route: "r".into(),
            error: SchemaMismatch {
                violations: Vec::new(),
                total: 1,
            },
        }),
        IngressError::Event(EventError::Mapping {
            route: "r".into(),
            error: mapping(),
        }),
        IngressError::Event(EventError::Reply {
            route: "r".into(),
            error: mapping(),
        }),
        flow(FlowError::Unavailable {
            gateway: g(),
            message: m(),
        }),
        flow(FlowError::Overloaded {
            gateway: g(),
            max_pending: 1,
        }),
        flow(FlowError::StateUnavailable {
            gateway: g(),
            message: m(),
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
        IngressError::Event(EventError::ReplySink {
            route: "r".into(),
            url: "http://sink".into(),
            message: m(),
        }),
        IngressError::Event(EventError::NoGateway {
            route: "r".into(),
            gateway: g(),
        }),
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
fn a_body_timeout_closes_the_connection_and_counts_its_limit() {
    let error = IngressError::BodyTimeout {
        limit: std::time::Duration::from_millis(2500),
    };
    let response = error_response(&error, "");
    assert_eq!(response.status(), 408);
    assert_eq!(response.headers()["connection"], "close");
    assert!(
        error.to_string().contains("limits.body_timeout (2.5s)"),
        "{error}"
    );
    assert_eq!(
        error.limit(),
        Some(crate::telemetry::metrics::Limit::BodyTimeout)
    );
    assert_eq!(
        IngressError::TooLarge { limit: 1 }.limit(),
        Some(crate::telemetry::metrics::Limit::MaxBody)
    );
    assert_eq!(IngressError::BodyRead("x".into()).limit(), None);
}
