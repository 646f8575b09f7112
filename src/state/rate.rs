//! [`SharedRate`]: one gateway's `rate` as one budget for every replica — GCRA (the generic
//! cell rate algorithm) in a Lua script, run with EVALSHA ([`redis::Script`]), one round trip per
//! Flow request.
//!
//! The key `<prefix>rate:<gateway>` holds the *theoretical arrival time* (TAT, ms) of the next
//! request. A request at `now` is allowed when `now >= TAT - tolerance`, and then moves the TAT
//! to `max(TAT, now) + interval`; otherwise the script answers how long to wait. `interval` is
//! `1000 / rate` ms and `tolerance` is `(burst - 1) × interval`, with `burst = max(1, rate)`:
//! the same shape as the local token bucket (`dispatch::bucket`), which holds `max(1, rate)`
//! tokens. The clock is Redis' own (`TIME`), so replicas whose clocks differ agree.
//!
//! Knows nothing of the dispatcher; the policy when Redis fails is the caller's.

use std::sync::Arc;
use std::time::Duration;

use redis::Script;

use super::{Feature, StateError, Store};

/// KEYS[1]: the TAT; ARGV[1]: interval (ms); ARGV[2]: burst. Answers "0" (go) or the wait in
/// ms, as a string (Lua numbers would be truncated to integers on the way out).
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then
  return tostring(allow_at - now)
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil(next_tat - now) + 1000)
return '0'
";

/// One gateway's shared budget.
pub struct SharedRate {
    store: Arc<Store>,
    key: String,
    interval_ms: f64,
    burst: f64,
    script: Script,
}

impl std::fmt::Debug for SharedRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRate")
            .field("key", &self.key)
            .field("interval_ms", &self.interval_ms)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl SharedRate {
    /// The budget of `gateway`: `rate` requests per second (> 0) across all replicas.
    pub fn new(store: Arc<Store>, gateway: &str, rate: f64) -> SharedRate {
        SharedRate {
            key: store.key(&["rate", gateway]),
            store,
            interval_ms: 1000.0 / rate,
            burst: rate.max(1.0).floor(),
            script: Script::new(GCRA),
        }
    }

    /// Take one request from the budget: `Ok(Ok(()))` to go, `Ok(Err(wait))` to try again after
    /// `wait`, `Err` when Redis did not answer.
    pub async fn try_take(&self) -> Result<Result<(), Duration>, StateError> {
        let mut conn = self.store.conn();
        let mut invocation = self.script.key(&self.key);
        invocation.arg(self.interval_ms).arg(self.burst);
        let answer: String = self
            .store
            .call(Feature::Rate, invocation.invoke_async(&mut conn))
            .await?;
        let wait_ms: f64 = answer.trim().parse().unwrap_or(0.0);
        if wait_ms <= 0.0 {
            Ok(Ok(()))
        } else {
            Ok(Err(
                Duration::from_secs_f64(wait_ms / 1000.0).max(Duration::from_micros(100))
            ))
        }
    }
}
