//! Dispatcher tests against the in-process fake gateway (`crate::flow::testing`): batching
//! under load and not at low load, per-event results, caps, failures confined to their request,
//! the bounded queue, and cold starts.
//!
//! The tests run on tokio's current-thread runtime: tasks spawned before the driver gets to run
//! have all queued their events by then, which makes "these events waited together" exact.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::*;
use crate::flow::testing::{Mode, Seen, free_port, serve_on, start};
use crate::model::{Concurrency, Document, GatewaySpec};

fn dispatcher(addr: std::net::SocketAddr, tweak: impl FnOnce(&mut GatewaySpec)) -> Arc<Dispatcher> {
    let mut spec = GatewaySpec::with_defaults("fake", &format!("grpc://{addr}"));
    spec.timeout = Duration::from_secs(10);
    spec.connect_timeout = Duration::from_secs(10);
    spec.retry.initial_backoff = Duration::from_millis(20);
    spec.retry.max_backoff = Duration::from_millis(100);
    tweak(&mut spec);
    Arc::new(Dispatcher::new(FlowClient::new(&spec).unwrap()))
}

fn event(ids: &[&str], parameters: Value) -> FlowRequest {
    FlowRequest {
        endpoint: "/index".into(),
        target_executor: None,
        parameters: parameters.as_object().cloned().unwrap(),
        docs: ids
            .iter()
            .map(|id| Document {
                id: (*id).into(),
                text: Some(format!("text of {id}")),
                ..Document::default()
            })
            .collect(),
    }
}

fn spawn_submit(d: &Arc<Dispatcher>, request: FlowRequest) -> JoinHandle<EventResult> {
    let d = d.clone();
    tokio::spawn(async move { d.submit(request).await })
}

fn ids_of(response: &FlowResponse) -> Vec<String> {
    response.docs.iter().map(|d| d.id.clone()).collect()
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..2000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting until {what}");
}

fn strings(list: &[&[&str]]) -> Vec<Vec<String>> {
    list.iter()
        .map(|l| l.iter().map(|s| s.to_string()).collect())
        .collect()
}

#[tokio::test]
async fn one_event_at_a_time_goes_out_alone() {
    let (addr, seen) = start(Mode::Echo).await;
    let d = dispatcher(addr, |_| {});
    for id in ["a", "b", "c"] {
        let response = d.submit(event(&[id], json!({}))).await.unwrap();
        assert_eq!(ids_of(&response), vec![id]);
    }
    assert_eq!(seen.doc_ids(), strings(&[&["a"], &["b"], &["c"]]));
}

#[tokio::test]
async fn events_waiting_for_a_busy_gateway_leave_together_and_get_their_own_docs() {
    let gate = Arc::new(Semaphore::new(0));
    let (addr, seen) = start(Mode::Gated(gate.clone())).await;
    let d = dispatcher(addr, |s| s.concurrency = Concurrency::Fixed(1));
    let first = spawn_submit(&d, event(&["e0"], json!({"k": 1})));
    wait_until("the first request reached the gateway", || {
        seen.calls.load(Ordering::SeqCst) == 1
    })
    .await;
    let rest: Vec<_> = (1..=4)
        .map(|i| {
            let a = format!("e{i}/0");
            let b = format!("e{i}/1");
            spawn_submit(&d, event(&[&a, &b], json!({"k": 1})))
        })
        .collect();
    wait_until("four events wait", || d.pending() == 4).await;
    gate.add_permits(10);
    let response = first.await.unwrap().unwrap();
    assert_eq!(ids_of(&response), vec!["e0"]);
    let mut request_ids = Vec::new();
    for (i, task) in rest.into_iter().enumerate() {
        let response = task.await.unwrap().unwrap();
        let n = i + 1;
        assert_eq!(
            ids_of(&response),
            vec![format!("e{n}/0"), format!("e{n}/1")]
        );
        assert!(
            response
                .docs
                .iter()
                .all(|d| d.tags.get("seen") == Some(&json!(1)))
        );
        assert_eq!(Value::Object(response.parameters.clone()), json!({"k": 1}));
        request_ids.push(response.request_id);
    }
    request_ids.dedup();
    assert_eq!(
        request_ids.len(),
        1,
        "one Flow request carried the four events"
    );
    assert_eq!(
        seen.doc_ids(),
        strings(&[
            &["e0"],
            &[
                "e1/0", "e1/1", "e2/0", "e2/1", "e3/0", "e3/1", "e4/0", "e4/1"
            ]
        ])
    );
    let stats = d.stats();
    assert_eq!(
        (stats.requests, stats.events, stats.docs, stats.max_events),
        (2, 5, 9, 4)
    );
}

#[tokio::test]
async fn batches_respect_max_docs_and_batch_keys() {
    let (addr, seen) = start(Mode::Echo).await;
    let d = dispatcher(addr, |s| {
        s.concurrency = Concurrency::Fixed(1);
        s.batch.max_docs = 2;
    });
    let tasks: Vec<_> = [
        ("a", json!({"t": 1})),
        ("b", json!({"t": 2})),
        ("c", json!({"t": 1})),
        ("d", json!({"t": 1})),
        ("e", json!({"t": 2})),
    ]
    .into_iter()
    .map(|(id, p)| spawn_submit(&d, event(&[id], p)))
    .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    // a+c (t=1, cap 2), then b+e (t=2), then d.
    assert_eq!(seen.doc_ids(), strings(&[&["a", "c"], &["b", "e"], &["d"]]));
}

#[tokio::test]
async fn colliding_document_ids_are_not_batched_together() {
    let (addr, seen) = start(Mode::Echo).await;
    let d = dispatcher(addr, |s| s.concurrency = Concurrency::Fixed(1));
    let tasks: Vec<_> = [&["x"][..], &["x"], &["y"], &["z", "z"], &["w"]]
        .into_iter()
        .map(|ids| spawn_submit(&d, event(ids, json!({}))))
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(ids_of(&task.await.unwrap().unwrap()));
    }
    assert_eq!(
        answers,
        strings(&[&["x"], &["x"], &["y"], &["z", "z"], &["w"]])
    );
    assert_eq!(
        seen.doc_ids(),
        strings(&[&["x", "y", "w"], &["x"], &["z", "z"]])
    );
}

#[tokio::test]
async fn an_executor_error_fails_only_the_events_of_its_request() {
    let (addr, seen) = start(Mode::RaiseOnTag).await;
    let d = dispatcher(addr, |s| s.concurrency = Concurrency::Fixed(1));
    let ok1 = spawn_submit(&d, event(&["ok1"], json!({})));
    let mut bad = event(&["bad"], json!({"other": true}));
    bad.docs[0].tags.insert("raise".into(), json!(true));
    let bad = spawn_submit(&d, bad);
    let ok2 = spawn_submit(&d, event(&["ok2"], json!({})));
    assert!(ok1.await.unwrap().is_ok());
    assert!(ok2.await.unwrap().is_ok());
    match bad.await.unwrap() {
        Err(FlowError::Executor { exception, .. }) => assert_eq!(exception, "ValueError"),
        other => panic!("expected an executor error, got {other:?}"),
    }
    assert_eq!(seen.doc_ids(), strings(&[&["ok1", "ok2"], &["bad"]]));
}

#[tokio::test]
async fn renamed_documents_in_a_batch_fail_with_a_clear_error() {
    let (addr, seen) = start(Mode::Rename).await;
    let d = dispatcher(addr, |s| s.concurrency = Concurrency::Fixed(1));
    let tasks: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|id| spawn_submit(&d, event(&[id], json!({}))))
        .collect();
    for task in tasks {
        match task.await.unwrap() {
            Err(FlowError::Gateway { gateway, message }) => {
                assert_eq!(gateway, "fake");
                assert!(message.contains("ids not in the request"), "{message}");
                assert!(message.contains("a-renamed"), "{message}");
            }
            other => panic!("expected a gateway error, got {other:?}"),
        }
    }
    assert_eq!(seen.doc_ids(), strings(&[&["a", "b"]]));
    // Alone, an event gets whatever came back.
    let response = d.submit(event(&["c"], json!({}))).await.unwrap();
    assert_eq!(ids_of(&response), vec!["c-renamed"]);
}

#[tokio::test]
async fn a_dropped_document_fails_only_its_event() {
    let (addr, _) = start(Mode::DropLast).await;
    let d = dispatcher(addr, |s| s.concurrency = Concurrency::Fixed(1));
    let a = spawn_submit(&d, event(&["a"], json!({})));
    let b = spawn_submit(&d, event(&["b/0", "b/1"], json!({})));
    assert_eq!(ids_of(&a.await.unwrap().unwrap()), vec!["a"]);
    match b.await.unwrap() {
        Err(FlowError::Gateway { message, .. }) => {
            assert!(message.contains("1 of this event's 2"), "{message}");
            assert!(message.contains("\"b/1\""), "{message}");
        }
        other => panic!("expected a gateway error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_full_queue_refuses_with_overloaded_and_keeps_the_others() {
    let gate = Arc::new(Semaphore::new(0));
    let (addr, seen) = start(Mode::Gated(gate.clone())).await;
    let d = dispatcher(addr, |s| {
        s.concurrency = Concurrency::Fixed(1);
        s.max_pending = 2;
    });
    let first = spawn_submit(&d, event(&["a"], json!({})));
    wait_until("a reached the gateway", || {
        seen.calls.load(Ordering::SeqCst) == 1
    })
    .await;
    let queued = [
        spawn_submit(&d, event(&["b"], json!({}))),
        spawn_submit(&d, event(&["c"], json!({}))),
    ];
    wait_until("two events wait", || d.pending() == 2).await;
    match d.submit(event(&["d"], json!({}))).await {
        Err(FlowError::Overloaded {
            gateway,
            max_pending,
        }) => {
            assert_eq!((gateway.as_str(), max_pending), ("fake", 2));
        }
        other => panic!("expected Overloaded, got {other:?}"),
    }
    assert_eq!(d.stats().overloaded, 1);
    gate.add_permits(10);
    first.await.unwrap().unwrap();
    for task in queued {
        task.await.unwrap().unwrap();
    }
    assert_eq!(seen.doc_ids(), strings(&[&["a"], &["b", "c"]]));
}

#[tokio::test]
async fn an_event_whose_sender_left_is_not_sent() {
    let gate = Arc::new(Semaphore::new(0));
    let (addr, seen) = start(Mode::Gated(gate.clone())).await;
    let d = dispatcher(addr, |s| s.concurrency = Concurrency::Fixed(1));
    let first = spawn_submit(&d, event(&["a"], json!({})));
    wait_until("a reached the gateway", || {
        seen.calls.load(Ordering::SeqCst) == 1
    })
    .await;
    let gone = spawn_submit(&d, event(&["gone"], json!({})));
    let kept = spawn_submit(&d, event(&["kept"], json!({})));
    wait_until("two events wait", || d.pending() == 2).await;
    gone.abort();
    let _ = gone.await;
    gate.add_permits(10);
    first.await.unwrap().unwrap();
    kept.await.unwrap().unwrap();
    assert_eq!(seen.doc_ids(), strings(&[&["a"], &["kept"]]));
}

#[tokio::test]
async fn events_for_a_cold_gateway_wait_and_leave_together_when_it_appears() {
    let addr = free_port().await;
    let d = dispatcher(addr, |_| {});
    let tasks: Vec<_> = (0..6)
        .map(|i| spawn_submit(&d, event(&[&format!("cold{i}")], json!({}))))
        .collect();
    wait_until("the gateway was found cold", || d.stats().requests >= 2).await;
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let seen: Arc<Seen> = serve_on(listener, Mode::Echo).await;
    for (i, task) in tasks.into_iter().enumerate() {
        let response = task.await.unwrap().unwrap();
        assert_eq!(ids_of(&response), vec![format!("cold{i}")]);
    }
    // Every attempt while cold was one probe carrying every waiting event; the first one the
    // gateway accepted carried them all.
    let all: Vec<String> = (0..6).map(|i| format!("cold{i}")).collect();
    assert_eq!(seen.doc_ids(), vec![all]);
    let stats = d.stats();
    assert_eq!(stats.max_events, 6);
    assert_eq!(
        stats.events,
        6 * stats.requests,
        "never more than one probe at a time"
    );
}

/// A dispatcher for `addr` (short backoff, `connect_timeout`) and the metrics it records.
fn measured(
    addr: std::net::SocketAddr,
    connect_timeout: Duration,
) -> (Arc<Dispatcher>, Arc<GatewayMetrics>) {
    let mut spec = GatewaySpec::with_defaults("fake", &format!("grpc://{addr}"));
    spec.connect_timeout = connect_timeout;
    spec.retry.initial_backoff = Duration::from_millis(20);
    spec.retry.max_backoff = Duration::from_millis(100);
    let metrics = Arc::new(GatewayMetrics::new());
    let client = FlowClient::new(&spec).unwrap();
    (
        Arc::new(Dispatcher::with_metrics(client, metrics.clone())),
        metrics,
    )
}

#[tokio::test]
async fn a_cold_spell_and_the_queue_waits_are_measured() {
    let addr = free_port().await;
    let (d, metrics) = measured(addr, Duration::from_secs(10));
    let tasks: Vec<_> = (0..3)
        .map(|i| spawn_submit(&d, event(&[&format!("w{i}")], json!({}))))
        .collect();
    wait_until("the gateway was found cold", || d.stats().requests >= 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let _seen: Arc<Seen> = serve_on(listener, Mode::Echo).await;
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let [unavailable, waking] = &metrics.cold;
    assert_eq!(unavailable.count(), 1, "one cold spell");
    assert!(unavailable.sum() >= 0.2, "{}", unavailable.sum());
    assert_eq!(waking.count(), 0, "not an autoscale gateway");
    assert_eq!(
        metrics.queue_wait.count(),
        3,
        "each event once, not per attempt"
    );
    assert!(metrics.queue_wait.sum() >= 3.0 * 0.2);
    // Warm now: one more event waits briefly and starts no cold spell.
    d.submit(event(&["w3"], json!({}))).await.unwrap();
    assert_eq!(metrics.queue_wait.count(), 4);
    assert_eq!(unavailable.count(), 1);
}

#[tokio::test]
async fn a_cold_spell_nobody_waited_through_is_not_counted() {
    let addr = free_port().await;
    let (d, metrics) = measured(addr, Duration::from_millis(300));
    // Refused until its deadline: the event expires and the queue empties while cold.
    let error = d.submit(event(&["gone"], json!({}))).await.unwrap_err();
    assert!(matches!(error, FlowError::Unavailable { .. }), "{error:?}");
    assert_eq!(metrics.queue_wait.count(), 1, "an expired event waited too");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Much later the gateway is up: the next event is answered, and the spell's end was not
    // seen, so it is not counted (it would hold the idle time).
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let _seen: Arc<Seen> = serve_on(listener, Mode::Echo).await;
    d.submit(event(&["back"], json!({}))).await.unwrap();
    assert_eq!(metrics.cold[0].count(), 0);
    assert_eq!(metrics.queue_wait.count(), 2);
}

#[tokio::test]
async fn a_gateway_that_never_appears_fails_after_connect_timeout() {
    let addr = free_port().await;
    let d = dispatcher(addr, |s| s.connect_timeout = Duration::from_millis(300));
    match d.submit(event(&["x"], json!({}))).await {
        Err(FlowError::Unavailable { gateway, message }) => {
            assert_eq!(gateway, "fake");
            assert!(
                message.contains("not reachable within connect_timeout"),
                "{message}"
            );
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_documents_fail_alone_before_queueing() {
    let (addr, seen) = start(Mode::Echo).await;
    let d = dispatcher(addr, |_| {});
    let mut bad = event(&["bad"], json!({}));
    bad.docs[0].blob = Some(bytes::Bytes::from_static(b"x"));
    assert!(matches!(
        d.submit(bad).await,
        Err(FlowError::InvalidRequest { .. })
    ));
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn events_without_a_reply_get_ids_only_unless_a_batch_mate_needs_documents() {
    let gate = Arc::new(Semaphore::new(0));
    let (addr, seen) = start(Mode::Gated(gate.clone())).await;
    let d = dispatcher(addr, |s| s.concurrency = Concurrency::Fixed(1));
    let submit = |id: &'static str, want: Answer| {
        let d = d.clone();
        tokio::spawn(async move {
            d.submit_traced(event(&[id], json!({})), EventSpan::default(), want)
                .await
        })
    };
    // Alone, ids only: the echoed document comes back with nothing but its id.
    let first = submit("ids", Answer::Ids);
    wait_until("the first request reached the gateway", || {
        seen.calls.load(Ordering::SeqCst) == 1
    })
    .await;
    // Batched together: one wants documents, so both get them.
    let a = submit("mixed-a", Answer::Ids);
    let b = submit("mixed-b", Answer::Documents);
    wait_until("two events wait", || d.pending() == 2).await;
    gate.add_permits(10);
    let alone = first.await.unwrap().unwrap();
    assert_eq!(ids_of(&alone), vec!["ids"]);
    assert_eq!(alone.docs[0].text, None, "ids only");
    for (task, id) in [(a, "mixed-a"), (b, "mixed-b")] {
        let response = task.await.unwrap().unwrap();
        assert_eq!(ids_of(&response), vec![id]);
        assert_eq!(response.docs[0].text, Some(format!("text of {id}")));
    }
    assert_eq!(
        seen.doc_ids(),
        strings(&[&["ids"], &["mixed-a", "mixed-b"]])
    );
}

/// A dispatcher whose `rate` is shared through a Redis that is not there (port 1).
fn shared_rate_dispatcher(addr: std::net::SocketAddr, policy: Policy) -> Arc<Dispatcher> {
    let mut spec = GatewaySpec::with_defaults("fake", &format!("grpc://{addr}"));
    spec.rate = Some(1000.0);
    let mut state = crate::state::StateSpec::with_defaults("redis://127.0.0.1:1/0");
    state.command_timeout = Duration::from_millis(100);
    let store = crate::state::Store::connect(&state).unwrap();
    let rate = SharedRate::new(store, "fake", 1000.0);
    Arc::new(Dispatcher::with_state(
        FlowClient::new(&spec).unwrap(),
        Arc::new(GatewayMetrics::new()),
        Some((rate, policy)),
    ))
}

#[tokio::test]
async fn shared_rate_without_redis_open_uses_the_own_bucket_closed_refuses() {
    let (addr, seen) = start(Mode::Echo).await;
    let open = shared_rate_dispatcher(addr, Policy::Open);
    let response = open.submit(event(&["o1"], json!({}))).await.unwrap();
    assert_eq!(ids_of(&response), vec!["o1"]);
    let closed = shared_rate_dispatcher(addr, Policy::Closed);
    let error = closed.submit(event(&["c1"], json!({}))).await.unwrap_err();
    assert!(
        matches!(&error, FlowError::StateUnavailable { message, .. }
            if message.contains("shared rate budget is unavailable")),
        "{error:?}"
    );
    assert_eq!(seen.doc_ids(), strings(&[&["o1"]]));
}
