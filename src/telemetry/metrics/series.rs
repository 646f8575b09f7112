//! The metric types flowbridge's series are made of, on top of prometheus-client:
//!
//! * [`Counter`]: prometheus-client's counter (one shared atomic) whose `inc` returns nothing, so
//!   counting stays a statement at the call sites.
//! * [`Histogram`]: ours, on atomics, encoded through prometheus-client's histogram encoder.
//!   prometheus-client's `Histogram` takes a mutex on every `observe`; the event path observes
//!   twice per event and a Flow request three times, from every worker thread at once, so an
//!   uncontended bucket add and a compare-and-swap on the sum stay cheaper and never wait.
//! * [`Label`]: the label values of families' series.
//! * [`LazyCounters`]: counters whose series appear at their first count, each resolved once.
//!
//! Pure: knows no HTTP, no config, no route or gateway.

use std::borrow::Cow;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter as ClientCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Seconds: event and Flow request latencies (5 ms … 60 s).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];
/// Seconds an event waited in its gateway's queue (100 µs … 10 min: an event that finds a free
/// slot waits microseconds, a batching window milliseconds, a cold start or a full Flow up to
/// `connect_timeout`, 2 min by default).
pub const WAIT_BUCKETS: [f64; 21] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
/// Seconds a gateway stayed cold (0.5 s … 10 min: a GPU Flow's cold start is minutes).
pub const COLD_BUCKETS: [f64; 11] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
/// Documents or events per Flow request.
pub const SIZE_BUCKETS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// A monotonically increasing counter. Clones share the value: the handle a route or gateway
/// keeps is the series its family encodes.
#[derive(Debug, Clone, Default)]
pub struct Counter(ClientCounter);

impl Counter {
    pub fn inc(&self) {
        self.0.inc();
    }
    pub fn add(&self, n: u64) {
        self.0.inc_by(n);
    }
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

impl TypedMetric for Counter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for Counter {
    fn encode(&self, encoder: MetricEncoder) -> fmt::Result {
        self.0.encode(encoder)
    }
    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// A histogram with fixed upper bounds (`le`) and a sum. Clones share the buckets.
#[derive(Debug, Clone)]
pub struct Histogram(Arc<Buckets>);

#[derive(Debug)]
struct Buckets {
    bounds: &'static [f64],
    /// Observations per bucket, not cumulative (the encoder accumulates); one more than
    /// `bounds`, for the observations above the last bound (`+Inf`). Their total is the count.
    counts: Box<[AtomicU64]>,
    /// f64 bits, updated by compare-and-swap.
    sum: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram(Arc::new(Buckets {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }))
    }

    /// Buckets of [`LATENCY_BUCKETS`].
    pub fn latency() -> Histogram {
        Histogram::new(&LATENCY_BUCKETS)
    }

    /// Buckets of [`WAIT_BUCKETS`].
    pub fn waits() -> Histogram {
        Histogram::new(&WAIT_BUCKETS)
    }

    /// Buckets of [`COLD_BUCKETS`].
    pub fn cold() -> Histogram {
        Histogram::new(&COLD_BUCKETS)
    }

    /// Buckets of [`SIZE_BUCKETS`].
    pub fn sizes() -> Histogram {
        Histogram::new(&SIZE_BUCKETS)
    }

    pub fn observe(&self, value: f64) {
        let b = &self.0;
        let i = b
            .bounds
            .iter()
            .position(|&bound| value <= bound)
            .unwrap_or(b.bounds.len());
        if let Some(count) = b.counts.get(i) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let _ = b
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }

    pub fn count(&self) -> u64 {
        self.0
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    pub fn sum(&self) -> f64 {
        f64::from_bits(self.0.sum.load(Ordering::Relaxed))
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> fmt::Result {
        let b = &self.0;
        let mut count = 0;
        // The last bucket, above every bound, is `le="+Inf"`.
        let buckets: Vec<(f64, u64)> = b
            .counts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let n = c.load(Ordering::Relaxed);
                count += n;
                (b.bounds.get(i).copied().unwrap_or(f64::INFINITY), n)
            })
            .collect();
        encoder.encode_histogram::<NoLabelSet>(self.sum(), count, &buckets, None)
    }
    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// A label value of a family's series: a route or gateway name, or one of a closed set.
/// prometheus-client escapes label values as the text format requires.
pub type Label = Cow<'static, str>;

/// Counters of one family whose series appear at their first count (a status code an event
/// got, an auth failure), as `slots` indexed by the caller: a slot's series is created in the
/// family the first time it counts, and every later count is one atomic add on the handle kept
/// here — no label lookup.
#[derive(Debug)]
pub struct LazyCounters<L> {
    family: Family<L, Counter>,
    slots: Box<[OnceLock<Counter>]>,
}

impl<L: Clone + Hash + Eq> LazyCounters<L> {
    pub fn new(family: &Family<L, Counter>, slots: usize) -> LazyCounters<L> {
        LazyCounters {
            family: family.clone(),
            slots: (0..slots).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Count one in slot `i`, whose series has `labels` (asked the first time only). A slot
    /// past the end counts nothing.
    pub fn inc(&self, i: usize, labels: impl FnOnce() -> L) {
        if let Some(slot) = self.slots.get(i) {
            slot.get_or_init(|| self.family.get_or_create_owned(&labels()))
                .inc();
        }
    }

    /// The count of slot `i` (0 before its first).
    pub fn get(&self, i: usize) -> u64 {
        self.slots
            .get(i)
            .and_then(OnceLock::get)
            .map_or(0, Counter::get)
    }
}
