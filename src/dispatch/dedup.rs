//! [`Dedup`]: a route's redelivery window (`routes[].dedup`), keyed on the event's
//! (source, id) — the pair CloudEvents defines as unique.
//!
//! * An event already processed successfully within the window gets the stored outcome again;
//!   the Flow is not called.
//! * A redelivery of an event still in flight waits for the first delivery: it gets its outcome
//!   when that succeeds, and makes its own attempt when that fails (failures are never stored,
//!   so a sender's retry after a 5xx really retries).
//! * Memory is bounded: entries expire `window` after they were stored, and beyond `capacity`
//!   entries the oldest is evicted first (with one window for the whole route, the oldest entry
//!   is also the one closest to expiry).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// Most stored outcomes per route.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// (source, id) of an event.
pub type Key = (String, String);

enum Entry<V> {
    /// Being processed; waiters watch the sender, which is dropped when it ends.
    InFlight(watch::Sender<()>),
    Done {
        value: V,
        expires: Instant,
        generation: u64,
    },
}

struct Inner<V> {
    entries: HashMap<Key, Entry<V>>,
    /// Stored outcomes, oldest first: (key, generation of that entry).
    order: VecDeque<(Key, u64)>,
    next_generation: u64,
}

/// One route's window.
pub struct Dedup<V> {
    window: Duration,
    capacity: usize,
    inner: Mutex<Inner<V>>,
}

impl<V> std::fmt::Debug for Dedup<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dedup")
            .field("window", &self.window)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// What [`Dedup::claim`] found.
pub enum Claim<'a, V> {
    /// Processed before: this is its outcome.
    Done(V),
    /// Nobody has it: process it, then call [`Guard::finish`].
    Run(Guard<'a, V>),
}

/// The right (and duty) to process one key. Dropping it without [`Guard::finish`] counts as a
/// failure: waiters wake up and try themselves.
pub struct Guard<'a, V> {
    dedup: &'a Dedup<V>,
    key: Option<Key>,
}

impl<V: Clone> Dedup<V> {
    pub fn new(window: Duration, capacity: usize) -> Dedup<V> {
        Dedup {
            window,
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
                next_generation: 0,
            }),
        }
    }

    /// The stored outcome for `key`, or the right to process it; waits while another delivery
    /// of the same key is in flight.
    pub async fn claim(&self, key: Key) -> Claim<'_, V> {
        loop {
            let mut waiting = {
                let Ok(mut inner) = self.inner.lock() else {
                    // A poisoned lock: behave as if dedup were off.
                    return Claim::Run(Guard {
                        dedup: self,
                        key: None,
                    });
                };
                let now = Instant::now();
                purge(&mut inner, now, self.capacity);
                match inner.entries.get(&key) {
                    Some(Entry::Done { value, expires, .. }) if *expires > now => {
                        return Claim::Done(value.clone());
                    }
                    Some(Entry::InFlight(sender)) => sender.subscribe(),
                    _ => {
                        let (sender, _) = watch::channel(());
                        inner.entries.insert(key.clone(), Entry::InFlight(sender));
                        return Claim::Run(Guard {
                            dedup: self,
                            key: Some(key),
                        });
                    }
                }
            };
            // Resolves (with an error) when the in-flight delivery ends and drops its sender.
            let _ = waiting.changed().await;
        }
    }

    /// Number of stored outcomes and in-flight keys.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.entries.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drop expired and stale entries from the front, then the oldest beyond `capacity`.
fn purge<V>(inner: &mut Inner<V>, now: Instant, capacity: usize) {
    while let Some((key, generation)) = inner.order.front() {
        let current = match inner.entries.get(key) {
            Some(Entry::Done {
                generation: g,
                expires,
                ..
            }) if g == generation => Some(*expires),
            _ => None,
        };
        match current {
            // Replaced or removed since: only the order record is stale.
            None => {
                inner.order.pop_front();
            }
            Some(expires) if expires <= now || inner.order.len() > capacity => {
                if let Some((key, _)) = inner.order.pop_front() {
                    inner.entries.remove(&key);
                }
            }
            Some(_) => break,
        }
    }
}

impl<V: Clone> Guard<'_, V> {
    /// Store `value` as the key's outcome (a success) and wake the waiters.
    pub fn finish(mut self, value: V) {
        let Some(key) = self.key.take() else {
            return;
        };
        let Ok(mut inner) = self.dedup.inner.lock() else {
            return;
        };
        let generation = inner.next_generation;
        inner.next_generation += 1;
        let expires = Instant::now() + self.dedup.window;
        inner.entries.insert(
            key.clone(),
            Entry::Done {
                value,
                expires,
                generation,
            },
        );
        inner.order.push_back((key, generation));
        purge(&mut inner, Instant::now(), self.dedup.capacity);
    }
}

impl<V> Drop for Guard<'_, V> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take()
            && let Ok(mut inner) = self.dedup.inner.lock()
            && matches!(inner.entries.get(&key), Some(Entry::InFlight(_)))
        {
            inner.entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
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
}
