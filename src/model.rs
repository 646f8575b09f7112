//! Plain data shared by every module: the CloudEvent as flowbridge sees it, Jina documents, and
//! the Flow request/response pair. Nothing here knows about HTTP, gRPC or CEL.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value};

/// CloudEvents spec version of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecVersion {
    V03,
    V10,
}

impl SpecVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            SpecVersion::V03 => "0.3",
            SpecVersion::V10 => "1.0",
        }
    }
}

/// Value of an extension attribute. Binary mode only ever yields `String`; the JSON format may
/// carry booleans and integers.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtValue {
    String(String),
    Bool(bool),
    Integer(i64),
}

impl ExtValue {
    /// The canonical string form (CloudEvents type system), as used in HTTP headers.
    pub fn to_canonical(&self) -> String {
        match self {
            ExtValue::String(s) => s.clone(),
            ExtValue::Bool(b) => b.to_string(),
            ExtValue::Integer(i) => i.to_string(),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            ExtValue::String(s) => Value::String(s.clone()),
            ExtValue::Bool(b) => Value::Bool(*b),
            ExtValue::Integer(i) => Value::from(*i),
        }
    }
}

/// Event payload, already interpreted according to `datacontenttype`.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// `*/json` or `*/*+json` content (or structured mode without a content type).
    Json(Value),
    /// `text/*` content, or a non-JSON string in structured mode.
    Text(String),
    /// Anything else.
    Binary(Bytes),
}

/// A validated CloudEvent (1.0 or 0.3). Constructed only by the codec in `cloudevents` (the HTTP
/// binding or the JSON format reader), which enforces the spec's rules.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudEvent {
    pub specversion: SpecVersion,
    pub id: String,
    pub source: String,
    pub ty: String,
    pub datacontenttype: Option<String>,
    /// `dataschema` (1.0) or `schemaurl` (0.3).
    pub dataschema: Option<String>,
    pub subject: Option<String>,
    /// RFC 3339 timestamp, as received (already validated).
    pub time: Option<String>,
    /// Extension attributes by (lower-case) name.
    pub extensions: BTreeMap<String, ExtValue>,
    pub data: Option<Data>,
}

impl CloudEvent {
    /// A CloudEvents 1.0 event with only the required attributes; set the others with struct
    /// update syntax (`CloudEvent { subject: Some(..), ..CloudEvent::new(id, source, ty) }`).
    pub fn new(
        id: impl Into<String>,
        source: impl Into<String>,
        ty: impl Into<String>,
    ) -> CloudEvent {
        CloudEvent {
            specversion: SpecVersion::V10,
            id: id.into(),
            source: source.into(),
            ty: ty.into(),
            datacontenttype: None,
            dataschema: None,
            subject: None,
            time: None,
            extensions: BTreeMap::new(),
            data: None,
        }
    }
}

/// Now as an RFC 3339 UTC timestamp with milliseconds: the `time` of events flowbridge makes.
pub fn now_timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An n-dimensional numeric array (embedding or tensor), row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<u32>,
    pub values: Vec<f64>,
}

/// A Jina (docarray v1) document as flowbridge models it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document {
    pub id: String,
    pub text: Option<String>,
    pub uri: Option<String>,
    pub blob: Option<Bytes>,
    pub mime_type: Option<String>,
    pub tags: Map<String, Value>,
    pub embedding: Option<Tensor>,
    pub tensor: Option<Tensor>,
    pub weight: Option<f32>,
    pub modality: Option<String>,
    /// Named scores (e.g. `cosine`) as set by rankers; result documents only.
    pub scores: BTreeMap<String, f64>,
    pub chunks: Vec<Document>,
    pub matches: Vec<Document>,
}

/// What running an event through its route produced; the dedup window stores it and answers
/// redeliveries with it.
#[derive(Debug, Clone)]
pub struct Processed {
    /// The Flow request that carried the event.
    pub request_id: String,
    /// The reply event for the HTTP response (routes with `reply` and no `reply.to`), when it
    /// was built: when the sender asked for it, or always on routes with `dedup`.
    pub reply: Option<Box<CloudEvent>>,
}

/// One Jina DataRequest, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRequest {
    pub endpoint: String,
    pub target_executor: Option<String>,
    pub parameters: Map<String, Value>,
    pub docs: Vec<Document>,
}

/// What the Flow answered (only for a successful request).
#[derive(Debug, Clone, PartialEq)]
pub struct FlowResponse {
    pub request_id: String,
    pub docs: Vec<Document>,
    pub parameters: Map<String, Value>,
}

/// Settings for one Jina gateway, validated by `config`.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewaySpec {
    pub name: String,
    /// `grpc://host:port` (h2c) or `grpcs://host:port` (TLS): the gRPC gateway;
    /// `http(s)://host:port`: the HTTP gateway; `ws(s)://host:port`: the WebSocket gateway.
    pub url: String,
    /// Which docarray document format the gateway speaks (`auto`: ask it).
    pub docarray: DocarrayMode,
    /// Deadline of one Flow request once sent (waiting for the gateway is `connect_timeout`).
    pub timeout: Duration,
    /// Largest gRPC message, HTTP body or WebSocket message flowbridge reads from the gateway.
    pub max_message_bytes: usize,
    /// How long an event may wait for the gateway to appear (cold start) or for a free slot,
    /// before it is sent; retries of connection failures stop when it runs out.
    pub connect_timeout: Duration,
    /// Most Flow requests in flight at once: fixed, or adaptive (the default).
    pub concurrency: Concurrency,
    /// Most Flow requests started per second (token bucket), when set.
    pub rate: Option<f64>,
    /// Most events waiting to be sent; beyond it events are refused with 429.
    pub max_pending: usize,
    pub batch: BatchSpec,
    pub retry: RetrySpec,
    /// The Flow's Knative autoscaling (`autoscale:`), when it has one: delivery then shares
    /// bursts between free slots so that the autoscaler sees the demand (`dispatch`).
    pub autoscale: Option<Autoscale>,
    /// TLS settings of a `grpcs://`, `https://` or `wss://` gateway (ignored otherwise).
    pub tls: GatewayTls,
}

/// How flowbridge checks a `grpcs://` gateway's certificate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GatewayTls {
    /// `ca_file`: the PEM bundle trusted instead of the system roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// The bundle's text, read when the config loaded (so a changed bundle is a changed
    /// gateway on reload).
    pub ca_pem: Option<String>,
    /// `tls_server_name`: the name checked against the certificate (and sent as SNI) instead
    /// of the URL's host.
    pub server_name: Option<String>,
}

/// How waiting events are grouped into one Flow request.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSpec {
    /// Most documents in one request (an event with more still goes out, alone).
    pub max_docs: usize,
    /// Most encoded document bytes in one request (an event with more still goes out, alone).
    pub max_bytes: usize,
    /// How long the first waiting event may wait for others to join it (0: never waits).
    pub linger: Duration,
}

impl Default for BatchSpec {
    /// `max_docs` 512: measured with the real Flow (docs/benchmarks.md), a trivial executor
    /// does 17.8k docs/s fed 64-document requests, 28.3k at 256 and 32.6k at 1,024, and a
    /// model-like one (20 ms + 0.2 ms per document) ~1.7k, 3.4k and 4.5k: 512 keeps both within
    /// about 10 % of their 1,024-document throughput at half its per-request latency.
    fn default() -> BatchSpec {
        BatchSpec {
            max_docs: 512,
            max_bytes: 4 << 20,
            linger: Duration::ZERO,
        }
    }
}

/// Retries of requests the gateway has not accepted (connect errors, listed codes before any
/// response header).
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySpec {
    /// First backoff ceiling (full jitter: the pause is uniform in `[0, ceiling]`).
    pub initial_backoff: Duration,
    /// Largest backoff ceiling; the ceiling doubles after each failed attempt.
    pub max_backoff: Duration,
    /// gRPC status codes (names from [`GRPC_CODES`]) retried when they arrive before the gateway
    /// accepted the request.
    pub codes: Vec<String>,
}

impl Default for RetrySpec {
    fn default() -> RetrySpec {
        RetrySpec {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            codes: vec!["UNAVAILABLE".to_string()],
        }
    }
}

/// gRPC status code names; the index is the code's number.
pub const GRPC_CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

impl GatewaySpec {
    /// A gateway with every setting at its default (timeout 60 s, connect_timeout 120 s,
    /// adaptive concurrency 1..64, no rate limit, max_pending 10000, default batch and retry settings).
    pub fn with_defaults(name: &str, url: &str) -> GatewaySpec {
        GatewaySpec {
            name: name.to_string(),
            url: url.to_string(),
            timeout: Duration::from_secs(60),
            max_message_bytes: 64 << 20,
            connect_timeout: Duration::from_secs(120),
            concurrency: Concurrency::DEFAULT,
            rate: None,
            max_pending: 10_000,
            batch: BatchSpec::default(),
            retry: RetrySpec::default(),
            autoscale: None,
            docarray: DocarrayMode::Auto,
            tls: GatewayTls::default(),
        }
    }
}

/// The Knative autoscaling of the Flow behind a gateway (`autoscale:`): the annotations
/// `flowbridge knative` writes on the Flow's Services.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Autoscale {
    /// `autoscaling.knative.dev/target`: concurrent requests per replica.
    pub target: f64,
    /// `autoscaling.knative.dev/max-scale` (0: unlimited).
    pub max_scale: u32,
}

impl Autoscale {
    /// Requests in flight at which every replica the Flow may have is at its target: more only
    /// queue inside the replicas. `None` when max-scale is unlimited.
    pub fn saturation(&self) -> Option<usize> {
        (self.max_scale > 0)
            .then(|| (f64::from(self.max_scale) * self.target).ceil().max(1.0) as usize)
    }
}

/// How many Flow requests a gateway keeps in flight (`concurrency:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// At most this many (`concurrency: 8`).
    Fixed(usize),
    /// Adaptive between these bounds, inclusive (`concurrency: auto`, or `{min, max}`): follows
    /// the Flow's latency (`dispatch::limit`).
    Auto { min: usize, max: usize },
}

impl Concurrency {
    /// The default: adaptive from 1 to [`Concurrency::DEFAULT_MAX`].
    pub const DEFAULT: Concurrency = Concurrency::Auto {
        min: 1,
        max: Concurrency::DEFAULT_MAX,
    };
    /// Upper bound of `concurrency: auto` without `max`.
    pub const DEFAULT_MAX: usize = 64;
}

impl std::fmt::Display for Concurrency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Concurrency::Fixed(n) => write!(f, "{n}"),
            Concurrency::Auto { min, max } => write!(f, "auto ({min}..{max})"),
        }
    }
}

/// The document format of a gateway, as configured (`docarray: v1 | v2 | auto`). A jina gateway
/// speaks docarray v1 when docarray < 0.30 is installed next to it, v2 otherwise; nothing on the
/// wire says which, so `auto` asks the gateway's status (`_status` / `GET /status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocarrayMode {
    V1,
    V2,
    Auto,
}

impl DocarrayMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DocarrayMode::V1 => "v1",
            DocarrayMode::V2 => "v2",
            DocarrayMode::Auto => "auto",
        }
    }
}
