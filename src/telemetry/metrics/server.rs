//! The series of the events listener ([`ServerMetrics`]): open connections, connections accepted,
//! requests and connections stopped by a server limit (`limits:`, a closed set: [`Limit`]), and
//! the tokio tasks alive (read at scrape time, for leak hunting in soaks).
//!
//! Knows no HTTP server: the listener and the ingress name the limit.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::series::{Counter, Label};

/// A server limit that stopped a request or a connection: the `limit` label of
/// `flowbridge_limits_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// An HTTP/1 request head not complete within `limits.head_timeout`: connection closed.
    HeadTimeout,
    /// A body not complete within `limits.body_timeout`: 408.
    BodyTimeout,
    /// A connection with no request in flight for `limits.idle_timeout`: closed (GOAWAY).
    IdleTimeout,
    /// A head over `limits.max_header_bytes` or `limits.max_headers`: 431.
    HeaderTooLarge,
    /// A body over `limits.max_body`: 413.
    MaxBody,
    /// A connection over `limits.max_connections`: closed at accept.
    MaxConnections,
    /// An HTTP/2 connection whose client cancelled more requests than it let finish (rapid
    /// reset): GOAWAY, then closed.
    ResetFlood,
}

impl Limit {
    /// Every limit, in the order of their series.
    pub const ALL: [Limit; 7] = [
        Limit::HeadTimeout,
        Limit::BodyTimeout,
        Limit::IdleTimeout,
        Limit::HeaderTooLarge,
        Limit::MaxBody,
        Limit::MaxConnections,
        Limit::ResetFlood,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::HeadTimeout => "head_timeout",
            Limit::BodyTimeout => "body_timeout",
            Limit::IdleTimeout => "idle_timeout",
            Limit::HeaderTooLarge => "header_too_large",
            Limit::MaxBody => "max_body",
            Limit::MaxConnections => "max_connections",
            Limit::ResetFlood => "reset_flood",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LimitLabels {
    limit: Label,
}

/// The listener's series.
#[derive(Debug)]
pub struct ServerMetrics {
    /// Connections open on the events listener now.
    pub connections_open: Gauge,
    /// Connections accepted (those closed at once for `max_connections` included).
    pub connections: Counter,
    limits: [Counter; Limit::ALL.len()],
    tasks: Gauge,
}

impl ServerMetrics {
    /// Register the listener's series in `registry`, every limit's at 0.
    pub(super) fn register(registry: &mut Registry) -> ServerMetrics {
        let connections_open = Gauge::default();
        registry.register(
            "flowbridge_connections_open",
            "Connections open on the events listener",
            connections_open.clone(),
        );
        let connections = Counter::default();
        registry.register(
            "flowbridge_connections",
            "Connections accepted on the events listener (those closed at once for limits.max_connections included)",
            connections.clone(),
        );
        let family = Family::<LimitLabels, Counter>::default();
        registry.register(
            "flowbridge_limits",
            "Requests or connections stopped by a server limit (limits:), by limit",
            family.clone(),
        );
        let tasks = Gauge::default();
        registry.register(
            "flowbridge_runtime_tasks",
            "Tokio tasks alive (read at scrape time): flat under steady load, or something leaks",
            tasks.clone(),
        );
        ServerMetrics {
            connections_open,
            connections,
            limits: Limit::ALL.map(|limit| {
                family.get_or_create_owned(&LimitLabels {
                    limit: limit.as_str().into(),
                })
            }),
            tasks,
        }
    }

    /// Count one request or connection stopped by `limit`.
    pub fn limit_hit(&self, limit: Limit) {
        self.limits[limit as usize].inc();
    }

    /// How many times `limit` stopped something.
    pub fn limit_count(&self, limit: Limit) -> u64 {
        self.limits[limit as usize].get()
    }

    /// Read the tasks alive from the current tokio runtime (none outside one).
    pub(super) fn read_tasks(&self) {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let alive = handle.metrics().num_alive_tasks();
            self.tasks.set(i64::try_from(alive).unwrap_or(i64::MAX));
        }
    }
}
