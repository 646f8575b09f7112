//! [`Window`]: a route's dedup window as the pipeline sees it — this process's own [`Dedup`]
//! (no `state` in the config), or the window shared by every replica in Redis
//! ([`crate::state::dedup::SharedWindow`]) with this process's own as the fallback of the
//! `open` policy. One shape for both: [`Window::claim`] → [`Claim::Done`] (the stored outcome)
//! or [`Claim::Run`] with a [`Guard`] to [`Guard::finish`] on success (dropping it is a
//! failure: nothing is remembered and the next delivery runs the event).
//!
//! When Redis does not answer (within `state.command_timeout`) or another replica still runs
//! the event after its lease: with `on_state_error.dedup: open` the event goes through this
//! process's own window (redeliveries to this replica are still recognised, the failure is
//! counted by [`crate::state::Health`]); with `closed` the claim fails with a
//! [`StateError`] (503 `state_unavailable`, the sender retries).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::debug;

use super::dedup::{self, Dedup, Key};
use crate::model::Processed;
use crate::state::dedup::{Claimed, Shared, SharedWindow};
use crate::state::{Policy, StateError};

/// A route's window.
#[derive(Debug)]
pub enum Window {
    /// This process's own.
    Local(Dedup<Processed>),
    /// Shared through Redis; `fallback` serves the `open` policy.
    Shared {
        shared: Arc<SharedWindow>,
        fallback: Dedup<Processed>,
        policy: Policy,
    },
}

/// What [`Window::claim`] found.
pub enum Claim<'a> {
    /// Processed before: this is its outcome.
    Done(Processed),
    /// Process it, then call [`Guard::finish`].
    Run(Guard<'a>),
}

/// The right to process one event; dropping it without [`Guard::finish`] is a failure.
pub struct Guard<'a>(Inner<'a>);

enum Inner<'a> {
    Local(dedup::Guard<'a, Processed>),
    Shared {
        shared: Arc<SharedWindow>,
        claimed: Option<Claimed>,
    },
    /// Finished: nothing left to do on drop.
    Finished,
}

impl Window {
    /// This process's own window.
    pub fn local(window: Duration) -> Window {
        Window::Local(Dedup::new(window, dedup::DEFAULT_CAPACITY))
    }

    /// A window shared through Redis, with `policy` when Redis fails.
    pub fn shared(shared: SharedWindow, policy: Policy) -> Window {
        let fallback = Dedup::new(shared.window(), dedup::DEFAULT_CAPACITY);
        Window::Shared {
            shared: Arc::new(shared),
            fallback,
            policy,
        }
    }

    /// The shared part, if any.
    pub fn shared_window(&self) -> Option<&SharedWindow> {
        match self {
            Window::Local(_) => None,
            Window::Shared { shared, .. } => Some(shared),
        }
    }

    /// The stored outcome of `key`, or the right to process it; waits while another delivery
    /// of it is in flight (here, or on another replica up to the claim's lease).
    pub async fn claim(&self, key: Key) -> Result<Claim<'_>, StateError> {
        let (shared, fallback, policy) = match self {
            Window::Local(local) => return Ok(local_claim(local, key).await),
            Window::Shared {
                shared,
                fallback,
                policy,
            } => (shared, fallback, *policy),
        };
        // A little past the lease: by then a dead replica's claim has expired and this
        // delivery takes it over.
        let deadline = Instant::now() + shared.lease() + Duration::from_secs(1);
        let error = match shared.claim(&key.0, &key.1, deadline).await {
            Ok(Shared::Done(processed)) => return Ok(Claim::Done(processed)),
            Ok(Shared::Run(claimed)) => {
                return Ok(Claim::Run(Guard(Inner::Shared {
                    shared: shared.clone(),
                    claimed: Some(claimed),
                })));
            }
            Ok(Shared::StillRunning) => StateError {
                feature: "dedup",
                message: format!(
                    "another replica still runs this event after its lease ({})",
                    humantime::format_duration(shared.lease())
                ),
            },
            Err(e) => e,
        };
        match policy {
            Policy::Closed => Err(error),
            Policy::Open => {
                debug!(error = %error, "dedup: going on with this replica's own window");
                Ok(local_claim(fallback, key).await)
            }
        }
    }

    /// Number of entries of this process's own window (tests, debugging).
    pub fn local_len(&self) -> usize {
        match self {
            Window::Local(local) => local.len(),
            Window::Shared { fallback, .. } => fallback.len(),
        }
    }
}

async fn local_claim(local: &Dedup<Processed>, key: Key) -> Claim<'_> {
    match local.claim(key).await {
        dedup::Claim::Done(processed) => Claim::Done(processed),
        dedup::Claim::Run(guard) => Claim::Run(Guard(Inner::Local(guard))),
    }
}

impl Guard<'_> {
    /// Store `value` as the event's outcome (a success) for the window; waiters get it. When
    /// Redis does not take it, the claim expires with its lease and the event counts as not
    /// processed for the replicas (a redelivery runs it again).
    pub async fn finish(mut self, value: Processed) {
        match std::mem::replace(&mut self.0, Inner::Finished) {
            Inner::Local(guard) => guard.finish(value),
            Inner::Shared {
                shared,
                claimed: Some(claim),
            } => {
                let _ = shared.finish(claim, &value).await;
            }
            Inner::Shared { claimed: None, .. } | Inner::Finished => {}
        }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if let Inner::Shared { shared, claimed } = &mut self.0
            && let Some(claim) = claimed.take()
        {
            let shared = shared.clone();
            // Drop cannot wait: the release runs on its own (bounded by command_timeout).
            tokio::spawn(async move {
                let _ = shared.release(claim).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::state::{StateSpec, Store};

    /// A shared window on a Redis that is not there (port 1).
    fn unreachable(policy: Policy) -> Window {
        let mut spec = StateSpec::with_defaults("redis://127.0.0.1:1/0");
        spec.command_timeout = Duration::from_millis(100);
        let store = Store::connect(&spec).unwrap();
        let shared = SharedWindow::new(store, "r", Duration::from_secs(60), Duration::from_secs(5));
        Window::shared(shared, policy)
    }

    fn key() -> Key {
        ("/src".to_string(), "id-1".to_string())
    }

    #[tokio::test]
    async fn without_redis_open_uses_the_own_window_and_closed_refuses() {
        let open = unreachable(Policy::Open);
        let Ok(Claim::Run(guard)) = open.claim(key()).await else {
            panic!("open: the event runs");
        };
        guard
            .finish(Processed {
                request_id: "r1".into(),
                reply: None,
            })
            .await;
        match open.claim(key()).await {
            Ok(Claim::Done(p)) => assert_eq!(p.request_id, "r1"),
            _ => panic!("open: the own window remembers the outcome"),
        }
        assert_eq!(open.local_len(), 1);
        let closed = unreachable(Policy::Closed);
        let error = closed.claim(key()).await.err().expect("closed refuses");
        assert_eq!(error.feature, "dedup");
    }
}
