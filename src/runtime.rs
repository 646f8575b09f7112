//! [`Runtime`]: everything a request uses that a config reload may replace — the validated
//! config (routes, mappings, limits, listener TLS, webhooks), the inbound auth verifiers, the
//! dispatcher of each gateway, the dedup window of each route that has one — and the generation
//! that says which config it is.
//!
//! The server holds the active runtime in an `ArcSwap`; each HTTP request loads it once when it
//! starts and keeps that `Arc` to the end, so an event finishes with the config it started with
//! while new requests already see the next one. [`Runtime::build`] makes the next runtime from a
//! new config and the active one, keeping what did not change:
//!
//! * a gateway whose settings ([`GatewaySpec`], CA bundle content included) are unchanged keeps
//!   its dispatcher — queue, connection, cold/warm state and limits carry on; a new or changed
//!   gateway gets a new dispatcher. A replaced or removed dispatcher lives until the last request
//!   of an older runtime is done with it, then its driver stops (nothing can be left waiting in
//!   its queue: every queued event belongs to a request still holding that runtime).
//! * a route whose name and `dedup` window are unchanged keeps its window (redeliveries of events
//!   processed under the old config are still recognised); other windows start empty.
//! * with `state:` (Redis), the connection is kept while the `state:` block is unchanged;
//!   dedup windows and rate budgets then live in Redis ([`crate::state`]), so a reload or a
//!   restart keeps them. Changing `state:` rebuilds every dispatcher and window.
//! * auth verifiers are built anew (secrets were read again when the config loaded, so a rotated
//!   token or HMAC secret file applies); their OIDC key sets are fetched before the swap.
//! * settings bound when the process started (`listen`, `admin_listen`, turning `tls` on or
//!   off) keep their running values; [`Runtime::build`] names the ones that need a restart.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::auth::Auth;
use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::dispatch::window::Window;
use crate::flow::FlowClient;
use crate::state::dedup::SharedWindow;
use crate::state::rate::SharedRate;
use crate::state::{Feature, Health, Store};
use crate::telemetry::metrics::{Metrics, StateGauges};
use tracing::{info, warn};

/// One config generation and the delivery state built for it.
#[derive(Debug)]
pub struct Runtime {
    /// 1 for the config loaded at start, +1 for every reload applied.
    pub generation: u64,
    /// SHA-256 of the config text, first 16 hex digits (`embedded` without a file).
    pub hash: String,
    pub config: Config,
    /// The delivery queue of each gateway, by gateway name.
    pub dispatchers: BTreeMap<String, Arc<Dispatcher>>,
    /// The redelivery window of each route with `dedup`, by route name.
    pub dedup: BTreeMap<String, Arc<Window>>,
    /// The connection to the shared state (`state:`), if configured.
    pub state: Option<Arc<Store>>,
    /// Inbound auth of `POST /` and of each webhook, built from `config`.
    pub auth: Arc<Auth>,
}

/// What [`Runtime::build`] kept, replaced and dropped, for the reload log line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Gateways whose dispatcher was kept.
    pub kept: Vec<String>,
    /// Gateways with a new dispatcher (new, or settings changed).
    pub rebuilt: Vec<String>,
    /// Gateways no longer in the config.
    pub removed: Vec<String>,
    /// Settings that changed in the file but need a restart; their running values stay.
    pub need_restart: Vec<&'static str>,
}

impl Runtime {
    /// The runtime for `config`, reusing what `previous` (the active runtime) has for unchanged
    /// gateways and routes, and registering metrics series for new ones.
    pub fn build(
        mut config: Config,
        hash: String,
        previous: Option<&Runtime>,
        metrics: &Metrics,
    ) -> Result<(Runtime, Changes), String> {
        let mut changes = Changes::default();
        if let Some(prev) = previous {
            let old = &prev.config;
            if config.listen != old.listen {
                changes.need_restart.push("listen");
                config.listen = old.listen;
            }
            if config.admin_listen != old.admin_listen {
                changes.need_restart.push("admin_listen");
                config.admin_listen = old.admin_listen;
            }
            if config.tls.is_some() != old.tls.is_some() {
                // The listener speaks TLS or not from the start; new certificates for a TLS
                // listener apply (the rustls config is taken per connection).
                changes.need_restart.push("tls (on/off)");
                config.tls = old.tls.clone();
            }
        }
        metrics.register(
            config.rules.routes.iter().map(|r| r.name.as_str()),
            config.gateways.keys().map(String::as_str),
        );
        metrics.register_webhooks(config.webhooks.iter().map(|w| w.name.as_str()));
        let auth = Auth::new(config.auth.as_ref(), &config.webhooks);
        // The shared state: the same connection while `state:` is unchanged.
        let state = match &config.state {
            None => None,
            Some(spec) => match previous.and_then(|p| p.state.clone()) {
                Some(store) if store.spec() == spec => Some(store),
                _ => {
                    info!(redis = %spec.url_for_logs(), "shared state: dedup windows and rate budgets live in Redis");
                    Some(Store::connect(spec)?)
                }
            },
        };
        let same_state = |p: &Runtime| match (&p.state, &state) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        let mut dispatchers = BTreeMap::new();
        for (name, spec) in &config.gateways {
            let same = previous.filter(|p| same_state(p)).and_then(|p| {
                let dispatcher = p.dispatchers.get(name)?;
                (dispatcher.client().spec == *spec).then(|| dispatcher.clone())
            });
            let dispatcher = match same {
                Some(d) => {
                    changes.kept.push(name.clone());
                    d
                }
                None => {
                    let client =
                        FlowClient::new(spec).map_err(|e| format!("gateway {name}: {e}"))?;
                    let gateway_metrics = metrics.gateway(name).unwrap_or_default();
                    changes.rebuilt.push(name.clone());
                    let shared_rate = state.as_ref().zip(spec.rate).map(|(store, rate)| {
                        (
                            SharedRate::new(store.clone(), name, rate),
                            store.spec().on_state_error.rate,
                        )
                    });
                    Arc::new(Dispatcher::with_state(client, gateway_metrics, shared_rate))
                }
            };
            dispatchers.insert(name.clone(), dispatcher);
        }
        if let Some(prev) = previous {
            changes.removed = prev
                .dispatchers
                .keys()
                .filter(|name| !config.gateways.contains_key(*name))
                .cloned()
                .collect();
        }
        let mut windows = BTreeMap::new();
        for route in &config.rules.routes {
            let Some(window) = route.dedup else { continue };
            // A claim lasts as long as the route's longest run: waiting for the gateway, the
            // Flow request, and a little for the reply.
            let lease = config
                .gateways
                .get(&route.gateway)
                .map_or(std::time::Duration::from_secs(60), |g| {
                    g.connect_timeout + g.timeout + std::time::Duration::from_secs(5)
                });
            let kept = previous.filter(|p| same_state(p)).and_then(|p| {
                let old = p
                    .config
                    .rules
                    .routes
                    .iter()
                    .find(|r| r.name == route.name)?;
                if old.dedup != Some(window) {
                    return None;
                }
                let kept = p.dedup.get(&route.name)?;
                match kept.shared_window() {
                    Some(shared) if shared.lease() != lease => None,
                    _ => Some(kept.clone()),
                }
            });
            let dedup = kept.unwrap_or_else(|| {
                Arc::new(match &state {
                    None => Window::local(window),
                    Some(store) => Window::shared(
                        SharedWindow::new(store.clone(), &route.name, window, lease),
                        store.spec().on_state_error.dedup,
                    ),
                })
            });
            windows.insert(route.name.clone(), dedup);
        }
        let runtime = Runtime {
            generation: previous.map_or(1, |p| p.generation + 1),
            hash,
            config,
            dispatchers,
            dedup: windows,
            state,
            auth,
        };
        Ok((runtime, changes))
    }

    /// One log line per endpoint saying how it is protected; a warning for each open one.
    pub fn log_auth(&self) {
        match self.auth.main() {
            Some(v) => info!(endpoint = "POST /", methods = ?v.method_names(), "inbound auth"),
            None => warn!(
                endpoint = "POST /",
                "no auth configured: anyone who can reach this port can send events to the Flow \
                 (see docs/auth.md)"
            ),
        }
        for w in &self.config.webhooks {
            let endpoint = format!("POST /webhooks/{}", w.name);
            match self.auth.webhook(&w.name) {
                Some(v) => info!(endpoint = %endpoint, methods = ?v.method_names(), "inbound auth"),
                None => warn!(
                    endpoint = %endpoint,
                    "no auth configured for this webhook: anyone who can reach this port can \
                     send events to the Flow (see docs/auth.md)"
                ),
            }
        }
    }

    /// The shared state's health for the metrics; `None` without `state:`.
    pub fn state_gauges(&self) -> Option<StateGauges> {
        self.state.as_ref()?;
        let health = Health::global();
        Some(StateGauges {
            up: health.up(),
            errors: Feature::ALL
                .iter()
                .map(|f| (f.as_str(), health.errors(*f)))
                .collect(),
        })
    }

    /// Events waiting in the dispatcher queues of this runtime.
    pub fn pending(&self) -> usize {
        self.dispatchers.values().map(|d| d.pending()).sum()
    }
}

/// SHA-256 of `text`, first 16 hex digits (what `sha256sum FILE | cut -c1-16` prints).
pub fn hash(text: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text);
    digest
        .as_ref()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests;
