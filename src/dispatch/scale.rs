//! What an autoscaled Flow changes in delivery (a gateway with `autoscale:`; docs/delivery.md
//! "Autoscaled Flows"). Pure: the dispatcher asks these rules under its lock.
//!
//! Knative's autoscaler counts requests in flight, not documents. The latency limit alone packs a
//! backlog into a few big requests, which the replicas there are take without queueing, so
//! Knative never adds one. Here ([`efficiency`] and [`in_flight`] apply them to a gateway):
//!
//! * [`allowed`] — while the waiting documents fill more requests of the Flow's efficient size
//!   ([`Efficiency`]) than the limit allows, that many may be in flight, up to the limit's
//!   maximum (by default `max_scale × target`): they wait in the replicas, Knative sees them and
//!   adds replicas.
//! * [`share`] — what waits is shared between the free slots (no request below the efficient
//!   size) instead of leaving in the first; a Flow whose latency does not grow with documents
//!   ([`Efficiency::Flat`]) keeps whole batches.
//! * [`waking`] — after [`QUIET`] with nothing in flight the Flow may be at zero replicas:
//!   requests sent until one is answered may wait for a cold start, and their latencies teach
//!   the limit nothing.

use std::time::Duration;

use super::limit::{Efficiency, Limiter};
use crate::model::{Concurrency, GatewaySpec};

/// How long an autoscaled Flow may be idle before its next request may meet a cold start:
/// Knative's stable window (60 s), after which its autoscaler may want zero replicas.
pub const QUIET: Duration = Duration::from_secs(60);

/// What `limiter` knows of the Flow's efficient request size; `None` for a gateway without
/// `autoscale:`, where nothing uses it (so it is not computed).
pub fn efficiency(spec: &GatewaySpec, limiter: &Limiter) -> Option<Efficiency> {
    spec.autoscale.map(|_| limiter.efficiency())
}

/// Requests a gateway may have in flight: the limiter's limit, or for an autoscaled Flow with
/// an adaptive limit (`efficiency` from [`efficiency`]) what [`allowed`] lets demand show.
pub fn in_flight(
    spec: &GatewaySpec,
    limiter: &Limiter,
    efficiency: Option<Efficiency>,
    in_flight: usize,
    queued_docs: usize,
) -> usize {
    match (efficiency, spec.concurrency) {
        (Some(e), Concurrency::Auto { max, .. }) => {
            allowed(limiter.limit(), max, e, in_flight, queued_docs)
        }
        _ => limiter.limit(),
    }
}

/// Requests that may be in flight: the latency `limit`, or more while `queued_docs` fill more
/// requests of the efficient size, up to `max`.
pub fn allowed(
    limit: usize,
    max: usize,
    efficiency: Efficiency,
    in_flight: usize,
    queued_docs: usize,
) -> usize {
    match efficiency {
        Efficiency::AtLeast(docs) => {
            let demand = in_flight.saturating_add(queued_docs / docs.max(1));
            limit.max(demand.min(max))
        }
        Efficiency::Flat | Efficiency::Unknown => limit,
    }
}

/// Most documents the next request takes when `free` slots are free (at least 1) and
/// `queued_docs` wait (counted over every batch key: an estimate when keys differ). A backlog
/// of half a batch (`max_docs / 2`) or more whose efficient size is not known yet leaves in
/// halves, so that a second size class is measured.
pub fn share(efficiency: Efficiency, free: usize, queued_docs: usize, max_docs: usize) -> usize {
    let least = match efficiency {
        Efficiency::Flat => return max_docs,
        Efficiency::Unknown if queued_docs >= max_docs / 2 => queued_docs.div_ceil(2),
        Efficiency::Unknown => return max_docs,
        Efficiency::AtLeast(docs) => docs,
    };
    queued_docs
        .div_ceil(free.max(1))
        .max(least)
        .min(max_docs)
        .max(1)
}

/// Whether a request sent now, with `in_flight` requests (itself included), `quiet_for` after
/// the last request in flight ended (`None`: none has yet), may meet a cold start.
pub fn waking(in_flight: usize, quiet_for: Option<Duration>) -> bool {
    in_flight == 1 && quiet_for.is_none_or(|q| q >= QUIET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demand_beyond_the_limit_only_in_efficient_requests() {
        // 500 waiting, efficient at 40: 12 requests more than the 2 in flight, within max 20.
        assert_eq!(allowed(2, 20, Efficiency::AtLeast(40), 2, 500), 14);
        assert_eq!(allowed(2, 10, Efficiency::AtLeast(40), 2, 500), 10);
        // Less than one efficient request waiting: the limit.
        assert_eq!(allowed(3, 20, Efficiency::AtLeast(40), 1, 39), 3);
        assert_eq!(allowed(3, 20, Efficiency::Flat, 1, 5000), 3);
        assert_eq!(allowed(3, 20, Efficiency::Unknown, 1, 5000), 3);
    }

    #[test]
    fn shares_between_free_slots_but_not_below_the_efficient_size() {
        assert_eq!(share(Efficiency::AtLeast(40), 12, 500, 512), 42);
        assert_eq!(share(Efficiency::AtLeast(40), 50, 500, 512), 40);
        assert_eq!(share(Efficiency::AtLeast(1), 4, 2, 512), 1);
        // Flat: whole batches.
        assert_eq!(share(Efficiency::Flat, 12, 500, 512), 512);
        // Unknown: halves of a backlog of half a batch or more, else whole.
        assert_eq!(share(Efficiency::Unknown, 2, 500, 512), 250);
        assert_eq!(share(Efficiency::Unknown, 2, 100, 512), 512);
    }

    #[test]
    fn waking_after_quiet_or_at_start() {
        assert!(waking(1, None));
        assert!(waking(1, Some(QUIET)));
        assert!(!waking(1, Some(Duration::from_secs(5))));
        assert!(!waking(2, None));
    }
}
