//! The autoscaling simulator (`bench/autoscale/`), checked: its Knative autoscaler rules on
//! their own, then short scenarios with flowbridge's real dispatcher against the modelled
//! Flow — no event lost, none answered 2xx without a Flow run, back to zero after the load,
//! and the scale-aware delivery of `autoscale:` gateways doing what docs/delivery.md says.
//! Virtual time: each scenario takes well under a second.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../bench/autoscale/duration.rs"]
mod duration;
#[path = "../bench/autoscale/knative.rs"]
mod knative;
#[path = "../bench/autoscale/kpa.rs"]
mod kpa;
#[path = "../bench/autoscale/report.rs"]
mod report;
#[path = "../bench/autoscale/scenario.rs"]
mod scenario;

use std::time::Duration;

use kpa::{Buckets, Kpa, KpaSpec};
use report::{Summary, simulate};
use scenario::{ClientKind, Scenario};

#[test]
fn fresh_window_is_not_diluted() {
    let mut b = Buckets::new(Duration::from_secs(60));
    b.record(10, 4.0);
    b.record(11, 2.0);
    assert_eq!(b.average(11), 3.0);
    // 70 s later nothing is left.
    assert_eq!(b.average(80), 0.0);
}

#[test]
fn ten_requests_at_target_two_want_eight_pods() {
    let spec = KpaSpec {
        target: 2.0,
        max_scale: 10,
        ..KpaSpec::default()
    };
    let mut kpa = Kpa::new(spec);
    for s in 0..10 {
        kpa.record(s, 10.0);
    }
    let d = kpa.tick(Duration::from_secs(10), 1, 1);
    // ceil(10 / 1.4) = 8; 8 / 1 ≥ 2: panic.
    assert_eq!(d.pods, 8);
    assert!(d.panicking);
}

#[test]
fn zero_waits_the_grace_period() {
    let mut kpa = Kpa::new(KpaSpec::default());
    kpa.record(0, 1.0);
    let mut t = Duration::from_secs(62);
    assert_eq!(kpa.tick(t, 1, 1).pods, 1);
    t += Duration::from_secs(29);
    assert_eq!(kpa.tick(t, 1, 1).pods, 1);
    t += Duration::from_secs(1);
    assert_eq!(kpa.tick(t, 1, 1).pods, 0);
}

fn scenario(file: &str) -> Scenario {
    let path = format!(
        "{}/bench/autoscale/scenarios/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("scenario file");
    serde_norway::from_str(&text).expect("scenario parses")
}

fn both(s: &Scenario) -> (Summary, Summary) {
    let direct = simulate(s, ClientKind::Direct).expect("direct run").0;
    let bridge = simulate(s, ClientKind::Flowbridge)
        .expect("flowbridge run")
        .0;
    assert!(!s.about.is_empty());
    for run in [&direct, &bridge] {
        assert_eq!(run.lost, 0, "{} / {}: events lost", s.name, run.client);
        assert_eq!(
            run.unprocessed_ok, 0,
            "{} / {}: answered 2xx without a Flow run",
            s.name, run.client
        );
    }
    eprintln!(
        "{}: direct {direct:?}\n{}: flowbridge {bridge:?}",
        s.name, s.name
    );
    (direct, bridge)
}

/// The seed: flowbridge serves the same senders with far fewer replica-seconds, no worse p99,
/// and lets the Flow go back to zero as soon as the direct client does.
#[test]
fn seed_uses_fewer_replica_seconds_and_goes_back_to_zero() {
    let s = scenario("1-seed.yaml");
    let (direct, bridge) = both(&s);
    assert!(bridge.events >= direct.events, "{bridge:?}");
    assert!(
        bridge.replica_seconds * 2.0 <= direct.replica_seconds,
        "{bridge:?}"
    );
    assert!(bridge.p99_ms <= direct.p99_ms, "{bridge:?}");
    // Stable window (60 s) + grace (30 s) + the last pod's drain (30 s), to the next tick.
    let zero = bridge.back_to_zero_s.expect("back to zero");
    assert!(zero <= 123.0, "{zero}");
}

/// A backlog into a Flow whose latency does not grow with documents: one request per batch,
/// and at least 5× the direct client's drain rate.
#[test]
fn heavy_backlog_drains_five_times_faster() {
    let s = scenario("3b-kafka-backlog-heavy.yaml");
    let (direct, bridge) = both(&s);
    assert!(
        bridge.events_per_second >= 5.0 * direct.events_per_second,
        "{bridge:?} vs {direct:?}"
    );
}

/// A backlog into a Flow whose latency grows with documents: `autoscale:` shares it between
/// more requests than the latency limit alone, so Knative adds replicas, and it drains faster
/// than with the same gateway told nothing of the autoscaling.
#[test]
fn model_backlog_scales_out_with_autoscale() {
    let mut s = scenario("3-kafka-backlog.yaml");
    let (_, aware) = both(&s);
    s.flowbridge.autoscale = false;
    let (_, blind) = both(&s);
    assert!(
        aware.max_replicas > blind.max_replicas,
        "{aware:?} vs {blind:?}"
    );
    assert!(
        aware.events_per_second > 1.5 * blind.events_per_second,
        "{aware:?} vs {blind:?}"
    );
}

/// One event a minute: flowbridge keeps the Flow awake no longer than the direct client.
#[test]
fn ping_holds_the_flow_no_longer() {
    let s = scenario("4-ping.yaml");
    let (direct, bridge) = both(&s);
    assert!(
        bridge.replica_seconds <= direct.replica_seconds,
        "{bridge:?}"
    );
    assert_eq!(bridge.flow_requests, direct.flow_requests);
}
