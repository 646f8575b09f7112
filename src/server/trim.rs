//! Giving memory back after a storm of connections: every HTTP/1 connection holds about 20 KiB
//! (hyper's 8 KiB read and 8 KiB write buffers, its task), and once thousands of them closed,
//! glibc's allocator keeps what they freed — 5,000 idle keep-alive connections leave the
//! process 80 MB larger than before them for good. [`Trim`] watches the open connections' high
//! mark; when the count falls to a quarter of a mark of at least [`MIN_PEAK`], it asks glibc to
//! return its free pages (`malloc_trim(0)`, on a blocking thread: it walks the heap). Other C
//! libraries (musl) return freed memory themselves; there it does nothing.

use std::sync::atomic::{AtomicI64, Ordering};

/// Below this many open connections, what they freed is not worth a trim.
const MIN_PEAK: i64 = 256;

/// The high mark of open connections since the last trim.
#[derive(Debug, Default)]
pub struct Trim {
    peak: AtomicI64,
}

impl Trim {
    /// A connection was accepted: `open` are open now.
    pub fn opened(&self, open: i64) {
        self.peak.fetch_max(open, Ordering::Relaxed);
    }

    /// A connection closed: `open` are still open. Trims (once per storm) when they fell to a
    /// quarter of the mark.
    pub fn closed(&self, open: i64) {
        let peak = self.peak.load(Ordering::Relaxed);
        if peak >= MIN_PEAK
            && open.saturating_mul(4) <= peak
            && self
                .peak
                .compare_exchange(peak, open, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tokio::task::spawn_blocking(release);
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release() {
    // SAFETY: malloc_trim takes a size and touches only the allocator's own state, under its
    // locks; glibc documents it as safe to call from any thread at any time.
    let released = unsafe { libc::malloc_trim(0) };
    tracing::debug!(
        released = released != 0,
        "connections closed: free memory returned"
    );
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_when_a_storm_of_connections_is_over() {
        let trim = Trim::default();
        for open in 1..=1000 {
            trim.opened(open);
        }
        // Not yet a quarter of the mark.
        trim.closed(251);
        assert_eq!(trim.peak.load(Ordering::Relaxed), 1000);
        // A quarter: the mark starts again from what is open (the trim itself needs a runtime,
        // so the test checks the mark, which changes only when the trim is started).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async { trim.closed(250) });
        assert_eq!(trim.peak.load(Ordering::Relaxed), 250);
        runtime.block_on(async { trim.closed(200) });
        assert_eq!(trim.peak.load(Ordering::Relaxed), 250, "no second trim");
    }

    #[test]
    fn a_few_connections_never_trim() {
        let trim = Trim::default();
        trim.opened(100);
        trim.closed(0);
        assert_eq!(trim.peak.load(Ordering::Relaxed), 100);
    }
}
