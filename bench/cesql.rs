//! CESQL filter evaluation speed: a typical Trigger expression,
//! `type = '…' AND source LIKE '/shop/%' AND EXISTS subject`, per event, against the same match
//! written as `exact`/`prefix` filters (the baseline, measured in the same run). Target: ≤ 1 µs
//! per evaluation.
//!
//!   cargo bench --bench cesql
//!
//! Prints ns per evaluation (median of several rounds) for a matching and a non-matching event,
//! the ratio CESQL / exact+prefix, and how long compiling the expression takes. Exits non-zero
//! if a CESQL evaluation takes more than 1 µs.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use flowbridge::model::{CloudEvent, ExtValue, SpecVersion};
use flowbridge::rules::cesql::Expression;
use flowbridge::rules::filter::Filter;

const EXPRESSION: &str =
    "type = 'com.example.order.created' AND source LIKE '/shop/%' AND EXISTS subject";
const ROUNDS: usize = 15;
const ITERATIONS: usize = 200_000;

fn event(source: &str) -> CloudEvent {
    let mut extensions = BTreeMap::new();
    extensions.insert(
        "knativearrivaltime".to_string(),
        ExtValue::String("2026-01-01T00:00:00Z".into()),
    );
    extensions.insert(
        "traceparent".to_string(),
        ExtValue::String("00-4bf9-01".into()),
    );
    CloudEvent {
        specversion: SpecVersion::V10,
        id: "5f0b0b1c-0000-4000-8000-000000000001".into(),
        source: source.into(),
        ty: "com.example.order.created".into(),
        datacontenttype: Some("application/json".into()),
        dataschema: None,
        subject: Some("orders/1001".into()),
        time: Some("2026-01-01T00:00:00Z".into()),
        extensions,
        data: None,
    }
}

/// Median ns per call of `f` over [`ROUNDS`] rounds of [`ITERATIONS`] calls.
fn ns_per_call(mut f: impl FnMut() -> bool) -> f64 {
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            let mut hits = 0usize;
            for _ in 0..ITERATIONS {
                hits += usize::from(black_box(f()));
            }
            black_box(hits);
            start.elapsed().as_nanos() as f64 / ITERATIONS as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[ROUNDS / 2]
}

fn main() -> ExitCode {
    let cesql = match Expression::compile(EXPRESSION) {
        Ok(e) => Filter::Cesql(e),
        Err(e) => {
            eprintln!("cannot compile the benchmark expression: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The same match as Knative `exact`/`prefix` filters (all must match, in order). A prefix
    // "" on subject is "subject exists".
    let baseline = [
        Filter::Exact {
            attribute: "type".into(),
            value: "com.example.order.created".into(),
        },
        Filter::Prefix {
            attribute: "source".into(),
            value: "/shop/".into(),
        },
        Filter::Prefix {
            attribute: "subject".into(),
            value: String::new(),
        },
    ];
    let hit = event("/shop/eu");
    let miss = event("/store/eu");
    assert!(cesql.matches(&hit) && baseline.iter().all(|f| f.matches(&hit)));
    assert!(!cesql.matches(&miss) && !baseline.iter().all(|f| f.matches(&miss)));

    println!("CESQL filter: {EXPRESSION}");
    println!("baseline:     exact type, prefix source, prefix \"\" subject");
    println!("{ROUNDS} rounds x {ITERATIONS} evaluations, median round\n");
    println!(
        "{:<22} {:>12} {:>16} {:>8}",
        "event", "cesql ns", "exact+prefix ns", "ratio"
    );
    let mut worst: f64 = 0.0;
    for (name, e) in [("matching", &hit), ("non-matching (source)", &miss)] {
        let c = ns_per_call(|| cesql.matches(black_box(e)));
        let b = ns_per_call(|| baseline.iter().all(|f| f.matches(black_box(e))));
        worst = worst.max(c);
        println!("{name:<22} {c:>12.1} {b:>16.1} {:>8.2}", c / b);
    }

    println!("\nparts of the expression (matching event):");
    for part in [
        "TRUE",
        "type = 'com.example.order.created'",
        "source LIKE '/shop/%'",
        "EXISTS subject",
    ] {
        let Ok(expression) = Expression::compile(part) else {
            eprintln!("cannot compile {part}");
            return ExitCode::FAILURE;
        };
        let c = ns_per_call(|| expression.matches(black_box(&hit)) == Ok(true));
        println!("  {part:<40} {c:>8.1} ns");
    }

    let start = Instant::now();
    let n = 20_000;
    for _ in 0..n {
        black_box(Expression::compile(black_box(EXPRESSION)).is_ok());
    }
    let compile_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!("\ncompile (once per config load): {compile_us:.2} µs");

    if worst > 1000.0 {
        println!("FAIL: a CESQL evaluation took {worst:.1} ns, over the 1 µs target");
        ExitCode::FAILURE
    } else {
        println!("ok: CESQL evaluation ≤ 1 µs (worst median {worst:.1} ns)");
        ExitCode::SUCCESS
    }
}
