//! The series of the receiving endpoints (`/` and `/webhooks/<name>`): requests refused by auth
//! and requests received per webhook ([`Endpoints`]). An endpoint's counters are resolved once,
//! when the endpoint is registered; counting is a lookup by endpoint name (as for routes) and an
//! atomic add.
//!
//! Knows auth only by its closed label sets ([`METHODS`], [`Reason::ALL`]): nothing of tokens or
//! of HTTP.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::series::{Counter, Label, LazyCounters};
use super::{MAIN_ENDPOINT, webhook_endpoint};
use crate::auth::{METHODS, Reason};

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AuthLabels {
    endpoint: Label,
    method: Label,
    reason: Label,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WebhookLabels {
    webhook: Label,
}

/// Auth failures by endpoint and requests by webhook.
#[derive(Debug)]
pub(super) struct Endpoints {
    failures: Family<AuthLabels, Counter>,
    received: Family<WebhookLabels, Counter>,
    /// Refusals by endpoint, in slots `method * Reason::ALL.len() + reason`; a series appears
    /// at its first failure.
    by_endpoint: RwLock<BTreeMap<String, Arc<LazyCounters<AuthLabels>>>>,
    /// Requests received by each webhook (before auth).
    webhooks: RwLock<BTreeMap<String, Counter>>,
}

impl Endpoints {
    /// Register the endpoint families in `registry`, with the series of [`MAIN_ENDPOINT`].
    pub(super) fn register(registry: &mut Registry) -> Endpoints {
        let endpoints = Endpoints {
            failures: Family::default(),
            received: Family::default(),
            by_endpoint: RwLock::default(),
            webhooks: RwLock::default(),
        };
        registry.register(
            "flowbridge_auth_failures",
            "Requests refused by auth, by endpoint, method and reason (a series appears at its first failure)",
            endpoints.failures.clone(),
        );
        registry.register(
            "flowbridge_webhook_requests",
            "Requests received on POST /webhooks/<name> (before auth), by webhook",
            endpoints.received.clone(),
        );
        endpoints.add_endpoint(
            &mut endpoints
                .by_endpoint
                .write()
                .unwrap_or_else(|p| p.into_inner()),
            MAIN_ENDPOINT.to_owned(),
        );
        endpoints
    }

    fn add_endpoint(
        &self,
        map: &mut BTreeMap<String, Arc<LazyCounters<AuthLabels>>>,
        endpoint: String,
    ) {
        map.entry(endpoint).or_insert_with(|| {
            Arc::new(LazyCounters::new(
                &self.failures,
                METHODS.len() * Reason::ALL.len(),
            ))
        });
    }

    /// Create the series of webhooks that have none yet (at start, or a reload added them).
    pub(super) fn add_webhooks<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let mut hooks = self.webhooks.write().unwrap_or_else(|p| p.into_inner());
        let mut failures = self.by_endpoint.write().unwrap_or_else(|p| p.into_inner());
        for name in names {
            if !hooks.contains_key(name) {
                let counter = self.received.get_or_create_owned(&WebhookLabels {
                    webhook: Label::from(name.to_owned()),
                });
                hooks.insert(name.to_owned(), counter);
            }
            self.add_endpoint(&mut failures, webhook_endpoint(name));
        }
    }

    /// Count one request refused at `endpoint` by `method` (one of [`METHODS`]) for `reason`;
    /// an endpoint that was never registered counts nothing.
    pub(super) fn failure(&self, endpoint: &str, method: &str, reason: Reason) {
        let m = METHODS.iter().position(|x| *x == method);
        let r = Reason::ALL.iter().position(|x| *x == reason);
        let (Some(m), Some(r)) = (m, r) else {
            return;
        };
        let failures = self.by_endpoint.read().unwrap_or_else(|p| p.into_inner());
        if let Some((name, counters)) = failures.get_key_value(endpoint) {
            counters.inc(m * Reason::ALL.len() + r, || AuthLabels {
                endpoint: Label::from(name.clone()),
                method: Label::from(METHODS[m]),
                reason: Label::from(reason.as_str()),
            });
        }
    }

    /// Count one request received by webhook `name`.
    pub(super) fn received(&self, name: &str) {
        let hooks = self.webhooks.read().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = hooks.get(name) {
            c.inc();
        }
    }
}
