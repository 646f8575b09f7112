//! Latency statistics for `flowbridge load` (and the benchmark helpers): [`Histogram`], a
//! log-linear histogram in the spirit of HdrHistogram, and [`Percentiles`], the summary it
//! yields.
//!
//! Values are nanoseconds. Below 256 every value has its own bucket (exact); above, each power
//! of two is split into 128 equal buckets, so a reported percentile is at most 1/128 (< 0.8 %)
//! above the true value, and never below it. Memory is fixed (about 60 KiB), recording is an
//! index computation and an increment, and histograms of different workers merge by adding
//! counts.

use serde::Serialize;

/// Buckets per power of two above the exact range (2^SUB_BITS).
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
/// Values below this have a bucket each.
const EXACT: u64 = 2 * SUB;
/// Enough buckets for every u64.
const BUCKETS: usize = (SUB as usize) * (63 - SUB_BITS as usize) + EXACT as usize;

/// A fixed-size log-linear histogram of nanosecond values.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
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

/// Bucket index of `v`.
fn index(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    // v ≥ 2^(SUB_BITS+1): keep the SUB_BITS+1 most significant bits (SUB..2*SUB).
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    let sub = v >> shift; // in [SUB, 2*SUB)
    (shift as usize) * (SUB as usize) + sub as usize
}

/// The largest value that falls into bucket `i`.
fn highest(i: usize) -> u64 {
    let i = i as u64;
    if i < EXACT {
        return i;
    }
    let shift = i / SUB - 1;
    let sub = i - shift * SUB;
    // ((sub + 1) << shift) - 1, in u128: the very last bucket ends at u64::MAX.
    let end = (u128::from(sub + 1) << shift) - 1;
    u64::try_from(end).unwrap_or(u64::MAX)
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Records one value (nanoseconds).
    pub fn record(&mut self, nanos: u64) {
        self.counts[index(nanos)] += 1;
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
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
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

    /// The value at percentile `p` (0–100): the smallest bucket bound with at least `p` % of the
    /// values at or below it, clamped to the recorded maximum. `None` when empty.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let p = p.clamp(0.0, 100.0);
        let rank = ((p / 100.0) * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(highest(i).clamp(self.min, self.max));
            }
        }
        Some(self.max)
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
mod tests {
    use super::*;

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in 0..EXACT {
            h.record(v);
        }
        assert_eq!(h.count(), EXACT);
        assert_eq!(h.percentile(0.0), Some(0));
        assert_eq!(h.percentile(50.0), Some(EXACT / 2 - 1));
        assert_eq!(h.percentile(100.0), Some(EXACT - 1));
    }

    #[test]
    fn buckets_cover_every_value_in_order() {
        // Indices grow with the value and the bucket bound is never below the value.
        let mut values: Vec<u64> = (0..64u32)
            .flat_map(|s| {
                let v = 1u64 << s;
                [v, v + 1, v + v / 2, v + (v - 1)]
            })
            .collect();
        values.sort_unstable();
        let mut last = 0;
        for v in values {
            {
                let i = index(v);
                assert!(i < BUCKETS, "{v} → {i}");
                assert!(i >= last, "{v} → {i} < {last}");
                last = i;
                assert!(highest(i) >= v, "bucket {i} of {v} ends at {}", highest(i));
                // At most 1/128 above the value.
                let err = (highest(i) - v) as f64 / v as f64;
                assert!(err <= 1.0 / 128.0, "{v}: relative error {err}");
            }
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        assert_eq!(highest(BUCKETS - 1), u64::MAX);
    }

    #[test]
    fn bucket_bounds_are_contiguous() {
        for i in EXACT as usize..BUCKETS - 1 {
            assert_eq!(index(highest(i)), i, "highest of {i}");
            assert_eq!(index(highest(i) + 1), i + 1, "after bucket {i}");
        }
    }

    #[test]
    fn percentiles_of_a_uniform_distribution() {
        let mut h = Histogram::new();
        // 1 µs .. 10 ms in 1 µs steps.
        for us in 1..=10_000u64 {
            h.record(us * 1000);
        }
        let close = |got: u64, want: u64| {
            let err = (got as f64 - want as f64) / want as f64;
            assert!((0.0..=1.0 / 128.0).contains(&err), "{got} vs {want}");
        };
        close(h.percentile(50.0).unwrap_or(0), 5_000_000);
        close(h.percentile(90.0).unwrap_or(0), 9_000_000);
        close(h.percentile(99.0).unwrap_or(0), 9_900_000);
        assert_eq!(h.percentile(100.0), Some(10_000_000));
        let s = h.summary().unwrap_or_else(|| panic!("empty"));
        assert_eq!(s.min, 0.001);
        assert_eq!(s.max, 10.0);
        assert!((s.mean - 5.0005).abs() < 1e-9, "{}", s.mean);
        assert!(s.p50 <= s.p90 && s.p90 <= s.p99 && s.p99 <= s.p999 && s.p999 <= s.max);
    }

    #[test]
    fn percentile_is_clamped_to_the_recorded_range() {
        let mut h = Histogram::new();
        h.record(1_000_001);
        // The bucket of 1_000_001 ends above it; the answer must not exceed what was seen.
        assert_eq!(h.percentile(50.0), Some(1_000_001));
        assert_eq!(h.percentile(99.9), Some(1_000_001));
    }

    #[test]
    fn tail_is_found_among_many_fast_values() {
        let mut h = Histogram::new();
        for _ in 0..990 {
            h.record(100_000); // 0.1 ms
        }
        for _ in 0..10 {
            h.record(50_000_000); // 50 ms
        }
        let p99 = h.percentile(99.0).unwrap_or(0);
        assert!((100_000..=100_000 * 129 / 128).contains(&p99), "{p99}");
        assert_eq!(h.percentile(99.1), Some(50_000_000));
        assert_eq!(h.summary().map(|s| s.max), Some(50.0));
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        for v in 0..1000 {
            a.record(v * 10);
            b.record(v * 10 + 100_000);
        }
        let mut all = Histogram::new();
        for v in 0..1000 {
            all.record(v * 10);
            all.record(v * 10 + 100_000);
        }
        a.merge(&b);
        assert_eq!(a.count(), 2000);
        for p in [1.0, 25.0, 50.0, 75.0, 99.0, 100.0] {
            assert_eq!(a.percentile(p), all.percentile(p), "p{p}");
        }
        assert_eq!(a.summary(), all.summary());
    }

    #[test]
    fn empty_histogram_has_no_percentiles() {
        let h = Histogram::new();
        assert_eq!(h.percentile(50.0), None);
        assert!(h.summary().is_none());
        let mut m = Histogram::new();
        m.merge(&h);
        assert_eq!(m.count(), 0);
    }
}
