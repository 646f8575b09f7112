//! flowbridge: a Knative event sink that runs Jina Flows.
//!
//! An event travels through the modules in this order:
//!
//! ```text
//! HTTP POST ──► ingress ──► pipeline ──► rules ──► dispatch ──► flow ──► reply ──► HTTP response
//!  (auth, body,   (one event:   (route,    (queue,      (Jina     (reply          / reply sink
//!   decode with    route → map   mapping)   batching,    client)   CloudEvent)
//!   cloudevents,   → Flow → reply)          limits)
//!   status map)
//! ```
//!
//! * [`cloudevents`]: the CloudEvents codec (HTTP binding in binary, structured and batched
//!   mode; the JSON event format), pure: no axum, no tokio. Ingress, replies, `send`, `load` and
//!   the fuzz targets all decode and encode events through it.
//! * [`ingress`]: the axum server; the one place where errors become HTTP status codes.
//! * [`pipeline`]: one decoded event's trip (route → dedup → schema → map → Flow → reply) and its
//!   one record (metrics, span, log line); no HTTP in there.
//! * [`rules`]: pure route matching (Knative Trigger filters, CEL) and event → request mapping.
//!   No axum, tonic or tokio in there.
//! * [`dispatch`]: per-gateway delivery between the pipeline and flow: adaptive micro-batching
//!   with per-event results, concurrency/rate/queue limits (429), cold-start probing, and the
//!   per-route dedup window (own, or shared through [`state`]).
//! * [`flow`]: the Jina gateway client; generated protobuf types never leave it.
//! * [`reply`]: builds reply events and delivers them to a sink when configured.
//! * [`auth`]: inbound auth (OIDC JWTs, static bearer tokens, webhook HMAC signatures); the
//!   ingress asks it before an event goes anywhere.
//! * [`config`]: parse → validate the YAML config, every error at once, before any socket opens.
//! * [`state`]: with `state:` in the config, what replicas share through Redis (or Valkey): the
//!   dedup window of each route and the rate budget of each gateway; every call bounded by a
//!   timeout, failures handled by each feature's `on_state_error` policy in `dispatch`.
//! * [`runtime`]: one config generation with its dispatchers and dedup windows; [`reload`]
//!   swaps in the next one on SIGHUP or when the config (or a file it names) changes.
//! * [`app`]: `flowbridge serve`: listeners, startup, shutdown.
//! * [`server`]: the events listener's accept loop (plain or TLS, HTTP/1.1 and HTTP/2) and its
//!   server limits (`limits:`: read deadlines, header and connection caps, rapid reset).
//! * [`tls`]: the listener's rustls config and the CA bundles of `grpcs://` gateways.
//! * [`cli`], [`telemetry`]: the command line, logging, the Prometheus metrics registry, the
//!   OpenTelemetry traces (OTLP export, W3C context in and out) and the per-event record.
//! * [`knative`]: `flowbridge knative`, `jina export kubernetes` output → Knative Services.
//! * [`load`]: `flowbridge load`, the CloudEvents load generator used by the benchmarks.
//! * [`model`]: plain data shared by the modules (events, documents, Flow requests/responses,
//!   an event's processed outcome); [`text`]: truncation of message text.

pub mod app;
pub mod auth;
pub mod cli;
pub mod cloudevents;
pub mod config;
pub mod dispatch;
pub mod flow;
pub mod ingress;
pub mod knative;
pub mod load;
pub mod model;
pub mod pipeline;
pub mod reload;
pub mod reply;
pub mod rules;
pub mod runtime;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod text;
pub mod tls;
pub mod top;
