//! The end of a Flow request: every event of the batch gets its result — its own documents
//! from the Flow's answer ([`batch::split`]), or the request's error — and the `outcome` label
//! of a failed request for the metrics.

use super::{Pending, batch};
use crate::flow::{FlowError, SendError};
use crate::model::FlowResponse;

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

/// Give every event of a batch its result.
pub(super) fn answer(
    mut batch: Vec<Pending>,
    result: Result<FlowResponse, SendError>,
    request_id: &str,
    gateway: &str,
) {
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
