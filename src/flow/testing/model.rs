//! A gateway that is a Rust value, not a server: [`FlowClient::in_process`] sends each Flow
//! request to an [`InProcess`] implementation by a plain call, so the dispatcher can run against
//! a *model* of a Flow (service times, replicas, an autoscaler) under tokio's paused clock, with
//! no sockets and no encoding. The autoscaling simulator (`bench/autoscale/`) is its user.
//!
//! The client treats it as a docarray v1 gRPC gateway that is always reachable for the status
//! question; what one request does is entirely the model's answer.

use std::future::Future;
use std::pin::Pin;

use crate::flow::{RequestHead, SendError};
use crate::model::{Document, FlowResponse};

/// The future an [`InProcess`] gateway answers with.
pub type Reply = Pin<Box<dyn Future<Output = Result<FlowResponse, SendError>> + Send>>;

/// A modelled Jina gateway: one call per Flow request attempt.
pub trait InProcess: Send + Sync + std::fmt::Debug {
    /// One attempt with the request's documents (the events' documents, in order). An answer
    /// of [`SendError::NotAccepted`] makes the dispatcher treat the gateway as cold.
    fn call(&self, head: &RequestHead, docs: Vec<Document>, request_id: &str) -> Reply;
}
