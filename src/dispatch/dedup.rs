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
mod tests;
