//! The config file as written: serde structs that mirror the YAML one to one. Unknown keys are
//! rejected here (`deny_unknown_fields`, so serde names the key and the valid ones; the loader
//! takes each one out and goes on, see `super::lenient`); everything else is checked later by
//! [`super::validate`], which can report many problems at once.
//!
//! Leaf values whose syntax we check ourselves (sizes, durations, filter attribute maps, string
//! or `{cel: ...}` settings) are kept as [`Value`] so that one bad value does not stop the parse.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_norway::Value;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `IP:port`; default `0.0.0.0:8080`.
    pub listen: Option<String>,
    pub limits: Option<RawLimits>,
    /// `accept` (default) or `reject`.
    pub unmatched: Option<String>,
    pub gateways: Option<BTreeMap<String, RawGateway>>,
    pub routes: Option<Vec<RawRoute>>,
    /// Duration: how long queued and in-flight events may take to finish after SIGTERM.
    pub shutdown_grace: Option<Value>,
    /// `IP:port` of the admin listener (metrics, probes); `""` or `off` disables it; default
    /// `0.0.0.0:9095`.
    pub admin_listen: Option<String>,
    /// Inbound auth of `POST /` (and of webhooks without their own `auth`).
    pub auth: Option<RawAuth>,
    /// Plain webhooks turned into CloudEvents at `POST /webhooks/<name>`.
    pub webhooks: Option<Vec<RawWebhook>>,
    /// TLS on the listener.
    pub tls: Option<RawTls>,
    /// Shared state (Redis) for replicas: dedup windows and rate budgets.
    pub state: Option<RawState>,
}

/// `state:` — where replicas share their dedup windows and rate budgets.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// `redis://host:port/db` or `rediss://host:port/db`.
    pub redis: Option<String>,
    /// `rediss://` only: PEM bundle trusted instead of the system roots.
    pub ca_file: Option<String>,
    /// `{file: PATH}` or `{env: NAME}`.
    pub password: Option<RawSecretRef>,
    pub key_prefix: Option<String>,
    /// Duration.
    pub connect_timeout: Option<Value>,
    /// Duration.
    pub command_timeout: Option<Value>,
    /// `open` or `closed` for every feature, or `{dedup: open|closed, rate: open|closed}`.
    pub on_state_error: Option<Value>,
}

/// `tls:` — the listener's certificate and key (PEM files), optionally a client CA bundle.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    /// PEM bundle; when set, clients must present a certificate it signed (mutual TLS).
    pub client_ca_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Size (`4MiB`, or a plain number of bytes).
    pub max_body: Option<Value>,
    /// Durations: the listener's read deadlines.
    pub head_timeout: Option<Value>,
    pub body_timeout: Option<Value>,
    pub idle_timeout: Option<Value>,
    /// Size: the largest request head.
    pub max_header_bytes: Option<Value>,
    /// Whole numbers.
    pub max_headers: Option<Value>,
    pub max_connections: Option<Value>,
    pub max_h2_streams: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    pub url: Option<String>,
    /// humantime duration (`60s`, `2m`).
    pub timeout: Option<Value>,
    /// Size, like `limits.max_body`.
    pub max_message: Option<Value>,
    /// Duration: how long an event may wait for the gateway to appear or for a free slot.
    pub connect_timeout: Option<Value>,
    /// Positive integer: most Flow requests in flight.
    pub concurrency: Option<Value>,
    /// Positive number of requests per second, or null (no limit).
    pub rate: Option<Value>,
    /// Positive integer: most events waiting to be sent.
    pub max_pending: Option<Value>,
    pub batch: Option<RawBatch>,
    pub retry: Option<RawRetry>,
    /// `{target, max_scale}`: the Flow's Knative autoscaling.
    pub autoscale: Option<Value>,
    /// `v1`, `v2` or `auto` (default): the gateway's docarray document format.
    pub docarray: Option<Value>,
    /// `grpcs://` only: PEM bundle trusted instead of the system roots.
    pub ca_file: Option<String>,
    /// `grpcs://` only: the name the gateway's certificate must carry (and SNI), instead of the
    /// URL's host.
    pub tls_server_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBatch {
    /// Positive integer.
    pub max_docs: Option<Value>,
    /// Size.
    pub max_bytes: Option<Value>,
    /// Duration, `0ms` allowed.
    pub linger: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Duration.
    pub initial_backoff: Option<Value>,
    /// Duration.
    pub max_backoff: Option<Value>,
    /// List of gRPC code names (`UNAVAILABLE`, …).
    pub codes: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: Option<String>,
    pub filters: Option<Vec<RawFilter>>,
    pub gateway: Option<String>,
    /// String, or `{cel: expr}`.
    pub endpoint: Option<Value>,
    /// String, or `{cel: expr}`.
    pub target_executor: Option<Value>,
    pub parameters: Option<String>,
    pub docs: Option<String>,
    pub reply: Option<RawReply>,
    /// Duration: redeliveries of the same (source, id) within it get the first outcome.
    pub dedup: Option<Value>,
    /// JSON Schema for `data`: a file path (JSON or YAML), or the schema inline as a mapping.
    pub schema: Option<Value>,
}

/// One entry of a Knative Trigger `filters` list. Exactly one key must be set; that rule is
/// checked by validation (so that it can name the keys found).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFilter {
    /// Map attribute → value (exactly one entry).
    pub exact: Option<Value>,
    pub prefix: Option<Value>,
    pub suffix: Option<Value>,
    pub all: Option<Vec<RawFilter>>,
    pub any: Option<Vec<RawFilter>>,
    pub not: Option<Box<RawFilter>>,
    pub cel: Option<String>,
    pub cesql: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReply {
    #[serde(rename = "type")]
    pub ty: Option<String>,
    pub source: Option<String>,
    pub data: Option<String>,
    /// An `http(s)` URL, or `$NAME` to read it from the environment at load.
    pub to: Option<String>,
    /// How long the POST to `to` may take.
    pub timeout: Option<Value>,
}

/// An `auth:` block (top level or per webhook); any listed method passing accepts a request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub oidc: Option<RawOidc>,
    pub bearer: Option<RawBearer>,
    pub hmac: Option<RawHmac>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidc {
    pub issuer: Option<String>,
    pub audiences: Option<Vec<String>>,
    pub jwks_file: Option<String>,
    pub jwks_url: Option<String>,
    pub ca_file: Option<String>,
    pub token_file: Option<String>,
    pub subjects: Option<Vec<String>>,
    /// Duration, `0s` allowed.
    pub leeway: Option<Value>,
    /// Duration.
    pub refresh_interval: Option<Value>,
    /// Duration, `0s` allowed.
    pub refresh_min_interval: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBearer {
    pub tokens_from: Option<Vec<RawSecretRef>>,
}

/// Where a secret is: exactly one of `file` and `env`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecretRef {
    pub file: Option<String>,
    pub env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHmac {
    pub header: Option<String>,
    /// `sha256` (default) or `sha1`.
    pub algorithm: Option<String>,
    pub prefix: Option<String>,
    /// `hex` (default) or `base64`.
    pub encoding: Option<String>,
    pub secret: Option<RawSecretRef>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub name: Option<String>,
    pub source: Option<String>,
    #[serde(rename = "type")]
    pub ty: Option<String>,
    pub type_header: Option<String>,
    pub id_header: Option<String>,
    pub subject_header: Option<String>,
    pub auth: Option<RawAuth>,
}
