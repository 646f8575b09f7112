//! Delivery against the real Jina Flow: adaptive batching (one document per request at low load,
//! several under load, each event its own reply), the dedup window, and graceful shutdown (one
//! slow event, and SIGTERM under a steady load).

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{unique, write_config};

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{FlowBridge, HttpResponse, JinaFlow, shared_flow, try_http_request};

fn post(port: u16, id: &str, ty: &str, reply: bool) -> HttpResponse {
    let mut headers = vec![
        ("ce-specversion", "1.0"),
        ("ce-id", id),
        ("ce-type", ty),
        ("ce-source", "/delivery/tests"),
        ("content-type", "application/json"),
    ];
    if reply {
        headers.push(("prefer", "reply"));
    }
    support::http_request(port, "POST", "/", &headers, br#"{"text": "hello"}"#)
}

/// The recorder's records (requests) that carried any of `ids`.
fn records_for(flow: &JinaFlow, ids: &[String]) -> Vec<Value> {
    flow.records()
        .into_iter()
        .filter(|r| {
            r["docs"].as_array().is_some_and(|d| {
                d.iter()
                    .any(|d| ids.iter().any(|id| d["id"] == id.as_str()))
            })
        })
        .collect()
}

fn doc_count(record: &Value) -> usize {
    record["docs"].as_array().map_or(0, Vec::len)
}

#[test]
fn one_event_at_a_time_goes_out_alone() {
    let flow = shared_flow();
    let config = write_config(&format!(
        r#"
gateways:
  main: {{url: "{}", timeout: 20s}}
routes:
  - name: bad-shape
    filters:
      - exact: {{ type: delivery.badshape }}
    docs: '{{"txt": "typo"}}'
  - name: all
"#,
        flow.grpc_url()
    ));
    let bridge = FlowBridge::start(&config);
    let ids: Vec<String> = (0..5).map(|i| unique(&format!("alone{i}"))).collect();
    for id in &ids {
        let r = post(bridge.port, id, "delivery.alone", false);
        assert_eq!(r.status, 202, "{}", r.text());
    }
    let records = records_for(flow, &ids);
    assert_eq!(records.len(), 5, "one Flow request per event: {records:#?}");
    assert!(
        records.iter().all(|r| doc_count(r) == 1),
        "each request carried one document: {records:#?}"
    );
    // Default logging: a line for each failed event, none for each processed one.
    let bad = unique("alone-bad");
    let r = post(bridge.port, &bad, "delivery.badshape", false);
    assert_eq!(r.status, 422, "{}", r.text());
    let log = bridge.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("event failed") && l.contains(&bad)),
        "{log}"
    );
    assert!(!log.contains("event processed"), "{log}");
}

#[test]
fn under_load_requests_carry_several_events_and_each_gets_its_own_reply() {
    let flow = shared_flow();
    let config = write_config(&format!(
        r#"
gateways:
  main:
    url: "{}"
    timeout: 30s
    concurrency: 1
routes:
  - name: loaded
    parameters: '{{"sleep": 0.3}}'
    reply:
      type: delivery.replied
"#,
        flow.grpc_url()
    ));
    let bridge = FlowBridge::start(&config);
    let port = bridge.port;
    let ids: Vec<String> = (0..20).map(|i| unique(&format!("load{i}"))).collect();
    let senders: Vec<_> = ids
        .iter()
        .cloned()
        .map(|id| std::thread::spawn(move || (id.clone(), post(port, &id, "delivery.load", true))))
        .collect();
    let mut request_ids = std::collections::BTreeSet::new();
    for sender in senders {
        let (id, r) = sender.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("ce-originid"), Some(id.as_str()));
        // The reply carries this event's documents and no other's.
        let data = r.json();
        let docs = data
            .as_array()
            .unwrap_or_else(|| panic!("reply data {data}"));
        assert_eq!(docs.len(), 1, "{data}");
        assert_eq!(docs[0]["id"], id.as_str());
        assert_eq!(docs[0]["tags"]["seen_by"], "recorder");
        request_ids.insert(r.header("ce-jinarequestid").unwrap().to_string());
    }
    let records = records_for(flow, &ids);
    let sizes: Vec<usize> = records.iter().map(doc_count).collect();
    eprintln!(
        "[delivery] 20 events, concurrency 1, executor sleeps 0.3 s: {} Flow requests, docs per request {sizes:?}",
        records.len()
    );
    assert_eq!(sizes.iter().sum::<usize>(), 20, "every event exactly once");
    assert!(
        sizes.iter().any(|&n| n > 1),
        "queued events must share requests: {sizes:?}"
    );
    assert_eq!(request_ids.len(), records.len());
}

#[test]
fn a_redelivery_gets_the_first_outcome_without_reaching_the_executor() {
    let flow = shared_flow();
    let config = write_config(&format!(
        r#"
gateways:
  main: {{url: "{}", timeout: 20s}}
routes:
  - name: deduped
    dedup: 5m
    parameters: '{{"sleep": 0.5}}'
    reply:
      type: delivery.dedup.replied
"#,
        flow.grpc_url()
    ));
    // RUST_LOG=info: every event's line, the redelivery's included.
    let config = config.to_string_lossy().into_owned();
    let bridge = FlowBridge::start_with(&["--config", &config], &[("RUST_LOG", "info")]);
    let id = unique("dedup");
    let first = post(bridge.port, &id, "delivery.dedup", true);
    assert_eq!(first.status, 200, "{}", first.text());
    let again = post(bridge.port, &id, "delivery.dedup", true);
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(
        again.header("ce-id"),
        first.header("ce-id"),
        "the same reply event"
    );
    assert_eq!(again.body, first.body);
    let plain = post(bridge.port, &id, "delivery.dedup", false);
    assert_eq!(plain.status, 202);
    assert_eq!(records_for(flow, std::slice::from_ref(&id)).len(), 1);

    // Two deliveries in flight at once: the second waits for the first.
    let id2 = unique("dedup-concurrent");
    let port = bridge.port;
    let both: Vec<_> = (0..2)
        .map(|_| {
            let id2 = id2.clone();
            std::thread::spawn(move || post(port, &id2, "delivery.dedup", false).status)
        })
        .collect();
    for t in both {
        assert_eq!(t.join().unwrap(), 202);
    }
    assert_eq!(records_for(flow, std::slice::from_ref(&id2)).len(), 1);
    assert!(
        bridge
            .log_text()
            .contains("redelivery within the dedup window")
    );
}

#[test]
fn sigterm_finishes_the_event_in_flight_turns_unready_and_exits_0() {
    let flow = shared_flow();
    let config = write_config(&format!(
        r#"
gateways:
  main: {{url: "{}", timeout: 20s}}
routes:
  - name: slow
    parameters: '{{"sleep": 3}}'
shutdown_grace: 20s
"#,
        flow.grpc_url()
    ));
    let mut bridge = FlowBridge::start(&config);
    let port = bridge.port;
    let id = unique("shutdown");
    let sender = {
        let id = id.clone();
        std::thread::spawn(move || post(port, &id, "delivery.slow", false))
    };
    flow.wait_for_record(Duration::from_secs(10), |r| {
        r["docs"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["id"] == id.as_str()))
    })
    .expect("the slow event reached the executor");
    let signalled = Instant::now();
    bridge.signal_term();
    // Readiness goes at once: /readyz answers 503 or the listener is gone, while the event is
    // still in flight.
    let mut unready = false;
    while signalled.elapsed() < Duration::from_secs(2) {
        match try_http_request(port, "GET", "/readyz", &[], b"") {
            Ok(r) if r.status == 200 => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                unready = true;
                break;
            }
        }
    }
    assert!(unready, "/readyz still 200 two seconds after SIGTERM");
    assert!(!sender.is_finished(), "the slow event was still in flight");
    let status = bridge
        .wait_exit(Duration::from_secs(20))
        .expect("flowbridge exited within shutdown_grace");
    assert!(status.success(), "exit status {status}");
    let r = sender.join().unwrap();
    assert_eq!(
        r.status,
        202,
        "the in-flight event was answered: {}",
        r.text()
    );
}

#[test]
fn a_full_queue_answers_429_with_retry_after_and_loses_nothing() {
    let flow = shared_flow();
    // One request in flight (the executor sleeps 1 s), two events may wait, no batching: the
    // rest of a burst of 8 must be refused with 429, never accepted and dropped.
    let config = write_config(&format!(
        "gateways:\n  main: {{url: \"{}\", timeout: 20s, concurrency: 1, max_pending: 2, \
         batch: {{max_docs: 1}}}}\nroutes:\n  - name: slow\n    parameters: '{{\"sleep\": 1}}'\n",
        flow.grpc_url()
    ));
    let bridge = FlowBridge::start(&config);
    let ids: Vec<String> = (0..8).map(|i| unique(&format!("burst{i}"))).collect();
    let port = bridge.port;
    let handles: Vec<_> = ids
        .iter()
        .cloned()
        .map(|id| {
            std::thread::spawn(move || (id.clone(), post(port, &id, "delivery.burst", false)))
        })
        .collect();
    let answers: Vec<(String, HttpResponse)> =
        handles.into_iter().map(|h| h.join().unwrap()).collect();

    let accepted: Vec<&String> = answers
        .iter()
        .filter(|(_, r)| r.status == 202)
        .map(|(id, _)| id)
        .collect();
    let refused: Vec<&(String, HttpResponse)> =
        answers.iter().filter(|(_, r)| r.status == 429).collect();
    assert_eq!(
        accepted.len() + refused.len(),
        8,
        "only 202 or 429: {:?}",
        answers
            .iter()
            .map(|(_, r)| (r.status, r.text()))
            .collect::<Vec<_>>()
    );
    assert!(
        accepted.len() >= 3,
        "the slot and the two queue places were used: {}",
        accepted.len()
    );
    assert!(!refused.is_empty(), "a burst beyond max_pending is refused");
    for (_, r) in &refused {
        assert!(
            r.header("retry-after").is_some(),
            "429 without Retry-After: {:?}",
            r.headers
        );
        assert_eq!(r.json()["error"]["code"], "overloaded");
    }
    // Every accepted event reached the executor; no refused one did.
    let records = records_for(flow, &ids);
    let recorded: Vec<String> = records
        .iter()
        .flat_map(|r| {
            r["docs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_str().unwrap().to_string())
        })
        .collect();
    for id in &accepted {
        assert!(recorded.contains(id), "accepted {id} was never run");
    }
    for (id, _) in &refused {
        assert!(!recorded.contains(id), "refused {id} was run anyway");
    }
}

/// The default `concurrency: auto` against the real Flow: it starts at one request in flight, so
/// a burst leaves in batches; it learns the no-load latency per batch size and says so in the
/// metrics.
#[test]
fn the_adaptive_limit_batches_a_burst_and_shows_what_it_learnt() {
    let flow = shared_flow();
    let config = write_config(&format!(
        r#"
gateways:
  main: {{ url: "{}", timeout: 30s }}
routes:
  - name: burst
    parameters: '{{"sleep": 0.05}}'
"#,
        flow.grpc_url()
    ));
    let bridge = FlowBridge::start(&config);
    let port = bridge.port;
    let ids: Vec<String> = (0..40).map(|i| unique(&format!("auto{i}"))).collect();
    let senders: Vec<_> = ids
        .iter()
        .cloned()
        .map(|id| std::thread::spawn(move || post(port, &id, "delivery.auto", false)))
        .collect();
    for sender in senders {
        let r = sender.join().unwrap();
        assert_eq!(r.status, 202, "{}", r.text());
    }
    let records = records_for(flow, &ids);
    let sizes: Vec<usize> = records.iter().map(doc_count).collect();
    eprintln!("[delivery] 40 events at once, concurrency auto: docs per request {sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 40, "every event exactly once");
    assert!(sizes.len() < 40, "a burst must be batched: {sizes:?}");
    let metrics = bridge.metrics();
    let value = |series: &str| -> Option<f64> {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|v| v.trim().parse().ok())
    };
    let limit = value("flowbridge_gateway_concurrency_limit{gateway=\"main\"} ")
        .unwrap_or_else(|| panic!("no limit in\n{metrics}"));
    assert!((1.0..=64.0).contains(&limit), "{limit}");
    assert!(
        value("flowbridge_gateway_no_load_latency_seconds{gateway=\"main\",docs=\"1\"} ")
            .is_some_and(|s| s >= 0.05),
        "the executor sleeps 50 ms, so no request is faster:\n{metrics}"
    );
    assert!(
        value("flowbridge_gateway_batch_docs{gateway=\"main\"} ").is_some_and(|d| d > 1.0),
        "{metrics}"
    );
    assert!(
        metrics.contains("flowbridge_gateway_concurrency_limit_reason{gateway=\"main\",reason=\""),
        "{metrics}"
    );
}

/// What one sender saw for one event.
enum Outcome {
    Answered(u16),
    ConnectionError(String),
}

/// SIGTERM under a steady load: 20 senders each send 20 events one after another (400 in all)
/// through the real Flow, whose executor sleeps 50 ms per request; SIGTERM comes once 120 are
/// answered, with a `shutdown_grace` far longer than the work in flight. No event is lost: every
/// event answered 2xx was run by the executor, so every event the executor never saw was
/// answered non-2xx or not at all (a refused or reset connection), never 2xx.
#[test]
fn sigterm_under_load_answers_2xx_only_for_events_the_executor_ran() {
    const SENDERS: usize = 20;
    const EACH: usize = 20;
    let flow = shared_flow();
    let config = write_config(&format!(
        r#"
gateways:
  main: {{url: "{}", timeout: 20s}}
routes:
  - name: steady
    parameters: '{{"sleep": 0.05}}'
shutdown_grace: 30s
"#,
        flow.grpc_url()
    ));
    let mut bridge = FlowBridge::start(&config);
    let port = bridge.port;
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let answered = answered.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::with_capacity(EACH);
                for i in 0..EACH {
                    let id = unique(&format!("term{s}-{i}"));
                    let headers = [
                        ("ce-specversion", "1.0"),
                        ("ce-id", id.as_str()),
                        ("ce-type", "delivery.steady"),
                        ("ce-source", "/delivery/tests"),
                        ("content-type", "application/json"),
                    ];
                    let outcome =
                        match try_http_request(port, "POST", "/", &headers, br#"{"text": "hi"}"#) {
                            Ok(r) => Outcome::Answered(r.status),
                            Err(e) => Outcome::ConnectionError(e),
                        };
                    answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    seen.push((id, outcome, Instant::now()));
                }
                seen
            })
        })
        .collect();
    let started = Instant::now();
    while answered.load(std::sync::atomic::Ordering::SeqCst) < 120 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the load did not get going"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let signalled = Instant::now();
    bridge.signal_term();
    let status = bridge
        .wait_exit(Duration::from_secs(40))
        .expect("flowbridge exited within shutdown_grace");
    assert!(status.success(), "exit status {status}");
    let outcomes: Vec<(String, Outcome, Instant)> = senders
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(outcomes.len(), SENDERS * EACH);

    let ok: Vec<&String> = outcomes
        .iter()
        .filter(|(_, o, _)| matches!(o, Outcome::Answered(s) if (200..300).contains(s)))
        .map(|(id, ..)| id)
        .collect();
    // The recorder appends and flushes each request's line before it answers; poll briefly anyway.
    let ids: Vec<String> = outcomes.iter().map(|(id, ..)| id.clone()).collect();
    let recorded = |flow: &JinaFlow| -> std::collections::HashSet<String> {
        records_for(flow, &ids)
            .iter()
            .flat_map(|r| r["docs"].as_array().cloned().unwrap_or_default())
            .filter_map(|d| d["id"].as_str().map(str::to_string))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = recorded(flow);
    while ok.iter().any(|id| !seen.contains(*id)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        seen = recorded(flow);
    }
    let non_2xx = outcomes
        .iter()
        .filter(|(_, o, _)| matches!(o, Outcome::Answered(s) if !(200..300).contains(s)))
        .count();
    let connection_errors: Vec<&String> = outcomes
        .iter()
        .filter_map(|(_, o, _)| match o {
            Outcome::ConnectionError(e) => Some(e),
            Outcome::Answered(_) => None,
        })
        .collect();
    let ok_after_signal = outcomes
        .iter()
        .filter(|(_, o, at)| {
            matches!(o, Outcome::Answered(s) if (200..300).contains(s)) && *at > signalled
        })
        .count();
    let mut errors: Vec<&str> = connection_errors
        .iter()
        .map(|e| e.split(" (").next().unwrap_or(e))
        .collect();
    errors.sort_unstable();
    errors.dedup();
    eprintln!(
        "[delivery] SIGTERM under load: {} events from {SENDERS} senders; answered 2xx {} ({} of \
         them after SIGTERM), non-2xx {non_2xx}, connection errors {} ({errors:?}), recorded by \
         the executor {}",
        outcomes.len(),
        ok.len(),
        ok_after_signal,
        connection_errors.len(),
        seen.len()
    );
    for id in &ok {
        assert!(seen.contains(*id), "{id} was answered 2xx but never run");
    }
    for (id, outcome, _) in &outcomes {
        if !seen.contains(id) {
            assert!(
                !matches!(outcome, Outcome::Answered(s) if (200..300).contains(s)),
                "{id} was never run but answered 2xx"
            );
        }
    }
    assert!(
        ok_after_signal > 0,
        "no event was in flight at SIGTERM, so the grace was not exercised"
    );
    assert!(
        ok.len() >= 100,
        "most of the load before SIGTERM was accepted"
    );
}
