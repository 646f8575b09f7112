//! The shared rate budget as the driver takes it: one Redis round trip
//! ([`crate::state::rate::SharedRate`]) before each Flow request of a gateway whose `rate` is
//! shared (`state:` in the config). The driver waits here, so the queue keeps its order and
//! its deadlines (expired events leave the front on the next plan).
//!
//! When Redis fails: `on_state_error.rate: open` takes the token from this process's own bucket
//! (the budget is per replica again until Redis answers); `closed` fails every waiting event
//! with 503 (`state_unavailable`, naming the shared state) so that senders retry later.

use tokio::time::Instant;
use tracing::debug;

use super::Shared;
use crate::flow::FlowError;
use crate::state::Policy;

/// Longest pause before looking at the budget again (new events may have expired meanwhile).
const MAX_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// Take a token for the next request, or wait until one may be there.
pub(super) async fn take(shared: &Shared) {
    let Some((rate, policy)) = &shared.shared_rate else {
        shared.lock().token = true;
        return;
    };
    let pause = match rate.try_take().await {
        Ok(Ok(())) => {
            shared.lock().token = true;
            return;
        }
        Ok(Err(wait)) => wait,
        Err(error) => match policy {
            Policy::Open => {
                debug!(gateway = %shared.client.spec.name, error = %error, "rate: this replica's own bucket");
                let mut state = shared.lock();
                match state.bucket.as_mut().map(|b| b.try_take(Instant::now())) {
                    Some(Err(wait)) => wait,
                    Some(Ok(())) | None => {
                        state.token = true;
                        return;
                    }
                }
            }
            Policy::Closed => {
                let failed = shared.lock().queue.take_all();
                let message = format!("the shared rate budget is unavailable: {error}");
                let now = Instant::now();
                for pending in failed {
                    super::answer::waited(&shared.metrics, &pending, now);
                    let _ = pending.answer.send(Err(FlowError::StateUnavailable {
                        gateway: shared.client.spec.name.clone(),
                        message: message.clone(),
                    }));
                }
                return;
            }
        },
    };
    tokio::time::sleep(pause.min(MAX_PAUSE)).await;
}
