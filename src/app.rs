//! Wiring for `flowbridge serve`: builds the shared state from a validated [`Config`] (a
//! dispatcher per gateway, a dedup window per route that asks for one), binds the listener, flips
//! readiness, and runs until SIGTERM/SIGINT. A second listener (`admin_listen`) serves
//! `/metrics` and the probes from the same state.
//!
//! Shutdown: on the signal readiness turns false at once, the listener stops accepting, and every
//! event already received — in flight or waiting in a dispatcher queue, each has an HTTP request
//! waiting for it — gets up to `shutdown_grace` to finish; then the spans still queued for OTLP
//! export are flushed (tracing on) and the process exits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::{info, warn};

use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::dispatch::dedup::{self, Dedup};
use crate::flow::FlowClient;
use crate::ingress::{self, AppState};
use crate::reply;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::trace;

/// Timeout for POSTing a reply event to a `reply.to` sink.
const REPLY_SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Run the sink until a shutdown signal arrives.
pub async fn serve(config: Config) -> Result<(), String> {
    start_tracing()?;
    let result = serve_until_signal(config).await;
    // Spans of the last events are still queued in the batch span processor.
    if let Ok(Err(e)) = tokio::task::spawn_blocking(trace::shutdown).await {
        warn!(error = %e, "traces not flushed");
    }
    result
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

async fn serve_until_signal(config: Config) -> Result<(), String> {
    let metrics = Arc::new(Metrics::new(
        config.rules.routes.iter().map(|r| r.name.as_str()),
        config.gateways.keys().map(String::as_str),
    ));
    let mut dispatchers = BTreeMap::new();
    for (name, spec) in &config.gateways {
        let client = FlowClient::new(spec).map_err(|e| format!("gateway {name}: {e}"))?;
        let gateway_metrics = metrics.gateway(name).unwrap_or_default();
        dispatchers.insert(
            name.clone(),
            Dispatcher::with_metrics(client, gateway_metrics),
        );
    }
    let mut windows = BTreeMap::new();
    for route in &config.rules.routes {
        if let Some(window) = route.dedup {
            windows.insert(
                route.name.clone(),
                Dedup::new(window, dedup::DEFAULT_CAPACITY),
            );
        }
    }
    let replies = reply::Sender::new(REPLY_SEND_TIMEOUT)?;
    let listen = config.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let admin = match config.admin_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr} (admin_listen): {e}"))?,
        ),
        None => None,
    };
    for (name, spec) in &config.gateways {
        info!(
            gateway = %name,
            url = %spec.url,
            timeout_ms = spec.timeout.as_millis() as u64,
            connect_timeout_ms = spec.connect_timeout.as_millis() as u64,
            concurrency = spec.concurrency,
            max_pending = spec.max_pending,
            max_docs = spec.batch.max_docs,
            "gateway configured"
        );
    }
    let state = Arc::new(AppState {
        config,
        dispatchers,
        dedup: windows,
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
    state.ready.store(true, Ordering::Relaxed);
    info!(address = %local, routes = state.config.rules.routes.len(), "flowbridge listening");
    let grace = state.config.shutdown_grace;
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let signal_state = state.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal(signal_state).await;
        let _ = signalled_tx.send(());
    });
    let grace_timer = async move {
        if signalled_rx.await.is_err() {
            // The server ended on its own; nothing to time.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => {
            result.map_err(|e| format!("server error: {e}"))?;
            info!("flowbridge stopped: every event was answered");
        }
        () = grace_timer => {
            let waiting: usize = state.dispatchers.values().map(Dispatcher::pending).sum();
            warn!(
                grace_ms = grace.as_millis() as u64,
                waiting,
                "shutdown_grace elapsed with events unfinished; exiting (their senders get no \
                 answer and will retry)"
            );
        }
    }
    Ok(())
}

/// Resolves on SIGTERM or SIGINT; readiness turns false at once, in-flight requests finish.
async fn shutdown_signal(state: Arc<AppState>) {
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
    state.ready.store(false, Ordering::Relaxed);
    let waiting: usize = state.dispatchers.values().map(Dispatcher::pending).sum();
    info!(
        waiting,
        grace_ms = state.config.shutdown_grace.as_millis() as u64,
        "shutdown signal received; not ready, no new connections, finishing received events"
    );
}
