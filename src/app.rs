//! Wiring for `flowbridge serve`: binds the listeners ([`Listeners`]), then [`run`] builds the
//! first [`Runtime`] from a validated config (a dispatcher per gateway, a dedup window per route
//! that asks for one), serves on them ([`server::serve`]: plain HTTP or TLS, with the server
//! limits of `limits:`), starts the config watcher
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

use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::ingress::{self, AppState};
use crate::reload::{self, Loaded, Source};
use crate::reply;
use crate::runtime::Runtime;
use crate::server;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::trace;

/// Run the sink with the config `loaded` from `source` until a shutdown signal arrives;
/// reload from `source` on SIGHUP and when its files change ([`reload::watch`]).
pub async fn serve(loaded: Loaded, source: Source) -> Result<(), String> {
    start_tracing()?;
    raise_open_files(loaded.config.limits.max_connections);
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

/// Raise the soft limit of open files to the hard one: every connection takes a descriptor, and
/// a soft limit of 1024 (a common default) would refuse connections long before
/// `limits.max_connections`. Warn when even the hard limit is below it.
fn raise_open_files(max_connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            // Gateways, Redis, config files, the admin listener: a few dozen more.
            let needed = max_connections as u64 + 64;
            if limit < needed {
                warn!(
                    open_files = limit,
                    max_connections,
                    "the open-files limit (ulimit -n) is below limits.max_connections + 64; \
                     accepting beyond it fails (EMFILE, logged) until descriptors free up"
                );
            } else {
                debug!(open_files = limit, "open-files limit");
            }
        }
        Err(e) => warn!(error = %e, "cannot read or raise the open-files limit"),
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
    let server = server::serve(listener, app, state, tls, shutdown);
    tokio::select! {
        () = server => {
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
