//! No event acknowledged without the Flow having it, while the Flow dies and comes back.
//!
//! A sender that behaves like a Knative broker (retries every non-2xx answer and every transport
//! error, with backoff, and gives each attempt a timeout) pushes 250 events/s for 20 s through
//! flowbridge into a real Jina Flow owned by this test. During the run the Flow is killed
//! (SIGKILL of its whole process group: requests in flight are cut) and started again on the same
//! port, twice. Afterwards:
//!
//! * every event was eventually answered 2xx;
//! * every event answered 2xx was recorded by the executor (the recorder writes its record line
//!   when a request arrives, before answering) — no "200 but lost";
//! * the executor saw no ids that were never sent.
//!
//! Duplicates (an event whose request reached the executor but whose answer was cut by the kill,
//! then retried) are allowed — Knative delivery is at-least-once — and counted.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::{FlowBridge, JinaFlow, free_port};

const RATE: u64 = 250;
const SEND_FOR: Duration = Duration::from_secs(20);
/// Per-attempt timeout of the sender (a Trigger's `delivery.timeout`).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// Every event must be acknowledged by then (measured from the start of sending).
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);
/// Most attempts in flight at once (a broker dispatcher's bound).
const MAX_OUTSTANDING: usize = 1500;

#[derive(Default)]
struct Tally {
    attempts: u64,
    by_status: BTreeMap<String, u64>,
    /// event index → answered 2xx
    acked: HashSet<usize>,
    retried_events: HashSet<usize>,
    /// The first error bodies seen per status.
    samples: BTreeMap<String, Vec<String>>,
}

async fn deliver(
    client: reqwest::Client,
    url: String,
    index: usize,
    id: String,
    tally: Arc<Mutex<Tally>>,
    deadline: Instant,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let result = client
            .post(&url)
            .header("ce-specversion", "1.0")
            .header("ce-id", &id)
            .header("ce-type", "noloss.event")
            .header("ce-source", "/noloss")
            .header("content-type", "application/json")
            .body(format!(r#"{{"text": "event {index}"}}"#))
            .timeout(ATTEMPT_TIMEOUT)
            .send()
            .await;
        let label = match &result {
            Ok(r) => r.status().as_u16().to_string(),
            Err(e) if e.is_timeout() => "timeout".to_string(),
            Err(_) => "transport error".to_string(),
        };
        let ok = result.as_ref().is_ok_and(|r| r.status().is_success());
        let body = match result {
            Ok(r) if !ok => r.text().await.unwrap_or_default(),
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        };
        {
            let mut t = tally.lock().unwrap();
            let samples = t.samples.entry(label.clone()).or_default();
            if !ok && samples.len() < 2 {
                samples.push(body);
            }
            t.attempts += 1;
            *t.by_status.entry(label).or_default() += 1;
            if ok {
                t.acked.insert(index);
                return;
            }
            t.retried_events.insert(index);
        }
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Doc id → how many times the executor recorded it, over every Flow incarnation.
fn recorded(flows: &[JinaFlow]) -> (HashMap<String, u64>, Vec<usize>) {
    let mut counts = HashMap::new();
    let mut sizes = Vec::new();
    for flow in flows {
        for record in flow.records() {
            let docs = record["docs"].as_array().cloned().unwrap_or_default();
            sizes.push(docs.len());
            for d in docs {
                *counts
                    .entry(d["id"].as_str().unwrap_or_default().to_string())
                    .or_default() += 1;
            }
        }
    }
    (counts, sizes)
}

#[test]
fn no_event_is_acknowledged_without_the_flow_having_it() {
    let port = free_port();
    let mut flows = vec![JinaFlow::start_on(port)];
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
gateways:
  main:
    url: grpc://127.0.0.1:{port}
    timeout: 10s
    connect_timeout: 30s
    concurrency: 8
    retry: {{ initial_backoff: 50ms, max_backoff: 500ms }}
routes:
  - name: all
"#
        ),
    )
    .unwrap();
    let bridge = FlowBridge::start(&config);
    let url = bridge.url();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let total = (RATE * SEND_FOR.as_secs()) as usize;
    let ids: Vec<String> = (0..total)
        .map(|i| format!("noloss-{i}-{}", uuid::Uuid::new_v4().simple()))
        .collect();
    let started = Instant::now();
    let deadline = started + GIVE_UP_AFTER;

    // The sender: one task per event, started on schedule, at most MAX_OUTSTANDING at once.
    let sender = {
        let tally = tally.clone();
        let ids = ids.clone();
        runtime.spawn(async move {
            // reqwest has no rustls provider of its own (ring is flowbridge's, see src/tls.rs).
            let client = flowbridge::tls::https_client(None, None)
                .unwrap()
                .pool_max_idle_per_host(256)
                .build()
                .unwrap();
            let permits = Arc::new(tokio::sync::Semaphore::new(MAX_OUTSTANDING));
            let mut tasks = tokio::task::JoinSet::new();
            let mut late = Duration::ZERO;
            for (index, id) in ids.into_iter().enumerate() {
                let due = started + Duration::from_micros(index as u64 * 1_000_000 / RATE);
                tokio::time::sleep_until(due.into()).await;
                let permit = permits.clone().acquire_owned().await.unwrap();
                late = late.max(Instant::now().saturating_duration_since(due));
                let (client, url, tally) = (client.clone(), url.clone(), tally.clone());
                tasks.spawn(async move {
                    deliver(client, url, index, id, tally, deadline).await;
                    drop(permit);
                });
            }
            let sent_in = started.elapsed();
            while tasks.join_next().await.is_some() {}
            (sent_in, late)
        })
    };

    // Kill the Flow twice while events flow, restarting it on the same port each time.
    let mut outages = Vec::new();
    for at in [Duration::from_secs(5), Duration::from_secs(12)] {
        std::thread::sleep(at.saturating_sub(started.elapsed()));
        let down = Instant::now();
        flows.last_mut().unwrap().kill();
        std::thread::sleep(Duration::from_millis(500));
        flows.push(JinaFlow::start_on(port));
        outages.push(down.elapsed());
    }

    let (sent_in, late) = runtime.block_on(sender).unwrap();
    let finished_in = started.elapsed();
    let tally = tally.lock().unwrap();
    let (counts, sizes) = recorded(&flows);

    let acked = tally.acked.len();
    let sent: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let duplicates: u64 = counts.values().map(|&n| n.saturating_sub(1)).sum();
    let requests = sizes.len();
    let docs: usize = sizes.iter().sum();
    eprintln!(
        "[no-loss] sent {total} events at {RATE}/s (first attempts done after {:.1}s, at most {:.1}s behind schedule); \
         all answered after {:.1}s; Flow killed and restarted twice (down {:.1}s and {:.1}s)",
        sent_in.as_secs_f64(),
        late.as_secs_f64(),
        finished_in.as_secs_f64(),
        outages[0].as_secs_f64(),
        outages[1].as_secs_f64(),
    );
    eprintln!(
        "[no-loss] attempts {}, 2xx {acked}, events retried {}, answers by status {:?}",
        tally.attempts,
        tally.retried_events.len(),
        tally.by_status
    );
    eprintln!("[no-loss] sample errors: {:?}", tally.samples);
    eprintln!(
        "[no-loss] executor: {} distinct ids, {duplicates} duplicate deliveries, {requests} Flow requests, \
         {:.1} docs/request on average, largest {}",
        counts.len(),
        docs as f64 / requests.max(1) as f64,
        sizes.iter().max().copied().unwrap_or(0)
    );

    assert_eq!(
        acked, total,
        "every event must be acknowledged after retries"
    );
    let acked_not_recorded: Vec<&String> = tally
        .acked
        .iter()
        .map(|&i| &ids[i])
        .filter(|id| !counts.contains_key(*id))
        .collect();
    assert!(
        acked_not_recorded.is_empty(),
        "{} events answered 2xx but never recorded by the executor, e.g. {:?}",
        acked_not_recorded.len(),
        &acked_not_recorded[..acked_not_recorded.len().min(5)]
    );
    let unknown: Vec<&String> = counts
        .keys()
        .filter(|id| !sent.contains(id.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "the executor saw ids never sent: {unknown:?}"
    );
    assert_eq!(counts.len(), total, "every event id was recorded");
    assert!(
        !tally.retried_events.is_empty(),
        "the kills must have made the sender retry (otherwise the test proved nothing)"
    );
    drop(bridge);
}
