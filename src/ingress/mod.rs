//! HTTP ingress: the axum router (`POST /` for CloudEvents, `POST /webhooks/<name>` for plain
//! webhooks, `GET /healthz`, `GET /readyz`, the CloudEvents webhook `OPTIONS` handshake on both),
//! the admin router (`GET /metrics` and the probes), the auth check ([`crate::auth`]) before an
//! event is decoded, the bounded body read, decoding with [`crate::cloudevents`], and the
//! per-event pipeline (route → map → Flow → reply), which counts each outcome once in the metrics
//! registry and, with tracing on, in one span per event. Submodules: [`webhook`] (plain request →
//! CloudEvent) and [`error`] (the one place where errors become status codes).

pub mod error;
pub mod webhook;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tracing::{debug, info, warn};

use crate::cloudevents::{self, Mode};
use crate::dispatch::dedup::Claim;
use crate::flow::client::Answer;
use crate::model::CloudEvent;
use crate::reply;
use crate::rules::Unmatched;
use crate::runtime::Runtime;
use crate::telemetry::EVENT_LOG;
use crate::telemetry::metrics::{self, Metrics};
use crate::telemetry::trace::{EventSpan, Incoming};
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

/// The router for the admin port: `GET /metrics` (Prometheus text format) and the probes.
pub fn admin_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    let gauges: Vec<_> = state
        .runtime
        .load()
        .dispatchers
        .values()
        .map(|d| d.gauges())
        .collect();
    let text = state
        .metrics
        .render(&gauges, crate::rules::filter::cesql_evaluation_errors());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
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
            name: error::truncate(name, 64),
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
        return read_body(headers, body, rt.config.max_body).await;
    };
    if !verifier.needs_body() {
        verifier.check(headers, b"").await.map_err(refuse)?;
        return read_body(headers, body, rt.config.max_body).await;
    }
    let bytes = read_body(headers, body, rt.config.max_body).await?;
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

/// Read at most `limit` bytes of body; 413 beyond (checked against `Content-Length` first, so an
/// oversized body is refused without reading it).
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, IngressError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(IngressError::TooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
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

/// What running an event through its route produced; the dedup window stores it and answers
/// redeliveries with it.
#[derive(Debug, Clone)]
pub struct Processed {
    /// The Flow request that carried the event.
    pub request_id: String,
    /// The reply event for the HTTP response (routes with `reply` and no `reply.to`), when it
    /// was built: when the sender asked for it, or always on routes with `dedup`.
    pub reply: Option<Box<CloudEvent>>,
}

/// What one event's trip through the pipeline produced.
enum Outcome {
    /// Flow ran (or the event was unmatched and accepted); nothing to send back.
    Accepted,
    /// Flow ran and a reply event should go back in the HTTP response.
    Reply(Box<CloudEvent>),
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
    metrics
        .route(metrics::NO_ROUTE)
        .answered(e.status().as_u16());
    warn!(status = e.status().as_u16(), error = %e, "rejected delivery");
    e.into_response()
}

fn reply_response(event: &CloudEvent) -> Response {
    let (headers, body) = cloudevents::encode_binary(event);
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().extend(headers);
    response
}

/// One event: route → map → call the Flow → build/deliver the reply. `incoming` is the sender's
/// trace context from the HTTP headers (the event's span continues it).
async fn process(
    state: &AppState,
    rt: &Runtime,
    event: CloudEvent,
    want_reply: bool,
    incoming: &Incoming,
) -> Result<Outcome, IngressError> {
    let started = Instant::now();
    let span = EventSpan::start(incoming, &event);
    let trace_id = span.trace_id();
    let trace_id = trace_id.as_deref();
    let m = &state.metrics;
    let Some(route) = rt.config.rules.route(&event) else {
        let unrouted = m.route(metrics::NO_ROUTE);
        return match rt.config.unmatched {
            Unmatched::Accept => {
                m.unmatched_accepted.inc();
                unrouted.answered(StatusCode::ACCEPTED.as_u16());
                span.finish(StatusCode::ACCEPTED.as_u16(), "unmatched", "", None);
                info!(target: EVENT_LOG, ce_id = %event.id, ce_type = %event.ty, ce_source = %event.source, trace_id, "no route matched; accepted");
                Ok(Outcome::Accepted)
            }
            Unmatched::Reject => {
                let e = IngressError::NoRoute {
                    ty: event.ty.clone(),
                    event_source: event.source.clone(),
                };
                m.unmatched_rejected.inc();
                m.rejected(e.code());
                unrouted.answered(e.status().as_u16());
                span.finish(e.status().as_u16(), e.code(), "", Some(e.to_string()));
                warn!(target: EVENT_LOG, ce_id = %event.id, ce_type = %event.ty, ce_source = %event.source, trace_id, "no route matched; rejected");
                Err(e)
            }
        };
    };
    let route_metrics = m.route(&route.name);
    route_metrics.matched.inc();
    span.routed(&route.name);
    let mut redelivery = false;
    let result = match rt.dedup.get(&route.name) {
        None => run_route(state, rt, route, &event, want_reply, &span).await,
        Some(window) => match window.claim((event.source.clone(), event.id.clone())).await {
            Claim::Done(processed) => {
                redelivery = true;
                Ok(processed)
            }
            Claim::Run(guard) => {
                // Build the reply even when not asked: a redelivery may ask for it.
                let result = run_route(state, rt, route, &event, true, &span).await;
                if let Ok(processed) = &result {
                    guard.finish(processed.clone());
                }
                result
            }
        },
    };
    let result = result.map(|p| {
        let outcome = match p.reply {
            Some(reply) if want_reply => Outcome::Reply(reply),
            _ => Outcome::Accepted,
        };
        (outcome, p.request_id)
    });
    let (status, request_id) = match &result {
        Ok((Outcome::Reply(_), rid)) => (StatusCode::OK.as_u16(), rid.clone()),
        Ok((Outcome::Accepted, rid)) => (StatusCode::ACCEPTED.as_u16(), rid.clone()),
        Err((e, rid)) => (e.status().as_u16(), rid.clone()),
    };
    let elapsed = started.elapsed().as_secs_f64();
    let elapsed_ms = elapsed * 1000.0;
    route_metrics.answered(status);
    route_metrics.latency.observe(elapsed);
    match &result {
        Ok((Outcome::Reply(_), _)) => route_metrics.reply_sent(true),
        Ok(_) => {}
        Err((e, _)) => m.rejected(e.code()),
    }
    if redelivery {
        route_metrics.redeliveries.inc();
    }
    match &result {
        Ok((outcome, _)) => {
            let outcome = match outcome {
                _ if redelivery => "redelivery",
                Outcome::Reply(_) => "reply",
                Outcome::Accepted => "accepted",
            };
            span.finish(status, outcome, &request_id, None);
        }
        Err((e, _)) => span.finish(status, e.code(), &request_id, Some(e.to_string())),
    }
    match &result {
        Ok(_) if redelivery => {
            info!(target: EVENT_LOG, route = %route.name, ce_id = %event.id, ce_type = %event.ty, ce_source = %event.source, request_id = %request_id, trace_id, status, elapsed_ms, "redelivery within the dedup window; answered with the first outcome")
        }
        Ok(_) => {
            info!(target: EVENT_LOG, route = %route.name, ce_id = %event.id, ce_type = %event.ty, ce_source = %event.source, request_id = %request_id, trace_id, status, elapsed_ms, "event processed")
        }
        Err((e, _)) => {
            warn!(target: EVENT_LOG, route = %route.name, ce_id = %event.id, ce_type = %event.ty, ce_source = %event.source, request_id = %request_id, trace_id, status, elapsed_ms, error = %e, "event failed")
        }
    }
    result.map(|(o, _)| o).map_err(|(e, _)| e)
}

/// Map the event, send it through its gateway's dispatcher, then build (when `build_reply`) or
/// deliver (`reply.to`) the reply, which carries `span`'s trace context. Errors carry the Flow
/// request id when there was one.
async fn run_route(
    state: &AppState,
    rt: &Runtime,
    route: &crate::rules::Route,
    event: &CloudEvent,
    build_reply: bool,
    span: &EventSpan,
) -> Result<Processed, (IngressError, String)> {
    let no_request = |e: IngressError| (e, String::new());
    // The reply this event gets, if any: one to POST to `reply.to`, or one asked for. The Flow's
    // documents are decoded only for it.
    let reply_spec = route
        .reply
        .as_ref()
        .filter(|spec| spec.to.is_some() || build_reply);
    let want = match reply_spec {
        Some(_) => Answer::Documents,
        None => Answer::Ids,
    };
    if let Some(schema) = &route.schema
        && let Err(error) = schema.check(event)
    {
        state.metrics.route(&route.name).schema_mismatches.inc();
        return Err(no_request(IngressError::Schema {
            route: route.name.clone(),
            error,
        }));
    }
    let request = route.mapping.apply(event).map_err(|error| {
        no_request(IngressError::Mapping {
            route: route.name.clone(),
            error,
        })
    })?;
    let Some(dispatcher) = rt.dispatchers.get(&route.gateway) else {
        return Err(no_request(IngressError::NoGateway {
            route: route.name.clone(),
            gateway: route.gateway.clone(),
        }));
    };
    let response = dispatcher
        .submit_traced(request, span.clone(), want)
        .await
        .map_err(|error| {
            no_request(IngressError::Flow {
                route: route.name.clone(),
                error,
            })
        })?;
    let request_id = response.request_id.clone();
    let accepted = Processed {
        request_id: request_id.clone(),
        reply: None,
    };
    let Some(spec) = reply_spec else {
        return Ok(accepted);
    };
    let fail = |e: IngressError| (e, request_id.clone());
    let mut reply = reply::build(spec, event, &response).map_err(|error| {
        fail(IngressError::Reply {
            route: route.name.clone(),
            error,
        })
    })?;
    span.inject_into(&mut reply.extensions);
    match &spec.to {
        Some(url) => {
            state.replies.send(url, &reply).await.map_err(|message| {
                fail(IngressError::ReplySink {
                    route: route.name.clone(),
                    url: url.clone(),
                    message,
                })
            })?;
            state.metrics.route(&route.name).reply_sent(false);
            Ok(accepted)
        }
        None => Ok(Processed {
            request_id,
            reply: Some(Box::new(reply)),
        }),
    }
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
