//! The series of routes: their families in the registry ([`RouteFamilies`]) and the handles of
//! one route ([`RouteMetrics`]), resolved once when the route is registered so that counting an
//! event does no label lookup.
//!
//! Knows route names only as labels: nothing of the config or of the event path.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Registry, Unit};

use super::series::{Counter, Histogram, Label, LazyCounters};
use super::{DESTINATIONS, NO_ROUTE};

/// Status codes counted per route (`response_code` label): 0–599.
const STATUS_SLOTS: usize = 600;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: Label,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct StatusLabels {
    route: Label,
    response_code: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReplyLabels {
    route: Label,
    destination: Label,
}

/// The route families, registered once; their series are created per route by
/// [`RouteFamilies::handles`].
#[derive(Debug, Clone)]
pub(super) struct RouteFamilies {
    matched: Family<RouteLabels, Counter>,
    status: Family<StatusLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    replies: Family<ReplyLabels, Counter>,
    redeliveries: Family<RouteLabels, Counter>,
    schema_mismatches: Family<RouteLabels, Counter>,
}

impl RouteFamilies {
    /// Register the route families in `registry`.
    pub(super) fn register(registry: &mut Registry) -> RouteFamilies {
        let families = RouteFamilies {
            matched: Family::default(),
            status: Family::default(),
            latency: Family::new_with_constructor(Histogram::latency),
            replies: Family::default(),
            redeliveries: Family::default(),
            schema_mismatches: Family::default(),
        };
        registry.register(
            "flowbridge_events_matched",
            "Events that matched a route",
            families.matched.clone(),
        );
        registry.register(
            "flowbridge_event_count",
            "Events (and unreadable deliveries, route _none) by route and the HTTP status of their outcome",
            families.status.clone(),
        );
        registry.register_with_unit(
            "flowbridge_event_dispatch_latencies",
            "Time from routing an event to its answer (mapping, Flow request, reply), by route",
            Unit::Seconds,
            families.latency.clone(),
        );
        registry.register(
            "flowbridge_replies_sent",
            "Reply events sent, by route and destination (HTTP response or reply.to sink)",
            families.replies.clone(),
        );
        registry.register(
            "flowbridge_dedup_redeliveries",
            "Redeliveries answered from a route's dedup window without calling the Flow",
            families.redeliveries.clone(),
        );
        registry.register(
            "flowbridge_schema_mismatches",
            "Events answered 422 schema_mismatch: their data did not satisfy the route's schema",
            families.schema_mismatches.clone(),
        );
        families
    }

    /// The series of `route`, created at 0 (its status codes at their first count).
    pub(super) fn handles(&self, route: &str) -> RouteMetrics {
        let name = Label::from(route.to_owned());
        let labels = RouteLabels {
            route: name.clone(),
        };
        let [response, sink] = DESTINATIONS.map(|destination| {
            self.replies.get_or_create_owned(&ReplyLabels {
                route: name.clone(),
                destination: destination.into(),
            })
        });
        RouteMetrics {
            matched: self.matched.get_or_create_owned(&labels),
            status: LazyCounters::new(&self.status, STATUS_SLOTS),
            latency: self.latency.get_or_create_owned(&labels),
            replies: [response, sink],
            redeliveries: self.redeliveries.get_or_create_owned(&labels),
            schema_mismatches: self.schema_mismatches.get_or_create_owned(&labels),
            name,
        }
    }

    /// The series of [`NO_ROUTE`]: only its status codes are exported (nothing else is counted
    /// before a route is chosen).
    pub(super) fn unrouted(&self) -> RouteMetrics {
        RouteMetrics {
            matched: Counter::default(),
            status: LazyCounters::new(&self.status, STATUS_SLOTS),
            latency: Histogram::latency(),
            replies: Default::default(),
            redeliveries: Counter::default(),
            schema_mismatches: Counter::default(),
            name: NO_ROUTE.into(),
        }
    }
}

/// Series of one route.
#[derive(Debug)]
pub struct RouteMetrics {
    pub matched: Counter,
    /// Events by the HTTP status their own outcome maps to, indexed by status code.
    status: LazyCounters<StatusLabels>,
    pub latency: Histogram,
    /// Reply events, indexed like [`DESTINATIONS`].
    pub replies: [Counter; 2],
    pub redeliveries: Counter,
    /// Events whose data did not satisfy the route's `schema`.
    pub schema_mismatches: Counter,
    /// The `route` label of the status series.
    name: Label,
}

impl RouteMetrics {
    /// Count one event answered with `status`.
    pub fn answered(&self, status: u16) {
        self.status.inc(usize::from(status), || StatusLabels {
            route: self.name.clone(),
            response_code: status,
        });
    }

    /// Events answered with `status` so far.
    pub fn answered_with(&self, status: u16) -> u64 {
        self.status.get(usize::from(status))
    }

    /// Count one reply event: `in_response` true for the HTTP response, false for `reply.to`.
    pub fn reply_sent(&self, in_response: bool) {
        self.replies[usize::from(!in_response)].inc();
    }
}
