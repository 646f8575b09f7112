//! Shared state: what flowbridge replicas agree on through Redis (or Valkey) when the config
//! has `state.redis` — the dedup window of each route ([`dedup`]) and the rate budget of each
//! gateway ([`rate`]). Without `state`, none of this exists and every replica keeps its own.
//!
//! [`Store`] is the one connection (redis-rs' tokio `ConnectionManager`, which reconnects by
//! itself) and the one place where a Redis call is bounded: every call gives up after
//! `command_timeout`, so the event path never hangs on Redis. Each call's outcome goes to
//! [`Health`], which logs one line per transition (healthy → failing → healthy) and counts
//! failures per feature for the metrics. What a feature does when a call fails (its
//! `on_state_error` policy) is decided by its caller in `dispatch`, not here.
//!
//! Knows Redis, the plain data of `model` and the CloudEvents JSON format; knows nothing of
//! HTTP, routes' rules or the dispatcher's queue.

pub mod dedup;
pub mod rate;
pub mod spec;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tracing::{info, warn};

pub use spec::{Policies, Policy, StateSpec};

/// A feature that keeps state in Redis (the `feature` label of the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Dedup,
    Rate,
}

impl Feature {
    pub const ALL: [Feature; 2] = [Feature::Dedup, Feature::Rate];

    pub fn as_str(self) -> &'static str {
        match self {
            Feature::Dedup => "dedup",
            Feature::Rate => "rate",
        }
    }
}

/// A Redis call that failed or did not answer within `command_timeout`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("shared state ({feature}) unavailable: {message}")]
pub struct StateError {
    pub feature: &'static str,
    pub message: String,
}

/// Whether Redis answers, and how often it did not: one per process, kept across reloads.
#[derive(Debug)]
pub struct Health {
    up: AtomicBool,
    errors: [AtomicU64; 2],
}

impl Default for Health {
    fn default() -> Health {
        Health {
            up: AtomicBool::new(true),
            errors: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }
}

impl Health {
    /// The process-wide health (the metrics read it; every [`Store`] reports to it).
    pub fn global() -> &'static Health {
        static HEALTH: std::sync::OnceLock<Health> = std::sync::OnceLock::new();
        HEALTH.get_or_init(Health::default)
    }

    /// Whether the last Redis call answered.
    pub fn up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Failed calls of `feature` so far.
    pub fn errors(&self, feature: Feature) -> u64 {
        self.errors[feature as usize].load(Ordering::Relaxed)
    }

    fn ok(&self) {
        if !self.up.swap(true, Ordering::Relaxed) {
            info!("shared state: Redis answers again; dedup and rate are shared again");
        }
    }

    fn failed(&self, feature: Feature, message: &str) {
        self.errors[feature as usize].fetch_add(1, Ordering::Relaxed);
        if self.up.swap(false, Ordering::Relaxed) {
            warn!(feature = feature.as_str(), error = %message,
                "shared state: Redis is failing; each feature follows its on_state_error policy until it answers");
        }
    }
}

/// The connection to the shared state and its settings.
pub struct Store {
    spec: StateSpec,
    conn: ConnectionManager,
    health: &'static Health,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("spec", &self.spec).finish()
    }
}

impl Store {
    /// A store for `spec`. Connects lazily (on the first call), so flowbridge starts while
    /// Redis is down; needs a tokio runtime.
    pub fn connect(spec: &StateSpec) -> Result<Arc<Store>, String> {
        let mut info = redis::IntoConnectionInfo::into_connection_info(spec.url.as_str())
            .map_err(|e| format!("state.redis: {e}"))?;
        if let Some(password) = &spec.password {
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        let client = match &spec.ca_pem {
            Some(pem) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.as_bytes().to_vec()),
                },
            ),
            None => redis::Client::open(info),
        }
        .map_err(|e| format!("state.redis: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(spec.connect_timeout))
            .set_response_timeout(Some(spec.command_timeout))
            .set_number_of_retries(2)
            .set_max_delay(std::time::Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("state.redis: {e}"))?;
        Ok(Arc::new(Store {
            spec: spec.clone(),
            conn,
            health: Health::global(),
        }))
    }

    pub fn spec(&self) -> &StateSpec {
        &self.spec
    }

    /// `key_prefix` + `parts` joined with `:`.
    pub fn key(&self, parts: &[&str]) -> String {
        let mut key = self.spec.key_prefix.clone();
        key.push_str(&parts.join(":"));
        key
    }

    /// A connection handle (cheap: the manager is shared).
    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Runs one Redis call for `feature`, bounded by `command_timeout`, and reports it.
    async fn call<T>(
        &self,
        feature: Feature,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StateError> {
        let result = match tokio::time::timeout(self.spec.command_timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within command_timeout ({})",
                humantime::format_duration(self.spec.command_timeout)
            )),
        };
        match result {
            Ok(value) => {
                self.health.ok();
                Ok(value)
            }
            Err(message) => {
                self.health.failed(feature, &message);
                Err(StateError {
                    feature: feature.as_str(),
                    message,
                })
            }
        }
    }
}
