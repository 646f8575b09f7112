//! The Jina gateway client: `/jina.JinaRPC/Call` over gRPC (tonic), one stream per Flow request,
//! many streams on one HTTP/2 connection, lazy connect, retry with jittered backoff only while the
//! gateway has not accepted the request, and mapping of gRPC / executor errors to [`FlowError`].
//! Also jina's HTTP and WebSocket gateways. Generated protobuf types stay inside this module.
//! Knows nothing of ingress, routes or replies; `dispatch` drives it.
//!
//! * [`client`] — [`FlowClient`]: transport choice, format detection, the call, retries and
//!   deadline.
//! * [`request`] — one Flow request and its answer: `RequestHead`, `PreparedDocs`, `Answer`,
//!   `SendError`, the raw DataRequest protobuf.
//! * [`retry`] — `Backoff`, the full-jitter exponential pauses between attempts.
//! * `grpc` — jina's gRPC gateway: channel and connector, one Call attempt, status mapping.
//! * `http` — jina's HTTP gateway (v1 `POST /post`, v2 `POST /<endpoint>`).
//! * `websocket` — jina's WebSocket gateway (a DataRequest frame per connection, `ws://`/`wss://`).
//! * `docarray` — model ↔ docarray v1 / v2 protobuf and the HTTP gateway's JSON (pure).
//! * [`format`](mod@format) — docarray v1 / v2 and what a gateway reported about itself.
//! * [`probe`] — `flowbridge check --probe`: what a gateway speaks and serves.
//! * [`error`] — [`FlowError`] and its constructors.
//! * `proto` — the code generated from `proto/*.proto` and `proto/v2/*.proto` by `build.rs`.
//! * `testing` (feature `test-util`, and the crate's tests) — in-process gateways: the fake
//!   gateway the tests use and the benchmarks' null gateway.

pub mod client;
mod docarray;
pub mod error;
pub mod format;
mod grpc;
mod http;
pub mod probe;
mod proto;
pub mod request;
pub mod retry;
mod websocket;

#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use client::FlowClient;
pub use error::FlowError;
pub use request::{Answer, PreparedDocs, RequestHead, SendError};
pub use retry::Backoff;
