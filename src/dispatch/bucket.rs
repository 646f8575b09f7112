//! [`TokenBucket`]: the optional per-gateway request rate (`gateways.*.rate`, requests/s). Holds
//! up to `max(1, rate)` tokens, refilled continuously; every Flow request (one batch) takes one.
//! Time is passed in, so the rule is tested without clocks.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket refilled at `rate` tokens per second (`rate` > 0).
    pub fn new(rate: f64, now: Instant) -> TokenBucket {
        let capacity = rate.max(1.0);
        TokenBucket {
            rate,
            capacity,
            tokens: capacity,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.updated = now;
    }

    /// Take a token, or say how long until one is there.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - self.tokens;
            Err(Duration::from_secs_f64(missing / self.rate).max(Duration::from_micros(100)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_up_to_capacity_then_refill_at_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(4.0, start);
        for _ in 0..4 {
            assert_eq!(bucket.try_take(start), Ok(()));
        }
        let wait = bucket.try_take(start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(250));
        assert!(bucket.try_take(start + Duration::from_millis(200)).is_err());
        assert_eq!(bucket.try_take(start + Duration::from_millis(300)), Ok(()));
        // A long idle period refills only up to the capacity.
        let later = start + Duration::from_secs(60);
        for _ in 0..4 {
            assert_eq!(bucket.try_take(later), Ok(()));
        }
        assert!(bucket.try_take(later).is_err());
    }

    #[test]
    fn slow_rates_allow_one_request_then_wait() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(0.5, start);
        assert_eq!(bucket.try_take(start), Ok(()));
        assert_eq!(bucket.try_take(start).unwrap_err(), Duration::from_secs(2));
        assert_eq!(bucket.try_take(start + Duration::from_secs(2)), Ok(()));
    }
}
