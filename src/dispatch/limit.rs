//! The in-flight limit of one gateway: fixed (`concurrency: 8`), or adaptive (`concurrency:
//! auto`, the default), following the Flow's latency the way TCP Vegas follows a path's RTT.
//!
//! # The signal
//!
//! Every answered Flow request is a sample: its latency and its number of documents. A request of
//! 64 documents may take longer than one of 1 without any queueing, so latency is compared only
//! with requests of the same size class (documents rounded down to a power of two): each class
//! keeps its *no-load latency*, the smallest latency seen in the last one to two windows of
//! [`WINDOW`] (two rotating windows, so a Flow that became slower, e.g. a replaced model, is
//! re-learnt once unloaded requests show it, while queueing under sustained load never raises
//! it). A class without a
//! sample yet borrows the bound that latency grows at most linearly with documents from the
//! classes below it. The ratio latency / no-load latency of a sample is smoothed (EWMA) into
//! [`Limiter::ratio`].
//!
//! # The rule
//!
//! With `limit` requests in flight and latency `ratio` times the no-load latency, about
//! `queue = limit × (1 − 1/ratio)` of them are waiting inside the Flow instead of being worked on
//! (Little's law, as in Vegas). The limit
//!
//! * grows by one while `queue ≤ α` (latency near the no-load latency: the Flow has spare
//!   parallelism — more replicas, a GPU with room) and the limit is actually used (at least half
//!   of it in flight when the request was sent; an idle gateway never grows its limit);
//! * shrinks by one while `queue ≥ β` (latency rose with in-flight requests: they queue in the
//!   Flow, which then spends its time on per-request overhead instead of documents; fewer, larger
//!   requests serve it better, since events wait in flowbridge's queue and leave together);
//! * halves when a request timed out (the Flow is overloaded, not just busy);
//! * holds otherwise.
//!
//! `α = max(1, 2·log10(limit))` and `β = max(2, 4·log10(limit))`: thresholds that grow with the
//! limit like those of Netflix concurrency-limits' Vegas (3·log10 and 6·log10 there), so latency
//! noise does not move a large limit, but tighter, because a Flow's latency rises steeply with
//! queueing and batching pays for a small limit. A single-replica Flow that works one request at
//! a time settles at 2–3 in flight (one being worked on, one being encoded or decoded), a Flow
//! with P parallel slots at about P + 1 to P + 3. After each change the limit holds until as many requests as the limit sent after
//! the change have answered, so every decision is made on requests that saw the new limit (the
//! oscillation Gradient-style controllers show when they react to samples from before their own
//! last change).
//!
//! Pure: no I/O, no tokio runtime; time comes in as arguments (tokio's `Instant`, so a paused
//! clock drives it in tests and simulations).

use std::time::Duration;

use tokio::time::Instant;

use crate::telemetry::metrics::LimitGauges;

/// How long a no-load latency is remembered: the minimum of the current and the previous window.
pub const WINDOW: Duration = Duration::from_secs(30);
/// Where an adaptive limit starts (raised to `min`): one request, so that the first samples
/// measure the Flow's no-load latency rather than queueing.
pub const INITIAL: usize = 1;
/// Size classes: documents rounded down to a power of two, 1 … 2^15 and more.
const CLASSES: usize = 16;
/// The per-request share of a request's cost that [`Limiter::efficiency`] accepts, against
/// its per-document work.
pub const OVERHEAD: f64 = 0.25;
/// Weight of a new sample in the smoothed latency ratio.
const SMOOTHING: f64 = 0.3;

/// How the limit is set: the gateway's `concurrency`.
pub use crate::model::Concurrency as Mode;

/// Why the limit last changed (the `reason` label of the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Configured (fixed), or the starting point of an adaptive limit.
    Start,
    /// Latency stayed near the no-load latency while the limit was in use.
    LatencyNearBaseline,
    /// Latency rose with the requests in flight: they queue in the Flow.
    LatencyRose,
    /// A request timed out.
    Timeout,
}

impl Reason {
    pub const ALL: [Reason; 4] = [
        Reason::Start,
        Reason::LatencyNearBaseline,
        Reason::LatencyRose,
        Reason::Timeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Start => "start",
            Reason::LatencyNearBaseline => "latency_near_baseline",
            Reason::LatencyRose => "latency_rose",
            Reason::Timeout => "timeout",
        }
    }
}

/// What [`Limiter::efficiency`] knows of the Flow's cost per request against per document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Efficiency {
    /// Not enough sizes seen yet.
    Unknown,
    /// Latency does not grow with documents: several requests cost more than one and finish
    /// no sooner.
    Flat,
    /// Requests of at least this many documents keep the per-request cost within
    /// [`OVERHEAD`] of the work on documents.
    AtLeast(usize),
}

/// How a request ended, as far as the limit is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The Flow answered (documents, or an executor error: either way it did the work).
    Answered,
    /// The request's deadline passed.
    Timeout,
    /// Anything else (unreachable, a broken answer): says nothing about load.
    Other,
    /// Answered, but sent while an autoscaled Flow may have been waking from zero (Knative's
    /// activator holds requests until a replica is up): its latency is the cold start's, not
    /// the Flow's.
    Waking,
}

/// The no-load latency of one size class: the smallest latency of the current and the previous
/// window.
///
/// The smallest, not a low percentile: a Flow has no lucky fast path (no cache in front of a
/// model), so its fastest answer is its service time, and under sustained load the only
/// unloaded samples are the few sent while the limit was low, which a percentile would drown.
#[derive(Debug, Clone, Copy, Default)]
struct MinWindow {
    current: Option<Point>,
    previous: Option<Point>,
    started: Option<Instant>,
    /// The current window has a sample sent with (almost) nothing else in flight.
    unloaded: bool,
}

/// A latency sample and the documents of its request.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    seconds: f64,
    docs: usize,
    /// Not measured: the bound smaller classes put on the class, which was lower.
    capped: bool,
}

impl MinWindow {
    fn get(&self) -> Option<f64> {
        self.point().map(|p| p.seconds)
    }

    /// The fastest sample remembered.
    fn point(&self) -> Option<Point> {
        faster(self.current, self.previous)
    }

    /// A sample; `unloaded` when it was sent with at most the minimum limit in flight. Only a
    /// window with such a sample lets an older minimum age out: under sustained load every
    /// latency includes queueing, and forgetting the minimum then would take queueing for the
    /// Flow's own speed (and let the limit creep up). A Flow that really became slower shows a
    /// high ratio, the limit falls to its minimum, and unloaded samples re-learn it.
    fn record(&mut self, now: Instant, sample: Point, unloaded: bool) {
        match self.started {
            Some(started) if now.duration_since(started) < WINDOW => {}
            Some(_) => {
                self.previous = if self.unloaded {
                    self.current
                } else {
                    faster(self.current, self.previous)
                };
                self.current = None;
                self.unloaded = false;
                self.started = Some(now);
            }
            None => self.started = Some(now),
        }
        self.current = faster(self.current, Some(sample));
        self.unloaded |= unloaded;
    }
}

fn faster(a: Option<Point>, b: Option<Point>) -> Option<Point> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.seconds < a.seconds { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// The limit of one gateway and what it learnt.
#[derive(Debug, Clone)]
pub struct Limiter {
    mode: Mode,
    limit: usize,
    reason: Reason,
    classes: [MinWindow; CLASSES],
    /// Smoothed latency / no-load latency; `None` before the first sample.
    ratio: Option<f64>,
    /// Answers still to come before the limit may change again.
    hold: usize,
    /// Smoothed documents per request.
    docs: Option<f64>,
}

impl Limiter {
    pub fn new(mode: Mode) -> Limiter {
        let limit = match mode {
            Mode::Fixed(n) => n.max(1),
            Mode::Auto { min, max } => INITIAL.clamp(min.max(1), max.max(min).max(1)),
        };
        Limiter {
            mode,
            limit,
            reason: Reason::Start,
            classes: [MinWindow::default(); CLASSES],
            ratio: None,
            hold: 0,
            docs: None,
        }
    }

    /// Most requests in flight now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// Smoothed latency / no-load latency (1.0: no queueing seen).
    pub fn ratio(&self) -> Option<f64> {
        self.ratio
    }

    /// The no-load latency of requests of `docs` documents (with the linear bound from smaller
    /// classes when this class has no sample yet).
    pub fn no_load(&self, docs: usize) -> Option<f64> {
        let class = class_of(docs);
        min_of(self.classes[class].get(), self.borrowed(class))
    }

    /// How small a request may be when work can be shared between requests (an autoscaled
    /// Flow), from the fastest request of each size class seen (`latency ≈ a + b·docs` through
    /// the smallest and the largest).
    ///
    /// A class slower than a larger one is left out: latency does not fall with documents, so
    /// that sample waited for something else (a cold start behind Knative's activator). So is a
    /// class whose fastest value is the bound borrowed from smaller ones (not a measurement), and
    /// a fit whose per-request part comes out negative (the large sample queued) is no answer.
    pub fn efficiency(&self) -> Efficiency {
        let mut points: Vec<Point> = self
            .classes
            .iter()
            .filter_map(MinWindow::point)
            .filter(|p| !p.capped)
            .collect();
        let mut fastest = f64::INFINITY;
        for p in points.iter_mut().rev() {
            if p.seconds > fastest {
                p.docs = 0;
            }
            fastest = fastest.min(p.seconds);
        }
        points.retain(|p| p.docs > 0);
        let (Some(&small), Some(&large)) = (points.first(), points.last()) else {
            return Efficiency::Unknown;
        };
        if large.docs < small.docs.saturating_mul(2) {
            return Efficiency::Unknown;
        }
        let per_doc = (large.seconds - small.seconds) / (large.docs - small.docs) as f64;
        // Latency that grows by less than 5 % over at least twice the documents: flat.
        if large.seconds <= small.seconds * 1.05 || per_doc <= 0.0 {
            return Efficiency::Flat;
        }
        let per_request = small.seconds - per_doc * small.docs as f64;
        // Latency growing faster than linearly from the small to the large size: the large one
        // queued, and the line says nothing.
        if per_request < 0.0 {
            return Efficiency::Unknown;
        }
        let docs = (per_request / (OVERHEAD * per_doc)).ceil().max(1.0);
        Efficiency::AtLeast(docs.min(u32::MAX as f64) as usize)
    }

    /// The bound smaller classes put on a class: latency grows at most linearly with documents,
    /// and a class spans a factor of two.
    fn borrowed(&self, class: usize) -> Option<f64> {
        (0..class)
            .filter_map(|c| {
                self.classes[c]
                    .get()
                    .map(|s| s * 2f64.powi((class - c + 1) as i32))
            })
            .reduce(f64::min)
    }

    /// What the metrics show of it.
    pub fn gauges(&self) -> LimitGauges {
        LimitGauges {
            limit: self.limit,
            reason: self.reason.as_str(),
            ratio: self.ratio,
            docs: self.docs,
            no_load: self
                .classes
                .iter()
                .enumerate()
                .filter_map(|(c, w)| w.get().map(|s| (1usize << c, s)))
                .collect(),
        }
    }

    /// One answered (or failed) request: `latency` from send to answer, `docs` in it, and how
    /// many requests were in flight when it was sent (itself included). Returns the new reason
    /// when the limit changed.
    pub fn on_sample(
        &mut self,
        now: Instant,
        latency: Duration,
        docs: usize,
        in_flight: usize,
        outcome: Outcome,
    ) -> Option<Reason> {
        let (min, max) = match self.mode {
            Mode::Fixed(_) => {
                self.observe(now, latency, docs, in_flight <= 1, outcome);
                return None;
            }
            Mode::Auto { min, max } => (min.max(1), max.max(min).max(1)),
        };
        if outcome == Outcome::Timeout {
            // Overload: halve at once, whatever the hold (a timeout is news, not noise).
            let halved = (self.limit / 2).max(min);
            self.hold = halved;
            return self.set(halved, Reason::Timeout);
        }
        let unloaded = in_flight <= min;
        let ratio = self.observe(now, latency, docs, unloaded, outcome)?;
        self.hold = self.hold.saturating_sub(1);
        if self.hold > 0 {
            return None;
        }
        let limit = self.limit as f64;
        let queue = limit * (1.0 - 1.0 / ratio.max(1.0));
        let log = limit.log10();
        let alpha = (2.0 * log).max(1.0);
        let beta = (4.0 * log).max(2.0);
        let used = in_flight * 2 >= self.limit;
        let next = if queue >= beta {
            (self.limit - 1).max(min)
        } else if queue <= alpha && used {
            (self.limit + 1).min(max)
        } else {
            self.limit
        };
        let reason = if next < self.limit {
            Reason::LatencyRose
        } else {
            Reason::LatencyNearBaseline
        };
        self.hold = next;
        self.set(next, reason)
    }

    /// Record a sample; the smoothed ratio after it, for answered requests.
    fn observe(
        &mut self,
        now: Instant,
        latency: Duration,
        docs: usize,
        unloaded: bool,
        outcome: Outcome,
    ) -> Option<f64> {
        if outcome != Outcome::Answered {
            return None;
        }
        let seconds = latency.as_secs_f64().max(1e-6);
        let docs = docs.max(1);
        self.docs = Some(smooth(self.docs, docs as f64));
        // The bound borrowed from smaller classes also caps a first sample taken under load.
        let class = class_of(docs);
        let bound = self.borrowed(class);
        let sample = bound.map_or(seconds, |b| b.min(seconds));
        self.classes[class].record(
            now,
            Point {
                seconds: sample,
                docs,
                capped: sample < seconds,
            },
            unloaded,
        );
        let no_load = self.no_load(docs)?;
        let ratio = smooth(self.ratio, seconds / no_load);
        self.ratio = Some(ratio);
        Some(ratio)
    }

    fn set(&mut self, limit: usize, reason: Reason) -> Option<Reason> {
        if limit == self.limit {
            return None;
        }
        self.limit = limit;
        self.reason = reason;
        Some(reason)
    }
}

fn min_of(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn smooth(previous: Option<f64>, sample: f64) -> f64 {
    previous.map_or(sample, |p| p + SMOOTHING * (sample - p))
}

/// Size class of a request: floor(log2(docs)), capped.
fn class_of(docs: usize) -> usize {
    (usize::BITS - 1 - docs.max(1).leading_zeros()).min(CLASSES as u32 - 1) as usize
}

#[cfg(test)]
mod tests;
