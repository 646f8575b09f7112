//! The Jina gateway client: `/jina.JinaRPC/Call` over gRPC (tonic), one stream per Flow request,
//! many streams on one HTTP/2 connection, lazy connect, retry with jittered backoff only while the
//! gateway has not accepted the request, and mapping of gRPC / executor errors to [`FlowError`].
//! Generated protobuf types stay inside this module.
//!
//! * [`client`] — connection settings, format detection, the call, retries and deadline.
//! * [`format`] — docarray v1 / v2 and what a gateway reported about itself.
//! * `convert` — model ↔ docarray v1 / jina protobuf conversions.
//! * `wire_v1` — request documents written as docarray v1 protobuf bytes without building protos.
//! * `convert_v2` — model ↔ docarray v2 protobuf (`DocProto` nodes).
//! * `http` — jina's HTTP gateway (v1 `POST /post`, v2 `POST /<endpoint>`); `json` its bodies.
//! * `websocket` — jina's WebSocket gateway (a DataRequest frame per connection, `ws://`/`wss://`).
//! * `ids` — only the document ids of an answer, when no event needs the documents back.
//! * [`probe`] — `flowbridge check --probe`: what a gateway speaks and serves.
//! * [`error`] — [`FlowError`].
//! * `proto` — the code generated from `proto/*.proto` and `proto/v2/*.proto` by `build.rs`.
//! * `null_gateway` (feature `null-gateway`) — a gateway answering every call at once, for
//!   benchmarks.

pub mod client;
mod convert;
mod convert_v2;
pub mod error;
pub mod format;
pub mod http;
mod ids;
mod json;
pub mod probe;
mod proto;
mod websocket;
mod wire_v1;

#[cfg(test)]
pub(crate) mod fake_gateway;
#[cfg(feature = "null-gateway")]
pub mod null_gateway;

pub use client::FlowClient;
pub use error::FlowError;
