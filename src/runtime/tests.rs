//! Tests of [`Runtime::build`]: what a reload keeps and rebuilds, with and without `state:`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::config::{Overrides, from_yaml};

fn config(yaml: &str) -> Config {
    from_yaml(yaml, "test.yaml", &Overrides::default()).unwrap()
}

const BASE: &str = "
gateways:
  a: {url: \"grpc://127.0.0.1:1\"}
  b: {url: \"grpc://127.0.0.1:2\"}
  gone: {url: \"grpc://127.0.0.1:3\"}
routes:
  - {name: keep, gateway: a, dedup: 5m}
  - {name: shorter, gateway: b, dedup: 5m}
";

#[tokio::test]
async fn unchanged_gateways_and_windows_are_kept_changed_ones_rebuilt() {
    let metrics = Metrics::new([], []);
    let (first, changes) = Runtime::build(config(BASE), "h1".into(), None, &metrics).unwrap();
    assert_eq!(first.generation, 1);
    assert_eq!(changes.rebuilt, ["a", "b", "gone"]);
    let next = config(
        "
listen: 127.0.0.1:9999
admin_listen: off
gateways:
  a: {url: \"grpc://127.0.0.1:1\"}
  b: {url: \"grpc://127.0.0.1:2\", concurrency: 3}
  new: {url: \"grpc://127.0.0.1:4\"}
routes:
  - {name: keep, gateway: a, dedup: 5m}
  - {name: shorter, gateway: b, dedup: 1m}
  - {name: added, gateway: new}
",
    );
    let (second, changes) = Runtime::build(next, "h2".into(), Some(&first), &metrics).unwrap();
    assert_eq!(second.generation, 2);
    assert_eq!(second.hash, "h2");
    assert_eq!(changes.kept, ["a"]);
    assert_eq!(changes.rebuilt, ["b", "new"]);
    assert_eq!(changes.removed, ["gone"]);
    assert_eq!(changes.need_restart, ["listen", "admin_listen"]);
    // The running listeners' addresses stay in the effective config.
    assert_eq!(second.config.listen, first.config.listen);
    assert_eq!(second.config.admin_listen, first.config.admin_listen);
    assert!(Arc::ptr_eq(
        &first.dispatchers["a"],
        &second.dispatchers["a"]
    ));
    assert!(!Arc::ptr_eq(
        &first.dispatchers["b"],
        &second.dispatchers["b"]
    ));
    assert_eq!(
        second.dispatchers["b"].client().spec.concurrency,
        crate::model::Concurrency::Fixed(3)
    );
    assert!(Arc::ptr_eq(&first.dedup["keep"], &second.dedup["keep"]));
    assert!(!Arc::ptr_eq(
        &first.dedup["shorter"],
        &second.dedup["shorter"]
    ));
    assert!(!second.dedup.contains_key("added"));
    // The new route and gateway have series of their own.
    metrics.route("added").matched.inc();
    assert_eq!(metrics.route("added").matched.get(), 1);
    assert_eq!(
        metrics
            .route(crate::telemetry::metrics::NO_ROUTE)
            .matched
            .get(),
        0
    );
    assert!(metrics.gateway("new").is_some());
}

#[test]
fn hash_is_the_sha256_prefix() {
    // sha256("") = e3b0c44298fc1c149afbf4c8996fb924…
    assert_eq!(hash(b""), "e3b0c44298fc1c14");
}

#[tokio::test]
async fn with_state_windows_and_rates_are_shared_and_kept_while_state_is_unchanged() {
    let metrics = Metrics::new([], []);
    let with_state = |prefix: &str| {
        config(&format!(
            "
gateways:
  a: {{url: \"grpc://127.0.0.1:1\", rate: 5}}
routes:
  - {{name: keep, gateway: a, dedup: 5m}}
state: {{redis: \"redis://127.0.0.1:1/0\", key_prefix: \"{prefix}\"}}
"
        ))
    };
    // No Redis on port 1: the store connects lazily, so building (and starting) works.
    let (first, _) = Runtime::build(with_state("p1:"), "h1".into(), None, &metrics).unwrap();
    assert!(first.dedup["keep"].shared_window().is_some());
    assert!(first.state_gauges().is_some());
    let (same, changes) =
        Runtime::build(with_state("p1:"), "h2".into(), Some(&first), &metrics).unwrap();
    assert_eq!(changes.kept, ["a"]);
    assert!(Arc::ptr_eq(
        first.state.as_ref().unwrap(),
        same.state.as_ref().unwrap()
    ));
    assert!(Arc::ptr_eq(&first.dedup["keep"], &same.dedup["keep"]));
    // Another `state:`: a new connection, and every window and dispatcher built on it.
    let (moved, changes) =
        Runtime::build(with_state("p2:"), "h3".into(), Some(&same), &metrics).unwrap();
    assert_eq!(changes.rebuilt, ["a"]);
    assert!(!Arc::ptr_eq(
        same.state.as_ref().unwrap(),
        moved.state.as_ref().unwrap()
    ));
    assert!(!Arc::ptr_eq(&same.dedup["keep"], &moved.dedup["keep"]));
    // Without `state:`, each window is the process's own again.
    let (alone, _) = Runtime::build(config(BASE), "h4".into(), Some(&moved), &metrics).unwrap();
    assert!(alone.dedup["keep"].shared_window().is_none());
    assert!(alone.state.is_none() && alone.state_gauges().is_none());
}
