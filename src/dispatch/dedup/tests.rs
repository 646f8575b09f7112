//! Tests of `crate::dispatch::dedup`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

fn key(id: &str) -> Key {
    ("/src".to_string(), id.to_string())
}

async fn run_once(dedup: &Dedup<String>, id: &str, calls: &AtomicUsize) -> String {
    match dedup.claim(key(id)).await {
        Claim::Done(v) => v,
        Claim::Run(guard) => {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            let v = format!("outcome-{n}");
            guard.finish(v.clone());
            v
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_processed_event_gets_the_same_outcome_until_the_window_ends() {
    let dedup = Dedup::new(Duration::from_secs(60), 10);
    let calls = AtomicUsize::new(0);
    assert_eq!(run_once(&dedup, "a", &calls).await, "outcome-0");
    assert_eq!(run_once(&dedup, "a", &calls).await, "outcome-0");
    assert_eq!(run_once(&dedup, "b", &calls).await, "outcome-1");
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(run_once(&dedup, "a", &calls).await, "outcome-0");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(run_once(&dedup, "a", &calls).await, "outcome-2", "expired");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn the_same_id_from_another_source_is_another_event() {
    let dedup: Dedup<String> = Dedup::new(Duration::from_secs(60), 10);
    let Claim::Run(g) = dedup.claim(("/a".into(), "1".into())).await else {
        panic!("first claim must run");
    };
    g.finish("x".into());
    assert!(matches!(
        dedup.claim(("/b".into(), "1".into())).await,
        Claim::Run(_)
    ));
}

#[tokio::test]
async fn capacity_evicts_the_oldest() {
    let dedup = Dedup::new(Duration::from_secs(60), 3);
    let calls = AtomicUsize::new(0);
    for id in ["a", "b", "c", "d"] {
        run_once(&dedup, id, &calls).await;
    }
    assert_eq!(dedup.len(), 3);
    // "a" was evicted: it runs again; "d" is still known.
    assert_eq!(run_once(&dedup, "d", &calls).await, "outcome-3");
    assert_eq!(run_once(&dedup, "a", &calls).await, "outcome-4");
    assert_eq!(dedup.len(), 3);
}

#[tokio::test]
async fn a_redelivery_in_flight_waits_for_the_first() {
    let dedup = Arc::new(Dedup::new(Duration::from_secs(60), 10));
    let Claim::Run(guard) = dedup.claim(key("a")).await else {
        panic!("first claim must run");
    };
    let waiter = {
        let dedup = dedup.clone();
        tokio::spawn(async move {
            match dedup.claim(key("a")).await {
                Claim::Done(v) => v,
                Claim::Run(_) => "ran".to_string(),
            }
        })
    };
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    guard.finish("first".to_string());
    assert_eq!(waiter.await.unwrap(), "first");
}

#[tokio::test]
async fn a_failed_first_delivery_lets_the_waiter_run() {
    let dedup = Arc::new(Dedup::<String>::new(Duration::from_secs(60), 10));
    let Claim::Run(guard) = dedup.claim(key("a")).await else {
        panic!("first claim must run");
    };
    let waiter = {
        let dedup = dedup.clone();
        tokio::spawn(async move {
            match dedup.claim(key("a")).await {
                Claim::Done(_) => "done",
                Claim::Run(_) => "ran",
            }
        })
    };
    tokio::task::yield_now().await;
    drop(guard); // failure: nothing stored
    assert_eq!(waiter.await.unwrap(), "ran");
    assert!(dedup.is_empty());
}
