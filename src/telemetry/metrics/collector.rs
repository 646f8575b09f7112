//! The series read at scrape time: what each gateway's dispatcher holds now ([`GatewayGauges`],
//! [`LimitGauges`]), the process-wide count of failed CESQL evaluations and the shared state's
//! health ([`StateGauges`]), encoded by a
//! prometheus-client [`Collector`] ([`Scrape`]). They cost nothing per event.
//!
//! The values are handed in by the caller of [`super::Metrics::render`] (the dispatchers live in
//! the runtime, a higher layer than telemetry), so the collector is built per scrape around
//! them. Knows no dispatcher: only the plain values it is given.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

/// Queue state of one gateway, read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct GatewayGauges {
    pub gateway: String,
    pub pending: u64,
    pub in_flight: u64,
    pub cold: bool,
    pub overloaded: u64,
    /// The gateway's `timeout` in seconds (alerts compare Flow latency with it).
    pub timeout: f64,
    /// The concurrency limit and what it learnt (`None` in tests that build gauges by hand).
    pub limit: Option<LimitGauges>,
}

/// A gateway's concurrency limit and what it learnt about the Flow, read at scrape time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitGauges {
    pub limit: usize,
    /// Why it last changed, one of [`super::LIMIT_REASONS`].
    pub reason: &'static str,
    /// Smoothed latency / no-load latency.
    pub ratio: Option<f64>,
    /// Smoothed documents per request.
    pub docs: Option<f64>,
    /// No-load latency in seconds by size class (the class's smallest document count).
    pub no_load: Vec<(usize, f64)>,
}

/// The shared state (`state:` in the config), read at scrape time: whether Redis answered the
/// last call, and the failed calls per feature (`dedup`, `rate`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateGauges {
    pub up: bool,
    pub errors: Vec<(&'static str, u64)>,
}

/// One scrape's gauges, as a collector.
#[derive(Debug)]
pub(super) struct Scrape {
    pub gauges: Vec<GatewayGauges>,
    pub cesql_errors: u64,
    /// `None` without `state:` (no series then).
    pub state: Option<StateGauges>,
}

/// One family of the scrape: its name (without the `_total` of counters, which the encoder
/// adds), help, unit, type, and its samples, each with its label pairs.
struct Samples<'a, V> {
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    kind: MetricType,
    samples: Vec<(Vec<(&'static str, &'a str)>, V)>,
}

impl<V: EncodeGaugeValue + EncodeCounterValue> Samples<'_, V> {
    /// Write the family unless it has no sample (as the registry skips empty families).
    fn encode(self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        if self.samples.is_empty() {
            return Ok(());
        }
        let mut family =
            encoder.encode_descriptor(self.name, self.help, self.unit.as_ref(), self.kind)?;
        for (labels, value) in &self.samples {
            // No labels: prometheus-client writes no `{}`.
            let labels: &[(&str, &str)] = labels;
            write(&mut family.encode_family(&labels)?, self.kind, value)?;
        }
        Ok(())
    }
}

fn write<V: EncodeGaugeValue + EncodeCounterValue>(
    sample: &mut MetricEncoder,
    kind: MetricType,
    value: &V,
) -> fmt::Result {
    match kind {
        MetricType::Counter => sample.encode_counter::<NoLabelSet, _, u64>(value, None),
        _ => sample.encode_gauge(value),
    }
}

impl Scrape {
    /// Integer families with one sample per gateway, labelled `gateway`.
    fn per_gateway(
        &self,
        name: &'static str,
        help: &'static str,
        kind: MetricType,
        value: impl Fn(&GatewayGauges) -> u64,
    ) -> Samples<'_, u64> {
        Samples {
            name,
            help,
            unit: None,
            kind,
            samples: self
                .gauges
                .iter()
                .map(|g| (vec![("gateway", g.gateway.as_str())], value(g)))
                .collect(),
        }
    }

    /// Float gauges with one sample per gateway whose limiter has a value.
    fn per_limiter(
        &self,
        name: &'static str,
        help: &'static str,
        value: impl Fn(&LimitGauges) -> Option<f64>,
    ) -> Samples<'_, f64> {
        Samples {
            name,
            help,
            unit: None,
            kind: MetricType::Gauge,
            samples: self
                .gauges
                .iter()
                .filter_map(|g| {
                    let v = value(g.limit.as_ref()?)?;
                    Some((vec![("gateway", g.gateway.as_str())], v))
                })
                .collect(),
        }
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let e = &mut encoder;
        self.per_gateway(
            "flowbridge_flow_in_flight_requests",
            "Flow requests in flight now.",
            MetricType::Gauge,
            |g| g.in_flight,
        )
        .encode(e)?;
        self.per_gateway(
            "flowbridge_gateway_concurrency_limit",
            "Most Flow requests the gateway may have in flight now (fixed, or adapted to the Flow's latency).",
            MetricType::Gauge,
            |g| g.limit.as_ref().map_or(0, |l| l.limit as u64),
        )
        .encode(e)?;
        Samples {
            name: "flowbridge_gateway_concurrency_limit_reason",
            help: "1 for the reason of the concurrency limit's last change (start: configured, or not changed yet).",
            unit: None,
            kind: MetricType::Gauge,
            samples: self
                .gauges
                .iter()
                .filter_map(|g| {
                    let l = g.limit.as_ref()?;
                    let labels = vec![
                        ("gateway", g.gateway.as_str()),
                        ("reason", l.reason),
                    ];
                    Some((labels, 1u64))
                })
                .collect(),
        }
        .encode(e)?;
        self.per_limiter(
            "flowbridge_gateway_latency_ratio",
            "Smoothed Flow request latency divided by the no-load latency of requests of the same size (1: no queueing in the Flow).",
            |l| l.ratio,
        )
        .encode(e)?;
        let classes: Vec<(&str, String, f64)> = self
            .gauges
            .iter()
            .flat_map(|g| {
                g.limit
                    .iter()
                    .flat_map(|l| &l.no_load)
                    .map(|(docs, seconds)| (g.gateway.as_str(), docs.to_string(), *seconds))
            })
            .collect();
        Samples {
            name: "flowbridge_gateway_no_load_latency",
            help: "The Flow's latency without queueing, by request size class (docs: the class's smallest document count, a power of two).",
            unit: Some(Unit::Seconds),
            kind: MetricType::Gauge,
            samples: classes
                .iter()
                .map(|(gateway, docs, seconds)| {
                    let labels = vec![("gateway", *gateway), ("docs", docs.as_str())];
                    (labels, *seconds)
                })
                .collect(),
        }
        .encode(e)?;
        self.per_limiter(
            "flowbridge_gateway_batch_docs",
            "Smoothed documents per Flow request.",
            |l| l.docs,
        )
        .encode(e)?;
        self.per_gateway(
            "flowbridge_pending_events",
            "Events waiting in the gateway's queue now.",
            MetricType::Gauge,
            |g| g.pending,
        )
        .encode(e)?;
        Samples {
            name: "flowbridge_gateway_timeout",
            help: "The gateway's timeout: the deadline of one Flow request once sent.",
            unit: Some(Unit::Seconds),
            kind: MetricType::Gauge,
            samples: self
                .gauges
                .iter()
                .map(|g| (vec![("gateway", g.gateway.as_str())], g.timeout))
                .collect(),
        }
        .encode(e)?;
        self.per_gateway(
            "flowbridge_gateway_cold",
            "1 while the gateway is not accepting requests (events wait for a probe to succeed).",
            MetricType::Gauge,
            |g| u64::from(g.cold),
        )
        .encode(e)?;
        self.per_gateway(
            "flowbridge_events_overloaded",
            "Events refused with 429 because max_pending events already waited.",
            MetricType::Counter,
            |g| g.overloaded,
        )
        .encode(e)?;
        Samples {
            name: "flowbridge_cesql_evaluation_errors",
            help: "cesql filter evaluations that failed with an error (the event was treated as not matching).",
            unit: None,
            kind: MetricType::Counter,
            samples: vec![(Vec::new(), self.cesql_errors)],
        }
        .encode(e)?;
        let Some(state) = &self.state else {
            return Ok(());
        };
        Samples {
            name: "flowbridge_state_up",
            help: "1 while the shared state (Redis) answers, 0 after a call failed or timed out.",
            unit: None,
            kind: MetricType::Gauge,
            samples: vec![(Vec::new(), u64::from(state.up))],
        }
        .encode(e)?;
        Samples {
            name: "flowbridge_state_errors",
            help: "Shared-state (Redis) calls that failed or timed out, by feature; each one followed the feature's on_state_error policy.",
            unit: None,
            kind: MetricType::Counter,
            samples: state
                .errors
                .iter()
                .map(|(feature, n)| (vec![("feature", *feature)], *n))
                .collect(),
        }
        .encode(e)
    }
}
