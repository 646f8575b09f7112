//! Prometheus metrics: the explicit registry ([`Metrics`]) of every counter, gauge and histogram
//! flowbridge exports, and the text exposition format (version 0.0.4) served on `GET /metrics`
//! of the admin listener.
//!
//! Hand-rolled on atomics rather than a metrics crate: the label sets are known when a config
//! loads (routes and gateways come from the config; modes, outcomes and reasons are closed
//! sets), so every series is a pre-created atomic reached by one map lookup on a route or
//! gateway name under an uncontended read lock — no allocation on the event path, and no extra
//! dependency to build. A reload registers the series of new routes and gateways
//! ([`Metrics::register`]); series of removed ones stay (their counters keep their totals).
//! The config generation, the reload outcomes and the active config's hash are here too.
//! Status codes index a fixed array per route. Labels never carry event ids.
//!
//! Gauges that describe queue state (pending events, in-flight requests, cold gateways) are read
//! from the dispatchers at scrape time ([`GatewayGauges`]), so they cost nothing per event.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::auth::{METHODS, Reason};

/// The `route` label of events answered before a route was chosen (rejected bodies, unmatched
/// events). Route names cannot start with `_`, so it never collides with a real route.
pub const NO_ROUTE: &str = "_none";

/// Receiving modes of the CloudEvents HTTP binding (`mode` label).
pub const MODES: [&str; 3] = ["binary", "structured", "batched"];

/// Bodies read by looking at them (`declared`, `read_as` labels): no content type, or a JSON
/// content type over a body that is not JSON (see `ingress::binding::Inferred`).
pub const INFERRED: [(&str, &str); 5] = [
    ("none", "json"),
    ("none", "text"),
    ("none", "bytes"),
    ("json", "text"),
    ("json", "bytes"),
];

/// Outcomes of a Flow request (`outcome` label).
pub const OUTCOMES: [&str; 5] = [
    "ok",
    "executor_error",
    "unavailable",
    "timeout",
    "gateway_error",
];

/// Why a gateway's concurrency limit last changed (`reason` label): `dispatch::limit::Reason`.
pub const LIMIT_REASONS: [&str; 4] = ["start", "latency_near_baseline", "latency_rose", "timeout"];

/// Reasons an event or a delivery was answered with an error (`reason` label): the `code` of
/// the error body ([`crate::ingress::error::IngressError::code`]).
pub const REASONS: [&str; 20] = [
    "not_cloudevent",
    "invalid_event",
    "body_too_large",
    "body_unreadable",
    "no_route",
    "schema_mismatch",
    "mapping_failed",
    "reply_failed",
    "gateway_unavailable",
    "overloaded",
    "gateway_timeout",
    "executor_error",
    "gateway_error",
    "reply_sink_failed",
    "internal",
    "unauthenticated",
    "forbidden",
    "auth_unavailable",
    "unknown_webhook",
    "invalid_webhook_request",
];

/// Where a reply event went (`destination` label).
pub const DESTINATIONS: [&str; 2] = ["response", "sink"];

/// Seconds: event and Flow request latencies (5 ms … 60 s).
const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];
/// Documents or events per Flow request.
const SIZE_BUCKETS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Outcomes of a config reload (`outcome` label of `flowbridge_config_reloads_total`).
pub const RELOAD_OUTCOMES: [&str; 2] = ["success", "failure"];

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A histogram with fixed upper bounds (`le`), a count and a sum.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative; the encoder accumulates).
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// f64 bits, updated by compare-and-swap.
    sum: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub fn observe(&self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|&b| value <= b)
            && let Some(bucket) = self.buckets.get(i)
        {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn sum(&self) -> f64 {
        f64::from_bits(self.sum.load(Ordering::Relaxed))
    }
}

/// Series of one route.
#[derive(Debug)]
pub struct RouteMetrics {
    pub matched: Counter,
    /// Events by the HTTP status their own outcome maps to, indexed by status code.
    status: Vec<Counter>,
    pub latency: Histogram,
    pub replies: [Counter; 2],
    pub redeliveries: Counter,
    /// Events whose data did not satisfy the route's `schema`.
    pub schema_mismatches: Counter,
}

impl RouteMetrics {
    fn new() -> RouteMetrics {
        RouteMetrics {
            matched: Counter::default(),
            status: (0..600).map(|_| Counter::default()).collect(),
            latency: Histogram::new(&LATENCY_BUCKETS),
            replies: Default::default(),
            redeliveries: Counter::default(),
            schema_mismatches: Counter::default(),
        }
    }

    /// Count one event answered with `status`.
    pub fn answered(&self, status: u16) {
        if let Some(c) = self.status.get(usize::from(status)) {
            c.inc();
        }
    }

    /// Events answered with `status` so far.
    pub fn answered_with(&self, status: u16) -> u64 {
        self.status.get(usize::from(status)).map_or(0, Counter::get)
    }

    /// Count one reply event: `in_response` true for the HTTP response, false for `reply.to`.
    pub fn reply_sent(&self, in_response: bool) {
        self.replies[usize::from(!in_response)].inc();
    }
}

/// Series of one gateway, updated by its dispatcher.
#[derive(Debug)]
pub struct GatewayMetrics {
    /// Flow requests by outcome, indexed like [`OUTCOMES`].
    pub requests: [Counter; 5],
    pub latency: Histogram,
    pub docs: Histogram,
    pub events: Histogram,
    /// Requests the gateway did not accept; their events went back to the queue.
    pub retries: Counter,
    /// Requests sent as the single probe of a cold gateway.
    pub probes: Counter,
    /// Changes of the adaptive concurrency limit, indexed like [`LIMIT_REASONS`].
    pub limit_changes: [Counter; LIMIT_REASONS.len()],
}

impl GatewayMetrics {
    pub fn new() -> GatewayMetrics {
        GatewayMetrics {
            requests: Default::default(),
            latency: Histogram::new(&LATENCY_BUCKETS),
            docs: Histogram::new(&SIZE_BUCKETS),
            events: Histogram::new(&SIZE_BUCKETS),
            retries: Counter::default(),
            probes: Counter::default(),
            limit_changes: Default::default(),
        }
    }

    /// Count one change of the concurrency limit (`reason` one of [`LIMIT_REASONS`]).
    pub fn limit_changed(&self, reason: &str) {
        if let Some(i) = LIMIT_REASONS.iter().position(|r| *r == reason) {
            self.limit_changes[i].inc();
        }
    }

    /// Count one finished request with `outcome` (one of [`OUTCOMES`]) that took `seconds`.
    pub fn request_done(&self, outcome: &str, seconds: f64) {
        if let Some(i) = OUTCOMES.iter().position(|o| *o == outcome) {
            self.requests[i].inc();
        }
        self.latency.observe(seconds);
    }
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        GatewayMetrics::new()
    }
}

/// Queue state of one gateway, read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct GatewayGauges {
    pub gateway: String,
    pub pending: u64,
    pub in_flight: u64,
    pub cold: bool,
    pub overloaded: u64,
    /// The concurrency limit and what it learnt (`None` in tests that build gauges by hand).
    pub limit: Option<LimitGauges>,
}

/// A gateway's concurrency limit and what it learnt about the Flow, read at scrape time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitGauges {
    pub limit: usize,
    /// Why it last changed, one of [`LIMIT_REASONS`].
    pub reason: &'static str,
    /// Smoothed latency / no-load latency.
    pub ratio: Option<f64>,
    /// Smoothed documents per request.
    pub docs: Option<f64>,
    /// No-load latency in seconds by size class (the class's smallest document count).
    pub no_load: Vec<(usize, f64)>,
}

/// The registry: every series flowbridge exports.
#[derive(Debug)]
pub struct Metrics {
    received: [Counter; 3],
    /// Bodies whose reading was inferred, indexed like [`INFERRED`].
    inferred: [Counter; INFERRED.len()],
    pub unmatched_accepted: Counter,
    pub unmatched_rejected: Counter,
    rejected: [Counter; REASONS.len()],
    /// Deliveries answered before any event was read (bad body), by status code.
    no_route: Arc<RouteMetrics>,
    routes: RwLock<BTreeMap<String, Arc<RouteMetrics>>>,
    gateways: RwLock<BTreeMap<String, Arc<GatewayMetrics>>>,
    /// Config reloads, indexed like [`RELOAD_OUTCOMES`].
    pub reloads: [Counter; 2],
    /// The active config: its generation (1 at start) and hash.
    active: Mutex<(u64, String)>,
    /// Refused requests by endpoint (`/`, `/webhooks/<name>`), indexed
    /// `[method * Reason::ALL.len() + reason]`.
    auth_failures: RwLock<BTreeMap<String, Arc<Vec<Counter>>>>,
    /// Requests received by each webhook (before auth).
    webhooks: RwLock<BTreeMap<String, Arc<Counter>>>,
}

/// The `endpoint` label of `POST /`.
pub const MAIN_ENDPOINT: &str = "/";

/// The `endpoint` label of a webhook.
pub fn webhook_endpoint(name: &str) -> String {
    format!("/webhooks/{name}")
}

fn auth_counters() -> Arc<Vec<Counter>> {
    Arc::new(
        (0..METHODS.len() * Reason::ALL.len())
            .map(|_| Counter::default())
            .collect(),
    )
}

impl Metrics {
    /// A registry with the series of these routes and gateways.
    pub fn new<'a>(
        routes: impl IntoIterator<Item = &'a str>,
        gateways: impl IntoIterator<Item = &'a str>,
    ) -> Metrics {
        let metrics = Metrics {
            received: Default::default(),
            inferred: Default::default(),
            unmatched_accepted: Counter::default(),
            unmatched_rejected: Counter::default(),
            rejected: Default::default(),
            no_route: Arc::new(RouteMetrics::new()),
            routes: RwLock::default(),
            gateways: RwLock::default(),
            reloads: Default::default(),
            active: Mutex::new((0, String::new())),
            auth_failures: RwLock::new(BTreeMap::from([(
                MAIN_ENDPOINT.to_string(),
                auth_counters(),
            )])),
            webhooks: RwLock::default(),
        };
        metrics.register(routes, gateways);
        metrics
    }

    /// This registry with the series of these webhooks.
    pub fn with_webhooks<'a>(self, names: impl IntoIterator<Item = &'a str>) -> Metrics {
        self.register_webhooks(names);
        self
    }

    /// Create the series of webhooks that have none yet (at start, or a reload added them).
    pub fn register_webhooks<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let mut hooks = self.webhooks.write().unwrap_or_else(|p| p.into_inner());
        let mut failures = self
            .auth_failures
            .write()
            .unwrap_or_else(|p| p.into_inner());
        for name in names {
            hooks.entry(name.to_owned()).or_default();
            failures
                .entry(webhook_endpoint(name))
                .or_insert_with(auth_counters);
        }
    }

    /// Count one request refused at `endpoint` by `method` (one of [`METHODS`]) for `reason`.
    pub fn auth_failure(&self, endpoint: &str, method: &str, reason: Reason) {
        let m = METHODS.iter().position(|x| *x == method);
        let r = Reason::ALL.iter().position(|x| *x == reason);
        let failures = self.auth_failures.read().unwrap_or_else(|p| p.into_inner());
        if let (Some(counters), Some(m), Some(r)) = (failures.get(endpoint), m, r)
            && let Some(c) = counters.get(m * Reason::ALL.len() + r)
        {
            c.inc();
        }
    }

    /// Count one request received by webhook `name`.
    pub fn webhook_received(&self, name: &str) {
        let hooks = self.webhooks.read().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = hooks.get(name) {
            c.inc();
        }
    }

    /// Create the series of routes and gateways that have none yet (a reload added them).
    pub fn register<'a>(
        &self,
        routes: impl IntoIterator<Item = &'a str>,
        gateways: impl IntoIterator<Item = &'a str>,
    ) {
        {
            let mut map = self.routes.write().unwrap_or_else(|p| p.into_inner());
            for r in routes {
                map.entry(r.to_owned())
                    .or_insert_with(|| Arc::new(RouteMetrics::new()));
            }
        }
        let mut map = self.gateways.write().unwrap_or_else(|p| p.into_inner());
        for g in gateways {
            map.entry(g.to_owned())
                .or_insert_with(|| Arc::new(GatewayMetrics::new()));
        }
    }

    /// Record which config is active: `generation` (1 for the config loaded at start) and the
    /// hash of its text.
    pub fn set_config(&self, generation: u64, hash: &str) {
        *self.active.lock().unwrap_or_else(|p| p.into_inner()) = (generation, hash.to_owned());
    }

    /// The active config's generation and hash.
    pub fn config(&self) -> (u64, String) {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Count one reload with `outcome` (one of [`RELOAD_OUTCOMES`]).
    pub fn reloaded(&self, outcome: &str) {
        if let Some(i) = RELOAD_OUTCOMES.iter().position(|o| *o == outcome) {
            self.reloads[i].inc();
        }
    }

    /// Count `n` events received in `mode` (one of [`MODES`]).
    pub fn received(&self, mode: &str, n: u64) {
        if let Some(i) = MODES.iter().position(|m| *m == mode) {
            self.received[i].add(n);
        }
    }

    /// Count one body read by inference: `declared` and `read_as` as in [`INFERRED`].
    pub fn inferred(&self, declared: &str, read_as: &str) {
        if let Some(i) = INFERRED.iter().position(|p| *p == (declared, read_as)) {
            self.inferred[i].inc();
        }
    }

    /// Count one error answer with `reason` (one of [`REASONS`]).
    pub fn rejected(&self, reason: &str) {
        if let Some(i) = REASONS.iter().position(|r| *r == reason) {
            self.rejected[i].inc();
        }
    }

    /// The series of `route`, or those of [`NO_ROUTE`] for an unknown name.
    pub fn route(&self, route: &str) -> Arc<RouteMetrics> {
        let map = self.routes.read().unwrap_or_else(|p| p.into_inner());
        map.get(route).unwrap_or(&self.no_route).clone()
    }

    /// The series of `gateway` (shared with its dispatcher).
    pub fn gateway(&self, gateway: &str) -> Option<Arc<GatewayMetrics>> {
        let map = self.gateways.read().unwrap_or_else(|p| p.into_inner());
        map.get(gateway).cloned()
    }

    /// The whole registry in the Prometheus text format, with the queue `gauges` read now and
    /// `cesql_errors` from the process-wide counter.
    pub fn render(&self, gauges: &[GatewayGauges], cesql_errors: u64) -> String {
        let mut out = String::with_capacity(8 << 10);
        let o = &mut out;
        let routes = self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let gateways = self
            .gateways
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();

        family(
            o,
            "flowbridge_events_received_total",
            "counter",
            "CloudEvents decoded from HTTP requests, by binding mode.",
        );
        for (mode, c) in MODES.iter().zip(&self.received) {
            sample(
                o,
                "flowbridge_events_received_total",
                &[("mode", mode)],
                c.get(),
            );
        }
        family(
            o,
            "flowbridge_events_data_inferred_total",
            "counter",
            "Binary-mode bodies read by looking at them: no content type (declared none: JSON, else text, else bytes) or a JSON content type over a body that is not JSON (declared json: text, else bytes).",
        );
        for ((declared, read_as), c) in INFERRED.iter().zip(&self.inferred) {
            sample(
                o,
                "flowbridge_events_data_inferred_total",
                &[("declared", declared), ("read_as", read_as)],
                c.get(),
            );
        }
        family(
            o,
            "flowbridge_events_matched_total",
            "counter",
            "Events that matched a route.",
        );
        for (route, m) in &routes {
            sample(
                o,
                "flowbridge_events_matched_total",
                &[("route", route)],
                m.matched.get(),
            );
        }
        family(
            o,
            "flowbridge_events_unmatched_total",
            "counter",
            "Events no route matched, by what `unmatched` did with them.",
        );
        sample(
            o,
            "flowbridge_events_unmatched_total",
            &[("action", "accept")],
            self.unmatched_accepted.get(),
        );
        sample(
            o,
            "flowbridge_events_unmatched_total",
            &[("action", "reject")],
            self.unmatched_rejected.get(),
        );
        family(
            o,
            "flowbridge_events_rejected_total",
            "counter",
            "Deliveries and events answered with an error status, by the error code of the body.",
        );
        for (reason, c) in REASONS.iter().zip(&self.rejected) {
            sample(
                o,
                "flowbridge_events_rejected_total",
                &[("reason", reason)],
                c.get(),
            );
        }
        family(
            o,
            "flowbridge_event_count_total",
            "counter",
            "Events (and unreadable deliveries, route _none) by route and the HTTP status of their outcome.",
        );
        let all_routes = || {
            routes
                .iter()
                .map(|(r, m)| (r.as_str(), m))
                .chain(std::iter::once((NO_ROUTE, &self.no_route)))
        };
        for (route, m) in all_routes() {
            for (code, c) in m.status.iter().enumerate() {
                let n = c.get();
                if n > 0 {
                    let code = code.to_string();
                    sample(
                        o,
                        "flowbridge_event_count_total",
                        &[("route", route), ("response_code", &code)],
                        n,
                    );
                }
            }
        }
        family(
            o,
            "flowbridge_event_dispatch_latencies_seconds",
            "histogram",
            "Time from routing an event to its answer (mapping, Flow request, reply), by route.",
        );
        for (route, m) in &routes {
            histogram(
                o,
                "flowbridge_event_dispatch_latencies_seconds",
                ("route", route),
                &m.latency,
            );
        }
        family(
            o,
            "flowbridge_replies_sent_total",
            "counter",
            "Reply events sent, by route and destination (HTTP response or reply.to sink).",
        );
        for (route, m) in &routes {
            for (dest, c) in DESTINATIONS.iter().zip(&m.replies) {
                sample(
                    o,
                    "flowbridge_replies_sent_total",
                    &[("route", route), ("destination", dest)],
                    c.get(),
                );
            }
        }
        family(
            o,
            "flowbridge_dedup_redeliveries_total",
            "counter",
            "Redeliveries answered from a route's dedup window without calling the Flow.",
        );
        for (route, m) in &routes {
            sample(
                o,
                "flowbridge_dedup_redeliveries_total",
                &[("route", route)],
                m.redeliveries.get(),
            );
        }
        family(
            o,
            "flowbridge_schema_mismatches_total",
            "counter",
            "Events answered 422 schema_mismatch: their data did not satisfy the route's schema.",
        );
        for (route, m) in &routes {
            sample(
                o,
                "flowbridge_schema_mismatches_total",
                &[("route", route)],
                m.schema_mismatches.get(),
            );
        }
        family(
            o,
            "flowbridge_flow_requests_total",
            "counter",
            "Flow DataRequests answered, by gateway and outcome.",
        );
        for (gw, m) in &gateways {
            for (outcome, c) in OUTCOMES.iter().zip(&m.requests) {
                sample(
                    o,
                    "flowbridge_flow_requests_total",
                    &[("gateway", gw), ("outcome", outcome)],
                    c.get(),
                );
            }
        }
        family(
            o,
            "flowbridge_flow_request_duration_seconds",
            "histogram",
            "Duration of answered Flow requests, by gateway.",
        );
        for (gw, m) in &gateways {
            histogram(
                o,
                "flowbridge_flow_request_duration_seconds",
                ("gateway", gw),
                &m.latency,
            );
        }
        family(
            o,
            "flowbridge_flow_request_docs",
            "histogram",
            "Documents per Flow request sent, by gateway.",
        );
        for (gw, m) in &gateways {
            histogram(o, "flowbridge_flow_request_docs", ("gateway", gw), &m.docs);
        }
        family(
            o,
            "flowbridge_flow_request_events",
            "histogram",
            "Events per Flow request sent (micro-batching), by gateway.",
        );
        for (gw, m) in &gateways {
            histogram(
                o,
                "flowbridge_flow_request_events",
                ("gateway", gw),
                &m.events,
            );
        }
        family(
            o,
            "flowbridge_flow_retries_total",
            "counter",
            "Flow requests the gateway did not accept (cold start, connect error); their events were queued again.",
        );
        for (gw, m) in &gateways {
            sample(
                o,
                "flowbridge_flow_retries_total",
                &[("gateway", gw)],
                m.retries.get(),
            );
        }
        family(
            o,
            "flowbridge_flow_cold_start_probes_total",
            "counter",
            "Flow requests sent as the single probe of a gateway that was not accepting.",
        );
        for (gw, m) in &gateways {
            sample(
                o,
                "flowbridge_flow_cold_start_probes_total",
                &[("gateway", gw)],
                m.probes.get(),
            );
        }
        let gauge_family = |o: &mut String,
                            name: &str,
                            kind: &str,
                            help: &str,
                            f: &dyn Fn(&GatewayGauges) -> u64| {
            family(o, name, kind, help);
            for g in gauges {
                sample(o, name, &[("gateway", &g.gateway)], f(g));
            }
        };
        gauge_family(
            o,
            "flowbridge_flow_in_flight_requests",
            "gauge",
            "Flow requests in flight now.",
            &|g| g.in_flight,
        );
        gauge_family(
            o,
            "flowbridge_gateway_concurrency_limit",
            "gauge",
            "Most Flow requests the gateway may have in flight now (fixed, or adapted to the Flow's latency).",
            &|g| g.limit.as_ref().map_or(0, |l| l.limit as u64),
        );
        family(
            o,
            "flowbridge_gateway_concurrency_limit_changes_total",
            "counter",
            "Changes of the adaptive concurrency limit, by the reason of the change.",
        );
        for (gw, m) in &gateways {
            for (reason, c) in LIMIT_REASONS.iter().zip(&m.limit_changes) {
                sample(
                    o,
                    "flowbridge_gateway_concurrency_limit_changes_total",
                    &[("gateway", gw), ("reason", reason)],
                    c.get(),
                );
            }
        }
        family(
            o,
            "flowbridge_gateway_concurrency_limit_reason",
            "gauge",
            "1 for the reason of the concurrency limit's last change (start: configured, or not changed yet).",
        );
        for g in gauges {
            if let Some(l) = &g.limit {
                sample(
                    o,
                    "flowbridge_gateway_concurrency_limit_reason",
                    &[("gateway", &g.gateway), ("reason", l.reason)],
                    1,
                );
            }
        }
        family(
            o,
            "flowbridge_gateway_latency_ratio",
            "gauge",
            "Smoothed Flow request latency divided by the no-load latency of requests of the same size (1: no queueing in the Flow).",
        );
        for g in gauges {
            if let Some(ratio) = g.limit.as_ref().and_then(|l| l.ratio) {
                sample(
                    o,
                    "flowbridge_gateway_latency_ratio",
                    &[("gateway", &g.gateway)],
                    ratio,
                );
            }
        }
        family(
            o,
            "flowbridge_gateway_no_load_latency_seconds",
            "gauge",
            "The Flow's latency without queueing, by request size class (docs: the class's smallest document count, a power of two).",
        );
        for g in gauges {
            for (docs, seconds) in g.limit.iter().flat_map(|l| &l.no_load) {
                let docs = docs.to_string();
                sample(
                    o,
                    "flowbridge_gateway_no_load_latency_seconds",
                    &[("gateway", &g.gateway), ("docs", &docs)],
                    *seconds,
                );
            }
        }
        family(
            o,
            "flowbridge_gateway_batch_docs",
            "gauge",
            "Smoothed documents per Flow request.",
        );
        for g in gauges {
            if let Some(docs) = g.limit.as_ref().and_then(|l| l.docs) {
                sample(
                    o,
                    "flowbridge_gateway_batch_docs",
                    &[("gateway", &g.gateway)],
                    docs,
                );
            }
        }
        gauge_family(
            o,
            "flowbridge_pending_events",
            "gauge",
            "Events waiting in the gateway's queue now.",
            &|g| g.pending,
        );
        gauge_family(
            o,
            "flowbridge_gateway_cold",
            "gauge",
            "1 while the gateway is not accepting requests (events wait for a probe to succeed).",
            &|g| u64::from(g.cold),
        );
        gauge_family(
            o,
            "flowbridge_events_overloaded_total",
            "counter",
            "Events refused with 429 because max_pending events already waited.",
            &|g| g.overloaded,
        );
        family(
            o,
            "flowbridge_auth_failures_total",
            "counter",
            "Requests refused by auth, by endpoint, method and reason (a series appears at its first failure).",
        );
        let failures = self.auth_failures.read().unwrap_or_else(|p| p.into_inner());
        for (endpoint, counters) in failures.iter() {
            for (i, c) in counters.iter().enumerate() {
                let n = c.get();
                let method = METHODS.get(i / Reason::ALL.len());
                let reason = Reason::ALL.get(i % Reason::ALL.len());
                if let (true, Some(method), Some(reason)) = (n > 0, method, reason) {
                    sample(
                        o,
                        "flowbridge_auth_failures_total",
                        &[
                            ("endpoint", endpoint),
                            ("method", method),
                            ("reason", reason.as_str()),
                        ],
                        n,
                    );
                }
            }
        }
        family(
            o,
            "flowbridge_webhook_requests_total",
            "counter",
            "Requests received on POST /webhooks/<name> (before auth), by webhook.",
        );
        let hooks = self.webhooks.read().unwrap_or_else(|p| p.into_inner());
        for (name, c) in hooks.iter() {
            sample(
                o,
                "flowbridge_webhook_requests_total",
                &[("webhook", name)],
                c.get(),
            );
        }
        family(
            o,
            "flowbridge_cesql_evaluation_errors_total",
            "counter",
            "cesql filter evaluations that failed with an error (the event was treated as not matching).",
        );
        sample(
            o,
            "flowbridge_cesql_evaluation_errors_total",
            &[],
            cesql_errors,
        );
        let (generation, hash) = self.config();
        family(
            o,
            "flowbridge_config_generation",
            "gauge",
            "Generation of the active config: 1 at start, +1 for every reload applied.",
        );
        sample(o, "flowbridge_config_generation", &[], generation);
        family(
            o,
            "flowbridge_config_info",
            "gauge",
            "Always 1; labels: the active config's generation and the SHA-256 of its text (first 16 hex digits).",
        );
        let generation = generation.to_string();
        sample(
            o,
            "flowbridge_config_info",
            &[("generation", &generation), ("hash", &hash)],
            1,
        );
        family(
            o,
            "flowbridge_config_reloads_total",
            "counter",
            "Config reloads (SIGHUP or a changed file), by outcome; a failed one keeps the active config.",
        );
        for (outcome, c) in RELOAD_OUTCOMES.iter().zip(&self.reloads) {
            sample(
                o,
                "flowbridge_config_reloads_total",
                &[("outcome", outcome)],
                c.get(),
            );
        }
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn labels(out: &mut String, labels: &[(&str, &str)]) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

fn sample(out: &mut String, name: &str, l: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    labels(out, l);
    let _ = writeln!(out, " {value}");
}

fn histogram(out: &mut String, name: &str, label: (&str, &str), h: &Histogram) {
    let mut cumulative = 0;
    for (bound, bucket) in h.bounds.iter().zip(&h.buckets) {
        cumulative += bucket.load(Ordering::Relaxed);
        let le = bound.to_string();
        sample(
            out,
            &format!("{name}_bucket"),
            &[label, ("le", &le)],
            cumulative,
        );
    }
    let count = h.count();
    sample(
        out,
        &format!("{name}_bucket"),
        &[label, ("le", "+Inf")],
        count,
    );
    out.push_str(name);
    out.push_str("_sum");
    labels(out, &[label]);
    let _ = writeln!(out, " {}", h.sum());
    sample(out, &format!("{name}_count"), &[label], count);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_owned))
    }

    #[test]
    fn counters_render_with_labels_and_types() {
        let m = Metrics::new(["orders"], ["default"]);
        m.received("binary", 2);
        m.received("batched", 3);
        m.rejected("invalid_event");
        m.route("orders").matched.inc();
        m.route("orders").answered(202);
        m.route("orders").answered(202);
        m.route("nonexistent").answered(413);
        m.route("orders").reply_sent(false);
        let text = m.render(
            &[GatewayGauges {
                limit: None,
                gateway: "default".into(),
                pending: 4,
                in_flight: 1,
                cold: true,
                overloaded: 7,
            }],
            9,
        );
        let v = |s: &str| value(&text, s);
        assert_eq!(
            v("flowbridge_events_received_total{mode=\"binary\"}").as_deref(),
            Some("2")
        );
        assert_eq!(
            v("flowbridge_events_received_total{mode=\"batched\"}").as_deref(),
            Some("3")
        );
        assert_eq!(
            v("flowbridge_events_received_total{mode=\"structured\"}").as_deref(),
            Some("0")
        );
        assert_eq!(
            v("flowbridge_events_rejected_total{reason=\"invalid_event\"}").as_deref(),
            Some("1")
        );
        assert_eq!(
            v("flowbridge_event_count_total{route=\"orders\",response_code=\"202\"}").as_deref(),
            Some("2")
        );
        assert_eq!(
            v("flowbridge_event_count_total{route=\"_none\",response_code=\"413\"}").as_deref(),
            Some("1")
        );
        assert_eq!(
            v("flowbridge_replies_sent_total{route=\"orders\",destination=\"sink\"}").as_deref(),
            Some("1")
        );
        assert_eq!(
            v("flowbridge_pending_events{gateway=\"default\"}").as_deref(),
            Some("4")
        );
        assert_eq!(
            v("flowbridge_gateway_cold{gateway=\"default\"}").as_deref(),
            Some("1")
        );
        assert_eq!(
            v("flowbridge_events_overloaded_total{gateway=\"default\"}").as_deref(),
            Some("7")
        );
        assert_eq!(
            v("flowbridge_cesql_evaluation_errors_total").as_deref(),
            Some("9")
        );
        assert!(text.contains("# TYPE flowbridge_event_count_total counter\n"));
        assert!(text.contains("# TYPE flowbridge_flow_request_duration_seconds histogram\n"));
        // Every sample line is `name{labels} value` or `name value`; every family has a TYPE.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap_or_default();
            assert!(value.parse::<f64>().is_ok(), "bad value in {line:?}");
            let name = series.split('{').next().unwrap_or_default();
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {name} "))
                    || text.contains(&format!("# TYPE {base} histogram")),
                "no TYPE for {line:?}"
            );
        }
    }

    #[test]
    fn histogram_buckets_are_cumulative_with_sum_and_count() {
        let m = Metrics::new(["r"], ["g"]);
        let g = m.gateway("g").unwrap_or_default();
        g.request_done("ok", 0.00390625);
        g.request_done("ok", 0.25);
        g.request_done("timeout", 100.0);
        let text = m.render(&[], 0);
        let v = |s: &str| value(&text, s);
        let b = |le: &str| {
            v(&format!(
                "flowbridge_flow_request_duration_seconds_bucket{{gateway=\"g\",le=\"{le}\"}}"
            ))
        };
        assert_eq!(b("0.005").as_deref(), Some("1"));
        assert_eq!(b("0.1").as_deref(), Some("1"));
        assert_eq!(b("0.5").as_deref(), Some("2"));
        assert_eq!(b("0.25").as_deref(), Some("2"));
        assert_eq!(b("60").as_deref(), Some("2"));
        assert_eq!(b("+Inf").as_deref(), Some("3"));
        assert_eq!(
            v("flowbridge_flow_request_duration_seconds_count{gateway=\"g\"}").as_deref(),
            Some("3")
        );
        assert_eq!(
            v("flowbridge_flow_request_duration_seconds_sum{gateway=\"g\"}").as_deref(),
            Some("100.25390625")
        );
        assert_eq!(
            v("flowbridge_flow_requests_total{gateway=\"g\",outcome=\"ok\"}").as_deref(),
            Some("2")
        );
        assert_eq!(
            v("flowbridge_flow_requests_total{gateway=\"g\",outcome=\"timeout\"}").as_deref(),
            Some("1")
        );
    }

    #[test]
    fn auth_failures_and_webhooks() {
        let m = Metrics::new(["r"], ["g"]).with_webhooks(["github"]);
        m.auth_failure("/", "oidc", Reason::Expired);
        m.auth_failure("/", "oidc", Reason::Expired);
        m.auth_failure("/webhooks/github", "hmac", Reason::BadSignature);
        m.auth_failure("/webhooks/unknown", "hmac", Reason::BadSignature);
        m.webhook_received("github");
        let text = m.render(&[], 0);
        let v = |s: &str| value(&text, s);
        assert_eq!(
            v("flowbridge_auth_failures_total{endpoint=\"/\",method=\"oidc\",reason=\"expired\"}")
                .as_deref(),
            Some("2")
        );
        assert_eq!(
            v("flowbridge_auth_failures_total{endpoint=\"/webhooks/github\",method=\"hmac\",reason=\"bad_signature\"}")
                .as_deref(),
            Some("1")
        );
        assert_eq!(
            text.matches("flowbridge_auth_failures_total{").count(),
            2,
            "only series that counted something"
        );
        assert_eq!(
            v("flowbridge_webhook_requests_total{webhook=\"github\"}").as_deref(),
            Some("1")
        );
    }

    #[test]
    fn config_generation_and_reloads_render() {
        let m = Metrics::new(["r"], []);
        m.set_config(3, "0123456789abcdef");
        m.reloaded("success");
        m.reloaded("failure");
        m.reloaded("failure");
        m.register(["added"], ["g2"]);
        m.route("added").answered(202);
        let text = m.render(&[], 0);
        let v = |s: &str| value(&text, s);
        assert_eq!(v("flowbridge_config_generation").as_deref(), Some("3"));
        assert_eq!(
            v("flowbridge_config_info{generation=\"3\",hash=\"0123456789abcdef\"}").as_deref(),
            Some("1")
        );
        assert_eq!(
            v("flowbridge_config_reloads_total{outcome=\"success\"}").as_deref(),
            Some("1")
        );
        assert_eq!(
            v("flowbridge_config_reloads_total{outcome=\"failure\"}").as_deref(),
            Some("2")
        );
        assert_eq!(
            v("flowbridge_event_count_total{route=\"added\",response_code=\"202\"}").as_deref(),
            Some("1")
        );
        assert_eq!(
            v("flowbridge_flow_retries_total{gateway=\"g2\"}").as_deref(),
            Some("0")
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        sample(&mut out, "x", &[("a", "q\"b\\n\nz")], 1);
        assert_eq!(out, "x{a=\"q\\\"b\\\\n\\nz\"} 1\n");
    }
}
