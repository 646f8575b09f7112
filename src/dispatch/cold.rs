//! A gateway that refuses requests ([`Cold`]): when its next probe may go, whether one is in
//! flight, why it refused, and its spell — from the send of the first request it refused to
//! the first it answered — counted in `flowbridge_gateway_cold_duration_seconds{cause=
//! "unavailable"}`. A spell nobody waited through (the queue emptied before the gateway
//! answered) is not counted: when it ended is not known.

use tokio::time::Instant;

use crate::telemetry::metrics::GatewayMetrics;

/// The gateway did not accept the last request.
pub(super) struct Cold {
    /// When the first request of the spell was sent.
    since: Instant,
    /// The queue emptied since: the spell's end will not be seen.
    unwatched: bool,
    pub(super) next_probe: Instant,
    /// A probe request is in flight.
    pub(super) probing: bool,
    pub(super) cause: String,
}

impl Cold {
    /// After a request sent at `sent` was refused for `cause`: the spell of `previous` goes
    /// on, or one starts at `sent`; the next probe may go at `next_probe`.
    pub(super) fn refused(
        previous: Option<Cold>,
        sent: Instant,
        next_probe: Instant,
        cause: String,
    ) -> Cold {
        Cold {
            since: previous.filter(|c| !c.unwatched).map_or(sent, |c| c.since),
            unwatched: false,
            next_probe,
            probing: false,
            cause,
        }
    }

    /// Nothing waits for the gateway any more.
    pub(super) fn unwatched(&mut self) {
        self.unwatched = true;
    }

    /// The gateway answered: count the spell, if it was watched to its end.
    pub(super) fn ended(self, metrics: &GatewayMetrics) {
        if !self.unwatched {
            metrics.cold_ended("unavailable", self.since.elapsed().as_secs_f64());
        }
    }
}
