//! Routing rules, pure: which route an event matches (Knative Trigger `filters`, CESQL included
//! ([`cesql`]), plus our `cel` filter), why ([`RuleSet::trace`]), and how it becomes a Jina
//! request ([`mapping`]). Synchronous and free of I/O: no axum, tonic or tokio in this module
//! tree.
//!
//! The [`config`](crate::config) module builds a [`RuleSet`] from the YAML routes; here it is only
//! evaluated.
//!
//! * [`cel`]: CEL programs (compile with static checks, evaluate in a child scope), values in
//!   and out of CEL, the `cel` filter predicate.
//! * [`cesql`]: CloudEvents SQL, the Knative `cesql` filter dialect.
//! * [`filter`]: the filter dialects (`exact`, `prefix`, `suffix`, `all`, `any`, `not`, `cesql`,
//!   `cel`) evaluated against an event.
//! * [`mapping`]: an event → the Jina request (endpoint, target executor, parameters,
//!   documents), and the reply `data` program.
//! * [`schema`]: a route's `schema:` (JSON Schema) over the event's data.

pub mod cel;
pub mod cesql;
pub mod filter;
pub mod mapping;
pub mod schema;

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
    /// How long that POST may take before the event fails with 502 `reply_sink_failed`.
    pub timeout: std::time::Duration,
}

/// `reply.timeout` when not set.
pub const DEFAULT_REPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One compiled route.
#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub gateway: String,
    /// All must match.
    pub filters: Vec<Filter>,
    /// `schema:`: the JSON Schema `data` must satisfy before mapping.
    pub schema: Option<schema::DataSchema>,
    pub mapping: Mapping,
    pub reply: Option<ReplySpec>,
    /// Redeliveries of the same (source, id) within this window get the first outcome.
    pub dedup: Option<std::time::Duration>,
}

impl Route {
    pub fn matches(&self, event: &CloudEvent) -> bool {
        self.filters.iter().all(|f| f.matches(event))
    }

    /// Why the route does not match: the first filter (index) that fails, with the evaluation
    /// error that made it fail, if any. `None` when every filter matches.
    pub fn first_failure(&self, event: &CloudEvent) -> Option<FilterFailure> {
        self.filters.iter().enumerate().find_map(|(index, filter)| {
            let mut error = None;
            (!filter.decide(event, &mut error)).then_some(FilterFailure { index, error })
        })
    }
}

/// The filter that made a route not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterFailure {
    /// Position in the route's `filters`.
    pub index: usize,
    /// The `cel`/`cesql` evaluation error behind the failure, when there was one.
    pub error: Option<String>,
}

/// One route as the matcher saw it for an event.
#[derive(Debug)]
pub struct RouteTrace<'a> {
    pub route: &'a Route,
    /// `None`: every filter matched (this route was chosen).
    pub failure: Option<FilterFailure>,
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

    /// The routes tried for `event`, in order, up to and including the one that matched (the
    /// last entry, with no failure) — or all of them when none did. Same decision as
    /// [`RuleSet::route`].
    pub fn trace(&self, event: &CloudEvent) -> Vec<RouteTrace<'_>> {
        let mut out = Vec::new();
        for route in &self.routes {
            let failure = route.first_failure(event);
            let matched = failure.is_none();
            out.push(RouteTrace { route, failure });
            if matched {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::rules::cesql::Expression;
    use crate::rules::mapping::MappingSpec;

    fn route(name: &str, filters: Vec<Filter>) -> Route {
        Route {
            name: name.into(),
            gateway: "g".into(),
            filters,
            schema: None,
            mapping: Mapping::compile(&MappingSpec::default()).expect("default mapping"),
            reply: None,
            dedup: None,
        }
    }

    fn exact(attribute: &str, value: &str) -> Filter {
        Filter::Exact {
            attribute: attribute.into(),
            value: value.into(),
        }
    }

    #[test]
    fn trace_names_the_failing_filter_of_each_route_tried() {
        let rules = RuleSet {
            routes: vec![
                route("audit", vec![exact("type", "a"), exact("source", "/x")]),
                route(
                    "broken",
                    vec![Filter::Cesql(
                        Expression::compile("subject = 'x'").expect("compiles"),
                    )],
                ),
                route("orders", vec![exact("type", "a")]),
                route("never", vec![]),
            ],
        };
        let event = CloudEvent::new("1", "/shop", "a");
        let trace = rules.trace(&event);
        let names: Vec<&str> = trace.iter().map(|t| t.route.name.as_str()).collect();
        assert_eq!(names, ["audit", "broken", "orders"]);
        assert_eq!(
            trace[0].failure,
            Some(FilterFailure {
                index: 1,
                error: None
            })
        );
        let broken = trace[1].failure.as_ref().expect("fails");
        assert_eq!(broken.index, 0);
        assert!(
            broken
                .error
                .as_deref()
                .is_some_and(|e| e.contains("subject")),
            "{broken:?}"
        );
        assert_eq!(trace[2].failure, None);
        assert_eq!(rules.route(&event).map(|r| r.name.as_str()), Some("orders"));
    }
}
