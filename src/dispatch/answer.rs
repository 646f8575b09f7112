//! The end of an event's stay in the queue. After a Flow request, every event of the batch gets
//! its result — its own documents from the Flow's answer ([`batch::split`]), or the request's
//! error — and the `outcome` label of a failed request is named for the metrics. An event past
//! its queue deadline gets a 503 that says why ([`expired`]). However an event leaves the
//! queue (sent, expired, refused for the shared budget, its sender gone), how long it waited
//! goes to `flowbridge_queue_wait_seconds` ([`waited`]).

use tokio::time::Instant;

use super::{Pending, Shared, State, batch, scale};
use crate::flow::{FlowError, SendError};
use crate::model::FlowResponse;
use crate::telemetry::metrics::GatewayMetrics;

/// The `outcome` label of a failed Flow request.
pub(super) fn outcome(error: &FlowError) -> &'static str {
    match error {
        FlowError::Executor { .. } => "executor_error",
        FlowError::Unavailable { .. }
        | FlowError::Overloaded { .. }
        | FlowError::StateUnavailable { .. } => "unavailable",
        FlowError::Deadline { .. } => "timeout",
        FlowError::Gateway { .. } | FlowError::InvalidRequest { .. } | FlowError::Config { .. } => {
            "gateway_error"
        }
    }
}

/// Give every event of a batch its result, from the request `(request_id, gateway)` sent at
/// `sent`.
pub(super) fn answer(
    mut batch: Vec<Pending>,
    result: Result<FlowResponse, SendError>,
    (request_id, gateway): (&str, &str),
    sent: Instant,
    metrics: &GatewayMetrics,
) {
    for pending in &batch {
        waited(metrics, pending, sent);
    }
    match result {
        Ok(response) => {
            let sent: Vec<Vec<String>> = batch
                .iter_mut()
                .map(|p| std::mem::take(&mut p.ids))
                .collect();
            let FlowResponse {
                request_id: rid,
                docs,
                parameters,
            } = response;
            let parts = batch::split(&sent, docs);
            for (pending, part) in batch.into_iter().zip(parts) {
                let answer = match part {
                    Ok(docs) => Ok(FlowResponse {
                        request_id: rid.clone(),
                        docs,
                        parameters: parameters.clone(),
                    }),
                    Err(message) => Err(FlowError::Gateway {
                        gateway: gateway.to_owned(),
                        message: format!("request {request_id}: {message}"),
                    }),
                };
                let _ = pending.answer.send(answer);
            }
        }
        Err(error) => {
            let error = match error {
                SendError::Failed(e) => e,
                SendError::NotAccepted(cause) => FlowError::Unavailable {
                    gateway: gateway.to_owned(),
                    message: cause,
                },
            };
            for pending in batch {
                let _ = pending.answer.send(Err(error.clone()));
            }
        }
    }
}

/// Answer an event that waited in the queue past its deadline (`connect_timeout`): the gateway
/// was cold, or no slot came free.
pub(super) fn expired(shared: &Shared, state: &State, pending: Pending, now: Instant) {
    let spec = &shared.client.spec;
    let why = match &state.cold {
        Some(cold) => format!(
            "not reachable within connect_timeout ({}): {}",
            humantime::format_duration(spec.connect_timeout),
            cold.cause
        ),
        None => format!(
            "no free slot within connect_timeout ({}; concurrency {}, limit now {}, rate {:?})",
            humantime::format_duration(spec.connect_timeout),
            spec.concurrency,
            state.allowed(spec, scale::efficiency(spec, &state.limiter)),
            spec.rate
        ),
    };
    waited(&shared.metrics, &pending, now);
    let _ = pending.answer.send(Err(shared.client.unavailable(why)));
}

/// Count how long `pending` waited in the queue: from entering it until `left`.
pub(super) fn waited(metrics: &GatewayMetrics, pending: &Pending, left: Instant) {
    let waited = left.saturating_duration_since(pending.enqueued);
    metrics.queue_wait.observe(waited.as_secs_f64());
}
