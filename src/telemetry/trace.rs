//! OpenTelemetry traces: the OTLP exporter set up from the standard `OTEL_*` environment
//! variables (off unless an OTLP endpoint is set), W3C Trace Context in and out, and the two kinds
//! of span flowbridge makes (docs/tracing.md):
//!
//! * one **event span** (kind `SERVER`) per CloudEvent, from arrival to answer. Its parent is the
//!   sender's context: the `traceparent`/`tracestate` HTTP headers, else the event's
//!   distributed-tracing extension attributes of the same names, else none (a new trace).
//! * one **Flow-request span** (kind `CLIENT`) per `/jina.JinaRPC/Call` attempt. A request may
//!   carry several events (micro-batching): it is the child of its *first* event's span and
//!   links to every event's span, and every event span links back to it. Its context goes to
//!   the gateway as the `traceparent`/`tracestate` gRPC metadata.
//!
//! Reply events carry their event span's context as the `traceparent`/`tracestate` extension
//! (and, when POSTed to `reply.to`, as HTTP headers).
//!
//! When tracing is off, [`EventSpan`] and [`FlowSpan`] hold nothing and every function here
//! returns after one atomic load: no parsing, no allocation, nothing propagated.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{
    Link, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};

use crate::flow::FlowError;
use crate::model::{CloudEvent, ExtValue};

/// W3C Trace Context header / CloudEvents extension names.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// Service name when neither `OTEL_SERVICE_NAME` nor `service.name` in
/// `OTEL_RESOURCE_ATTRIBUTES` names one.
pub const DEFAULT_SERVICE_NAME: &str = "flowbridge";

static TRACER: OnceLock<SdkTracer> = OnceLock::new();
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// OTLP transport (`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `grpc`: OTLP/gRPC (usually port 4317).
    Grpc,
    /// `http/protobuf` (the OTel default): OTLP/HTTP, usually port 4318, path `/v1/traces`.
    HttpProtobuf,
}

/// `OTEL_TRACES_SAMPLER` (+ `OTEL_TRACES_SAMPLER_ARG`).
#[derive(Debug, Clone, PartialEq)]
pub enum SamplerSpec {
    AlwaysOn,
    AlwaysOff,
    /// `traceidratio`: this fraction of new traces.
    Ratio(f64),
    /// `parentbased_*`: follow the sender's sampled flag; the inner sampler decides for roots.
    ParentBased(Box<SamplerSpec>),
}

impl SamplerSpec {
    fn build(&self) -> Sampler {
        match self {
            SamplerSpec::AlwaysOn => Sampler::AlwaysOn,
            SamplerSpec::AlwaysOff => Sampler::AlwaysOff,
            SamplerSpec::Ratio(r) => Sampler::TraceIdRatioBased(*r),
            SamplerSpec::ParentBased(root) => Sampler::ParentBased(Box::new(root.build())),
        }
    }
}

/// Tracing settings read from the environment; `None` from [`settings`] means off.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub protocol: Protocol,
    /// The endpoint variable's value, for the startup log (the exporter reads the variables
    /// itself, with the OTel rules: `/v1/traces` appended to `OTEL_EXPORTER_OTLP_ENDPOINT` for
    /// HTTP, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` used as is).
    pub endpoint: String,
    pub service_name: String,
    pub sampler: SamplerSpec,
}

/// Read the tracing settings through `env` (`std::env::var` in the binary). Off (`Ok(None)`)
/// when `OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none`, or no OTLP endpoint variable is
/// set. Every invalid value is reported, naming its variable.
pub fn settings(env: impl Fn(&str) -> Option<String>) -> Result<Option<Settings>, Vec<String>> {
    let var = |name: &str| {
        env(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut errors = Vec::new();
    if let Some(v) = var("OTEL_SDK_DISABLED") {
        match v.to_ascii_lowercase().as_str() {
            "true" => return Ok(None),
            "false" => {}
            _ => errors.push(format!("OTEL_SDK_DISABLED={v:?}: expected true or false")),
        }
    }
    if let Some(v) = var("OTEL_TRACES_EXPORTER") {
        match v.to_ascii_lowercase().as_str() {
            "none" => return Ok(None),
            "otlp" => {}
            _ => errors.push(format!(
                "OTEL_TRACES_EXPORTER={v:?}: flowbridge exports traces with otlp only (or none)"
            )),
        }
    }
    let endpoint =
        var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"));
    let (protocol_var, protocol) = match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") {
        Some(p) => ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", Some(p)),
        None => (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            var("OTEL_EXPORTER_OTLP_PROTOCOL"),
        ),
    };
    let protocol = match protocol.as_deref() {
        None | Some("http/protobuf") => Protocol::HttpProtobuf,
        Some("grpc") => Protocol::Grpc,
        Some(other) => {
            errors.push(format!(
                "{protocol_var}={other:?}: expected grpc or http/protobuf (http/json is not supported)"
            ));
            Protocol::HttpProtobuf
        }
    };
    let ratio = || -> Result<f64, String> {
        match var("OTEL_TRACES_SAMPLER_ARG") {
            None => Ok(1.0),
            Some(a) => match a.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                _ => Err(format!(
                    "OTEL_TRACES_SAMPLER_ARG={a:?}: expected a ratio between 0 and 1"
                )),
            },
        }
    };
    let sampler_name = var("OTEL_TRACES_SAMPLER").map(|s| s.to_ascii_lowercase());
    let parent = |s: SamplerSpec| SamplerSpec::ParentBased(Box::new(s));
    let sampler = match sampler_name.as_deref() {
        None | Some("parentbased_always_on") => Ok(parent(SamplerSpec::AlwaysOn)),
        Some("parentbased_always_off") => Ok(parent(SamplerSpec::AlwaysOff)),
        Some("parentbased_traceidratio") => ratio().map(|r| parent(SamplerSpec::Ratio(r))),
        Some("always_on") => Ok(SamplerSpec::AlwaysOn),
        Some("always_off") => Ok(SamplerSpec::AlwaysOff),
        Some("traceidratio") => ratio().map(SamplerSpec::Ratio),
        Some(other) => Err(format!(
            "OTEL_TRACES_SAMPLER={other:?}: expected always_on, always_off, traceidratio, \
             parentbased_always_on, parentbased_always_off or parentbased_traceidratio"
        )),
    };
    let sampler = sampler.unwrap_or_else(|e| {
        errors.push(e);
        SamplerSpec::AlwaysOn
    });
    let service_name = var("OTEL_SERVICE_NAME")
        .or_else(|| {
            var("OTEL_RESOURCE_ATTRIBUTES").and_then(|attrs| {
                attrs.split(',').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    (k.trim() == "service.name" && !v.trim().is_empty())
                        .then(|| v.trim().to_string())
                })
            })
        })
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_string());
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(endpoint.map(|endpoint| Settings {
        protocol,
        endpoint,
        service_name,
        sampler,
    }))
}

/// Whether spans are being made (an exporter was installed by [`init`]).
pub fn enabled() -> bool {
    TRACER.get().is_some()
}

/// Install the OTLP exporter behind a batch span processor (`OTEL_BSP_*` tune it). Must run
/// inside the tokio runtime (the gRPC exporter's connection lives there). A second call keeps the
/// first exporter.
pub fn init(settings: &Settings) -> Result<(), String> {
    if enabled() {
        return Ok(());
    }
    use opentelemetry_otlp::WithExportConfig as _;
    // The HTTP exporter's reqwest client takes the process's rustls provider.
    crate::tls::install_default_provider();
    let exporter = match settings.protocol {
        Protocol::Grpc => {
            use opentelemetry_otlp::WithTonicConfig as _;
            let builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
            // An https:// collector is verified against the system's roots (as grpcs:// gateways).
            if settings.endpoint.starts_with("https://") {
                let tls = tonic::transport::ClientTlsConfig::new().with_native_roots();
                builder.with_tls_config(tls).build()
            } else {
                builder.build()
            }
        }
        Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build(),
    }
    .map_err(|e| {
        format!(
            "OTLP trace exporter for {:?} ({:?}): {e}",
            settings.endpoint, settings.protocol
        )
    })?;
    let resource = Resource::builder()
        .with_service_name(settings.service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(settings.sampler.build())
        .with_resource(resource)
        .build();
    let scope = InstrumentationScope::builder("flowbridge")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    let tracer = provider.tracer_with_scope(scope);
    let _ = PROVIDER.set(provider);
    let _ = TRACER.set(tracer);
    Ok(())
}

/// Export every span still queued and stop the exporter. Blocks (run it with
/// `spawn_blocking`); a no-op when tracing is off.
pub fn shutdown() -> Result<(), String> {
    match PROVIDER.get() {
        Some(provider) => provider
            .shutdown()
            .map_err(|e| format!("flushing the trace exporter: {e}")),
        None => Ok(()),
    }
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct Extensions<'a>(&'a BTreeMap<String, ExtValue>);

impl Extractor for Extensions<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match self.0.get(key) {
            Some(ExtValue::String(s)) => Some(s.as_str()),
            _ => None,
        }
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// Collects injected W3C fields, leaving out an empty `tracestate`.
#[derive(Default)]
struct Fields(Vec<(&'static str, String)>);

impl Injector for Fields {
    fn set(&mut self, key: &str, value: String) {
        let key = match key {
            TRACEPARENT => TRACEPARENT,
            TRACESTATE => TRACESTATE,
            _ => return,
        };
        if !value.is_empty() {
            self.0.push((key, value));
        }
    }
}

fn extract(extractor: &dyn Extractor) -> Option<Context> {
    let cx = TraceContextPropagator::new().extract(extractor);
    cx.span().span_context().is_valid().then_some(cx)
}

fn inject(cx: &Context) -> Vec<(&'static str, String)> {
    let mut fields = Fields::default();
    TraceContextPropagator::new().inject_context(cx, &mut fields);
    fields.0
}

/// The sender's trace context from the HTTP request headers (`None` when absent or invalid, or
/// when tracing is off).
#[derive(Debug, Clone, Default)]
pub struct Incoming(Option<Context>);

impl Incoming {
    /// Read `traceparent`/`tracestate` from `headers`.
    pub fn from_headers(headers: &HeaderMap) -> Incoming {
        if !enabled() {
            return Incoming(None);
        }
        Incoming(extract(&Headers(headers)))
    }
}

/// The span of one event (empty when tracing is off). Clones share the span; it ends with
/// [`EventSpan::finish`] (or when the last clone drops).
#[derive(Debug, Clone, Default)]
pub struct EventSpan(Option<Context>);

impl EventSpan {
    /// Start the span of `event`, continuing `incoming`, else the event's `traceparent`
    /// extension, else a new trace.
    pub fn start(incoming: &Incoming, event: &CloudEvent) -> EventSpan {
        let Some(tracer) = TRACER.get() else {
            return EventSpan(None);
        };
        let parent = match &incoming.0 {
            Some(cx) => cx.clone(),
            None => extract(&Extensions(&event.extensions)).unwrap_or_default(),
        };
        let mut attributes = vec![
            KeyValue::new("cloudevents.event_id", event.id.clone()),
            KeyValue::new("cloudevents.event_type", event.ty.clone()),
            KeyValue::new("cloudevents.event_source", event.source.clone()),
            KeyValue::new("cloudevents.event_spec_version", event.specversion.as_str()),
        ];
        if let Some(subject) = &event.subject {
            attributes.push(KeyValue::new("cloudevents.event_subject", subject.clone()));
        }
        let span = tracer
            .span_builder("flowbridge event")
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(tracer, &parent);
        EventSpan(Some(parent.with_span(span)))
    }

    /// The event matched `route`: the span is named `process <route>`.
    pub fn routed(&self, route: &str) {
        if let Some(cx) = &self.0 {
            let span = cx.span();
            span.update_name(format!("process {route}"));
            span.set_attribute(KeyValue::new("flowbridge.route", route.to_string()));
        }
    }

    /// End the span with the event's answer: HTTP status, outcome (`accepted`, `reply`,
    /// `redelivery` or the error code), the Flow request id, the error text. 5xx is an error
    /// (OTel's rule for server spans), 4xx is the sender's problem and leaves the status unset.
    pub fn finish(&self, status: u16, outcome: &str, request_id: &str, error: Option<String>) {
        let Some(cx) = &self.0 else {
            return;
        };
        let span = cx.span();
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        span.set_attribute(KeyValue::new("flowbridge.outcome", outcome.to_string()));
        if !request_id.is_empty() {
            span.set_attribute(KeyValue::new(
                "flowbridge.request_id",
                request_id.to_string(),
            ));
        }
        if status >= 500 {
            span.set_status(Status::error(error.unwrap_or_else(|| outcome.to_string())));
        } else if let Some(error) = error {
            span.set_attribute(KeyValue::new("error.message", error));
        }
        span.end();
    }

    /// The trace id (32 hex digits) for log lines, when there is a span.
    pub fn trace_id(&self) -> Option<String> {
        self.0
            .as_ref()
            .map(|cx| cx.span().span_context().trace_id().to_string())
    }

    /// Set `traceparent` (and `tracestate` when not empty) on a reply event made for this event.
    pub fn inject_into(&self, extensions: &mut BTreeMap<String, ExtValue>) {
        if let Some(cx) = &self.0 {
            for (key, value) in inject(cx) {
                extensions.insert(key.to_string(), ExtValue::String(value));
            }
        }
    }
}

/// The span of one Flow request (empty when tracing is off).
#[derive(Debug, Default)]
pub struct FlowSpan(Option<Context>);

/// What a Flow request is, for its span.
pub struct FlowCall<'a> {
    pub gateway: &'a str,
    pub url: &'a str,
    pub endpoint: &'a str,
    pub target_executor: Option<&'a str>,
    pub request_id: &'a str,
    pub docs: usize,
    /// A probe of a gateway that did not accept the last request.
    pub probe: bool,
}

impl FlowSpan {
    /// Start the span of a request carrying the events of `events` (in batch order).
    pub fn start<'a>(
        call: &FlowCall<'_>,
        events: impl IntoIterator<Item = &'a EventSpan>,
    ) -> FlowSpan {
        let Some(tracer) = TRACER.get() else {
            return FlowSpan(None);
        };
        let contexts: Vec<&Context> = events.into_iter().filter_map(|e| e.0.as_ref()).collect();
        let parent = contexts.first().map(|cx| (*cx).clone()).unwrap_or_default();
        let links: Vec<Link> = contexts
            .iter()
            .map(|cx| Link::with_context(cx.span().span_context().clone()))
            .collect();
        let mut attributes = vec![
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", "jina.JinaRPC"),
            KeyValue::new("rpc.method", "Call"),
            KeyValue::new("flowbridge.gateway", call.gateway.to_string()),
            KeyValue::new("flowbridge.gateway.url", call.url.to_string()),
            KeyValue::new("flowbridge.endpoint", call.endpoint.to_string()),
            KeyValue::new("flowbridge.request_id", call.request_id.to_string()),
            KeyValue::new("flowbridge.docs", call.docs as i64),
            KeyValue::new("messaging.batch.message_count", contexts.len() as i64),
        ];
        if let Some(target) = call.target_executor {
            attributes.push(KeyValue::new(
                "flowbridge.target_executor",
                target.to_string(),
            ));
        }
        if call.probe {
            attributes.push(KeyValue::new("flowbridge.probe", true));
        }
        let span = tracer
            .span_builder("jina.JinaRPC/Call")
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .with_links(links)
            .start_with_context(tracer, &parent);
        let cx = parent.with_span(span);
        let own = cx.span().span_context().clone();
        for event in contexts {
            event.span().add_link(own.clone(), Vec::new());
        }
        FlowSpan(Some(cx))
    }

    /// `traceparent`/`tracestate` for the gRPC metadata (empty when tracing is off).
    pub fn metadata(&self) -> Vec<(&'static str, String)> {
        self.0.as_ref().map(inject).unwrap_or_default()
    }

    /// End the span: `Ok` → gRPC OK; `NotAccepted` → the gateway did not take it (retried);
    /// otherwise the error, with the gRPC status code when the error implies one.
    pub fn finish(&self, result: Result<(), FlowOutcome<'_>>) {
        let Some(cx) = &self.0 else {
            return;
        };
        let span = cx.span();
        match result {
            Ok(()) => {
                span.set_attribute(KeyValue::new("rpc.grpc.status_code", 0_i64));
            }
            Err(FlowOutcome::NotAccepted(cause)) => {
                span.set_attribute(KeyValue::new("flowbridge.retried", true));
                span.set_status(Status::error(format!("not accepted: {cause}")));
            }
            Err(FlowOutcome::Failed(error)) => {
                let code = match error {
                    // The call itself succeeded; an executor raised.
                    FlowError::Executor { .. } => Some(0_i64),
                    FlowError::Deadline { .. } => Some(4),
                    FlowError::Unavailable { .. } => Some(14),
                    _ => None,
                };
                if let Some(code) = code {
                    span.set_attribute(KeyValue::new("rpc.grpc.status_code", code));
                }
                span.set_status(Status::error(error.to_string()));
            }
        }
        span.end();
    }
}

/// How a Flow request failed, for [`FlowSpan::finish`].
pub enum FlowOutcome<'a> {
    NotAccepted(&'a str),
    Failed(&'a FlowError),
}

#[cfg(test)]
mod tests;
