//! One record per event outcome: [`record`] counts the outcome in the metrics registry, ends the
//! event's span and writes its log line (target [`super::EVENT_LOG`]) in one call, so no outcome
//! is counted without being traced and logged, or the other way round (vector's
//! `internal_events` pattern). The pipeline calls it once per event, whatever happened.
//!
//! Knows nothing of HTTP or of the pipeline's error types: the caller passes the status it
//! answers with, the error's stable code and its text.

use std::fmt::Display;
use std::time::Duration;

use tracing::{info, warn};

use super::EVENT_LOG;
use super::metrics::{self, Metrics};
use super::trace::EventSpan;
use crate::model::CloudEvent;

/// How one event's trip ended.
pub enum Ended<'a> {
    /// No route matched and `unmatched: accept`.
    Unmatched,
    /// The event ran through `route` (or was a redelivery answered from its dedup window).
    Processed {
        route: &'a str,
        request_id: &'a str,
        /// A reply event goes back in the HTTP response.
        reply: bool,
        redelivery: bool,
        elapsed: Duration,
    },
    /// The event failed: on `route`, or (`None`) because no route matched and `unmatched:
    /// reject`.
    Failed {
        route: Option<&'a str>,
        /// The Flow request that carried it, empty when none was sent.
        request_id: &'a str,
        /// Stable machine-readable reason (the error body's `code`).
        code: &'static str,
        error: &'a dyn Display,
        elapsed: Duration,
    },
}

/// Count, end the span of and log one event's outcome; `status` is the HTTP status it gets.
pub fn record(metrics: &Metrics, span: &EventSpan, event: &CloudEvent, status: u16, end: Ended) {
    let trace_id = span.trace_id();
    let trace_id = trace_id.as_deref();
    let (ce_id, ce_type, ce_source) = (&event.id, &event.ty, &event.source);
    match end {
        Ended::Unmatched => {
            metrics.unmatched_accepted.inc();
            metrics.route(metrics::NO_ROUTE).answered(status);
            span.finish(status, "unmatched", "", None);
            info!(target: EVENT_LOG, %ce_id, %ce_type, %ce_source, trace_id, "no route matched; accepted");
        }
        Ended::Failed {
            route: None,
            code,
            error,
            ..
        } => {
            metrics.unmatched_rejected.inc();
            metrics.rejected(code);
            metrics.route(metrics::NO_ROUTE).answered(status);
            span.finish(status, code, "", Some(error.to_string()));
            warn!(target: EVENT_LOG, %ce_id, %ce_type, %ce_source, trace_id, "no route matched; rejected");
        }
        Ended::Processed {
            route,
            request_id,
            reply,
            redelivery,
            elapsed,
        } => {
            let route_metrics = metrics.route(route);
            route_metrics.answered(status);
            route_metrics.latency.observe(elapsed.as_secs_f64());
            if reply {
                route_metrics.reply_sent(true);
            }
            let outcome = if redelivery {
                route_metrics.redeliveries.inc();
                "redelivery"
            } else if reply {
                "reply"
            } else {
                "accepted"
            };
            span.finish(status, outcome, request_id, None);
            let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
            if redelivery {
                info!(target: EVENT_LOG, %route, %ce_id, %ce_type, %ce_source, %request_id, trace_id, status, elapsed_ms, "redelivery within the dedup window; answered with the first outcome");
            } else {
                info!(target: EVENT_LOG, %route, %ce_id, %ce_type, %ce_source, %request_id, trace_id, status, elapsed_ms, "event processed");
            }
        }
        Ended::Failed {
            route: Some(route),
            request_id,
            code,
            error,
            elapsed,
        } => {
            let route_metrics = metrics.route(route);
            route_metrics.answered(status);
            route_metrics.latency.observe(elapsed.as_secs_f64());
            metrics.rejected(code);
            span.finish(status, code, request_id, Some(error.to_string()));
            let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
            warn!(target: EVENT_LOG, %route, %ce_id, %ce_type, %ce_source, %request_id, trace_id, status, elapsed_ms, error = %error, "event failed");
        }
    }
}
