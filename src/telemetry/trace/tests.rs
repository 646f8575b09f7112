//! Tests of `crate::telemetry::trace`.

use std::collections::HashMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn off_without_an_endpoint_or_when_disabled() {
    assert_eq!(settings(env(&[])).unwrap(), None);
    assert_eq!(
        settings(env(&[
            ("OTEL_SERVICE_NAME", "x"),
            ("OTEL_TRACES_SAMPLER", "always_on")
        ]))
        .unwrap(),
        None
    );
    assert_eq!(
        settings(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")])).unwrap(),
        None
    );
    let on = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")];
    assert!(settings(env(&on)).unwrap().is_some());
    for (var, value) in [
        ("OTEL_SDK_DISABLED", "TRUE"),
        ("OTEL_TRACES_EXPORTER", "none"),
    ] {
        let mut pairs = on.to_vec();
        pairs.push((var, value));
        assert_eq!(settings(env(&pairs)).unwrap(), None, "{var}={value}");
    }
}

#[test]
fn defaults() {
    let s = settings(env(&[(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "http://c:4318/v1/traces",
    )]))
    .unwrap()
    .unwrap();
    assert_eq!(s.endpoint, "http://c:4318/v1/traces");
    assert_eq!(s.protocol, Protocol::HttpProtobuf);
    assert_eq!(s.service_name, "flowbridge");
    assert_eq!(
        s.sampler,
        SamplerSpec::ParentBased(Box::new(SamplerSpec::AlwaysOn))
    );
}

#[test]
fn protocol_sampler_and_service_name() {
    let s = settings(env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ("OTEL_RESOURCE_ATTRIBUTES", "a=b, service.name=from-attrs"),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(s.protocol, Protocol::Grpc);
    assert_eq!(
        s.sampler,
        SamplerSpec::ParentBased(Box::new(SamplerSpec::Ratio(0.25)))
    );
    assert_eq!(s.service_name, "from-attrs");
    let s = settings(env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
        ("OTEL_SERVICE_NAME", "sink"),
        ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"),
        ("OTEL_TRACES_SAMPLER", "traceidratio"),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(s.service_name, "sink");
    assert_eq!(s.sampler, SamplerSpec::Ratio(1.0));
}

#[test]
fn every_invalid_value_is_named() {
    let errors = settings(env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_TRACES_SAMPLER", "traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ("OTEL_SDK_DISABLED", "yes"),
        ("OTEL_TRACES_EXPORTER", "zipkin"),
    ]))
    .unwrap_err();
    assert_eq!(errors.len(), 4, "{errors:?}");
    for var in [
        "OTEL_EXPORTER_OTLP_PROTOCOL=",
        "OTEL_TRACES_SAMPLER_ARG=",
        "OTEL_SDK_DISABLED=",
        "OTEL_TRACES_EXPORTER=",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(var)),
            "{var}: {errors:?}"
        );
    }
    let errors = settings(env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
        ("OTEL_TRACES_SAMPLER", "sometimes"),
    ]))
    .unwrap_err();
    assert!(
        errors[0].starts_with("OTEL_TRACES_SAMPLER=\"sometimes\""),
        "{errors:?}"
    );
}

const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

#[test]
fn context_from_headers_and_extensions_round_trips() {
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", PARENT.parse().unwrap());
    headers.insert("tracestate", "congo=t61rcWkgMzE".parse().unwrap());
    let cx = extract(&Headers(&headers)).unwrap();
    let fields = inject(&cx);
    assert_eq!(
        fields,
        vec![
            (TRACEPARENT, PARENT.to_string()),
            (TRACESTATE, "congo=t61rcWkgMzE".to_string())
        ]
    );

    let mut extensions = BTreeMap::new();
    extensions.insert(
        "traceparent".to_string(),
        ExtValue::String(PARENT.to_string()),
    );
    let cx = extract(&Extensions(&extensions)).unwrap();
    // No tracestate: none injected (not an empty one).
    assert_eq!(inject(&cx), vec![(TRACEPARENT, PARENT.to_string())]);
}

#[test]
fn invalid_or_missing_context_is_none() {
    let mut headers = HeaderMap::new();
    assert!(extract(&Headers(&headers)).is_none());
    headers.insert(
        "traceparent",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01"
            .parse()
            .unwrap(),
    );
    assert!(extract(&Headers(&headers)).is_none());
    headers.insert("traceparent", "garbage".parse().unwrap());
    assert!(extract(&Headers(&headers)).is_none());
    let mut extensions = BTreeMap::new();
    extensions.insert("traceparent".to_string(), ExtValue::Integer(7));
    assert!(extract(&Extensions(&extensions)).is_none());
}

#[test]
fn spans_are_empty_while_tracing_is_off() {
    // No test in this binary installs an exporter.
    assert!(!enabled());
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", PARENT.parse().unwrap());
    let incoming = Incoming::from_headers(&headers);
    let event = CloudEvent::new("1", "/s", "t");
    let span = EventSpan::start(&incoming, &event);
    assert_eq!(span.trace_id(), None);
    let mut extensions = BTreeMap::new();
    span.inject_into(&mut extensions);
    assert!(extensions.is_empty());
    let call = FlowCall {
        gateway: "g",
        url: "grpc://127.0.0.1:1",
        endpoint: "/",
        target_executor: None,
        request_id: "r",
        docs: 1,
        probe: false,
    };
    assert!(FlowSpan::start(&call, [&span]).metadata().is_empty());
}
