//! Traces end to end: a `flowbridge serve` process with the standard `OTEL_*` variables exports
//! its spans to an OTLP receiver running in this test (gRPC `TraceService` or OTLP/HTTP protobuf
//! on 127.0.0.1), calls a recording gateway (an h2c gRPC server in this test that answers
//! `/jina.JinaRPC/Call` with the request it got, as a Flow of no-op executors would, and keeps
//! the request's gRPC metadata), and POSTs replies to a recording sink. The W3C trace id sent
//! with the event must reach the exported spans, the gateway's `traceparent` metadata and the
//! reply event. One test runs through the real Jina Flow with tracing on.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

use support::{FlowBridge, shared_flow, unique};

/// A W3C trace id and parent span id, as a sender (a Knative broker) would send them.
struct Parent {
    trace_id: String,
    span_id: String,
}

impl Parent {
    fn new() -> Parent {
        let trace_id = uuid::Uuid::new_v4().simple().to_string();
        let span_id = trace_id[..16].to_string();
        Parent { trace_id, span_id }
    }

    fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }
}

/// `traceparent` → (trace id, span id, flags).
fn parse_traceparent(value: &str) -> (String, String, String) {
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "traceparent {value:?}");
    assert_eq!(parts[0], "00", "traceparent {value:?}");
    (parts[1].into(), parts[2].into(), parts[3].into())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An exported span with the `service.name` of its resource.
#[derive(Debug, Clone)]
struct Exported {
    service: String,
    span: Span,
}

impl Exported {
    fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }
    fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }
    fn parent_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }
    fn kind(&self) -> SpanKind {
        SpanKind::try_from(self.span.kind).unwrap_or(SpanKind::Unspecified)
    }
    fn attr(&self, key: &str) -> Option<String> {
        attr(&self.span.attributes, key)
    }
    /// Span ids this span links to.
    fn links(&self) -> Vec<(String, String)> {
        self.span
            .links
            .iter()
            .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
            .collect()
    }
}

fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    Some(match value.value.as_ref()? {
        AnyValue::StringValue(s) => s.clone(),
        AnyValue::IntValue(i) => i.to_string(),
        AnyValue::BoolValue(b) => b.to_string(),
        AnyValue::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

/// What the receiver got: every span, and how many export requests.
#[derive(Default)]
struct Received {
    spans: Mutex<Vec<Exported>>,
    exports: Mutex<usize>,
}

impl Received {
    fn record(&self, request: ExportTraceServiceRequest) {
        *self.exports.lock().unwrap() += 1;
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|r| attr(&r.attributes, "service.name"))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push(Exported {
                        service: service.clone(),
                        span,
                    });
                }
            }
        }
    }

    fn exports(&self) -> usize {
        *self.exports.lock().unwrap()
    }

    fn spans_of(&self, trace_id: &str) -> Vec<Exported> {
        let spans = self.spans.lock().unwrap();
        spans
            .iter()
            .filter(|s| s.trace_id() == trace_id)
            .cloned()
            .collect()
    }

    /// Waits up to 15 s until `pred` holds for the spans of `trace_id`.
    fn wait_for(&self, trace_id: &str, pred: impl Fn(&[Exported]) -> bool) -> Vec<Exported> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let spans = self.spans_of(trace_id);
            if pred(&spans) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "spans of trace {trace_id} incomplete after 15 s: {spans:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[derive(Clone)]
struct GrpcReceiver(Arc<Received>);

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.record(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Grpc,
    HttpProtobuf,
}

/// An OTLP receiver on 127.0.0.1; returns its port.
fn start_receiver(rt: &Runtime, protocol: Protocol, received: Arc<Received>) -> u16 {
    let (l, port) = rt.block_on(listener());
    match protocol {
        Protocol::Grpc => {
            let service = TraceServiceServer::new(GrpcReceiver(received));
            rt.spawn(
                tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming(tonic::transport::server::TcpIncoming::from(l)),
            );
        }
        Protocol::HttpProtobuf => {
            let app = axum::Router::new().route(
                "/v1/traces",
                post(move |body: Bytes| {
                    let received = received.clone();
                    async move {
                        match ExportTraceServiceRequest::decode(body) {
                            Ok(request) => {
                                received.record(request);
                                (
                                    [("content-type", "application/x-protobuf")],
                                    ExportTraceServiceResponse::default().encode_to_vec(),
                                )
                                    .into_response()
                            }
                            Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
                        }
                    }
                }),
            );
            rt.spawn(async move { axum::serve(l, app).await });
        }
    }
    port
}

/// The gRPC metadata of every `/jina.JinaRPC/Call` the recording gateway received.
type Calls = Arc<Mutex<Vec<HeaderMap>>>;

/// A gateway that answers each Call with the request message it received (the documents come
/// back unchanged, under the same request id) and records the call's headers (gRPC metadata).
fn start_gateway(rt: &Runtime, calls: Calls) -> u16 {
    let (l, port) = rt.block_on(listener());
    let app = axum::Router::new().route(
        "/jina.JinaRPC/Call",
        post(move |headers: HeaderMap, body: Bytes| {
            let calls = calls.clone();
            async move {
                calls.lock().unwrap().push(headers);
                // The request body is gRPC-framed messages; framing the answer is the same.
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", "0".parse().unwrap());
                let frames = vec![
                    Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(body)),
                    Ok(hyper::body::Frame::trailers(trailers)),
                ];
                let body = http_body_util::StreamBody::new(tokio_stream::iter(frames));
                Response::builder()
                    .header("content-type", "application/grpc")
                    .body(Body::new(body))
                    .unwrap()
            }
        }),
    );
    rt.spawn(
        tonic::transport::Server::builder()
            .add_routes(tonic::service::Routes::from(app))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(l)),
    );
    port
}

/// Headers of every request POSTed to the recording reply sink.
type Replies = Arc<Mutex<Vec<HeaderMap>>>;

fn start_sink(rt: &Runtime, replies: Replies) -> u16 {
    let (l, port) = rt.block_on(listener());
    let app = axum::Router::new().route(
        "/",
        post(move |headers: HeaderMap| {
            let replies = replies.clone();
            async move {
                replies.lock().unwrap().push(headers);
                StatusCode::ACCEPTED
            }
        }),
    );
    rt.spawn(async move { axum::serve(l, app).await });
    port
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| v.to_str().unwrap().to_string())
}

/// A flowbridge config: gateway `gw` (with `linger`), one route `traced` whose reply goes to
/// `reply_to` when given, else back in the HTTP response.
fn config(gateway_url: &str, linger: &str, reply_to: Option<u16>) -> std::path::PathBuf {
    let to = reply_to.map_or(String::new(), |p| {
        format!("\n      to: http://127.0.0.1:{p}/")
    });
    support::write_config(&format!(
        r#"
gateways:
  gw:
    url: "{gateway_url}"
    timeout: 20s
    batch: {{linger: {linger}}}
routes:
  - name: traced
    reply:
      type: com.example.traced.reply{to}
"#
    ))
}

fn otel_env(protocol: Protocol, receiver: u16) -> Vec<(&'static str, String)> {
    let (name, endpoint) = match protocol {
        Protocol::Grpc => ("grpc", format!("http://127.0.0.1:{receiver}")),
        Protocol::HttpProtobuf => ("http/protobuf", format!("http://127.0.0.1:{receiver}")),
    };
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", name.to_string()),
    ]
}

fn start_bridge(config: &std::path::Path, env: &[(&str, String)]) -> FlowBridge {
    let config = config.to_string_lossy().into_owned();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Every event's log line (by default only failed events have one).
    env.push(("RUST_LOG", "info"));
    FlowBridge::start_with(&["--config", &config, "--log-format", "json"], &env)
}

fn binary_event<'a>(id: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![
        ("ce-specversion", "1.0"),
        ("ce-id", id),
        ("ce-type", "com.example.traced"),
        ("ce-source", "/tests/tracing"),
        ("content-type", "application/json"),
    ];
    headers.extend_from_slice(extra);
    headers
}

/// gRPC export; the sender's context in the HTTP headers; reply POSTed to `reply.to`. The batch
/// span processor's delay is a minute, so the spans can only arrive through the flush at
/// shutdown.
#[test]
fn trace_follows_an_event_to_the_gateway_and_the_reply() {
    let rt = Runtime::new().unwrap();
    let received = Arc::new(Received::default());
    let calls = Calls::default();
    let replies = Replies::default();
    let receiver = start_receiver(&rt, Protocol::Grpc, received.clone());
    let gateway = start_gateway(&rt, calls.clone());
    let sink = start_sink(&rt, replies.clone());
    let mut env = otel_env(Protocol::Grpc, receiver);
    env.push(("OTEL_BSP_SCHEDULE_DELAY", "60000".into()));
    env.push(("OTEL_SERVICE_NAME", "flowbridge-under-test".into()));
    let mut bridge = start_bridge(
        &config(&format!("grpc://127.0.0.1:{gateway}"), "0ms", Some(sink)),
        &env,
    );

    let parent = Parent::new();
    let traceparent = parent.traceparent();
    let id = unique("traced");
    let headers = binary_event(
        &id,
        &[("traceparent", &traceparent), ("tracestate", "broker=k1")],
    );
    let response = bridge.request("POST", "/", &headers, br#"{"text": "hello"}"#);
    assert_eq!(response.status, 202, "{}", response.text());

    // (b) the gateway got the Flow request span's context, in the sender's trace.
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    let metadata = header(&calls[0], "traceparent").expect("no traceparent metadata on the Call");
    let (gw_trace, gw_span, gw_flags) = parse_traceparent(&metadata);
    assert_eq!(gw_trace, parent.trace_id);
    assert_ne!(gw_span, parent.span_id);
    assert_eq!(gw_flags, "01");
    assert_eq!(
        header(&calls[0], "tracestate").as_deref(),
        Some("broker=k1")
    );

    // (c) the reply event carries the event span's context: extension and HTTP header.
    let replies = replies.lock().unwrap().clone();
    assert_eq!(replies.len(), 1);
    let reply_tp = header(&replies[0], "traceparent").expect("reply without traceparent header");
    assert_eq!(
        header(&replies[0], "ce-traceparent").as_ref(),
        Some(&reply_tp)
    );
    assert_eq!(
        header(&replies[0], "ce-tracestate").as_deref(),
        Some("broker=k1")
    );
    let (reply_trace, reply_span, _) = parse_traceparent(&reply_tp);
    assert_eq!(reply_trace, parent.trace_id);

    // Nothing exported yet (a minute's schedule delay); SIGTERM flushes.
    assert!(received.spans_of(&parent.trace_id).is_empty());
    bridge.signal_term();
    assert!(bridge.wait_exit(Duration::from_secs(15)).is_some());

    // (a) the spans: server span continuing the sender's, client span its child.
    let spans = received.wait_for(&parent.trace_id, |s| s.len() >= 2);
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let server = spans.iter().find(|s| s.kind() == SpanKind::Server).unwrap();
    let client = spans.iter().find(|s| s.kind() == SpanKind::Client).unwrap();
    assert_eq!(server.service, "flowbridge-under-test");
    assert_eq!(server.span.name, "process traced");
    assert_eq!(server.parent_id(), parent.span_id);
    assert_eq!(server.attr("cloudevents.event_id"), Some(id.clone()));
    assert_eq!(
        server.attr("cloudevents.event_type").as_deref(),
        Some("com.example.traced")
    );
    assert_eq!(
        server.attr("cloudevents.event_source").as_deref(),
        Some("/tests/tracing")
    );
    assert_eq!(server.attr("flowbridge.route").as_deref(), Some("traced"));
    assert_eq!(
        server.attr("http.response.status_code").as_deref(),
        Some("202")
    );
    assert_eq!(
        server.attr("flowbridge.outcome").as_deref(),
        Some("accepted")
    );
    assert_eq!(
        reply_span,
        server.span_id(),
        "the reply continues the event's span"
    );

    assert_eq!(client.span.name, "jina.JinaRPC/Call");
    assert_eq!(client.parent_id(), server.span_id());
    assert_eq!(
        gw_span,
        client.span_id(),
        "the gateway got the Flow request's span"
    );
    assert_eq!(client.attr("flowbridge.gateway").as_deref(), Some("gw"));
    assert_eq!(client.attr("flowbridge.endpoint").as_deref(), Some("/"));
    assert_eq!(client.attr("flowbridge.docs").as_deref(), Some("1"));
    assert_eq!(
        client.attr("messaging.batch.message_count").as_deref(),
        Some("1")
    );
    assert_eq!(client.attr("rpc.grpc.status_code").as_deref(), Some("0"));
    assert_eq!(
        client.attr("flowbridge.request_id"),
        server.attr("flowbridge.request_id")
    );
    assert!(
        client
            .links()
            .contains(&(parent.trace_id.clone(), server.span_id()))
    );
    assert!(
        server
            .links()
            .contains(&(parent.trace_id.clone(), client.span_id()))
    );

    // Log lines carry the trace id.
    let log = bridge.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("event processed") && l.contains(&id))
        .unwrap_or_else(|| panic!("no 'event processed' line:\n{log}"));
    assert!(
        line.contains(&format!("\"trace_id\":\"{}\"", parent.trace_id)),
        "{line}"
    );
}

/// OTLP/HTTP export; a batch whose events carry their own `traceparent` extension (no HTTP
/// header) shares one Flow request: the request's span is the child of its first event's span
/// and links to all three, each of which links back.
#[test]
fn batched_events_with_extension_contexts_link_to_one_flow_request() {
    let rt = Runtime::new().unwrap();
    let received = Arc::new(Received::default());
    let calls = Calls::default();
    let receiver = start_receiver(&rt, Protocol::HttpProtobuf, received.clone());
    let gateway = start_gateway(&rt, calls.clone());
    let mut env = otel_env(Protocol::HttpProtobuf, receiver);
    env.push(("OTEL_BSP_SCHEDULE_DELAY", "100".into()));
    // A linger long enough for the three events of the batch to share one request.
    let bridge = start_bridge(
        &config(&format!("grpc://127.0.0.1:{gateway}"), "500ms", None),
        &env,
    );

    let parents: Vec<Parent> = (0..3).map(|_| Parent::new()).collect();
    let ids: Vec<String> = (0..3).map(|_| unique("batched")).collect();
    let batch: Vec<serde_json::Value> = parents
        .iter()
        .zip(&ids)
        .map(|(p, id)| {
            serde_json::json!({
                "specversion": "1.0", "id": id, "type": "com.example.traced",
                "source": "/tests/tracing", "traceparent": p.traceparent(),
                "data": {"text": "batched"}
            })
        })
        .collect();
    let body = serde_json::to_vec(&batch).unwrap();
    let response = bridge.request(
        "POST",
        "/",
        &[("content-type", "application/cloudevents-batch+json")],
        &body,
    );
    assert_eq!(response.status, 202, "{}", response.text());
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "the three events did not share one request");
    let (gw_trace, gw_span, _) =
        parse_traceparent(&header(&calls[0], "traceparent").expect("no traceparent metadata"));

    let mut servers = Vec::new();
    let mut clients = Vec::new();
    for (parent, id) in parents.iter().zip(&ids) {
        let spans = received.wait_for(&parent.trace_id, |s| {
            s.iter().any(|x| x.kind() == SpanKind::Server)
        });
        let server = spans.iter().find(|s| s.kind() == SpanKind::Server).unwrap();
        assert_eq!(
            server.parent_id(),
            parent.span_id,
            "extension context not continued"
        );
        assert_eq!(server.attr("cloudevents.event_id").as_ref(), Some(id));
        servers.push(server.clone());
        clients.extend(spans.into_iter().filter(|s| s.kind() == SpanKind::Client));
    }
    assert_eq!(clients.len(), 1, "{clients:#?}");
    let client = &clients[0];
    assert_eq!(client.span_id(), gw_span);
    assert_eq!(client.trace_id(), gw_trace);
    assert_eq!(
        client.attr("messaging.batch.message_count").as_deref(),
        Some("3")
    );
    assert_eq!(client.attr("flowbridge.docs").as_deref(), Some("3"));
    let first = servers
        .iter()
        .find(|s| s.trace_id() == client.trace_id())
        .expect("the Flow request is in none of the events' traces");
    assert_eq!(client.parent_id(), first.span_id());
    let links = client.links();
    for server in &servers {
        assert!(
            links.contains(&(server.trace_id(), server.span_id())),
            "{links:?}"
        );
        assert!(
            server
                .links()
                .contains(&(client.trace_id(), client.span_id()))
        );
    }
}

/// Binary mode with the context only in the `ce-traceparent` extension header; the reply comes
/// back in the HTTP response (`Prefer: reply`) with the event span's context.
#[test]
fn binary_extension_context_and_reply_in_the_response() {
    let rt = Runtime::new().unwrap();
    let received = Arc::new(Received::default());
    let calls = Calls::default();
    let receiver = start_receiver(&rt, Protocol::HttpProtobuf, received.clone());
    let gateway = start_gateway(&rt, calls.clone());
    let mut env = otel_env(Protocol::HttpProtobuf, receiver);
    env.push(("OTEL_BSP_SCHEDULE_DELAY", "100".into()));
    let bridge = start_bridge(
        &config(&format!("grpc://127.0.0.1:{gateway}"), "0ms", None),
        &env,
    );
    let parent = Parent::new();
    let traceparent = parent.traceparent();
    let id = unique("ext");
    let headers = binary_event(
        &id,
        &[("ce-traceparent", &traceparent), ("prefer", "reply")],
    );
    let response = bridge.request("POST", "/", &headers, br#"{"text": "hi"}"#);
    assert_eq!(response.status, 200, "{}", response.text());
    let reply_tp = response
        .header("ce-traceparent")
        .expect("reply without ce-traceparent");
    let (reply_trace, reply_span, _) = parse_traceparent(reply_tp);
    assert_eq!(reply_trace, parent.trace_id);
    let (gw_trace, _, _) = parse_traceparent(
        &header(&calls.lock().unwrap()[0], "traceparent").expect("no traceparent metadata"),
    );
    assert_eq!(gw_trace, parent.trace_id);
    let spans = received.wait_for(&parent.trace_id, |s| s.len() >= 2);
    let server = spans.iter().find(|s| s.kind() == SpanKind::Server).unwrap();
    assert_eq!(server.parent_id(), parent.span_id);
    assert_eq!(server.span_id(), reply_span);
    assert_eq!(
        server.attr("http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(server.attr("flowbridge.outcome").as_deref(), Some("reply"));
    assert_eq!(server.service, "flowbridge");
}

/// Tracing off — no OTEL variables, or `OTEL_SDK_DISABLED=true` with an endpoint set: nothing is
/// exported, and the sender's traceparent goes neither to the gateway nor into the reply.
#[test]
fn nothing_is_exported_or_propagated_when_tracing_is_off() {
    let rt = Runtime::new().unwrap();
    let received = Arc::new(Received::default());
    let calls = Calls::default();
    let replies = Replies::default();
    let receiver = start_receiver(&rt, Protocol::HttpProtobuf, received.clone());
    let gateway = start_gateway(&rt, calls.clone());
    let sink = start_sink(&rt, replies.clone());
    let config = config(&format!("grpc://127.0.0.1:{gateway}"), "0ms", Some(sink));
    let mut disabled = otel_env(Protocol::HttpProtobuf, receiver);
    disabled.push(("OTEL_SDK_DISABLED", "true".into()));
    disabled.push(("OTEL_BSP_SCHEDULE_DELAY", "100".into()));
    for env in [Vec::new(), disabled] {
        let mut bridge = start_bridge(&config, &env);
        let parent = Parent::new();
        let traceparent = parent.traceparent();
        let id = unique("off");
        let headers = binary_event(&id, &[("traceparent", &traceparent)]);
        let response = bridge.request("POST", "/", &headers, br#"{"text": "off"}"#);
        assert_eq!(response.status, 202, "{}", response.text());
        bridge.signal_term();
        assert!(bridge.wait_exit(Duration::from_secs(15)).is_some());
        let log = bridge.log_text();
        assert!(log.contains("tracing off"), "{env:?}:\n{log}");
        assert!(
            !log.contains(&parent.trace_id),
            "{env:?}: trace id logged:\n{log}"
        );
    }
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 2);
    for call in calls.iter() {
        assert_eq!(header(call, "traceparent"), None);
    }
    let replies = replies.lock().unwrap();
    assert_eq!(replies.len(), 2);
    for reply in replies.iter() {
        assert_eq!(header(reply, "traceparent"), None);
        assert_eq!(header(reply, "ce-traceparent"), None);
    }
    assert_eq!(received.exports(), 0);
}

/// The real Jina Flow with tracing on: the event is processed as without tracing (reply with the
/// executors' tags), and the Flow request span reports gRPC OK from the real gateway.
#[test]
fn real_flow_with_tracing_on() {
    let flow = shared_flow();
    let rt = Runtime::new().unwrap();
    let received = Arc::new(Received::default());
    let receiver = start_receiver(&rt, Protocol::Grpc, received.clone());
    let mut env = otel_env(Protocol::Grpc, receiver);
    env.push(("OTEL_BSP_SCHEDULE_DELAY", "100".into()));
    let bridge = start_bridge(&config(&flow.grpc_url(), "0ms", None), &env);
    let parent = Parent::new();
    let traceparent = parent.traceparent();
    let id = unique("real");
    let headers = binary_event(&id, &[("traceparent", &traceparent), ("prefer", "reply")]);
    let response = bridge.request(
        "POST",
        "/",
        &headers,
        br#"{"text": "through the real Flow"}"#,
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let docs = response.json();
    assert_eq!(docs[0]["id"], id.as_str(), "{docs}");
    assert_eq!(docs[0]["tags"]["tagged_by"], "tagger", "{docs}");
    assert!(!flow.records_with_doc(&id).is_empty());
    let (reply_trace, _, _) = parse_traceparent(response.header("ce-traceparent").unwrap());
    assert_eq!(reply_trace, parent.trace_id);
    let spans = received.wait_for(&parent.trace_id, |s| s.len() >= 2);
    let client = spans.iter().find(|s| s.kind() == SpanKind::Client).unwrap();
    assert_eq!(client.attr("rpc.grpc.status_code").as_deref(), Some("0"));
    assert!(
        client.span.status.as_ref().is_none_or(|s| s.code != 2),
        "{client:#?}"
    );
}

/// A real Jina Flow with jina's own tracing on (`--tracing --traces-exporter-host/port`),
/// exporting to the same receiver as flowbridge: the gateway reads the `traceparent` metadata
/// and its span for the Call is the child of flowbridge's Flow request span, in the sender's
/// trace.
#[test]
fn jina_gateway_continues_the_trace() {
    let rt = Runtime::new().unwrap();
    let received = Arc::new(Received::default());
    let receiver = start_receiver(&rt, Protocol::Grpc, received.clone());
    let flow = support::JinaFlow::start_traced(receiver);
    let mut env = otel_env(Protocol::Grpc, receiver);
    env.push(("OTEL_BSP_SCHEDULE_DELAY", "100".into()));
    let bridge = start_bridge(&config(&flow.grpc_url(), "0ms", None), &env);
    let parent = Parent::new();
    let traceparent = parent.traceparent();
    let id = unique("jina-traced");
    let headers = binary_event(&id, &[("traceparent", &traceparent)]);
    // The status is not asserted: with jina's tracing on, the jina 3.34 venv's gateway fails its
    // call to the first executor (its gRPC client interceptor, opentelemetry-instrumentation-grpc
    // 0.41b0, cannot read grpcio 1.68's `aio.Metadata`: `KeyError: ('endpoint', '/')`), so the
    // event gets a 502 — after the gateway has started its span, which is what this test is about.
    let response = bridge.request("POST", "/", &headers, br#"{"text": "traced by jina"}"#);
    assert!(matches!(response.status, 202 | 502), "{}", response.text());
    // jina's batch span processor exports every 5 s.
    let spans = received.wait_for(&parent.trace_id, |spans| {
        let Some(client) = spans
            .iter()
            .find(|s| s.kind() == SpanKind::Client && s.service == "flowbridge")
        else {
            return false;
        };
        spans
            .iter()
            .any(|s| s.service != "flowbridge" && s.parent_id() == client.span_id())
    });
    let client = spans
        .iter()
        .find(|s| s.kind() == SpanKind::Client && s.service == "flowbridge")
        .unwrap();
    let gateway = spans
        .iter()
        .find(|s| s.service != "flowbridge" && s.parent_id() == client.span_id())
        .unwrap();
    assert_eq!(gateway.kind(), SpanKind::Server, "{gateway:#?}");
}
