//! Prometheus metrics: [`Metrics`], every counter, gauge and histogram flowbridge exports, in a
//! prometheus-client `Registry`, served on `GET /metrics` of the admin listener in the format
//! the scraper asks for ([`Format`]): OpenMetrics 1.0 text (the client's `text` encoder) or the
//! Prometheus text format 0.0.4 (its `prometheus_text` encoder).
//!
//! Used as linkerd2-proxy uses prometheus-client: the registry is built once, at startup
//! ([`Metrics::new`]), each part registering its families in it (`RouteFamilies::register`,
//! `GatewayFamilies::register`, `Endpoints::register`). The label sets are known when a config
//! loads (routes, gateways and webhooks come from the config; modes, outcomes and reasons are
//! closed sets), so every series is created then and its handle kept: a route's or gateway's
//! series sit in one struct ([`RouteMetrics`], [`GatewayMetrics`]) reached by one map lookup
//! on its name under an uncontended read lock, and counting is an atomic add — no label
//! lookup, no allocation on the event path. Series that appear at their first count (status
//! codes, auth failures) resolve their handle once, then count the same way. A reload
//! registers the series of new routes, gateways and webhooks ([`Metrics::register`],
//! [`Metrics::register_webhooks`]); those of removed ones stay (their counters keep their
//! totals). The config generation, the reload outcomes and the active config's hash are here
//! too. Labels never carry event ids.
//!
//! Histograms are ours (`series::Histogram`, on atomics) encoded as prometheus-client
//! histograms: its own `Histogram` takes a mutex per observation, on the event path of every
//! worker thread. Gauges that describe queue state (pending events, in-flight requests, cold
//! gateways, the concurrency limit) are read from the dispatchers at scrape time by a
//! `Collector` ([`GatewayGauges`]), so they cost nothing per event.
//!
//! Knows no HTTP server, no config and no ingress: names and reason codes are handed in.
//!
//! * `format`: which format a scrape gets ([`Format::negotiate`] on its `Accept` header).
//! * `series`: the metric types ([`Counter`], [`Histogram`]) and label values.
//! * `route`: the series of routes ([`RouteMetrics`]).
//! * `gateway`: the series of gateways updated by their dispatchers ([`GatewayMetrics`]).
//! * `endpoint`: auth failures by endpoint and requests by webhook.
//! * `server`: the events listener's series ([`ServerMetrics`]: connections, limits, tasks).
//! * `collector`: the scrape-time gauges ([`GatewayGauges`], [`LimitGauges`]).

mod collector;
mod endpoint;
mod format;
mod gateway;
mod route;
mod series;
mod server;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use prometheus_client::encoding::{EncodeLabelSet, prometheus_text, text};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use collector::{GatewayGauges, LimitGauges, StateGauges};
pub use format::Format;
pub use gateway::GatewayMetrics;
pub use route::RouteMetrics;
pub use series::{Counter, Histogram};
pub use server::{Limit, ServerMetrics};

use crate::auth::Reason;
use endpoint::Endpoints;
use gateway::GatewayFamilies;
use route::RouteFamilies;
use series::Label;

/// The `route` label of events answered before a route was chosen (rejected bodies, unmatched
/// events). Route names cannot start with `_`, so it never collides with a real route.
pub const NO_ROUTE: &str = "_none";

/// Receiving modes of the CloudEvents HTTP binding (`mode` label).
pub const MODES: [&str; 3] = ["binary", "structured", "batched"];

/// Bodies read by looking at them (`declared`, `read_as` labels): no content type, or a JSON
/// content type over a body that is not JSON (the HTTP binding's `Inferred`).
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

/// Why a gateway was cold (`cause` label of `flowbridge_gateway_cold_duration_seconds`): it refused
/// requests (not reachable, 503), or an `autoscale` Flow woke from quiet.
pub const COLD_CAUSES: [&str; 2] = ["unavailable", "waking"];

/// Where a reply event went (`destination` label).
pub const DESTINATIONS: [&str; 2] = ["response", "sink"];

/// Outcomes of a config reload (`outcome` label of `flowbridge_config_reloads_total`).
pub const RELOAD_OUTCOMES: [&str; 2] = ["success", "failure"];

/// The `endpoint` label of `POST /`.
pub const MAIN_ENDPOINT: &str = "/";

/// The `endpoint` label of a webhook.
pub fn webhook_endpoint(name: &str) -> String {
    format!("/webhooks/{name}")
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ModeLabels {
    mode: Label,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct InferredLabels {
    declared: Label,
    read_as: Label,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ActionLabels {
    action: Label,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: Label,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: Label,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ConfigLabels {
    generation: u64,
    hash: Label,
}

/// Register a family of counters (`name` without `_total`, which the encoder adds; `help`
/// without its final full stop, which the registry adds).
fn counters<L>(registry: &mut Registry, name: &str, help: &str) -> Family<L, Counter>
where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
{
    let family = Family::default();
    registry.register(name, help, family.clone());
    family
}

/// The registry: every series flowbridge exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    received: [Counter; MODES.len()],
    /// Bodies whose reading was inferred, indexed like [`INFERRED`].
    inferred: [Counter; INFERRED.len()],
    pub unmatched_accepted: Counter,
    pub unmatched_rejected: Counter,
    /// The series of the reasons given to [`Metrics::with_reasons`], created at 0.
    rejected: Vec<(&'static str, Counter)>,
    /// Every reason's series, also those of a reason not given at start (created at its first
    /// count: an error code is never left uncounted).
    rejected_family: Family<ReasonLabels, Counter>,
    route_families: RouteFamilies,
    /// Deliveries answered before any event was read (bad body), by status code.
    no_route: Arc<RouteMetrics>,
    routes: RwLock<BTreeMap<String, Arc<RouteMetrics>>>,
    gateway_families: GatewayFamilies,
    gateways: RwLock<BTreeMap<String, Arc<GatewayMetrics>>>,
    endpoints: Endpoints,
    /// Config reloads, indexed like [`RELOAD_OUTCOMES`].
    pub reloads: [Counter; RELOAD_OUTCOMES.len()],
    /// The active config: its generation (1 at start) and hash; the lock also keeps the two
    /// gauges below in step.
    active: Mutex<(u64, String)>,
    generation: Gauge,
    info: Family<ConfigLabels, Gauge>,
    /// The events listener: connections and server limits.
    pub server: ServerMetrics,
}

impl Metrics {
    /// A registry with the series of these routes and gateways.
    pub fn new<'a>(
        routes: impl IntoIterator<Item = &'a str>,
        gateways: impl IntoIterator<Item = &'a str>,
    ) -> Metrics {
        let mut registry = Registry::default();
        let r = &mut registry;
        let received = counters(
            r,
            "flowbridge_events_received",
            "CloudEvents decoded from HTTP requests, by binding mode",
        );
        let inferred = counters(
            r,
            "flowbridge_events_data_inferred",
            "Binary-mode bodies read by looking at them: no content type (declared none: JSON, else text, else bytes) or a JSON content type over a body that is not JSON (declared json: text, else bytes)",
        );
        let unmatched = counters(
            r,
            "flowbridge_events_unmatched",
            "Events no route matched, by what `unmatched` did with them",
        );
        let rejected_family = counters(
            r,
            "flowbridge_events_rejected",
            "Deliveries and events answered with an error status, by the error code of the body",
        );
        let route_families = RouteFamilies::register(r);
        let gateway_families = GatewayFamilies::register(r);
        let endpoints = Endpoints::register(r);
        let generation = Gauge::default();
        r.register(
            "flowbridge_config_generation",
            "Generation of the active config: 1 at start, +1 for every reload applied",
            generation.clone(),
        );
        let info = Family::default();
        r.register(
            "flowbridge_config_info",
            "Always 1; labels: the active config's generation and the SHA-256 of its text (first 16 hex digits)",
            info.clone(),
        );
        let reloads = counters(
            r,
            "flowbridge_config_reloads",
            "Config reloads (SIGHUP or a changed file), by outcome; a failed one keeps the active config",
        );
        let server = ServerMetrics::register(r);
        let metrics = Metrics {
            server,
            received: MODES
                .map(|mode| received.get_or_create_owned(&ModeLabels { mode: mode.into() })),
            inferred: INFERRED.map(|(declared, read_as)| {
                inferred.get_or_create_owned(&InferredLabels {
                    declared: declared.into(),
                    read_as: read_as.into(),
                })
            }),
            unmatched_accepted: unmatched.get_or_create_owned(&ActionLabels {
                action: "accept".into(),
            }),
            unmatched_rejected: unmatched.get_or_create_owned(&ActionLabels {
                action: "reject".into(),
            }),
            rejected: Vec::new(),
            rejected_family,
            no_route: Arc::new(route_families.unrouted()),
            route_families,
            routes: RwLock::default(),
            gateway_families,
            gateways: RwLock::default(),
            endpoints,
            reloads: RELOAD_OUTCOMES.map(|outcome| {
                reloads.get_or_create_owned(&OutcomeLabels {
                    outcome: outcome.into(),
                })
            }),
            active: Mutex::new((0, String::new())),
            generation,
            info,
            registry,
        };
        metrics.set_config(0, "");
        metrics.register(routes, gateways);
        metrics
    }

    /// This registry with the series of these error codes (the `reason` label of
    /// `flowbridge_events_rejected_total`) created at 0: every code the ingress answers with,
    /// which telemetry cannot name itself (ingress is a higher layer). A code not given here
    /// is still counted, in a series created at its first count.
    pub fn with_reasons(mut self, codes: impl IntoIterator<Item = &'static str>) -> Metrics {
        for code in codes {
            if !self.rejected.iter().any(|(c, _)| *c == code) {
                let counter = self.rejected_family.get_or_create_owned(&ReasonLabels {
                    reason: code.into(),
                });
                self.rejected.push((code, counter));
            }
        }
        self
    }

    /// This registry with the series of these webhooks.
    pub fn with_webhooks<'a>(self, names: impl IntoIterator<Item = &'a str>) -> Metrics {
        self.register_webhooks(names);
        self
    }

    /// Create the series of webhooks that have none yet (at start, or a reload added them).
    pub fn register_webhooks<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        self.endpoints.add_webhooks(names);
    }

    /// Count one request refused at `endpoint` by `method` (one of [`crate::auth::METHODS`])
    /// for `reason`.
    pub fn auth_failure(&self, endpoint: &str, method: &str, reason: Reason) {
        self.endpoints.failure(endpoint, method, reason);
    }

    /// Count one request received by webhook `name`.
    pub fn webhook_received(&self, name: &str) {
        self.endpoints.received(name);
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
                if !map.contains_key(r) {
                    map.insert(r.to_owned(), Arc::new(self.route_families.handles(r)));
                }
            }
        }
        let mut map = self.gateways.write().unwrap_or_else(|p| p.into_inner());
        for g in gateways {
            if !map.contains_key(g) {
                map.insert(g.to_owned(), Arc::new(self.gateway_families.handles(g)));
            }
        }
    }

    /// Record which config is active: `generation` (1 for the config loaded at start) and the
    /// hash of its text.
    pub fn set_config(&self, generation: u64, hash: &str) {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        *active = (generation, hash.to_owned());
        self.generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
        self.info.clear();
        self.info
            .get_or_create(&ConfigLabels {
                generation,
                hash: Label::from(hash.to_owned()),
            })
            .set(1);
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

    /// Count one error answer with `reason`, the error body's code.
    pub fn rejected(&self, reason: &str) {
        match self.rejected.iter().find(|(r, _)| *r == reason) {
            Some((_, counter)) => counter.inc(),
            None => self
                .rejected_family
                .get_or_create(&ReasonLabels {
                    reason: Label::from(reason.to_owned()),
                })
                .inc(),
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

    /// The whole registry in the Prometheus text format 0.0.4, with the queue gauges read
    /// from the dispatchers now.
    pub fn render(&self, gauges: &[GatewayGauges], cesql_errors: u64) -> String {
        self.render_with_state(gauges, cesql_errors, None, Format::Prometheus)
    }

    /// [`Metrics::render`] in `format`, with the shared state's series (`flowbridge_state_up`,
    /// `flowbridge_state_errors_total{feature}`) when `state:` is configured.
    pub fn render_with_state(
        &self,
        gauges: &[GatewayGauges],
        cesql_errors: u64,
        state: Option<StateGauges>,
        format: Format,
    ) -> String {
        self.server.read_tasks();
        let mut out = String::with_capacity(16 << 10);
        let mut scrape = Registry::default();
        scrape.register_collector(Box::new(collector::Scrape {
            gauges: gauges.to_vec(),
            cesql_errors,
            state,
        }));
        // Writing to a String does not fail, nor does encoding these values.
        let encoded = match format {
            Format::Prometheus => prometheus_text::encode(&mut out, &self.registry)
                .and_then(|()| prometheus_text::encode(&mut out, &scrape)),
            Format::OpenMetrics => text::encode_registry(&mut out, &self.registry)
                .and_then(|()| text::encode(&mut out, &scrape)),
        };
        if let Err(e) = encoded {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests;
