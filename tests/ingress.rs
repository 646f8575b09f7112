//! The HTTP binding of `flowbridge serve` driven in-process: `ingress::router` built from a config
//! and called with `oneshot` (no socket, no child process), for what needs no Flow: probes,
//! refusals and their status codes and bodies, unmatched events, the webhook handshake, a
//! gateway that cannot be reached, and how each is counted on `/metrics`.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use flowbridge::config::{self, Overrides};
use flowbridge::ingress::{self, AppState};
use flowbridge::reply;
use flowbridge::runtime::Runtime;
use flowbridge::telemetry::metrics::Metrics;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// The event router and the admin router of one config, sharing their state.
fn app(yaml: &str) -> (Router, Router, Arc<AppState>) {
    let config = config::from_yaml(yaml, "test.yaml", &Overrides::default())
        .unwrap_or_else(|e| panic!("config: {e}"));
    let metrics = Arc::new(Metrics::new([], []).with_reasons(ingress::error::IngressError::CODES));
    let (runtime, _) = Runtime::build(config, "test".into(), None, &metrics).unwrap();
    let state = Arc::new(AppState {
        runtime: arc_swap::ArcSwap::from_pointee(runtime),
        replies: reply::Sender::new().unwrap(),
        ready: AtomicBool::new(true),
        metrics,
    });
    (
        ingress::router(state.clone()),
        ingress::admin_router(state.clone()),
        state,
    )
}

/// A gateway nothing listens on (port 1 refuses at once), given up on after 300 ms.
const CONFIG: &str = r#"
gateways:
  down: { url: "grpc://127.0.0.1:1", connect_timeout: 300ms }
routes:
  - name: orders
    gateway: down
    filters:
      - exact: { type: order.created }
unmatched: reject
limits:
  max_body: 64KiB
webhooks:
  - name: github
    source: https://github.com/acme/shop
    type: com.github.push
"#;

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn call(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: body.to_vec(),
    }
}

fn event(ty: &str, body: &'static [u8]) -> Request<Body> {
    Request::post("/")
        .header("ce-specversion", "1.0")
        .header("ce-id", "e-1")
        .header("ce-type", ty)
        .header("ce-source", "/tests/ingress")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

/// The value of one series in the admin router's `/metrics`.
async fn series(admin: &Router, name: &str) -> Option<f64> {
    let scrape = call(admin, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(scrape.status, StatusCode::OK);
    scrape
        .text()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn probes_follow_readiness() {
    let (events, admin, state) = app(CONFIG);
    for router in [&events, &admin] {
        let health = call(
            router,
            Request::get("/healthz").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(
            (health.status, health.text().as_str()),
            (StatusCode::OK, "ok")
        );
        let ready = call(router, Request::get("/readyz").body(Body::empty()).unwrap()).await;
        assert_eq!(ready.status, StatusCode::OK);
    }
    state.ready.store(false, Ordering::Relaxed);
    let ready = call(
        &events,
        Request::get("/readyz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn refusals_have_their_status_code_and_a_json_body() {
    let (events, admin, _) = app(CONFIG);

    let not_an_event = Request::post("/")
        .header("content-type", "text/plain")
        .body(Body::from("hello"))
        .unwrap();
    let r = call(&events, not_an_event).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "not_cloudevent");
    assert_eq!(r.headers["content-type"], "application/json");

    let no_id = Request::post("/")
        .header("ce-specversion", "1.0")
        .header("ce-type", "order.created")
        .header("ce-source", "/tests/ingress")
        .body(Body::empty())
        .unwrap();
    let r = call(&events, no_id).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "invalid_event");
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("id"), "{message}");

    let big: &'static [u8] = Box::leak(vec![b' '; 65 * 1024].into_boxed_slice());
    let r = call(&events, event("order.created", big)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "body_too_large");

    let r = call(&events, event("order.shipped", b"{}")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "no_route");

    let unknown = Request::post("/webhooks/gitlab")
        .body(Body::from("{}"))
        .unwrap();
    let r = call(&events, unknown).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "unknown_webhook");

    for (reason, count) in [
        ("not_cloudevent", 1.0),
        ("invalid_event", 1.0),
        ("body_too_large", 1.0),
        ("no_route", 1.0),
    ] {
        let name = format!("flowbridge_events_rejected_total{{reason=\"{reason}\"}}");
        assert_eq!(series(&admin, &name).await, Some(count), "{name}");
    }
}

#[tokio::test]
async fn unmatched_events_are_accepted_when_the_config_says_so() {
    let (events, admin, _) = app(&CONFIG.replace("unmatched: reject", "unmatched: accept"));
    let r = call(&events, event("order.shipped", b"{}")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert!(r.body.is_empty());
    let accepted = series(
        &admin,
        "flowbridge_events_unmatched_total{action=\"accept\"}",
    )
    .await;
    assert_eq!(accepted, Some(1.0));
}

#[tokio::test]
async fn the_webhook_handshake_allows_the_origin() {
    let (events, _, _) = app(CONFIG);
    for path in ["/", "/webhooks/github"] {
        let handshake = Request::options(path)
            .header("webhook-request-origin", "eventemitter.example.com")
            .body(Body::empty())
            .unwrap();
        let r = call(&events, handshake).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.headers["webhook-allowed-origin"], "*", "{path}");
        assert_eq!(r.headers["allow"], "POST, OPTIONS", "{path}");
    }
}

#[tokio::test]
async fn an_unreachable_gateway_is_503_naming_it_after_connect_timeout() {
    let (events, admin, _) = app(CONFIG);
    let r = call(&events, event("order.created", br#"{"text": "hi"}"#)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"]["code"], "gateway_unavailable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("route orders: "), "{message}");
    assert!(message.contains("down"), "{message}");
    let answered = series(
        &admin,
        "flowbridge_event_count_total{route=\"orders\",response_code=\"503\"}",
    )
    .await;
    assert_eq!(answered, Some(1.0));
}
