//! The per-event pipeline: route → (dedup window) → schema → map → dispatch to the Flow → build
//! or deliver the reply, for one decoded CloudEvent. Every outcome is recorded once
//! ([`crate::telemetry::events::record`]: metrics, span, log line).
//!
//! Knows nothing of HTTP: ingress decodes the request, calls [`process`] per event and turns
//! [`Outcome`] / [`EventError`] into a response (the status table is `ingress/error.rs`).

use std::time::Instant;

use crate::dispatch::window::Claim;
use crate::flow::Answer;
use crate::flow::FlowError;
use crate::model::{CloudEvent, Processed};
use crate::reply;
use crate::rules::mapping::MappingError;
use crate::rules::schema::SchemaMismatch;
use crate::rules::{Route, Unmatched};
use crate::runtime::Runtime;
use crate::telemetry::events::{self, Ended};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::trace::{EventSpan, Incoming};

/// What the pipeline needs, borrowed for one event: the config generation the request loaded,
/// the metrics registry and the reply sender.
pub struct Pipeline<'a> {
    pub runtime: &'a Runtime,
    pub metrics: &'a Metrics,
    pub replies: &'a reply::Sender,
}

/// What one event's trip through the pipeline produced.
#[derive(Debug)]
pub enum Outcome {
    /// Flow ran (or the event was unmatched and accepted); nothing to send back.
    Accepted,
    /// Flow ran and a reply event should go back in the HTTP response.
    Reply(Box<CloudEvent>),
}

/// Every way one decoded event can fail after it was read.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
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
}

impl EventError {
    /// Stable machine-readable reason: the error body's `code` and the metrics' `reason`.
    pub fn code(&self) -> &'static str {
        match self {
            EventError::NoRoute { .. } => "no_route",
            EventError::Schema { .. } => "schema_mismatch",
            EventError::Mapping { .. } => "mapping_failed",
            EventError::Reply { .. } => "reply_failed",
            EventError::Flow { error, .. } => match error {
                FlowError::Unavailable { .. } => "gateway_unavailable",
                FlowError::StateUnavailable { .. } => "state_unavailable",
                FlowError::Overloaded { .. } => "overloaded",
                FlowError::Deadline { .. } => "gateway_timeout",
                FlowError::Executor { .. } => "executor_error",
                FlowError::Gateway { .. } => "gateway_error",
                FlowError::InvalidRequest { .. } => "mapping_failed",
                FlowError::Config { .. } => "internal",
            },
            EventError::ReplySink { .. } => "reply_sink_failed",
            EventError::NoGateway { .. } => "internal",
        }
    }
}

/// One event: route → map → call the Flow → build/deliver the reply. `incoming` is the sender's
/// trace context from the HTTP headers (the event's span continues it); `status` gives the HTTP
/// status each result is answered with, so that the record of the outcome says it.
pub async fn process(
    p: &Pipeline<'_>,
    event: CloudEvent,
    want_reply: bool,
    incoming: &Incoming,
    status: impl Fn(&Result<Outcome, EventError>) -> u16,
) -> Result<Outcome, EventError> {
    let started = Instant::now();
    let span = EventSpan::start(incoming, &event);
    let Some(route) = p.runtime.config.rules.route(&event) else {
        let result = match p.runtime.config.unmatched {
            Unmatched::Accept => Ok(Outcome::Accepted),
            Unmatched::Reject => Err(EventError::NoRoute {
                ty: event.ty.clone(),
                event_source: event.source.clone(),
            }),
        };
        let end = match &result {
            Ok(_) => Ended::Unmatched,
            Err(e) => Ended::Failed {
                route: None,
                request_id: "",
                code: e.code(),
                error: e,
                elapsed: started.elapsed(),
            },
        };
        events::record(p.metrics, &span, &event, status(&result), end);
        return result;
    };
    p.metrics.route(&route.name).matched.inc();
    span.routed(&route.name);
    let mut redelivery = false;
    let result = match p.runtime.dedup.get(&route.name) {
        None => run_route(p, route, &event, want_reply, &span).await,
        Some(window) => match window.claim((event.source.clone(), event.id.clone())).await {
            Ok(Claim::Done(processed)) => {
                redelivery = true;
                Ok(processed)
            }
            Ok(Claim::Run(guard)) => {
                // Build the reply even when not asked: a redelivery may ask for it.
                let result = run_route(p, route, &event, true, &span).await;
                if let Ok(processed) = &result {
                    guard.finish(processed.clone()).await;
                }
                result
            }
            // `on_state_error.dedup: closed` and Redis does not answer: 503, the sender retries.
            Err(error) => Err((
                EventError::Flow {
                    route: route.name.clone(),
                    error: FlowError::StateUnavailable {
                        gateway: route.gateway.clone(),
                        message: error.to_string(),
                    },
                },
                String::new(),
            )),
        },
    };
    let (result, request_id) = match result {
        Ok(processed) => {
            let outcome = match processed.reply {
                Some(reply) if want_reply => Outcome::Reply(reply),
                _ => Outcome::Accepted,
            };
            (Ok(outcome), processed.request_id)
        }
        Err((e, request_id)) => (Err(e), request_id),
    };
    let elapsed = started.elapsed();
    let end = match &result {
        Ok(outcome) => Ended::Processed {
            route: &route.name,
            request_id: &request_id,
            reply: matches!(outcome, Outcome::Reply(_)),
            redelivery,
            elapsed,
        },
        Err(e) => Ended::Failed {
            route: Some(&route.name),
            request_id: &request_id,
            code: e.code(),
            error: e,
            elapsed,
        },
    };
    events::record(p.metrics, &span, &event, status(&result), end);
    result
}

/// Map the event, send it through its gateway's dispatcher, then build (when `build_reply`) or
/// deliver (`reply.to`) the reply, which carries `span`'s trace context. Errors carry the Flow
/// request id when there was one.
async fn run_route(
    p: &Pipeline<'_>,
    route: &Route,
    event: &CloudEvent,
    build_reply: bool,
    span: &EventSpan,
) -> Result<Processed, (EventError, String)> {
    let no_request = |e: EventError| (e, String::new());
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
        p.metrics.route(&route.name).schema_mismatches.inc();
        return Err(no_request(EventError::Schema {
            route: route.name.clone(),
            error,
        }));
    }
    let request = route.mapping.apply(event).map_err(|error| {
        no_request(EventError::Mapping {
            route: route.name.clone(),
            error,
        })
    })?;
    let Some(dispatcher) = p.runtime.dispatchers.get(&route.gateway) else {
        return Err(no_request(EventError::NoGateway {
            route: route.name.clone(),
            gateway: route.gateway.clone(),
        }));
    };
    let response = dispatcher
        .submit_traced(request, span.clone(), want)
        .await
        .map_err(|error| {
            no_request(EventError::Flow {
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
    let fail = |e: EventError| (e, request_id.clone());
    let mut reply = reply::build(spec, event, &response).map_err(|error| {
        fail(EventError::Reply {
            route: route.name.clone(),
            error,
        })
    })?;
    span.inject_into(&mut reply.extensions);
    match &spec.to {
        Some(url) => {
            p.replies
                .send(url, &reply, spec.timeout)
                .await
                .map_err(|message| {
                    fail(EventError::ReplySink {
                        route: route.name.clone(),
                        url: url.clone(),
                        message,
                    })
                })?;
            p.metrics.route(&route.name).reply_sent(false);
            Ok(accepted)
        }
        None => Ok(Processed {
            request_id,
            reply: Some(Box::new(reply)),
        }),
    }
}
