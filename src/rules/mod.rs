//! Routing rules, pure: which route an event matches (Knative Trigger `filters` plus our `cel`
//! filter) and how it becomes a Jina request ([`mapping`]). Synchronous and free of I/O: no axum,
//! tonic or tokio in this module tree.
//!
//! The [`config`](crate::config) module builds a [`RuleSet`] from the YAML routes; here it is only
//! evaluated.

pub mod cel;
pub mod cesql;
pub mod filter;
pub mod mapping;

use crate::model::CloudEvent;
use filter::Filter;
use mapping::{Mapping, ReplyData};

/// What to do with an event no route matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unmatched {
    #[default]
    Accept,
    Reject,
}

/// How a route answers with a reply event.
#[derive(Debug)]
pub struct ReplySpec {
    pub ty: String,
    pub source: String,
    pub data: ReplyData,
    /// POST the reply to this URL instead of returning it in the HTTP response.
    pub to: Option<String>,
}

/// One compiled route.
#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub gateway: String,
    /// All must match.
    pub filters: Vec<Filter>,
    pub mapping: Mapping,
    pub reply: Option<ReplySpec>,
}

impl Route {
    pub fn matches(&self, event: &CloudEvent) -> bool {
        self.filters.iter().all(|f| f.matches(event))
    }
}

/// Routes in config order; the first match wins.
#[derive(Debug, Default)]
pub struct RuleSet {
    pub routes: Vec<Route>,
}

impl RuleSet {
    pub fn route(&self, event: &CloudEvent) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(event))
    }
}
