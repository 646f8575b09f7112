//! The CloudEvents SQL v1.0.0 TCK (tests/fixtures/cesql-tck/, see its SOURCES.md), run against
//! the CESQL engine: every case of every file, asserting the expected value and error kind.
//! Plus fuzz-style properties: the parser and evaluator never panic, on arbitrary text, bytes
//! and mutations of the TCK expressions. Run with `--nocapture` to see the counts.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use flowbridge::cloudevents;
use flowbridge::model::CloudEvent;
use flowbridge::rules::cesql::{ErrorKind, Expression, Value};
use serde_json::{Map, Value as Json, json};
use serde_norway::Value as Yaml;

fn tck_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cesql-tck")
}

/// A YAML scalar as text (`expression: TRUE` and `expression: 0` are not strings in YAML).
fn scalar_text(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Number(n) => n.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

struct Case {
    file: String,
    name: String,
    expression: String,
    result: Option<Yaml>,
    error: Option<String>,
    event: CloudEvent,
}

fn base_event() -> Map<String, Json> {
    let Json::Object(map) = json!({
        "specversion": "1.0",
        "id": "tck-id",
        "source": "/tck",
        "type": "tck.type",
    }) else {
        unreachable!()
    };
    map
}

fn load_cases() -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(tck_dir())
        .expect("tck dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 18, "the TCK has 18 files");
    let mut cases = Vec::new();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let doc: Yaml =
            serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).expect("yaml");
        for test in doc["tests"].as_sequence().expect("tests list") {
            let event_json = match (test.get("event"), test.get("eventOverrides")) {
                (Some(event), _) => serde_json::to_value(event).expect("event as json"),
                (None, Some(overrides)) => {
                    let mut map = base_event();
                    let Json::Object(o) = serde_json::to_value(overrides).unwrap() else {
                        panic!("{file}: eventOverrides must be a map")
                    };
                    map.extend(o);
                    Json::Object(map)
                }
                (None, None) => Json::Object(base_event()),
            };
            let event = cloudevents::from_json(&event_json)
                .unwrap_or_else(|e| panic!("{file}: bad event {event_json}: {e}"));
            cases.push(Case {
                file: file.clone(),
                name: scalar_text(&test["name"]),
                expression: scalar_text(&test["expression"]),
                result: test.get("result").cloned(),
                error: test.get("error").map(scalar_text),
                event,
            });
        }
    }
    cases
}

/// Whether `value` is the TCK's expected `result`.
fn same_value(value: &Value<'_>, expected: &Yaml) -> bool {
    match (value, expected) {
        (Value::Bool(b), Yaml::Bool(e)) => b == e,
        // `result: FALSE` is the YAML string "FALSE" in YAML 1.2.
        (Value::Bool(b), Yaml::String(e)) => e.eq_ignore_ascii_case(&b.to_string()),
        (Value::Int(i), Yaml::Number(n)) => n.as_i64() == Some(i64::from(*i)),
        (Value::Str(s), e) => *s == scalar_text(e),
        _ => false,
    }
}

/// Run one case; `Err` says what differed.
fn run(case: &Case) -> Result<(), String> {
    let parsed = Expression::parse(&case.expression);
    let expr = match (parsed, case.error.as_deref()) {
        (Err(e), Some("parse")) => {
            assert_eq!(e.kind, ErrorKind::Parse);
            // A parse error has no value; the TCK's `result` (when given) is `false`, the
            // default a filter sees.
            return match &case.result {
                None | Some(Yaml::Bool(false)) => Ok(()),
                Some(other) => Err(format!("parse error, but the TCK expects {other:?}")),
            };
        }
        (Err(e), _) => return Err(format!("unexpected parse error: {e}")),
        (Ok(_), Some("parse")) => return Err("expected a parse error, but it parsed".into()),
        (Ok(expr), _) => expr,
    };
    let evaluation = expr.evaluate(&case.event);
    let kinds: Vec<&str> = evaluation
        .errors
        .iter()
        .map(|e| e.kind.tck_name())
        .collect();
    match case.error.as_deref() {
        None if !kinds.is_empty() => {
            return Err(format!("unexpected errors {:?}", evaluation.errors));
        }
        Some(kind) if kinds.is_empty() || kinds.iter().any(|k| *k != kind) => {
            return Err(format!(
                "expected only {kind} errors, got {:?}",
                evaluation.errors
            ));
        }
        Some("missingFunction") => {
            // `compile` (what config loading uses) catches it before any event.
            let e = Expression::compile(&case.expression)
                .expect_err("compile rejects unknown functions");
            if e.kind != ErrorKind::MissingFunction {
                return Err(format!("compile: expected missingFunction, got {e}"));
            }
        }
        _ => {}
    }
    if let Some(expected) = &case.result
        && !same_value(&evaluation.value, expected)
    {
        return Err(format!(
            "value {} (errors {:?}), expected {expected:?}",
            evaluation.value, evaluation.errors
        ));
    }
    Ok(())
}

#[test]
fn every_tck_case_passes() {
    let cases = load_cases();
    assert_eq!(cases.len(), 275, "the CESQL v1.0.0 TCK has 275 cases");
    let mut failures = Vec::new();
    let mut per_file: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for case in &cases {
        let entry = per_file.entry(&case.file).or_default();
        entry.1 += 1;
        match run(case) {
            Ok(()) => entry.0 += 1,
            Err(why) => failures.push(format!(
                "{} / {:?}: `{}`: {why}",
                case.file, case.name, case.expression
            )),
        }
    }
    for (file, (passed, total)) in &per_file {
        println!("{file:40} {passed:3}/{total}");
    }
    let passed = cases.len() - failures.len();
    println!("CESQL TCK: {passed}/{} cases pass", cases.len());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ------------------------------------------------------------------ fuzz-style properties

fn any_event() -> CloudEvent {
    cloudevents::from_json(&json!({
        "specversion": "1.0", "id": "x", "source": "/s", "type": "t",
        "subject": "sub", "n": 5, "b": true, "s": "10",
    }))
    .unwrap()
}

/// Parse and, when that works, compile and evaluate; panics are what we look for.
fn exercise(text: &str, event: &CloudEvent) {
    if let Ok(expr) = Expression::parse(text) {
        let _ = expr.evaluate(event);
        let _ = expr.matches(event);
        if let Ok(compiled) = Expression::compile(text) {
            let _ = compiled.matches(event);
        }
    }
}

#[test]
fn the_parser_never_panics_on_arbitrary_text() {
    let mut rng = fastrand::Rng::with_seed(0x000C_E591);
    let event = any_event();
    // Alphabet biased towards CESQL's own tokens, plus some Unicode and control characters.
    let pieces: &[&str] = &[
        "(",
        ")",
        ",",
        "'",
        "\"",
        "\\",
        "=",
        "!=",
        "<>",
        "<",
        "<=",
        ">",
        ">=",
        "+",
        "-",
        "*",
        "/",
        "%",
        "_",
        " ",
        "\n",
        "AND",
        "or",
        "XOR",
        "NOT",
        "LIKE",
        "IN",
        "EXISTS",
        "TRUE",
        "false",
        "0",
        "1",
        "2147483648",
        "-2147483648",
        "a",
        "type",
        "subject",
        "n",
        "b",
        "s",
        "ABS",
        "concat",
        "CONCAT_WS",
        "SUBSTRING",
        "LEFT",
        "int",
        "BOOL",
        "é",
        "\u{0}",
        "🦀",
        "''",
        "'%x_'",
    ];
    let mut tried = 0;
    for _ in 0..20_000 {
        let len = rng.usize(0..24);
        let text: String = (0..len)
            .map(|_| pieces[rng.usize(0..pieces.len())])
            .collect::<Vec<_>>()
            .join(if rng.bool() { " " } else { "" });
        exercise(&text, &event);
        tried += 1;
    }
    // Arbitrary bytes, read as (lossy) UTF-8.
    for _ in 0..10_000 {
        let bytes: Vec<u8> = (0..rng.usize(0..40)).map(|_| rng.u8(..)).collect();
        exercise(&String::from_utf8_lossy(&bytes), &event);
        tried += 1;
    }
    // Arbitrary chars.
    for _ in 0..5_000 {
        let text: String = (0..rng.usize(0..30)).map(|_| rng.char(..)).collect();
        exercise(&text, &event);
        tried += 1;
    }
    println!("fuzz: {tried} random inputs, no panic");
}

#[test]
fn mutations_of_tck_expressions_never_panic() {
    let mut rng = fastrand::Rng::with_seed(42);
    let cases = load_cases();
    let inserts = [
        "(", ")", "'", "\"", "\\", "NOT ", " AND ", "-", "%", ",", "LIKE", " IN (",
    ];
    let mut tried = 0;
    for case in &cases {
        let chars: Vec<char> = case.expression.chars().collect();
        for _ in 0..60 {
            let mut m = chars.clone();
            for _ in 0..rng.usize(1..4) {
                let at = rng.usize(0..=m.len());
                match rng.u8(0..4) {
                    0 if !m.is_empty() => {
                        m.remove(at.min(m.len() - 1));
                    }
                    1 => {
                        for (k, c) in inserts[rng.usize(0..inserts.len())].chars().enumerate() {
                            m.insert(at + k, c);
                        }
                    }
                    2 if !m.is_empty() => {
                        let i = at.min(m.len() - 1);
                        m[i] = rng.char(..);
                    }
                    _ => m.truncate(at),
                }
            }
            let text: String = m.into_iter().collect();
            exercise(&text, &case.event);
            tried += 1;
        }
    }
    println!("fuzz: {tried} mutated TCK expressions, no panic");
}

#[test]
fn pathological_inputs_fail_cleanly() {
    let event = any_event();
    for text in [
        "(".repeat(100_000),
        ")".repeat(1_000),
        "NOT ".repeat(50_000) + "TRUE",
        "-".repeat(50_000) + "1",
        vec!["1"; 50_000].join("+"),
        format!("CONCAT({})", vec!["'a'"; 10_000].join(",")),
        format!("'{}' LIKE '{}'", "a".repeat(2_000), "%a".repeat(500) + "b"),
        "'".repeat(10_001),
    ] {
        exercise(&text, &event);
    }
}
