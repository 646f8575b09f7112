//! Tests of `crate::dispatch::limit`.

use super::*;

const MS: Duration = Duration::from_millis(1);

fn auto(min: usize, max: usize) -> Limiter {
    Limiter::new(Mode::Auto { min, max })
}

/// A Flow with `parallel` slots: a request of `docs` documents takes `base + per_doc × docs`
/// when at most `parallel` are in flight, and proportionally longer beyond (they queue).
fn flow_latency(in_flight: usize, parallel: usize, docs: usize) -> Duration {
    let service = 2.0 + 0.05 * docs as f64;
    let waves = in_flight.div_ceil(parallel).max(1) as f64;
    Duration::from_secs_f64(service * waves / 1000.0)
}

/// Run a saturated gateway (always as many in flight as the limit) for `samples` answers.
fn saturate(limiter: &mut Limiter, parallel: usize, docs: usize, samples: usize) -> Vec<usize> {
    let mut now = Instant::now();
    let mut limits = Vec::new();
    for _ in 0..samples {
        let in_flight = limiter.limit();
        let latency = flow_latency(in_flight, parallel, docs);
        now += latency / in_flight as u32;
        limiter.on_sample(now, latency, docs, in_flight, Outcome::Answered);
        limits.push(limiter.limit());
    }
    limits
}

use crate::telemetry::metrics::LIMIT_REASONS;

#[test]
fn the_metrics_know_every_reason() {
    let names: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(names, LIMIT_REASONS);
}

#[test]
fn size_classes_are_powers_of_two() {
    let classes: Vec<usize> = [0, 1, 2, 3, 4, 7, 8, 64, 65, 1 << 20]
        .iter()
        .map(|&d| class_of(d))
        .collect();
    assert_eq!(classes, [0, 0, 1, 1, 2, 2, 3, 6, 6, 15]);
}

#[test]
fn fixed_never_moves() {
    let mut l = Limiter::new(Mode::Fixed(16));
    assert_eq!(saturate(&mut l, 1, 8, 200).last(), Some(&16));
    assert_eq!(l.reason(), Reason::Start);
    // It still learns the no-load latency (for the metrics).
    assert!(l.no_load(8).is_some());
}

#[test]
fn a_serial_flow_settles_at_two_or_three() {
    let mut l = auto(1, 64);
    let limits = saturate(&mut l, 1, 32, 400);
    let tail = &limits[300..];
    assert!(tail.iter().all(|&n| (2..=3).contains(&n)), "{tail:?}");
}

#[test]
fn a_parallel_flow_grows_to_its_parallelism() {
    let mut l = auto(1, 64);
    let limits = saturate(&mut l, 16, 8, 3000);
    let last = limits[limits.len() - 1];
    assert!(
        (16..=19).contains(&last),
        "{last} ({:?})",
        &limits[limits.len() - 20..]
    );
    assert!(
        limits.windows(2).all(|w| w[0].abs_diff(w[1]) <= 1),
        "steps of one"
    );
}

#[test]
fn an_idle_gateway_does_not_grow() {
    let mut l = auto(1, 64);
    let mut now = Instant::now();
    // One request at a time, limit 3: never half used.
    l.limit = 3;
    for _ in 0..500 {
        now += 10 * MS;
        l.on_sample(now, 2 * MS, 1, 1, Outcome::Answered);
    }
    assert_eq!(l.limit(), 3);
}

#[test]
fn sustained_load_does_not_age_the_no_load_latency_out() {
    let mut l = auto(1, 64);
    let mut now = Instant::now();
    l.on_sample(now, 2 * MS, 8, 1, Outcome::Answered);
    // Ten windows of queueing (4 in flight, 4× the latency): the minimum stays.
    for _ in 0..100 {
        now += 3 * 1000 * MS;
        l.on_sample(now, 8 * MS, 8, 4, Outcome::Answered);
    }
    assert_eq!(l.no_load(8), Some(0.002));
}

#[test]
fn bigger_batches_are_not_mistaken_for_queueing() {
    let mut l = auto(1, 64);
    let mut now = Instant::now();
    // Small requests first, then large ones that take longer only because of their size.
    for docs in [1, 1, 1, 1, 64, 64, 64, 64, 64, 64, 64, 64] {
        now += 10 * MS;
        let latency = Duration::from_secs_f64((2.0 + 0.05 * docs as f64) / 1000.0);
        l.on_sample(now, latency, docs, l.limit(), Outcome::Answered);
    }
    assert!(l.ratio().unwrap() < 1.5, "{:?}", l.ratio());
    assert!(l.limit() >= INITIAL, "{}", l.limit());
}

#[test]
fn a_timeout_halves_within_bounds() {
    let mut l = auto(3, 64);
    assert_eq!(l.limit(), 3, "starts at min");
    l.limit = 7;
    let now = Instant::now();
    assert_eq!(
        l.on_sample(now, Duration::from_secs(60), 8, 4, Outcome::Timeout),
        Some(Reason::Timeout)
    );
    assert_eq!(l.limit(), 3, "halved, not below min");
    // Other failures say nothing.
    assert_eq!(l.on_sample(now, MS, 8, 3, Outcome::Other), None);
}

#[test]
fn the_no_load_latency_is_relearnt_after_two_windows() {
    let mut l = auto(1, 64);
    let mut now = Instant::now();
    l.on_sample(now, 2 * MS, 4, 1, Outcome::Answered);
    assert_eq!(l.no_load(4), Some(0.002));
    // The Flow became slower for good (a bigger model): remembered low for a while ...
    now += WINDOW + MS;
    l.on_sample(now, 10 * MS, 4, 1, Outcome::Answered);
    assert_eq!(l.no_load(4), Some(0.002));
    // ... then the old minimum ages out.
    now += WINDOW + MS;
    l.on_sample(now, 10 * MS, 4, 1, Outcome::Answered);
    assert_eq!(l.no_load(4), Some(0.010));
}

#[test]
fn a_first_sample_of_a_bigger_class_is_capped_by_the_smaller_ones() {
    let mut l = auto(1, 64);
    let now = Instant::now();
    l.on_sample(now, 2 * MS, 1, 1, Outcome::Answered);
    // 64 documents (class 6) taken under heavy queueing: 1 s; the bound is 2 ms × 2^7.
    l.on_sample(now, Duration::from_secs(1), 64, 1, Outcome::Answered);
    assert_eq!(l.no_load(64), Some(0.002 * 128.0));
}

/// Per-request against per-document cost, from the fastest request of each size class.
#[test]
fn efficiency_from_the_smallest_and_largest_classes() {
    let now = Instant::now();
    let mut l = auto(1, 20);
    assert_eq!(l.efficiency(), Efficiency::Unknown);
    // 20 ms + 2 ms per document.
    l.on_sample(now, 22 * MS, 1, 1, Outcome::Answered);
    assert_eq!(l.efficiency(), Efficiency::Unknown);
    l.on_sample(now, 520 * MS, 250, 1, Outcome::Answered);
    // a / (0.25 · b) = 20 / 0.5 = 40 documents.
    assert_eq!(l.efficiency(), Efficiency::AtLeast(40));

    // Latency that does not grow with documents (the seed's 3 s executor).
    let mut flat = auto(1, 20);
    flat.on_sample(now, 3000 * MS, 2, 1, Outcome::Answered);
    flat.on_sample(now, 3001 * MS, 20, 1, Outcome::Answered);
    assert_eq!(flat.efficiency(), Efficiency::Flat);
}

/// A small request that waited for a cold start (slower than a larger one) is left out, and
/// requests sent while an autoscaled Flow was waking teach nothing.
#[test]
fn cold_samples_do_not_count() {
    let now = Instant::now();
    let mut l = auto(1, 20);
    l.on_sample(now, 15_000 * MS, 1, 1, Outcome::Answered);
    l.on_sample(now, 520 * MS, 250, 1, Outcome::Answered);
    assert_eq!(l.efficiency(), Efficiency::Unknown);
    let mut w = auto(1, 20);
    w.on_sample(now, 15_000 * MS, 500, 1, Outcome::Waking);
    assert_eq!(w.no_load(500), None);
    assert_eq!(w.limit(), 1);
}
