//! Wiring for `flowbridge serve`: binds the listeners ([`Listeners`]), then [`run`] builds the
//! first [`Runtime`] from a validated config (a dispatcher per gateway, a dedup window per route
//! that asks for one), serves on them (plain HTTP through `axum::serve`, or TLS through this
//! module's accept loop when the config has `tls`), starts the config watcher
//! ([`reload::watch`]), flips readiness, and runs until the shutdown future resolves (SIGTERM or
//! SIGINT for `serve`). The admin listener (`admin_listen`, always plain HTTP) serves `/metrics`
//! and the probes from the same state.
//!
//! Shutdown: on the signal readiness turns false at once, the listener stops accepting, and every
//! event already received — in flight or waiting in a dispatcher queue, each has an HTTP request
//! waiting for it — gets up to `shutdown_grace` to finish; then the spans still queued for OTLP
//! export are flushed (tracing on) and the process exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::ingress::{self, AppState};
use crate::reload::{self, Loaded, Source};
use crate::reply;
use crate::runtime::Runtime;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::trace;

/// A client that has not finished its TLS handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Run the sink with the config `loaded` from `source` until a shutdown signal arrives;
/// reload from `source` on SIGHUP and when its files change ([`reload::watch`]).
pub async fn serve(loaded: Loaded, source: Source) -> Result<(), String> {
    start_tracing()?;
    let result = match Listeners::bind(&loaded.config).await {
        Ok(listeners) => run(loaded, source, listeners, signal()).await,
        Err(e) => Err(e),
    };
    // Spans of the last events are still queued in the batch span processor.
    if let Ok(Err(e)) = tokio::task::spawn_blocking(trace::shutdown).await {
        warn!(error = %e, "traces not flushed");
    }
    result
}

/// The sockets `serve` listens on, bound before anything else starts (a port in use is an error
/// before any gateway is dialled).
pub struct Listeners {
    /// Events (`listen`): plain HTTP, or TLS when the config has `tls`.
    pub main: TcpListener,
    /// `/metrics` and the probes (`admin_listen`), when configured.
    pub admin: Option<TcpListener>,
}

impl Listeners {
    /// Bind `listen` and `admin_listen` of `config`.
    pub async fn bind(config: &Config) -> Result<Listeners, String> {
        let listen = config.listen;
        let main = TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let admin = match config.admin_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr} (admin_listen): {e}"))?,
            ),
            None => None,
        };
        Ok(Listeners { main, admin })
    }
}

/// OpenTelemetry tracing from the `OTEL_*` environment (off unless an OTLP endpoint is set).
fn start_tracing() -> Result<(), String> {
    let settings = trace::settings(|name| std::env::var(name).ok())
        .map_err(|errors| format!("tracing environment: {}", errors.join("; ")))?;
    match settings {
        Some(settings) => {
            trace::init(&settings)?;
            info!(
                endpoint = %settings.endpoint,
                protocol = ?settings.protocol,
                service_name = %settings.service_name,
                sampler = ?settings.sampler,
                "tracing on: OTLP export"
            );
        }
        None => info!("tracing off (no OTEL_EXPORTER_OTLP_ENDPOINT, or OTEL_SDK_DISABLED)"),
    }
    Ok(())
}

/// Serve on bound `listeners` until `shutdown` resolves (SIGTERM/SIGINT for `serve`; any future
/// for an embedding or a test), then finish the events already received (`shutdown_grace`).
pub async fn run(
    loaded: Loaded,
    source: Source,
    listeners: Listeners,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let Loaded {
        config,
        hash,
        fingerprint,
    } = loaded;
    let metrics = Arc::new(Metrics::new([], []).with_reasons(ingress::error::IngressError::CODES));
    let (runtime, _) = Runtime::build(config, hash, None, &metrics)?;
    metrics.set_config(runtime.generation, &runtime.hash);
    let replies = reply::Sender::new()?;
    let config = &runtime.config;
    let Listeners {
        main: listener,
        admin,
    } = listeners;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    for (name, spec) in &config.gateways {
        info!(
            gateway = %name,
            url = %spec.url,
            timeout_ms = spec.timeout.as_millis() as u64,
            connect_timeout_ms = spec.connect_timeout.as_millis() as u64,
            concurrency = %spec.concurrency,
            max_pending = spec.max_pending,
            max_docs = spec.batch.max_docs,
            ca_file = ?spec.tls.ca_file,
            "gateway configured"
        );
    }
    let tls = config.tls.is_some();
    let routes = config.rules.routes.len();
    let (generation, hash) = (runtime.generation, runtime.hash.clone());
    runtime.log_auth();
    runtime.auth.prefetch().await;
    let state = Arc::new(AppState {
        runtime: arc_swap::ArcSwap::from_pointee(runtime),
        replies,
        ready: AtomicBool::new(false),
        metrics,
    });
    let app = ingress::router(state.clone());
    if let Some(admin) = admin {
        let address = admin
            .local_addr()
            .map_err(|e| format!("cannot read the bound admin address: {e}"))?;
        let admin_app = ingress::admin_router(state.clone());
        // Lives until the process exits, so metrics and probes answer during shutdown.
        tokio::spawn(async move {
            if let Err(e) = axum::serve(admin, admin_app).await {
                warn!(error = %e, "admin listener stopped");
            }
        });
        info!(address = %address, "admin listener (/metrics, /healthz, /readyz)");
    }
    // Registered before readiness, so a SIGHUP never meets the default action (exit).
    tokio::spawn(reload::watch(state.clone(), Arc::new(source), fingerprint));
    state.ready.store(true, Ordering::Relaxed);
    info!(
        address = %local,
        routes,
        tls,
        generation,
        hash = %hash,
        "flowbridge listening; config generation {generation} active"
    );
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let signal_state = state.clone();
    let shutdown = async move {
        shutdown.await;
        stop_being_ready(&signal_state);
        let _ = signalled_tx.send(());
    };
    let grace_state = state.clone();
    let grace_timer = async move {
        if signalled_rx.await.is_err() {
            // The server ended on its own; nothing to time.
            std::future::pending::<()>().await;
        }
        // The generation active at the signal decides the grace.
        let grace = grace_state.runtime().config.shutdown_grace;
        tokio::time::sleep(grace).await;
        grace
    };
    let log_state = state.clone();
    let server = async move {
        if tls {
            serve_tls(listener, app, state, shutdown).await;
            Ok(())
        } else {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    };
    tokio::select! {
        result = server => {
            result.map_err(|e| format!("server error: {e}"))?;
            info!("flowbridge stopped: every event was answered");
        }
        grace = grace_timer => {
            warn!(
                grace_ms = grace.as_millis() as u64,
                waiting = log_state.runtime().pending(),
                "shutdown_grace elapsed with events unfinished; exiting (their senders get no \
                 answer and will retry)"
            );
        }
    }
    Ok(())
}

/// The HTTPS accept loop (axum's `serve` has no TLS): each connection takes the rustls config
/// of the runtime active when it arrives (a reload with new certificate files applies to new
/// connections; open ones keep theirs), negotiates `h2` or `http/1.1` by ALPN and serves the
/// same router. On `shutdown` it stops accepting and waits for open connections to finish
/// their requests, like `axum::serve(..).with_graceful_shutdown`.
async fn serve_tls(
    listener: TcpListener,
    app: Router,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
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
        let Some(config) = state
            .runtime
            .load()
            .config
            .tls
            .as_ref()
            .map(|t| t.config.clone())
        else {
            continue;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let service = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        debug!(peer = %peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        debug!(peer = %peer, "TLS handshake timed out");
                        return;
                    }
                };
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            if let Err(e) = watcher.watch(connection).await {
                debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Resolves on SIGTERM or SIGINT.
async fn signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Shutdown began: readiness turns false at once, in-flight requests finish.
fn stop_being_ready(state: &AppState) {
    state.ready.store(false, Ordering::Relaxed);
    let runtime = state.runtime();
    let waiting = runtime.pending();
    info!(
        waiting,
        grace_ms = runtime.config.shutdown_grace.as_millis() as u64,
        "shutdown signal received; not ready, no new connections, finishing received events"
    );
}
