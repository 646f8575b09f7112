//! [`Backoff`]: the full-jitter exponential pauses between attempts at a gateway that has not
//! accepted a request yet (`FlowClient::call`'s loop and the dispatcher's cold-gateway probe).
//! Pure timing arithmetic: no clock, no I/O, no knowledge of what is retried.

use std::time::Duration;

use crate::model::RetrySpec;

/// Full-jitter exponential backoff: each pause is uniform in `[0, ceiling]`; the ceiling starts at
/// `initial_backoff` and doubles up to `max_backoff`.
#[derive(Debug, Clone)]
pub struct Backoff {
    ceiling: Duration,
    initial: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(spec: &RetrySpec) -> Backoff {
        Backoff {
            ceiling: spec.initial_backoff,
            initial: spec.initial_backoff,
            max: spec.max_backoff.max(spec.initial_backoff),
        }
    }

    /// The next pause; raises the ceiling for the one after.
    pub fn next_pause(&mut self) -> Duration {
        let pause = jittered(self.ceiling);
        self.ceiling = (self.ceiling * 2).min(self.max);
        pause
    }

    /// The ceiling the next pause is drawn under.
    pub fn ceiling(&self) -> Duration {
        self.ceiling
    }

    /// Back to `initial_backoff` (after a success).
    pub fn reset(&mut self) {
        self.ceiling = self.initial;
    }
}

/// Full jitter: a uniformly random pause in `[0, ceiling]`.
fn jittered(ceiling: Duration) -> Duration {
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(fastrand::u64(0..=micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_ceiling_doubles_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(&RetrySpec {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            codes: vec![],
        });
        let mut ceilings = Vec::new();
        for _ in 0..4 {
            let ceiling = backoff.ceiling();
            assert!(backoff.next_pause() <= ceiling);
            ceilings.push(ceiling.as_millis());
        }
        assert_eq!(ceilings, vec![100, 200, 350, 350]);
        backoff.reset();
        assert_eq!(backoff.ceiling(), Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_within_ceiling() {
        for _ in 0..100 {
            assert!(jittered(Duration::from_millis(50)) <= Duration::from_millis(50));
        }
    }
}
