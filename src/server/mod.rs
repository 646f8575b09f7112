//! The events listener: the accept loop that serves the ingress router over plain HTTP or TLS,
//! HTTP/1.1 and HTTP/2 (h2c by prior knowledge, h2 by ALPN), with the server limits of the
//! active config's `limits:` applied to each new connection:
//!
//! * `max_connections`: one more connection is accepted and closed at once;
//! * `max_header_bytes`, `max_headers`: hyper answers a larger HTTP/1 head with 431 and closes
//!   the connection; HTTP/2 advertises the size as `SETTINGS_MAX_HEADER_LIST_SIZE` and answers
//!   a larger header list with 431 on that stream;
//! * `max_h2_streams`: `SETTINGS_MAX_CONCURRENT_STREAMS`;
//! * `head_timeout`, `idle_timeout` and the rapid-reset guard: [`conn`];
//! * `body_timeout` and `max_body` are the ingress's (it reads the body);
//! * and after a storm of connections, the memory they freed is given back ([`trim`]).
//!
//! Each is counted in `flowbridge_limits_total{limit}`, but for what h2 answers by itself on an
//! HTTP/2 stream (a 431, REFUSED_STREAM), which never reaches flowbridge. On shutdown the loop
//! stops accepting, tells every connection to finish its requests and close (HTTP/2: GOAWAY),
//! and returns once all are closed — the caller bounds that with `shutdown_grace`.
//!
//! Our own loop, not `axum::serve`: that one cannot set hyper's limits nor watch a connection's
//! requests.

mod conn;
mod trim;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::config::Limits;
use crate::ingress::AppState;
use crate::telemetry::metrics::Limit;
use conn::{Activity, Ended, Tracked, Watched};

/// A client that has not finished its TLS handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// hyper's smallest HTTP/1 read buffer.
const MIN_BUF: usize = 8 << 10;

/// Serve `app` on `listener` until `shutdown` resolves, then until every connection closed.
/// With `tls`, each connection takes the rustls config of the runtime active when it arrives
/// (a reload with new certificate files applies to new connections).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    state: Arc<AppState>,
    tls: bool,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let trim = Arc::new(trim::Trim::default());
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let runtime = state.runtime();
        let limits = runtime.config.limits.clone();
        let server = &state.metrics.server;
        server.connections.inc();
        let open = server.connections_open.inc();
        if usize::try_from(open).unwrap_or(usize::MAX) >= limits.max_connections {
            server.connections_open.dec();
            server.limit_hit(Limit::MaxConnections);
            debug!(peer = %peer, max = limits.max_connections, "connection refused: limits.max_connections");
            drop(tcp);
            continue;
        }
        trim.opened(open + 1);
        let _ = tcp.set_nodelay(true);
        let acceptor = match (tls, runtime.config.tls.as_ref()) {
            (true, Some(t)) => Some(tokio_rustls::TlsAcceptor::from(t.config.clone())),
            (false, _) => None,
            // A TLS listener never serves plain HTTP (a reload keeps `tls` on; this is a guard).
            (true, None) => {
                server.connections_open.dec();
                continue;
            }
        };
        let connection = Served {
            app: app.clone(),
            state: state.clone(),
            limits,
            stopping: stopping.clone(),
            trim: trim.clone(),
        };
        // Two tasks, not one with a branch: a plain connection's task would otherwise be as
        // large as a TLS one (the rustls state and the handshake future inline).
        match acceptor {
            None => {
                tokio::spawn(connection.run(tcp, false));
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                            connection.run(stream, h2).await;
                        }
                        // Dropping `connection` counts it closed.
                        Ok(Err(e)) => debug!(peer = %peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(peer = %peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
    drop(listener);
    drop(stopping);
    let _ = stop.send(true);
    stop.closed().await;
}

/// One accepted connection and what serving it needs.
struct Served {
    app: Router,
    state: Arc<AppState>,
    limits: Limits,
    stopping: tokio::sync::watch::Receiver<bool>,
    trim: Arc<trim::Trim>,
}

/// The connection is gone, however it ended (a handler's panic included): one fewer open.
impl Drop for Served {
    fn drop(&mut self) {
        let open = self.state.metrics.server.connections_open.dec() - 1;
        self.trim.closed(open);
    }
}

impl Served {
    /// Serve the connection until it ends; `h2` when ALPN chose HTTP/2.
    async fn run<I>(mut self, io: I, h2: bool)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Activity::new(h2);
        let service = Tracked::new(TowerToHyperService::new(self.app.clone()), activity.clone());
        let builder = builder(&self.limits);
        let conn = builder.serve_connection_with_upgrades(
            TokioIo::new(Watched::new(io, activity.clone())),
            service,
        );
        let conn = std::pin::pin!(conn);
        let ended = conn::drive(conn, &activity, &self.limits, &mut self.stopping).await;
        let server = &self.state.metrics.server;
        match ended {
            Ended::Done(Ok(())) => {}
            Ended::Done(Err(e)) => {
                if e.downcast_ref::<hyper::Error>()
                    .is_some_and(hyper::Error::is_parse_too_large)
                {
                    server.limit_hit(Limit::HeaderTooLarge);
                } else if calmed_down(&*e) {
                    server.limit_hit(Limit::ResetFlood);
                }
                debug!(error = %e, "connection ended with an error");
            }
            Ended::Limit(limit) => {
                server.limit_hit(limit);
                debug!(limit = limit.as_str(), "connection closed by a limit");
            }
        }
    }
}

/// Whether h2 closed the connection with ENHANCE_YOUR_CALM: its own guard against a client
/// that resets streams faster than they are accepted (rapid reset) or makes it reset too many.
fn calmed_down(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            return h2.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM);
        }
        source = e.source();
    }
    false
}

/// hyper's builder with `limits`. HTTP/1's head timeout is ours ([`conn`]): hyper's would also
/// run while the connection is idle, so one value could not be both.
fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_header_bytes.max(MIN_BUF))
        .header_read_timeout(None);
    builder
        .http2()
        .max_concurrent_streams(limits.max_h2_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

impl<I, S, B> conn::Connection for auto::UpgradeableConnection<'_, I, S, TokioExecutor>
where
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<B>,
        >,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    TokioExecutor: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        auto::UpgradeableConnection::graceful_shutdown(self);
    }
}
