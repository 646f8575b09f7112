//! Tests of the latency histogram: exact small values, the 1/128 bound above them, percentiles
//! clamped to the recorded range, merging, and the empty case.

use super::*;

/// Below this every value has a bucket of its own (two significant digits).
const EXACT: u64 = 256;

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
fn a_percentile_is_never_below_the_value_and_at_most_1_128_above() {
    for s in 0..62u32 {
        let v = 1u64 << s;
        for v in [v, v + 1, v + v / 2, v + (v - 1)] {
            let mut h = Histogram::new();
            h.record(v);
            h.record(u64::MAX / 2);
            let got = h.percentile(50.0).unwrap_or(0);
            assert!(got >= v, "{v} reported as {got}");
            let err = (got - v) as f64 / v as f64;
            assert!(err <= 1.0 / 128.0, "{v}: relative error {err}");
        }
    }
}

#[test]
fn the_largest_values_are_counted() {
    let mut h = Histogram::new();
    h.record(1);
    h.record(u64::MAX);
    assert_eq!(h.count(), 2);
    // The top bucket ends one short of u64::MAX in the crate's arithmetic.
    assert!(h.percentile(100.0) >= Some(u64::MAX - 1));
    assert_eq!(h.percentile(50.0), Some(1));
    assert_eq!(h.summary().map(|s| s.max), Some(u64::MAX as f64 / 1e6));
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
