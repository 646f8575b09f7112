//! The series of gateways that their dispatchers update: their families in the registry
//! ([`GatewayFamilies`]) and the handles of one gateway ([`GatewayMetrics`]), resolved once when
//! the gateway is registered. What a dispatcher's queue holds now is read at scrape time
//! instead (`collector.rs`).
//!
//! Knows gateway names only as labels: nothing of the dispatcher or the Flow client.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Registry, Unit};

use super::series::{Counter, Histogram, Label};
use super::{COLD_CAUSES, LIMIT_REASONS, OUTCOMES};

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GatewayLabels {
    gateway: Label,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    gateway: Label,
    outcome: Label,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CauseLabels {
    gateway: Label,
    cause: Label,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    gateway: Label,
    reason: Label,
}

/// The gateway families, registered once; their series are created per gateway by
/// [`GatewayFamilies::handles`].
#[derive(Debug, Clone)]
pub(super) struct GatewayFamilies {
    requests: Family<OutcomeLabels, Counter>,
    latency: Family<GatewayLabels, Histogram, fn() -> Histogram>,
    docs: Family<GatewayLabels, Histogram, fn() -> Histogram>,
    events: Family<GatewayLabels, Histogram, fn() -> Histogram>,
    retries: Family<GatewayLabels, Counter>,
    probes: Family<GatewayLabels, Counter>,
    limit_changes: Family<ReasonLabels, Counter>,
    queue_wait: Family<GatewayLabels, Histogram, fn() -> Histogram>,
    cold: Family<CauseLabels, Histogram, fn() -> Histogram>,
}

impl GatewayFamilies {
    /// Register the gateway families in `registry`.
    pub(super) fn register(registry: &mut Registry) -> GatewayFamilies {
        let families = GatewayFamilies {
            requests: Family::default(),
            latency: Family::new_with_constructor(Histogram::latency),
            docs: Family::new_with_constructor(Histogram::sizes),
            events: Family::new_with_constructor(Histogram::sizes),
            retries: Family::default(),
            probes: Family::default(),
            limit_changes: Family::default(),
            queue_wait: Family::new_with_constructor(Histogram::waits),
            cold: Family::new_with_constructor(Histogram::cold),
        };
        registry.register(
            "flowbridge_flow_requests",
            "Flow DataRequests answered, by gateway and outcome",
            families.requests.clone(),
        );
        registry.register_with_unit(
            "flowbridge_flow_request_duration",
            "Duration of answered Flow requests, by gateway",
            Unit::Seconds,
            families.latency.clone(),
        );
        registry.register(
            "flowbridge_flow_request_docs",
            "Documents per Flow request sent, by gateway",
            families.docs.clone(),
        );
        registry.register(
            "flowbridge_flow_request_events",
            "Events per Flow request sent (micro-batching), by gateway",
            families.events.clone(),
        );
        registry.register(
            "flowbridge_flow_retries",
            "Flow requests the gateway did not accept (cold start, connect error); their events were queued again",
            families.retries.clone(),
        );
        registry.register(
            "flowbridge_flow_cold_start_probes",
            "Flow requests sent as the single probe of a gateway that was not accepting",
            families.probes.clone(),
        );
        registry.register(
            "flowbridge_gateway_concurrency_limit_changes",
            "Changes of the adaptive concurrency limit, by the reason of the change",
            families.limit_changes.clone(),
        );
        registry.register_with_unit(
            "flowbridge_queue_wait",
            "Time events waited in their gateway's queue until they left it: the Flow request that answered them was sent, or they expired (connect_timeout), were refused for the shared rate budget, or their sender left; by gateway",
            Unit::Seconds,
            families.queue_wait.clone(),
        );
        registry.register_with_unit(
            "flowbridge_gateway_cold_duration",
            "Time a gateway stayed cold: from the first request it refused to the first it answered (cause=unavailable), or the first request answered after an autoscale gateway was quiet or flowbridge started (cause=waking)",
            Unit::Seconds,
            families.cold.clone(),
        );
        families
    }

    /// The series of `gateway`, created at 0.
    pub(super) fn handles(&self, gateway: &str) -> GatewayMetrics {
        let name = Label::from(gateway.to_owned());
        let labels = GatewayLabels {
            gateway: name.clone(),
        };
        GatewayMetrics {
            requests: OUTCOMES.map(|outcome| {
                self.requests.get_or_create_owned(&OutcomeLabels {
                    gateway: name.clone(),
                    outcome: outcome.into(),
                })
            }),
            latency: self.latency.get_or_create_owned(&labels),
            docs: self.docs.get_or_create_owned(&labels),
            events: self.events.get_or_create_owned(&labels),
            retries: self.retries.get_or_create_owned(&labels),
            probes: self.probes.get_or_create_owned(&labels),
            limit_changes: LIMIT_REASONS.map(|reason| {
                self.limit_changes.get_or_create_owned(&ReasonLabels {
                    gateway: name.clone(),
                    reason: reason.into(),
                })
            }),
            queue_wait: self.queue_wait.get_or_create_owned(&labels),
            cold: COLD_CAUSES.map(|cause| {
                self.cold.get_or_create_owned(&CauseLabels {
                    gateway: name.clone(),
                    cause: cause.into(),
                })
            }),
        }
    }
}

/// Series of one gateway, updated by its dispatcher.
#[derive(Debug)]
pub struct GatewayMetrics {
    /// Flow requests by outcome, indexed like [`OUTCOMES`].
    pub requests: [Counter; OUTCOMES.len()],
    pub latency: Histogram,
    pub docs: Histogram,
    pub events: Histogram,
    /// Requests the gateway did not accept; their events went back to the queue.
    pub retries: Counter,
    /// Requests sent as the single probe of a cold gateway.
    pub probes: Counter,
    /// Changes of the adaptive concurrency limit, indexed like [`LIMIT_REASONS`].
    pub limit_changes: [Counter; LIMIT_REASONS.len()],
    /// Seconds from an event entering the queue to leaving it (the send of the request that
    /// answered it, its expiry, a refusal for the shared budget, its sender gone).
    pub queue_wait: Histogram,
    /// Seconds cold, indexed like [`COLD_CAUSES`].
    pub cold: [Histogram; COLD_CAUSES.len()],
}

impl GatewayMetrics {
    /// Series in no registry (a dispatcher built without [`super::Metrics`], as in tests).
    pub fn new() -> GatewayMetrics {
        GatewayMetrics {
            requests: Default::default(),
            latency: Histogram::latency(),
            docs: Histogram::sizes(),
            events: Histogram::sizes(),
            retries: Counter::default(),
            probes: Counter::default(),
            limit_changes: Default::default(),
            queue_wait: Histogram::waits(),
            cold: COLD_CAUSES.map(|_| Histogram::cold()),
        }
    }

    /// One cold spell of `seconds` ended (`cause` one of [`COLD_CAUSES`]).
    pub fn cold_ended(&self, cause: &str, seconds: f64) {
        if let Some(i) = COLD_CAUSES.iter().position(|c| *c == cause) {
            self.cold[i].observe(seconds);
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
