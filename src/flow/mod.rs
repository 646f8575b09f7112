//! The Jina gateway client: `/jina.JinaRPC/Call` over gRPC (tonic), one stream per Flow request,
//! many streams on one HTTP/2 connection, lazy connect, retry with jittered backoff only while the
//! gateway has not accepted the request, and mapping of gRPC / executor errors to [`FlowError`].
//! Generated protobuf types stay inside this module.
//!
//! * [`client`] — connection settings, the call, retries and deadline.
//! * `convert` — model ↔ docarray v1 / jina protobuf conversions.
//! * [`error`] — [`FlowError`].
//! * `proto` — the code generated from `proto/*.proto` by `build.rs`.
//! * `null_gateway` (feature `null-gateway`) — a gateway answering every call at once, for
//!   benchmarks.

pub mod client;
mod convert;
pub mod error;
mod proto;

#[cfg(test)]
pub(crate) mod fake_gateway;
#[cfg(feature = "null-gateway")]
pub mod null_gateway;

pub use client::FlowClient;
pub use error::FlowError;
