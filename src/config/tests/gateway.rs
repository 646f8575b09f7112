//! `gateways:` entries: URLs, names, durations, delivery settings (`batch`, `retry`, `rate`,
//! `max_pending`), `docarray` and `concurrency`.

use std::time::Duration;

use super::*;
use crate::model::Concurrency;

// ---------------------------------------------------------------- gateways

#[test]
fn bad_duration() {
    let gw = |t: &str| {
        format!(
            "gateways:\n  default: {{url: \"grpc://h:1\", timeout: {t}}}\nroutes: [{{name: r}}]\n"
        )
    };
    one_error(
        &gw("soon"),
        "gateways.default.timeout: expected a duration such as 60s",
    );
    one_error(
        &gw("0s"),
        "gateways.default.timeout: must be greater than 0",
    );
    one_error(
        &gw("30"),
        "gateways.default.timeout: 30 needs a unit, e.g. 30s",
    );
}

#[test]
fn bad_gateway_urls() {
    let gw = |u: &str| format!("gateways:\n  default: {{url: \"{u}\"}}\nroutes: [{{name: r}}]\n");
    one_error(
        &gw("ftp://h:1"),
        "gateways.default.url: unsupported scheme ftp:// in \"ftp://h:1\"; use grpc://",
    );
    one_error(
        &gw("grpc://h"),
        "gateways.default.url: \"grpc://h\" has no port",
    );
    one_error(
        &gw("h:1"),
        "gateways.default.url: \"h:1\" has no scheme; expected grpc://host:port",
    );
    one_error(&gw("127.0.0.1"), "gateways.default.url: ");
    one_error(
        &gw("grpc://h:1/path"),
        "gateways.default.url: \"grpc://h:1/path\": a gateway URL has no path",
    );
    one_error(&gw(""), "gateways.default.url: ");
    one_error(
        "gateways:\n  default: {timeout: 5s}\nroutes: [{name: r}]\n",
        "gateways.default.url: required",
    );
    // A trailing slash is normalised away.
    let c = ok(&gw("grpc://h:1/"));
    assert_eq!(c.gateways["default"].url, "grpc://h:1");
}

#[test]
fn no_gateways() {
    one_error(
        "routes: [{name: r}]\n",
        "gateways: at least one gateway is required",
    );
}

#[test]
fn unknown_gateway() {
    one_error(
        &with_routes("  - name: r\n    gateway: x\n"),
        "routes[0].gateway: unknown gateway \"x\" (known: default)",
    );
}

#[test]
fn ambiguous_gateway() {
    let yaml = "gateways:\n  b: {url: \"grpc://b:1\"}\n  a: {url: \"grpc://a:1\"}\n\
                routes:\n  - name: r\n  - name: s\n    gateway: b\n";
    one_error(
        yaml,
        "routes[0].gateway: required when several gateways are defined (known: a, b)",
    );
}

#[test]
fn bad_gateway_name() {
    one_error(
        "gateways:\n  Main: {url: \"grpc://h:1\"}\nroutes: [{name: r}]\n",
        "gateways.Main: invalid gateway name \"Main\"",
    );
}

// ---------------------------------------------------------------- delivery settings

#[test]
fn delivery_settings_default() {
    let c = ok(&with_routes("  - name: r\n"));
    let gw = &c.gateways["default"];
    assert_eq!(gw.connect_timeout, Duration::from_secs(120));
    assert_eq!(gw.concurrency, Concurrency::Auto { min: 1, max: 64 });
    assert_eq!(gw.rate, None);
    assert_eq!(gw.max_pending, 10_000);
    assert_eq!(gw.batch, crate::model::BatchSpec::default());
    assert_eq!(gw.batch.max_docs, 512);
    assert_eq!(gw.batch.max_bytes, 4 << 20);
    assert_eq!(gw.batch.linger, Duration::ZERO);
    assert_eq!(gw.retry.initial_backoff, Duration::from_millis(100));
    assert_eq!(gw.retry.max_backoff, Duration::from_secs(5));
    assert_eq!(gw.retry.codes, vec!["UNAVAILABLE".to_string()]);
    assert_eq!(c.rules.routes[0].dedup, None);
    assert_eq!(c.shutdown_grace, Duration::from_secs(30));
}

#[test]
fn delivery_settings_as_in_the_issue_validate() {
    let c = ok(r#"
gateways:
  default:
    url: grpc://127.0.0.1:54321
    timeout: 60s
    connect_timeout: 2m
    concurrency: 4
    rate: 12.5
    max_pending: 500
    batch: { max_docs: 32, max_bytes: 1MiB, linger: 5ms }
    retry: { initial_backoff: 50ms, max_backoff: 2s, codes: [UNAVAILABLE, resource_exhausted] }
routes:
  - name: r
    dedup: 5m
shutdown_grace: 45s
"#);
    let gw = &c.gateways["default"];
    assert_eq!(gw.connect_timeout, Duration::from_secs(120));
    assert_eq!(
        (gw.concurrency, gw.rate, gw.max_pending),
        (Concurrency::Fixed(4), Some(12.5), 500)
    );
    assert_eq!(gw.batch.max_docs, 32);
    assert_eq!(gw.batch.max_bytes, 1 << 20);
    assert_eq!(gw.batch.linger, Duration::from_millis(5));
    assert_eq!(gw.retry.initial_backoff, Duration::from_millis(50));
    assert_eq!(gw.retry.max_backoff, Duration::from_secs(2));
    assert_eq!(
        gw.retry.codes,
        vec!["UNAVAILABLE".to_string(), "RESOURCE_EXHAUSTED".to_string()]
    );
    assert_eq!(c.rules.routes[0].dedup, Some(Duration::from_secs(300)));
    assert_eq!(c.shutdown_grace, Duration::from_secs(45));
    let c = ok(
        "gateways:\n  default: {url: \"grpc://127.0.0.1:1\", rate: null, batch: {linger: 0}}\nroutes: [{name: r}]\n",
    );
    assert_eq!(c.gateways["default"].rate, None);
    assert_eq!(c.gateways["default"].batch.linger, Duration::ZERO);
}

#[test]
fn bad_delivery_settings_are_all_reported_with_paths() {
    let errs = errors(
        r#"
gateways:
  default:
    url: grpc://127.0.0.1:54321
    connect_timeout: 0s
    concurrency: 0
    rate: -1
    max_pending: lots
    batch: { max_docs: 0, max_bytes: 1KiB, linger: soon }
    retry: { initial_backoff: 2s, max_backoff: 1s, codes: [UNAVAILABLE, OK, NOPE] }
routes:
  - name: r
    dedup: 5
shutdown_grace: forever
"#,
    );
    let expect = [
        "gateways.default.connect_timeout: must be greater than 0",
        "gateways.default.concurrency: expected a whole number from 1 to 100000, got 0",
        "gateways.default.rate: expected a positive number of requests per second",
        "gateways.default.max_pending: expected a whole number from 1 to 100000000, got lots",
        "gateways.default.batch.max_docs: expected a whole number",
        "gateways.default.batch.max_bytes: must be at least 64KiB",
        "gateways.default.batch.linger: expected a duration",
        "gateways.default.retry.max_backoff: must not be below initial_backoff (1s < 2s)",
        "gateways.default.retry.codes[1]: expected a gRPC status code name other than OK",
        "gateways.default.retry.codes[2]: expected a gRPC status code name other than OK",
        "routes[0].dedup: 5 needs a unit",
        "shutdown_grace: expected a duration",
    ];
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
    for prefix in expect {
        assert!(
            errs.iter().any(|e| e.starts_with(prefix)),
            "no error starting with {prefix:?} in {errs:#?}"
        );
    }
}

#[test]
fn unknown_delivery_keys_are_rejected() {
    let errs = errors(
        "gateways:\n  default: {url: \"grpc://127.0.0.1:1\", batch: {max_doc: 3}}\nroutes: [{name: r}]\n",
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].contains("unknown field `max_doc`"), "{errs:#?}");
    assert!(errs[0].contains("max_docs"), "{errs:#?}");
}

#[test]
fn docarray_defaults_to_auto_and_rejects_other_values() {
    let gw = |d: &str| {
        format!("gateways:\n  default: {{url: \"grpc://h:1\"{d}}}\nroutes: [{{name: r}}]\n")
    };
    let c = parse(&gw("")).expect("valid");
    assert_eq!(
        c.gateways["default"].docarray,
        crate::model::DocarrayMode::Auto
    );
    let c = parse(&gw(", docarray: v2")).expect("valid");
    assert_eq!(
        c.gateways["default"].docarray,
        crate::model::DocarrayMode::V2
    );
    let c = parse(&gw(", docarray: v1")).expect("valid");
    assert_eq!(
        c.gateways["default"].docarray,
        crate::model::DocarrayMode::V1
    );
    one_error(
        &gw(", docarray: v3"),
        "gateways.default.docarray: expected v1 (docarray < 0.30), v2 (docarray >= 0.30) or auto",
    );
}

// ---------------------------------------------------------------- concurrency

#[test]
fn concurrency_is_auto_by_default_with_bounds_or_fixed() {
    let gw = |c: &str| {
        ok(&format!(
            "gateways:\n  default: {{url: \"grpc://h:1\", concurrency: {c}}}\nroutes: [{{name: r}}]\n"
        ))
        .gateways["default"]
            .concurrency
    };
    assert_eq!(gw("auto"), Concurrency::Auto { min: 1, max: 64 });
    assert_eq!(gw("{min: 2, max: 8}"), Concurrency::Auto { min: 2, max: 8 });
    assert_eq!(gw("{max: 8}"), Concurrency::Auto { min: 1, max: 8 });
    assert_eq!(gw("{min: 100}"), Concurrency::Auto { min: 100, max: 100 });
    assert_eq!(gw("8"), Concurrency::Fixed(8));
    let errs = errors(
        "gateways:\n  a: {url: \"grpc://h:1\", concurrency: fast}\n  \
         b: {url: \"grpc://h:2\", concurrency: {min: 5, max: 2}}\n  \
         c: {url: \"grpc://h:3\", concurrency: {mni: 1}}\n  \
         d: {url: \"grpc://h:4\", concurrency: 0}\n\
         routes: [{name: r, gateway: a}]\n",
    );
    let expected = [
        "gateways.a.concurrency: expected auto, {min: N, max: N} or a whole number",
        "gateways.b.concurrency.min: min 5 is above max 2",
        "gateways.c.concurrency.mni: unknown key",
        "gateways.d.concurrency: expected a whole number from 1 to 100000, got 0",
    ];
    assert_eq!(errs.len(), expected.len(), "{errs:#?}");
    for (err, prefix) in errs.iter().zip(expected) {
        assert!(err.starts_with(prefix), "expected {prefix:?}, got {err:?}");
    }
}

// ---------------------------------------------------------------- autoscale

#[test]
fn autoscale_sets_the_default_concurrency_bound() {
    let gw = |extra: &str| {
        ok(&format!(
            "gateways:\n  default: {{url: \"grpc://h:1\"{extra}}}\nroutes: [{{name: r}}]\n"
        ))
        .gateways["default"]
            .clone()
    };
    let g = gw(", autoscale: {target: 2, max_scale: 10}");
    assert_eq!(
        g.autoscale,
        Some(crate::model::Autoscale {
            target: 2.0,
            max_scale: 10
        })
    );
    // Every replica at its target: 10 × 2 requests.
    assert_eq!(g.concurrency, Concurrency::Auto { min: 1, max: 20 });
    // `auto` and a `min` alone take the same bound; an explicit max or number stays;
    // unlimited max-scale keeps the default bound; the bound stops at 100,000.
    let g = gw(", autoscale: {target: 2, max_scale: 10}, concurrency: auto");
    assert_eq!(g.concurrency, Concurrency::Auto { min: 1, max: 20 });
    let g = gw(", autoscale: {target: 2, max_scale: 10}, concurrency: {min: 4}");
    assert_eq!(g.concurrency, Concurrency::Auto { min: 4, max: 20 });
    let g = gw(", autoscale: {target: 2, max_scale: 10}, concurrency: {max: 8}");
    assert_eq!(g.concurrency, Concurrency::Auto { min: 1, max: 8 });
    let g = gw(", autoscale: {target: 2, max_scale: 10}, concurrency: 4");
    assert_eq!(g.concurrency, Concurrency::Fixed(4));
    let g = gw(", autoscale: {target: 50, max_scale: 10000}");
    assert_eq!(
        g.concurrency,
        Concurrency::Auto {
            min: 1,
            max: 100_000
        }
    );
    let g = gw(", autoscale: {target: 0.5}");
    assert_eq!(g.concurrency, Concurrency::Auto { min: 1, max: 64 });
    assert_eq!(gw("").autoscale, None);
    let errs = errors(
        "gateways:\n  a: {url: \"grpc://h:1\", autoscale: 2}\n  \
         b: {url: \"grpc://h:2\", autoscale: {max_scale: 3}}\n  \
         c: {url: \"grpc://h:3\", autoscale: {target: -1, max_scale: many, min_scale: 0}}\n\
         routes: [{name: r, gateway: a}]\n",
    );
    let expected = [
        "gateways.a.autoscale: expected {target: N, max_scale: N}",
        "gateways.b.autoscale.target: required: the Flow's autoscaling.knative.dev/target",
        "gateways.c.autoscale.min_scale: unknown key; autoscale takes target and max_scale",
        "gateways.c.autoscale.target: expected a positive number of requests per replica, got -1",
        "gateways.c.autoscale.max_scale: expected a whole number of replicas from 0",
    ];
    assert_eq!(errs.len(), expected.len(), "{errs:#?}");
    for prefix in expected {
        assert!(
            errs.iter().any(|e| e.starts_with(prefix)),
            "expected {prefix:?} in {errs:#?}"
        );
    }
}
