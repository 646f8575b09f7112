//! One connection of the events listener: what it is doing ([`Activity`]), seen from its bytes
//! ([`Watched`], the I/O) and from its requests ([`Tracked`], the service), and the loop that
//! serves it until it ends or a limit closes it ([`drive`]).
//!
//! The deadlines, from [`Limits`]:
//! * a request in flight: none here (its body has `body_timeout` in the ingress; the Flow call
//!   its gateway's `timeout`);
//! * HTTP/1, bytes of a new request head arrived: `head_timeout` from the first of them;
//! * otherwise the connection is idle: `idle_timeout` from the end of its last request (or from
//!   accept).
//!
//! At the head deadline the connection is closed. At the idle deadline it is shut down
//! gracefully (HTTP/1: closed once no response is being written; HTTP/2: GOAWAY, then closed
//! when its streams are done), and closed outright [`CLOSE_GRACE`] later — a client that never
//! reads its responses cannot hold it open.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::Service;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::config::Limits;
use crate::telemetry::metrics::Limit;

/// After a limit shut a connection down gracefully, how long it may take to finish writing.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// A connection whose client cancelled more requests than this within [`RAPID`] of their start,
/// and more than it let finish, floods (HTTP/2 rapid reset: open a stream, reset it, again):
/// GOAWAY.
const RESET_FLOOD_MIN: u64 = 100;
/// A cancel this soon after the request began is a rapid reset; later, it is a client's own
/// timeout (a proxy or a Broker giving up on a slow Flow), which is no flood.
const RAPID: Duration = Duration::from_secs(1);
/// The preface of an HTTP/2 connection (prior knowledge, h2c), up to where it differs from any
/// HTTP/1 request line.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";
/// No head started (the value of [`Activity::head_since`]).
const NONE: u64 = u64::MAX;

/// What one connection is doing, shared by its I/O, its service (HTTP/2 runs each request in its
/// own task) and its [`drive`] loop. Times are nanoseconds since `epoch`.
#[derive(Debug)]
pub struct Activity {
    epoch: Instant,
    /// HTTP/2 (the preface seen, or ALPN `h2`): bytes between requests are frames, not a head.
    h2: AtomicBool,
    in_flight: AtomicUsize,
    /// When the last request ended (or the connection was accepted).
    idle_since: AtomicU64,
    /// When the first byte of the next HTTP/1 head arrived; [`NONE`] when none did.
    head_since: AtomicU64,
    /// Requests answered; requests the client dropped before their answer within [`RAPID`] of
    /// their start; request bodies the client broke off within [`RAPID`] (an HTTP/2 stream
    /// reset while its body was read: the request is answered, with an error, but the client
    /// cancelled it).
    finished: AtomicU64,
    cancelled: AtomicU64,
    aborted: AtomicU64,
    /// The connection's task, woken when its last request ends (an HTTP/2 stream ends in its
    /// own task, and the idle deadline starts then).
    waker: futures_util::task::AtomicWaker,
}

impl Activity {
    /// A connection accepted now; `h2` when ALPN already chose HTTP/2.
    pub fn new(h2: bool) -> Arc<Activity> {
        Arc::new(Activity {
            epoch: Instant::now(),
            h2: AtomicBool::new(h2),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(NONE),
            finished: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            aborted: AtomicU64::new(0),
            waker: futures_util::task::AtomicWaker::new(),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(NONE - 1)
    }

    fn at(&self, nanos: u64, after: Duration) -> Instant {
        let far = Duration::from_secs(86_400 * 365);
        self.epoch
            .checked_add(Duration::from_nanos(nanos).saturating_add(after.min(far)))
            .unwrap_or_else(|| self.epoch + far)
    }

    /// Bytes arrived on the connection.
    fn read(&self) {
        if !self.h2.load(Ordering::Relaxed)
            && self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_since.load(Ordering::Relaxed) == NONE
        {
            self.head_since.store(self.now(), Ordering::Relaxed);
        }
    }

    fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(NONE, Ordering::Relaxed);
    }

    /// The preface of HTTP/2 was seen: bytes between requests are frames, not a head.
    fn is_h2(&self) {
        self.h2.store(true, Ordering::Relaxed);
        self.head_since.store(NONE, Ordering::Relaxed);
    }

    fn end(&self, answered: bool, begun: Instant) {
        if answered {
            self.finished.fetch_add(1, Ordering::Relaxed);
        } else if begun.elapsed() < RAPID {
            self.cancelled.fetch_add(1, Ordering::Relaxed);
        }
        // Before the count: once it reads 0, the connection's task may read this.
        self.idle_since.store(self.now(), Ordering::Relaxed);
        if self.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.waker.wake();
        }
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) > 0
    }

    /// The next deadline and the limit it enforces; `None` while a request is in flight.
    fn deadline(&self, limits: &Limits) -> Option<(Instant, Limit)> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let head = self.head_since.load(Ordering::Relaxed);
        if head != NONE {
            return Some((self.at(head, limits.head_timeout), Limit::HeadTimeout));
        }
        let idle = self.idle_since.load(Ordering::Relaxed);
        Some((self.at(idle, limits.idle_timeout), Limit::IdleTimeout))
    }

    /// Whether the client cancels its requests as fast as it opens them (rapid reset).
    fn floods(&self) -> bool {
        let aborted = self.aborted.load(Ordering::Relaxed);
        let cancelled = self.cancelled.load(Ordering::Relaxed) + aborted;
        let finished = self
            .finished
            .load(Ordering::Relaxed)
            .saturating_sub(aborted);
        cancelled > RESET_FLOOD_MIN && cancelled > finished
    }
}

pin_project_lite::pin_project! {
    /// The connection's I/O, telling [`Activity`] when bytes arrive.
    pub struct Watched<I> {
        #[pin]
        io: I,
        activity: Arc<Activity>,
        // How many bytes of [`H2_PREFACE`] the connection began with so far; `None` once it
        // differed or matched whole.
        sniffed: Option<usize>,
    }
}

impl<I> Watched<I> {
    pub fn new(io: I, activity: Arc<Activity>) -> Watched<I> {
        Watched {
            io,
            activity,
            sniffed: Some(0),
        }
    }
}

/// Follow the HTTP/2 preface through `bytes`: the new count of matched bytes, `None` when the
/// connection is settled (`true`: it is HTTP/2).
fn sniff(matched: usize, bytes: &[u8]) -> Result<usize, bool> {
    let rest = &H2_PREFACE[matched..];
    let n = rest.len().min(bytes.len());
    if rest[..n] != bytes[..n] {
        return Err(false);
    }
    if matched + n == H2_PREFACE.len() {
        return Err(true);
    }
    Ok(matched + n)
}

impl<I: AsyncRead> AsyncRead for Watched<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let poll = this.io.poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll
            && buf.filled().len() > before
        {
            let bytes = &buf.filled()[before..];
            if let Some(matched) = *this.sniffed {
                *this.sniffed = match sniff(matched, bytes) {
                    Ok(more) => Some(more),
                    Err(h2) => {
                        if h2 {
                            this.activity.is_h2();
                        }
                        None
                    }
                };
            }
            this.activity.read();
        }
        poll
    }
}

impl<I: AsyncWrite> AsyncWrite for Watched<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.project().io.poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().io.poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.project().io.poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// The connection's service, telling [`Activity`] when each request begins and ends.
#[derive(Debug, Clone)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Tracked<S> {
        Tracked { inner, activity }
    }
}

impl<S: Service<hyper::Request<WatchedBody>>> Service<hyper::Request<Incoming>> for Tracked<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = InFlight<S::Future>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        self.activity.begin();
        let begun = Instant::now();
        let activity = self.activity.clone();
        let request = request.map(|inner| WatchedBody {
            inner,
            activity,
            begun,
        });
        InFlight {
            inner: self.inner.call(request),
            guard: Guard {
                activity: self.activity.clone(),
                answered: false,
                begun,
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// A request's body, telling [`Activity`] when the client breaks it off.
    pub struct WatchedBody {
        #[pin]
        inner: Incoming,
        activity: Arc<Activity>,
        begun: Instant,
    }
}

impl hyper::body::Body for WatchedBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, hyper::Error>>> {
        let this = self.project();
        let poll = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Err(_))) = &poll
            && this.begun.elapsed() < RAPID
        {
            this.activity.aborted.fetch_add(1, Ordering::Relaxed);
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Ends the request in [`Activity`] when dropped: answered, or cancelled by the client.
#[derive(Debug)]
struct Guard {
    activity: Arc<Activity>,
    answered: bool,
    begun: Instant,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.activity.end(self.answered, self.begun);
    }
}

pin_project_lite::pin_project! {
    /// A request's future, with the guard that ends it.
    pub struct InFlight<F> {
        #[pin]
        inner: F,
        guard: Guard,
    }
}

impl<F: Future> Future for InFlight<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let poll = this.inner.poll(cx);
        if poll.is_ready() {
            this.guard.answered = true;
        }
        poll
    }
}

/// A connection [`drive`] can serve and shut down.
pub trait Connection:
    Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>
{
    fn graceful_shutdown(self: Pin<&mut Self>);
}

/// How a connection ended.
#[derive(Debug)]
pub enum Ended {
    /// It finished: the client closed it, or the shutdown closed it.
    Done(Result<(), Box<dyn std::error::Error + Send + Sync>>),
    /// A limit closed it.
    Limit(Limit),
}

/// Serve `conn` until it ends, the `shutdown` flag turns true (graceful shutdown: it finishes
/// its requests) or a deadline of [`Activity`] passes (graceful shutdown, then at most
/// [`CLOSE_GRACE`]).
pub async fn drive<C: Connection>(
    mut conn: Pin<&mut C>,
    activity: &Activity,
    limits: &Limits,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Ended {
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let mut sleep = std::pin::pin!(tokio::time::sleep_until(far));
    let mut armed: Option<Instant> = None;
    let mut shutting = false;
    let limit = loop {
        if !shutting && *shutdown.borrow() {
            shutting = true;
            conn.as_mut().graceful_shutdown();
        }
        let step = {
            let next = std::future::poll_fn(|cx| {
                poll_conn(
                    cx,
                    conn.as_mut(),
                    activity,
                    limits,
                    sleep.as_mut(),
                    &mut armed,
                )
            });
            tokio::select! {
                step = next => Some(step),
                // The flag changed (or its sender is gone: the server stopped).
                _ = shutdown.changed(), if !shutting => None,
            }
        };
        match step {
            Some(Step::Done(result)) => return Ended::Done(result),
            Some(Step::Limit(limit)) => break limit,
            None if shutdown.has_changed().is_err() => {
                shutting = true;
                conn.as_mut().graceful_shutdown();
            }
            None => {}
        }
    };
    if limit != Limit::HeadTimeout {
        // HTTP/1 closes an idle connection at once, HTTP/2 sends GOAWAY first (a rapid-reset
        // connection may have honest streams in flight too). A half-read head has no request
        // to finish: that connection is closed outright.
        conn.as_mut().graceful_shutdown();
        loop {
            if tokio::time::timeout(CLOSE_GRACE, conn.as_mut())
                .await
                .is_ok()
            {
                break;
            }
            // Requests still in flight finish (their gateway's timeout bounds them); a
            // connection with none left that is still open is not reading its answers.
            if !activity.busy() {
                break;
            }
        }
    }
    Ended::Limit(limit)
}

enum Step {
    Done(Result<(), Box<dyn std::error::Error + Send + Sync>>),
    Limit(Limit),
}

/// Poll the connection, then (it is still open) re-arm the timer for the deadline its activity
/// now has — HTTP/1 requests begin and end inside this poll — and check it.
fn poll_conn<C: Connection>(
    cx: &mut Context<'_>,
    conn: Pin<&mut C>,
    activity: &Activity,
    limits: &Limits,
    mut sleep: Pin<&mut Sleep>,
    armed: &mut Option<Instant>,
) -> Poll<Step> {
    activity.waker.register(cx.waker());
    if let Poll::Ready(result) = conn.poll(cx) {
        return Poll::Ready(Step::Done(result));
    }
    if activity.floods() {
        return Poll::Ready(Step::Limit(Limit::ResetFlood));
    }
    let Some((deadline, limit)) = activity.deadline(limits) else {
        return Poll::Pending;
    };
    if *armed != Some(deadline) {
        sleep.as_mut().reset(deadline);
        *armed = Some(deadline);
    }
    match sleep.poll(cx) {
        Poll::Ready(()) => Poll::Ready(Step::Limit(limit)),
        Poll::Pending => Poll::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preface_is_told_from_http1_byte_by_byte() {
        assert_eq!(sniff(0, b"P"), Ok(1));
        assert_eq!(sniff(1, b"RI * HT"), Ok(8));
        assert_eq!(sniff(8, b"TP/2.0\r\n\r\nSM"), Err(true));
        assert_eq!(sniff(0, b"PRI * HTTP/2.0\r\n"), Err(true));
        assert_eq!(sniff(0, b"POST / HTTP/1.1\r\n"), Err(false));
        assert_eq!(sniff(1, b"OST"), Err(false));
        assert_eq!(sniff(0, b"GET"), Err(false));
    }

    #[tokio::test]
    async fn a_late_cancel_is_no_flood_and_an_early_one_is() {
        let limits = Limits::default();
        let late = Activity::new(true);
        for _ in 0..300 {
            late.begin();
            late.end(false, Instant::now() - RAPID);
        }
        assert!(!late.floods(), "a client's own timeouts are no rapid reset");
        let rapid = Activity::new(true);
        for _ in 0..101 {
            rapid.begin();
            rapid.end(false, Instant::now());
        }
        assert!(rapid.floods());
        assert!(
            rapid.deadline(&limits).is_some(),
            "idle once the last ended"
        );
    }
}
