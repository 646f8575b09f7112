//! Wiring for `flowbridge serve`: builds the shared state from a validated [`Config`], binds the
//! listener, flips readiness, and runs until SIGTERM/SIGINT, letting in-flight events finish.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::{info, warn};

use crate::config::Config;
use crate::flow::FlowClient;
use crate::ingress::{self, AppState};
use crate::reply;

/// Timeout for POSTing a reply event to a `reply.to` sink.
const REPLY_SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Run the sink until a shutdown signal arrives.
pub async fn serve(config: Config) -> Result<(), String> {
    let mut flows = BTreeMap::new();
    for (name, spec) in &config.gateways {
        let client = FlowClient::new(spec).map_err(|e| format!("gateway {name}: {e}"))?;
        flows.insert(name.clone(), client);
    }
    let replies = reply::Sender::new(REPLY_SEND_TIMEOUT)?;
    let listen = config.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    for (name, spec) in &config.gateways {
        info!(gateway = %name, url = %spec.url, timeout_ms = spec.timeout.as_millis() as u64, "gateway configured");
    }
    let state = Arc::new(AppState {
        config,
        flows,
        replies,
        ready: AtomicBool::new(false),
    });
    let app = ingress::router(state.clone());
    state.ready.store(true, Ordering::Relaxed);
    info!(address = %local, routes = state.config.rules.routes.len(), "flowbridge listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal(state))
        .await
        .map_err(|e| format!("server error: {e}"))?;
    info!("flowbridge stopped");
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
    info!("shutdown signal received; finishing in-flight events");
}
