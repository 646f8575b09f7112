//! The Jina gateway client: `/jina.JinaRPC/Call` over gRPC (tonic), one stream per Flow request,
//! many streams on one HTTP/2 connection, lazy connect, retry with jittered backoff only while the
//! gateway has not accepted the request, and mapping of gRPC / executor errors to [`FlowError`].
//! Generated protobuf types stay inside this module.
//!
//! STUB: owned by the flow work; the signatures are the contract.

use crate::model::{FlowRequest, FlowResponse, GatewaySpec};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FlowError {
    /// Gateway unreachable / UNAVAILABLE until the deadline: 503.
    #[error("gateway {gateway} unavailable: {message}")]
    Unavailable { gateway: String, message: String },
    /// The call's deadline passed: 504.
    #[error("gateway {gateway} did not answer within {timeout_ms} ms")]
    Deadline { gateway: String, timeout_ms: u64 },
    /// An executor raised: 502.
    #[error("executor {executor} raised {exception}: {message}")]
    Executor {
        executor: String,
        exception: String,
        message: String,
    },
    /// Any other gRPC failure or a response we cannot use: 502.
    #[error("gateway {gateway} failed: {message}")]
    Gateway { gateway: String, message: String },
}

/// A client for one gateway. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FlowClient {
    pub spec: GatewaySpec,
}

impl FlowClient {
    /// Build the client without connecting (the gateway may be down or cold).
    pub fn new(spec: &GatewaySpec) -> Result<FlowClient, FlowError> {
        Ok(FlowClient { spec: spec.clone() })
    }

    /// Send one DataRequest with the given `request_id`; wait for its result.
    pub async fn call(
        &self,
        request: FlowRequest,
        request_id: &str,
    ) -> Result<FlowResponse, FlowError> {
        let _ = (request, request_id);
        Err(FlowError::Unavailable {
            gateway: self.spec.name.clone(),
            message: "not implemented".into(),
        })
    }
}
