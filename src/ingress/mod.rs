//! HTTP ingress: the axum router (`POST /` for CloudEvents, `POST /webhooks/<name>` for plain
//! webhooks, `GET /healthz`, `GET /readyz`, the CloudEvents webhook `OPTIONS` handshake on both),
//! the admin router (`GET /metrics` and the probes), the auth check ([`crate::auth`]) before an
//! event is decoded, the bounded body read, decoding with [`crate::cloudevents`], and the
//! hand-over of each decoded event to [`crate::pipeline`] (route → map → Flow → reply) and of its
//! result to a response. Submodules: [`webhook`] (plain request →
//! CloudEvent) and [`error`] (the one place where errors become status codes).

pub mod error;
pub mod webhook;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tracing::{debug, warn};

use crate::cloudevents::{self, Mode};
use crate::model::CloudEvent;
use crate::pipeline::{self, Outcome, Pipeline};
use crate::reply;
use crate::runtime::Runtime;
use crate::telemetry::metrics::{self, Format, Metrics};
use crate::telemetry::trace::Incoming;
use error::{IngressError, error_response};

/// Everything a request handler needs; shared by all requests.
#[derive(Debug)]
pub struct AppState {
    /// The active config generation with its dispatchers and dedup windows; a reload swaps it.
    /// A request loads it once ([`AppState::runtime`]) and uses that for its whole life.
    pub runtime: arc_swap::ArcSwap<Runtime>,
    pub replies: reply::Sender,
    /// Set once the listener is bound; cleared at shutdown.
    pub ready: AtomicBool,
    /// The metrics registry (`/metrics` on the admin listener).
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// The active runtime, to keep for the whole of one request.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }
}

/// The router for the event port.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", post(receive).options(webhook_handshake))
        .route(
            "/webhooks/{name}",
            post(receive_webhook).options(named_webhook_handshake),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// The router for the admin port: `GET /metrics` (OpenMetrics or the Prometheus text format,
/// as the `Accept` header asks) and the probes.
pub fn admin_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics_text(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let runtime = state.runtime.load();
    let gauges: Vec<_> = runtime.dispatchers.values().map(|d| d.gauges()).collect();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let text = state.metrics.render_with_state(
        &gauges,
        crate::rules::filter::cesql_evaluation_errors(),
        runtime.state_gauges(),
        format,
    );
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            ),
            (header::VARY, HeaderValue::from_static("accept")),
        ],
        text,
    )
        .into_response()
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

/// CloudEvents webhook abuse-protection handshake (http-webhook §4) and Knative's OPTIONS probe.
async fn webhook_handshake(headers: HeaderMap) -> Response {
    let mut response = StatusCode::OK.into_response();
    let h = response.headers_mut();
    h.insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
    if headers.contains_key("webhook-request-origin") {
        h.insert("webhook-allowed-origin", HeaderValue::from_static("*"));
        h.insert("webhook-allowed-rate", HeaderValue::from_static("*"));
    }
    response
}

/// The handshake on `/webhooks/<name>`: 404 for a name that is not configured.
async fn named_webhook_handshake(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    match find_webhook(&state.runtime(), &name) {
        Ok(_) => webhook_handshake(headers).await,
        Err(e) => e.into_response(),
    }
}

fn find_webhook<'a>(
    rt: &'a Runtime,
    name: &str,
) -> Result<&'a crate::auth::spec::WebhookSpec, IngressError> {
    rt.config
        .webhooks
        .iter()
        .find(|w| w.name == name)
        .ok_or_else(|| IngressError::UnknownWebhook {
            name: crate::text::truncate(name, 64),
            known: rt.config.webhooks.iter().map(|w| w.name.clone()).collect(),
        })
}

/// Reads the body and runs `verifier` (if any): before reading when no method needs the body
/// (a refused sender's body is never read), after otherwise. Refusals are logged and counted
/// here, under `endpoint`.
async fn authorized_body(
    state: &AppState,
    rt: &Runtime,
    verifier: Option<&crate::auth::Verifier>,
    endpoint: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, IngressError> {
    let refuse = |error: crate::auth::AuthError| {
        state
            .metrics
            .auth_failure(endpoint, error.method, error.reason);
        warn!(endpoint, method = error.method, reason = error.reason.as_str(), error = %error.detail, "request refused by auth");
        IngressError::Auth {
            endpoint: format!("POST {endpoint}"),
            error,
        }
    };
    let Some(verifier) = verifier else {
        return read_body(headers, body, &rt.config.limits).await;
    };
    if !verifier.needs_body() {
        verifier.check(headers, b"").await.map_err(refuse)?;
        return read_body(headers, body, &rt.config.limits).await;
    }
    let bytes = read_body(headers, body, &rt.config.limits).await?;
    verifier.check(headers, &bytes).await.map_err(refuse)?;
    Ok(bytes)
}

async fn receive_webhook(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let rt = state.runtime();
    let spec = match find_webhook(&rt, &name) {
        Ok(spec) => spec,
        Err(e) => return log_rejection(&state.metrics, e),
    };
    state.metrics.webhook_received(&spec.name);
    let endpoint = metrics::webhook_endpoint(&spec.name);
    let verifier = rt.auth.webhook(&spec.name);
    let body = match authorized_body(&state, &rt, verifier, &endpoint, &headers, body).await {
        Ok(b) => b,
        Err(e) => return log_rejection(&state.metrics, e),
    };
    let event = match webhook::to_event(spec, &headers, &body) {
        Ok(event) => event,
        Err(message) => {
            return log_rejection(
                &state.metrics,
                IngressError::Webhook {
                    name: spec.name.clone(),
                    message,
                },
            );
        }
    };
    let want_reply = prefers_reply(&headers);
    match process(
        &state,
        &rt,
        event,
        want_reply,
        &Incoming::from_headers(&headers),
    )
    .await
    {
        Ok(Outcome::Accepted) => StatusCode::ACCEPTED.into_response(),
        Ok(Outcome::Reply(reply)) => reply_response(&reply),
        Err(e) => error_response(&e, ""),
    }
}

/// Read at most `limits.max_body` bytes of body, 413 beyond (checked against `Content-Length`
/// first, so an oversized body is refused without reading it), within `limits.body_timeout`
/// (408: a body trickled byte by byte would hold the connection and the request forever).
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limits: &crate::config::Limits,
) -> Result<Bytes, IngressError> {
    let limit = limits.max_body;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(IngressError::TooLarge { limit });
    }
    let read = tokio::time::timeout(limits.body_timeout, Limited::new(body, limit).collect());
    let Ok(read) = read.await else {
        return Err(IngressError::BodyTimeout {
            limit: limits.body_timeout,
        });
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(IngressError::TooLarge { limit })
        }
        Err(e) => Err(IngressError::BodyRead(e.to_string())),
    }
}

/// Whether the sender asked for a reply event (`Prefer: reply`, RFC 7240 token list).
fn prefers_reply(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',').any(|p| {
                p.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("reply"))
            })
        })
    })
}

async fn receive(State(state): State<Arc<AppState>>, request: Request) -> Response {
    // The request taken whole: the `HeaderMap` extractor would clone every header.
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let rt = state.runtime();
    let verifier = rt.auth.main();
    let body = match authorized_body(
        &state,
        &rt,
        verifier,
        metrics::MAIN_ENDPOINT,
        &headers,
        body,
    )
    .await
    {
        Ok(b) => b,
        Err(e) => return log_rejection(&state.metrics, e),
    };
    let decoded = match cloudevents::decode(&headers, &body) {
        Ok(d) => d,
        Err(e) => return log_rejection(&state.metrics, e.into()),
    };
    let mode = match decoded.mode {
        Mode::Binary => "binary",
        Mode::Structured => "structured",
        Mode::Batched => "batched",
    };
    state.metrics.received(mode, decoded.events.len() as u64);
    for w in &decoded.warnings {
        warn!(warning = %w, "accepted event with a warning");
    }
    if let Some(inferred) = decoded.inferred {
        let (declared, read_as) = (inferred.declared.as_str(), inferred.read_as.as_str());
        state.metrics.inferred(declared, read_as);
        if let Some(event) = decoded.events.first() {
            debug!(ce_id = %event.id, ce_type = %event.ty, declared, read_as, "event data read by inference: its content type did not say how");
        }
    }
    let want_reply = prefers_reply(&headers) && decoded.mode != Mode::Batched;
    let incoming = Incoming::from_headers(&headers);
    if decoded.mode != Mode::Batched {
        let Some(event) = decoded.events.into_iter().next() else {
            return StatusCode::ACCEPTED.into_response();
        };
        return match process(&state, &rt, event, want_reply, &incoming).await {
            Ok(Outcome::Accepted) => StatusCode::ACCEPTED.into_response(),
            Ok(Outcome::Reply(reply)) => reply_response(&reply),
            Err(e) => error_response(&e, ""),
        };
    }
    // A batch is all-or-nothing: 202 only when every event succeeded, else the most severe status
    // (5xx before 4xx, so a sender retries when any event may succeed later). Never a reply.
    let mut tasks = tokio::task::JoinSet::new();
    for (index, event) in decoded.events.into_iter().enumerate() {
        let state = state.clone();
        let rt = rt.clone();
        let incoming = incoming.clone();
        tasks.spawn(async move {
            let id = event.id.clone();
            (
                index,
                id,
                process(&state, &rt, event, false, &incoming).await,
            )
        });
    }
    let mut worst: Option<(usize, String, IngressError)> = None;
    while let Some(joined) = tasks.join_next().await {
        let Ok((index, id, result)) = joined else {
            continue;
        };
        if let Err(e) = result {
            let replace = worst.as_ref().is_none_or(|(i, _, w)| {
                (e.status(), std::cmp::Reverse(index)) > (w.status(), std::cmp::Reverse(*i))
            });
            if replace {
                worst = Some((index, id, e));
            }
        }
    }
    match worst {
        None => StatusCode::ACCEPTED.into_response(),
        Some((index, id, e)) => error_response(&e, &format!("batch[{index}] (id {id:?}): ")),
    }
}

/// A delivery refused before any event was read: counted under route `_none`.
fn log_rejection(metrics: &Metrics, e: IngressError) -> Response {
    metrics.rejected(e.code());
    if let Some(limit) = e.limit() {
        metrics.server.limit_hit(limit);
    }
    metrics
        .route(metrics::NO_ROUTE)
        .answered(e.status().as_u16());
    if matches!(e, IngressError::BodyRead(_)) {
        // The client broke its own request off (closed the connection, reset the stream):
        // nothing for an operator to act on, and a line each would let a client flood the log.
        debug!(status = e.status().as_u16(), error = %e, "rejected delivery");
    } else {
        warn!(status = e.status().as_u16(), error = %e, "rejected delivery");
    }
    e.into_response()
}

fn reply_response(event: &CloudEvent) -> Response {
    let (headers, body) = cloudevents::encode_binary(event);
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().extend(headers);
    response
}

/// Run one event through the pipeline with this request's runtime, answering each outcome with
/// the status of ingress's table.
async fn process(
    state: &AppState,
    rt: &Runtime,
    event: CloudEvent,
    want_reply: bool,
    incoming: &Incoming,
) -> Result<Outcome, IngressError> {
    let p = Pipeline {
        runtime: rt,
        metrics: &state.metrics,
        replies: &state.replies,
    };
    pipeline::process(&p, event, want_reply, incoming, |result| match result {
        Ok(Outcome::Reply(_)) => StatusCode::OK.as_u16(),
        Ok(Outcome::Accepted) => StatusCode::ACCEPTED.as_u16(),
        Err(e) => error::event_status(e).as_u16(),
    })
    .await
    .map_err(IngressError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefer_reply_parsing() {
        let mut h = HeaderMap::new();
        assert!(!prefers_reply(&h));
        h.insert("prefer", HeaderValue::from_static("respond-async, Reply"));
        assert!(prefers_reply(&h));
        h.insert("prefer", HeaderValue::from_static("replyx"));
        assert!(!prefers_reply(&h));
        h.insert("prefer", HeaderValue::from_static("reply; foo=bar"));
        assert!(prefers_reply(&h));
    }
}
