//! [`SharedWindow`]: one route's dedup window in Redis, for replicas that share it.
//!
//! One key per event: `<prefix>dedup:<route>:<["source","id"] as JSON>`, whose value is
//!
//! * `R:<token>` while a replica runs the event (a *claim*, taken with `SET NX PX`: the first
//!   replica wins). It expires after the `lease` (the route's longest possible run), so a
//!   replica that died mid-run does not block the event forever;
//! * `D:<outcome JSON>` after a success, for the window: `{"request_id", "reply"}` with the
//!   reply event in the CloudEvents JSON format ([`crate::cloudevents::to_json`]). An outcome
//!   larger than [`MAX_OUTCOME`] bytes is stored without its reply (`"reply_dropped": true`):
//!   redeliveries are still not run again, but get 202 without a reply event.
//!
//! A failure deletes the claim (failures are never remembered, so the sender's retry really
//! retries). A delivery that finds a claim polls until it turns into an outcome (same status,
//! same reply) or disappears (then it claims it and runs itself), up to a deadline.
//!
//! Every call is one round trip through [`Store::call`] (bounded by `command_timeout`); the
//! policy when one fails is the caller's (`dispatch::window`).

use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use serde_json::{Value, json};
use tokio::time::Instant;
use tracing::warn;

use super::{Feature, StateError, Store};
use crate::model::Processed;

/// Largest stored outcome (JSON bytes); a larger one is stored without its reply event.
pub const MAX_OUTCOME: usize = 256 << 10;

/// Pause between two looks at a claim another replica holds: from the first to the last.
const POLL_FIRST: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_millis(200);

/// GET the key; when absent, claim it (SET value PX lease) and answer nil.
const CLAIM: &str = r"
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
";

/// Replace our claim (ARGV[1]) by the outcome (ARGV[2]) for ARGV[3] ms.
const FINISH: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
";

/// Delete our claim (ARGV[1]), not someone else's.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// One route's shared window.
pub struct SharedWindow {
    store: Arc<Store>,
    route: String,
    window: Duration,
    lease: Duration,
    claim: Script,
    finish: Script,
    release: Script,
}

impl std::fmt::Debug for SharedWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedWindow")
            .field("route", &self.route)
            .field("window", &self.window)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// What [`SharedWindow::claim`] found.
#[derive(Debug)]
pub enum Shared {
    /// Processed before (here or on another replica): its outcome.
    Done(Processed),
    /// Ours to run: finish or release this claim.
    Run(Claimed),
    /// Another replica still runs it at the deadline.
    StillRunning,
}

/// A claim this replica holds.
#[derive(Debug)]
pub struct Claimed {
    key: String,
    marker: String,
}

impl SharedWindow {
    /// The window of `route`: outcomes kept for `window`, claims for `lease`.
    pub fn new(store: Arc<Store>, route: &str, window: Duration, lease: Duration) -> SharedWindow {
        SharedWindow {
            store,
            route: route.to_string(),
            window,
            lease,
            claim: Script::new(CLAIM),
            finish: Script::new(FINISH),
            release: Script::new(RELEASE),
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    fn key(&self, source: &str, id: &str) -> String {
        let pair = serde_json::to_string(&[source, id]).unwrap_or_default();
        self.store.key(&["dedup", &self.route, &pair])
    }

    /// The stored outcome of (source, id), or the claim to run it; while another replica runs
    /// it, polls until `deadline`.
    pub async fn claim(
        &self,
        source: &str,
        id: &str,
        deadline: Instant,
    ) -> Result<Shared, StateError> {
        let key = self.key(source, id);
        let marker = format!("R:{}", uuid::Uuid::new_v4().simple());
        let lease_ms = self.lease.as_millis().max(1) as u64;
        let mut pause = POLL_FIRST;
        loop {
            let mut conn = self.store.conn();
            let mut invocation = self.claim.key(&key);
            invocation.arg(&marker).arg(lease_ms);
            let found: Option<String> = self
                .store
                .call(Feature::Dedup, invocation.invoke_async(&mut conn))
                .await?;
            match found {
                None => return Ok(Shared::Run(Claimed { key, marker })),
                Some(value) => {
                    if let Some(outcome) = value.strip_prefix("D:") {
                        match decode(outcome) {
                            Ok(processed) => return Ok(Shared::Done(processed)),
                            Err(e) => {
                                return Err(StateError {
                                    feature: Feature::Dedup.as_str(),
                                    message: format!("stored outcome of {key} unreadable: {e}"),
                                });
                            }
                        }
                    }
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Shared::StillRunning);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    /// Store `processed` as the outcome of the claimed event, for the window.
    pub async fn finish(&self, claimed: Claimed, processed: &Processed) -> Result<(), StateError> {
        let value = format!("D:{}", encode(processed, &claimed.key));
        let mut conn = self.store.conn();
        let mut invocation = self.finish.key(&claimed.key);
        invocation
            .arg(&claimed.marker)
            .arg(value)
            .arg(self.window.as_millis().max(1) as u64);
        let _: i64 = self
            .store
            .call(Feature::Dedup, invocation.invoke_async(&mut conn))
            .await?;
        Ok(())
    }

    /// Give the claim up (the event failed): the next delivery runs it.
    pub async fn release(&self, claimed: Claimed) -> Result<(), StateError> {
        let mut conn = self.store.conn();
        let mut invocation = self.release.key(&claimed.key);
        invocation.arg(&claimed.marker);
        let _: i64 = self
            .store
            .call(Feature::Dedup, invocation.invoke_async(&mut conn))
            .await?;
        Ok(())
    }
}

/// The outcome as stored: JSON, at most [`MAX_OUTCOME`] bytes (else without the reply).
fn encode(processed: &Processed, key: &str) -> String {
    let reply = processed
        .reply
        .as_deref()
        .map_or(Value::Null, crate::cloudevents::to_json);
    let full = json!({"request_id": processed.request_id, "reply": reply}).to_string();
    if full.len() <= MAX_OUTCOME {
        return full;
    }
    warn!(
        key,
        bytes = full.len(),
        max = MAX_OUTCOME,
        "dedup: outcome too large to share; stored without its reply (redeliveries get 202 without a reply)"
    );
    json!({"request_id": processed.request_id, "reply": null, "reply_dropped": true}).to_string()
}

fn decode(text: &str) -> Result<Processed, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let request_id = value["request_id"].as_str().unwrap_or_default().to_string();
    let reply = match &value["reply"] {
        Value::Null => None,
        event => Some(Box::new(
            crate::cloudevents::from_json(event).map_err(|e| e.to_string())?,
        )),
    };
    Ok(Processed { request_id, reply })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::model::CloudEvent;

    #[test]
    fn outcomes_round_trip_and_large_replies_are_dropped() {
        let mut event = CloudEvent::new("id-1", "/src", "t.reply");
        event.data = Some(crate::model::Data::Json(json!({"x": 1})));
        let processed = Processed {
            request_id: "r1".into(),
            reply: Some(Box::new(event.clone())),
        };
        let back = decode(&encode(&processed, "k")).unwrap();
        assert_eq!(back.request_id, "r1");
        assert_eq!(back.reply.as_deref(), Some(&event));

        event.data = Some(crate::model::Data::Json(json!("x".repeat(MAX_OUTCOME))));
        let big = Processed {
            request_id: "r2".into(),
            reply: Some(Box::new(event)),
        };
        let text = encode(&big, "k");
        assert!(text.len() < 200, "{text}");
        let back = decode(&text).unwrap();
        assert_eq!(back.request_id, "r2");
        assert!(back.reply.is_none());
    }
}
