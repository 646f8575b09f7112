//! Latency statistics for `flowbridge load` (and the benchmark helpers): [`Histogram`], a thin
//! wrapper over the `hdrhistogram` crate, and [`Percentiles`], the summary it yields.
//!
//! Values are nanoseconds. The HDR histogram keeps two significant digits: below 256 every value
//! has its own bucket (exact); above, each power of two is split into 128 equal buckets, so a
//! reported percentile is the top of its bucket, at most 1/128 (< 0.8 %) above the true value and
//! never below it. The wrapper also keeps the exact minimum, maximum and sum, so `min`, `max` and
//! `mean` are exact and every percentile is clamped to what was recorded. Memory is fixed (about
//! 60 KiB: the buckets cover every u64), recording is an index computation and an increment, and
//! histograms of different workers merge by adding counts.
//!
//! No I/O, no async: workers record into their own histogram and the totals are merged at the end.

use serde::Serialize;

/// Significant digits the HDR histogram keeps: 2 gives 128 buckets per power of two.
const SIGNIFICANT_DIGITS: u8 = 2;

/// A histogram of nanosecond values.
#[derive(Clone)]
pub struct Histogram {
    /// Counts per bucket over every `u64` (about 60 KiB). `None` only if the crate refused this
    /// constant configuration, which it accepts: then percentiles fall back to the maximum.
    counts: Option<hdrhistogram::Histogram<u64>>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min", &self.min)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: hdrhistogram::Histogram::new_with_bounds(1, u64::MAX, SIGNIFICANT_DIGITS).ok(),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Records one value (nanoseconds).
    pub fn record(&mut self, nanos: u64) {
        if let Some(counts) = &mut self.counts {
            // The range is every u64, so nothing is clamped.
            counts.saturating_record(nanos);
        }
        self.count += 1;
        self.sum += u128::from(nanos);
        self.min = self.min.min(nanos);
        self.max = self.max.max(nanos);
    }

    /// Records a duration.
    pub fn record_duration(&mut self, d: std::time::Duration) {
        self.record(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds every value recorded in `other`.
    pub fn merge(&mut self, other: &Histogram) {
        if let (Some(counts), Some(theirs)) = (&mut self.counts, &other.counts)
            && counts.add(theirs).is_err()
        {
            // `add` only fails when the other's values do not fit, and both cover every u64;
            // should it ever, add them value by value.
            for v in theirs.iter_recorded() {
                counts.saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value at percentile `p` (0–100): the top of the first bucket with at least `p` % of
    /// the values at or below it, clamped to the recorded minimum and maximum. `None` when empty.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let p = p.clamp(0.0, 100.0);
        let top = self.counts.as_ref().map_or(self.max, |counts| {
            counts.highest_equivalent(counts.value_at_percentile(p))
        });
        Some(top.clamp(self.min, self.max))
    }

    /// Summary in milliseconds; `None` when empty.
    pub fn summary(&self) -> Option<Percentiles> {
        let ms = |ns: u64| ns as f64 / 1e6;
        Some(Percentiles {
            min: ms(self.min),
            mean: (self.sum as f64 / self.count.max(1) as f64) / 1e6,
            p50: ms(self.percentile(50.0)?),
            p90: ms(self.percentile(90.0)?),
            p99: ms(self.percentile(99.0)?),
            p999: ms(self.percentile(99.9)?),
            max: ms(self.max),
        })
    }
}

/// Latency summary in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

#[cfg(test)]
mod tests;
