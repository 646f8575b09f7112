//! Tests of [`FlowClient`] against an in-process fake Jina gateway: a tonic server built from the
//! test-only generated `JinaRPC` server code, listening on a loopback port, whose behaviour
//! (echo, executor error, slow, gRPC error, late start…) each test chooses. The dispatcher's
//! tests (`crate::dispatch`) use the same server through [`start`] and [`serve_on`].

use std::collections::HashSet;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_stream::Stream;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status, Streaming};

use super::proto::docarray::{DenseNdArrayProto, NdArrayProto, nd_array_proto};
use super::proto::jina::jina_info_rpc_server::{JinaInfoRpc, JinaInfoRpcServer};
use super::proto::jina::jina_rpc_server::{JinaRpc, JinaRpcServer};
use super::proto::jina::status_proto::{ExceptionProto, StatusCode};
use super::proto::jina::{DataRequestProto, HeaderProto, StatusProto};
use super::proto::v2;
use super::{FlowClient, FlowError, convert};
use crate::model::{Document, FlowRequest, GatewaySpec};

#[derive(Clone)]
pub(crate) enum Mode {
    /// Echo the request, adding a tag and an `<f8` embedding to every doc.
    Echo,
    /// Answer with header.status ERROR as an executor exception does.
    ExecutorError,
    /// Sleep before answering.
    Slow(Duration),
    /// Fail the call with this status before any response (Trailers-Only).
    Fail(Code),
    /// Send a stub response with only the request id, then fail with UNAVAILABLE.
    StubThenUnavailable,
    /// Answer with another request id.
    ForeignId,
    /// End the stream without any response.
    NoResponse,
    /// Echo plus a tag of this many bytes.
    Big(usize),
    /// Echo once a permit of the semaphore is available (one permit per call).
    Gated(Arc<tokio::sync::Semaphore>),
    /// Executor error when any document has `tags.raise`, else echo.
    RaiseOnTag,
    /// Echo with every document id suffixed by `-renamed`.
    Rename,
    /// Echo without the last document.
    DropLast,
}

#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) calls: AtomicUsize,
    /// `/jina.JinaInfoRPC/_status` calls.
    pub(crate) status_calls: AtomicUsize,
    peers: Mutex<HashSet<SocketAddr>>,
    requests: Mutex<Vec<(DataRequestProto, Option<String>)>>,
    /// Requests received by a docarray v2 fake.
    v2_requests: Mutex<Vec<v2::jina::DataRequestProto>>,
}

/// Which docarray the fake gateway has "installed".
#[derive(Clone, Debug)]
pub(crate) enum Docarray {
    /// v1 documents; `_status` reports this version (e.g. `0.21.1`).
    V1(&'static str),
    /// v2 documents (`DocListProto`); `_status` reports this version (e.g. `0.40.0`).
    V2(&'static str),
    /// v1 documents and no `_status` service (jina < 3.10).
    Unreported,
}

impl Seen {
    /// The documents of every request a v2 fake received, as docarray v2 protos.
    pub(crate) fn v2_docs(&self) -> Vec<Vec<v2::docarray::DocProto>> {
        use v2::jina::data_request_proto::data_content_proto::Documents;
        self.v2_requests
            .lock()
            .unwrap()
            .iter()
            .map(
                |r| match r.data.as_ref().and_then(|d| d.documents.as_ref()) {
                    Some(Documents::Docs(list)) => list.docs.clone(),
                    _ => Vec::new(),
                },
            )
            .collect()
    }

    /// The document ids of every request received, in arrival order.
    pub(crate) fn doc_ids(&self) -> Vec<Vec<String>> {
        use super::proto::jina::data_request_proto::data_content_proto::Documents;
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(
                |(r, _)| match r.data.as_ref().and_then(|d| d.documents.as_ref()) {
                    Some(Documents::Docs(array)) => {
                        array.docs.iter().map(|d| d.id.clone()).collect()
                    }
                    _ => Vec::new(),
                },
            )
            .collect()
    }
}

struct Fake {
    mode: Mode,
    seen: Arc<Seen>,
}

type CallStream = Pin<Box<dyn Stream<Item = Result<DataRequestProto, Status>> + Send>>;

fn boxed(items: Vec<Result<DataRequestProto, Status>>) -> Response<CallStream> {
    Response::new(Box::pin(tokio_stream::iter(items)))
}

#[tonic::async_trait]
impl JinaRpc for Fake {
    type CallStream = CallStream;

    async fn call(
        &self,
        request: Request<Streaming<DataRequestProto>>,
    ) -> Result<Response<CallStream>, Status> {
        self.seen.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(peer) = request.remote_addr() {
            self.seen.peers.lock().unwrap().insert(peer);
        }
        let grpc_timeout = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut stream = request.into_inner();
        let mut inputs = Vec::new();
        while let Some(message) = stream.message().await? {
            inputs.push(message);
        }
        assert_eq!(inputs.len(), 1, "one DataRequest per stream");
        let input = inputs.remove(0);
        self.seen
            .requests
            .lock()
            .unwrap()
            .push((input.clone(), grpc_timeout));
        let id = input.header.clone().unwrap_or_default().request_id;
        match &self.mode {
            Mode::Echo => Ok(boxed(vec![Ok(echo(input, 0))])),
            Mode::Big(n) => Ok(boxed(vec![Ok(echo(input, *n))])),
            Mode::ExecutorError => {
                let mut out = input;
                if let Some(h) = out.header.as_mut() {
                    h.status = Some(StatusProto {
                        code: StatusCode::Error as i32,
                        description: "ValueError('boom', 42)".into(),
                        exception: Some(ExceptionProto {
                            name: "ValueError".into(),
                            args: vec!["boom".into(), "42".into()],
                            stacks: vec!["Traceback".into()],
                            executor: "Echo".into(),
                        }),
                    });
                }
                Ok(boxed(vec![Ok(out)]))
            }
            Mode::Slow(pause) => {
                tokio::time::sleep(*pause).await;
                Ok(boxed(vec![Ok(echo(input, 0))]))
            }
            Mode::Fail(code) => Err(Status::new(*code, "fake gateway says no")),
            Mode::StubThenUnavailable => Ok(boxed(vec![
                Ok(DataRequestProto {
                    header: Some(HeaderProto {
                        request_id: id,
                        ..HeaderProto::default()
                    }),
                    ..DataRequestProto::default()
                }),
                Err(Status::unavailable(
                    "Gateway: Communication error with deployment echo",
                )),
            ])),
            Mode::ForeignId => {
                let mut out = echo(input, 0);
                if let Some(h) = out.header.as_mut() {
                    h.request_id = "someone-else".into();
                }
                Ok(boxed(vec![Ok(out)]))
            }
            Mode::NoResponse => Ok(boxed(vec![])),
            Mode::Gated(gate) => {
                gate.acquire().await.unwrap().forget();
                Ok(boxed(vec![Ok(echo(input, 0))]))
            }
            Mode::RaiseOnTag => {
                let raise = format!("{input:?}").contains("\"raise\"");
                if raise {
                    let mut out = input;
                    if let Some(h) = out.header.as_mut() {
                        h.status = Some(StatusProto {
                            code: StatusCode::Error as i32,
                            description: "ValueError('boom')".into(),
                            exception: Some(ExceptionProto {
                                name: "ValueError".into(),
                                args: vec!["boom".into()],
                                stacks: vec![],
                                executor: "Echo".into(),
                            }),
                        });
                    }
                    Ok(boxed(vec![Ok(out)]))
                } else {
                    Ok(boxed(vec![Ok(echo(input, 0))]))
                }
            }
            Mode::Rename | Mode::DropLast => {
                use super::proto::jina::data_request_proto::data_content_proto::Documents;
                let mut out = echo(input, 0);
                if let Some(Documents::Docs(array)) =
                    out.data.as_mut().and_then(|d| d.documents.as_mut())
                {
                    if matches!(self.mode, Mode::Rename) {
                        for d in &mut array.docs {
                            d.id.push_str("-renamed");
                        }
                    } else {
                        array.docs.pop();
                    }
                }
                Ok(boxed(vec![Ok(out)]))
            }
        }
    }
}

/// What the fake's "executor" does: tag every doc and give it a float64 embedding.
fn echo(mut request: DataRequestProto, padding: usize) -> DataRequestProto {
    use super::proto::jina::data_request_proto::data_content_proto::Documents;
    if let Some(Documents::Docs(array)) = request.data.as_mut().and_then(|d| d.documents.as_mut()) {
        for doc in &mut array.docs {
            let mut tags = doc.tags.clone().unwrap_or_default();
            tags.fields
                .insert("seen".into(), convert::json_to_value(&json!(1)));
            if padding > 0 {
                tags.fields.insert(
                    "pad".into(),
                    convert::json_to_value(&json!("x".repeat(padding))),
                );
            }
            doc.tags = Some(tags);
            doc.embedding = Some(NdArrayProto {
                content: Some(nd_array_proto::Content::Dense(DenseNdArrayProto {
                    buffer: [0.5f64, 0.25]
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect(),
                    shape: vec![2],
                    dtype: "<f8".into(),
                })),
                cls_name: "numpy".into(),
                parameters: None,
            });
        }
    }
    request
}

pub(crate) async fn serve_on(listener: TcpListener, mode: Mode) -> Arc<Seen> {
    serve_as(
        listener,
        mode,
        Docarray::V1("0.21.1"),
        std::future::pending(),
    )
    .await
}

/// The fake's `_status`.
struct Info {
    version: &'static str,
    seen: Arc<Seen>,
}

#[tonic::async_trait]
impl JinaInfoRpc for Info {
    async fn status(
        &self,
        _request: Request<()>,
    ) -> Result<Response<super::proto::jina::JinaInfoProto>, Status> {
        self.seen.status_calls.fetch_add(1, Ordering::SeqCst);
        let mut info = super::proto::jina::JinaInfoProto::default();
        info.jina.insert("jina".into(), "3.34.0".into());
        info.jina.insert("docarray".into(), self.version.into());
        Ok(Response::new(info))
    }
}

/// A docarray v2 fake: echoes the documents, adding `tags.seen = 1`; an executor error when a
/// document has `tags.raise`.
struct FakeV2 {
    seen: Arc<Seen>,
}

type CallStreamV2 = Pin<Box<dyn Stream<Item = Result<v2::jina::DataRequestProto, Status>> + Send>>;

#[tonic::async_trait]
impl v2::jina::jina_rpc_server::JinaRpc for FakeV2 {
    type CallStream = CallStreamV2;

    async fn call(
        &self,
        request: Request<Streaming<v2::jina::DataRequestProto>>,
    ) -> Result<Response<CallStreamV2>, Status> {
        use v2::docarray::node_proto::Content;
        use v2::jina::data_request_proto::data_content_proto::Documents;
        self.seen.calls.fetch_add(1, Ordering::SeqCst);
        let mut stream = request.into_inner();
        let mut out = Vec::new();
        while let Some(mut message) = stream.message().await? {
            self.seen.v2_requests.lock().unwrap().push(message.clone());
            let mut raise = false;
            if let Some(Documents::Docs(list)) =
                message.data.as_mut().and_then(|d| d.documents.as_mut())
            {
                for doc in &mut list.docs {
                    let tags =
                        doc.data
                            .entry("tags".into())
                            .or_insert_with(|| v2::docarray::NodeProto {
                                content: Some(Content::Dict(Default::default())),
                                docarray_type: None,
                            });
                    if let Some(Content::Dict(dict)) = tags.content.as_mut() {
                        raise |= dict.data.contains_key("raise");
                        dict.data.insert(
                            "seen".into(),
                            v2::docarray::NodeProto {
                                content: Some(Content::Integer(1)),
                                docarray_type: None,
                            },
                        );
                    }
                }
            }
            if raise && let Some(h) = message.header.as_mut() {
                h.status = Some(v2::jina::StatusProto {
                    code: v2::jina::status_proto::StatusCode::Error as i32,
                    description: "ValueError('boom')".into(),
                    exception: Some(v2::jina::status_proto::ExceptionProto {
                        name: "ValueError".into(),
                        args: vec!["boom".into()],
                        stacks: vec![],
                        executor: "Echo".into(),
                    }),
                });
            }
            out.push(Ok(message));
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(out))))
    }
}

/// Serve a fake with the given docarray until `stop` resolves. v2 fakes always echo (`mode` is
/// for v1 fakes).
pub(crate) async fn serve_as(
    listener: TcpListener,
    mode: Mode,
    docarray: Docarray,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Arc<Seen> {
    let seen = Arc::new(Seen::default());
    let info = |version| {
        JinaInfoRpcServer::new(Info {
            version,
            seen: Arc::clone(&seen),
        })
    };
    let mut builder = Server::builder();
    let router = match docarray {
        Docarray::V2(version) => builder
            .add_service(v2::jina::jina_rpc_server::JinaRpcServer::new(FakeV2 {
                seen: Arc::clone(&seen),
            }))
            .add_service(info(version)),
        Docarray::V1(version) => builder
            .add_service(JinaRpcServer::new(Fake {
                mode,
                seen: Arc::clone(&seen),
            }))
            .add_service(info(version)),
        Docarray::Unreported => builder.add_service(JinaRpcServer::new(Fake {
            mode,
            seen: Arc::clone(&seen),
        })),
    };
    tokio::spawn(router.serve_with_incoming_shutdown(TcpIncoming::from(listener), stop));
    seen
}

pub(crate) async fn start(mode: Mode) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (addr, serve_on(listener, mode).await)
}

/// A loopback port nobody listens on (right now).
pub(crate) async fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

fn client(addr: SocketAddr, timeout: Duration) -> FlowClient {
    let mut spec = GatewaySpec::with_defaults("fake", &format!("grpc://{addr}"));
    spec.timeout = timeout;
    spec.connect_timeout = timeout;
    spec.max_message_bytes = 64 * 1024;
    FlowClient::new(&spec).unwrap()
}

fn request() -> FlowRequest {
    FlowRequest {
        endpoint: "/index".into(),
        target_executor: Some("echo".into()),
        parameters: json!({"tenant": "t1", "k": 3})
            .as_object()
            .cloned()
            .unwrap(),
        docs: vec![Document {
            id: "doc-1".into(),
            text: Some("hello".into()),
            tags: json!({"lang": "en"}).as_object().cloned().unwrap(),
            ..Document::default()
        }],
    }
}

#[tokio::test]
async fn echo_round_trip_sends_header_parameters_and_docs() {
    let (addr, seen) = start(Mode::Echo).await;
    let response = client(addr, Duration::from_secs(5))
        .call(request(), "rid-1")
        .await
        .unwrap();
    assert_eq!(response.request_id, "rid-1");
    assert_eq!(
        Value::Object(response.parameters),
        json!({"tenant": "t1", "k": 3})
    );
    assert_eq!(response.docs.len(), 1);
    let doc = &response.docs[0];
    assert_eq!(doc.id, "doc-1");
    assert_eq!(doc.text.as_deref(), Some("hello"));
    assert_eq!(
        Value::Object(doc.tags.clone()),
        json!({"lang": "en", "seen": 1})
    );
    let embedding = doc.embedding.as_ref().unwrap();
    assert_eq!(embedding.values, vec![0.5, 0.25]);

    let requests = seen.requests.lock().unwrap();
    let (sent, grpc_timeout) = &requests[0];
    let header = sent.header.as_ref().unwrap();
    assert_eq!(header.request_id, "rid-1");
    assert_eq!(header.exec_endpoint.as_deref(), Some("/index"));
    assert_eq!(header.target_executor.as_deref(), Some("echo"));
    assert!(
        grpc_timeout.is_some(),
        "the call deadline travels as grpc-timeout"
    );
}

#[tokio::test]
async fn concurrent_calls_share_one_connection() {
    let (addr, seen) = start(Mode::Echo).await;
    let flow = client(addr, Duration::from_secs(5));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let flow = flow.clone();
        tasks.push(tokio::spawn(async move {
            flow.call(request(), &format!("rid-{i}")).await
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let response = task.await.unwrap().unwrap();
        assert_eq!(response.request_id, format!("rid-{i}"));
    }
    assert_eq!(seen.calls.load(Ordering::SeqCst), 16);
    assert_eq!(seen.peers.lock().unwrap().len(), 1, "one HTTP/2 connection");
}

#[tokio::test]
async fn executor_error_names_executor_and_exception() {
    let (addr, _) = start(Mode::ExecutorError).await;
    let err = client(addr, Duration::from_secs(5))
        .call(request(), "rid")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        FlowError::Executor {
            executor: "Echo".into(),
            exception: "ValueError".into(),
            message: "boom".into(),
        }
    );
}

#[tokio::test]
async fn cold_gateway_is_retried_until_it_starts() {
    let addr = free_port().await;
    let flow = client(addr, Duration::from_secs(10));
    let started = Instant::now();
    let call = tokio::spawn(async move { flow.call(request(), "cold").await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let listener = TcpListener::bind(addr).await.unwrap();
    let seen = serve_on(listener, Mode::Echo).await;
    let response = call.await.unwrap().unwrap();
    assert_eq!(response.request_id, "cold");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        seen.calls.load(Ordering::SeqCst),
        1,
        "only the accepted attempt reached it"
    );
}

#[tokio::test]
async fn gateway_never_up_is_unavailable_after_the_timeout() {
    let addr = free_port().await;
    let timeout = Duration::from_millis(1500);
    let started = Instant::now();
    let err = client(addr, timeout)
        .call(request(), "down")
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    match &err {
        FlowError::Unavailable { gateway, message } => {
            assert_eq!(gateway, "fake");
            assert!(message.contains("attempts"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(elapsed >= Duration::from_millis(1300), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
}

#[tokio::test]
async fn slow_gateway_hits_the_deadline() {
    let (addr, _) = start(Mode::Slow(Duration::from_secs(5))).await;
    let started = Instant::now();
    let err = client(addr, Duration::from_millis(400))
        .call(request(), "slow")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        FlowError::Deadline {
            gateway: "fake".into(),
            timeout_ms: 400
        }
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn other_grpc_codes_are_gateway_errors_without_retry() {
    let (addr, seen) = start(Mode::Fail(Code::Internal)).await;
    let err = client(addr, Duration::from_secs(5))
        .call(request(), "x")
        .await
        .unwrap_err();
    match &err {
        FlowError::Gateway { gateway, message } => {
            assert_eq!(gateway, "fake");
            assert!(message.contains("Internal"), "{message}");
            assert!(message.contains("fake gateway says no"), "{message}");
        }
        other => panic!("expected Gateway, got {other:?}"),
    }
    assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn gateway_deadline_exceeded_status_is_deadline() {
    let (addr, _) = start(Mode::Fail(Code::DeadlineExceeded)).await;
    let err = client(addr, Duration::from_secs(5))
        .call(request(), "x")
        .await
        .unwrap_err();
    assert!(matches!(err, FlowError::Deadline { .. }), "{err:?}");
}

#[tokio::test]
async fn trailers_only_unavailable_is_retried_until_the_deadline() {
    let (addr, seen) = start(Mode::Fail(Code::Unavailable)).await;
    let err = client(addr, Duration::from_millis(800))
        .call(request(), "x")
        .await
        .unwrap_err();
    assert!(matches!(err, FlowError::Unavailable { .. }), "{err:?}");
    assert!(seen.calls.load(Ordering::SeqCst) >= 2, "retried");
}

#[tokio::test]
async fn unavailable_after_a_stub_response_is_not_retried_and_wins() {
    let (addr, seen) = start(Mode::StubThenUnavailable).await;
    let err = client(addr, Duration::from_secs(3))
        .call(request(), "x")
        .await
        .unwrap_err();
    match &err {
        FlowError::Unavailable { message, .. } => {
            assert!(message.contains("Communication error"), "{message}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(
        seen.calls.load(Ordering::SeqCst),
        1,
        "accepted: never retried"
    );
}

#[tokio::test]
async fn foreign_request_id_and_empty_stream_are_gateway_errors() {
    let (addr, _) = start(Mode::ForeignId).await;
    let err = client(addr, Duration::from_secs(3))
        .call(request(), "mine")
        .await
        .unwrap_err();
    match &err {
        FlowError::Gateway { message, .. } => {
            assert!(message.contains("someone-else"), "{message}")
        }
        other => panic!("expected Gateway, got {other:?}"),
    }

    let (addr, _) = start(Mode::NoResponse).await;
    let err = client(addr, Duration::from_secs(3))
        .call(request(), "mine")
        .await
        .unwrap_err();
    match &err {
        FlowError::Gateway { message, .. } => {
            assert!(message.contains("without a response"), "{message}")
        }
        other => panic!("expected Gateway, got {other:?}"),
    }
}

#[tokio::test]
async fn responses_above_max_message_bytes_are_refused() {
    let (addr, _) = start(Mode::Big(100 * 1024)).await;
    let err = client(addr, Duration::from_secs(3))
        .call(request(), "big")
        .await
        .unwrap_err();
    assert!(matches!(err, FlowError::Gateway { .. }), "{err:?}");

    let (addr, _) = start(Mode::Big(10 * 1024)).await;
    let ok = client(addr, Duration::from_secs(3))
        .call(request(), "small")
        .await;
    assert!(ok.is_ok(), "{ok:?}");
}

#[tokio::test]
async fn invalid_documents_fail_before_sending() {
    let (addr, seen) = start(Mode::Echo).await;
    let mut req = request();
    req.docs[0].blob = Some(bytes::Bytes::from_static(b"x"));
    let err = client(addr, Duration::from_secs(3))
        .call(req, "bad")
        .await
        .unwrap_err();
    match &err {
        FlowError::InvalidRequest { message } => {
            assert!(message.starts_with("docs[0]:"), "{message}")
        }
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn configured_retry_codes_are_retried_only_before_acceptance() {
    let (addr, seen) = start(Mode::Fail(Code::ResourceExhausted)).await;
    // Not in the default list: one attempt, a gateway error.
    let err = client(addr, Duration::from_secs(2))
        .call(request(), "x")
        .await
        .unwrap_err();
    assert!(matches!(err, FlowError::Gateway { .. }), "{err:?}");
    assert_eq!(seen.calls.load(Ordering::SeqCst), 1);

    let (addr, seen) = start(Mode::Fail(Code::ResourceExhausted)).await;
    let mut spec = GatewaySpec::with_defaults("fake", &format!("grpc://{addr}"));
    spec.connect_timeout = Duration::from_millis(600);
    spec.retry.initial_backoff = Duration::from_millis(20);
    spec.retry.codes = vec!["UNAVAILABLE".into(), "RESOURCE_EXHAUSTED".into()];
    let err = FlowClient::new(&spec)
        .unwrap()
        .call(request(), "x")
        .await
        .unwrap_err();
    match &err {
        FlowError::Unavailable { message, .. } => {
            assert!(message.contains("ResourceExhausted"), "{message}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(seen.calls.load(Ordering::SeqCst) >= 2, "retried");
}

async fn start_as(docarray: Docarray) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (
        addr,
        serve_as(listener, Mode::Echo, docarray, std::future::pending()).await,
    )
}

fn client_with(addr: SocketAddr, docarray: crate::model::DocarrayMode) -> FlowClient {
    let mut spec = GatewaySpec::with_defaults("fake", &format!("grpc://{addr}"));
    spec.timeout = Duration::from_secs(5);
    spec.connect_timeout = Duration::from_secs(5);
    spec.docarray = docarray;
    FlowClient::new(&spec).unwrap()
}

#[tokio::test]
async fn auto_detects_a_v2_gateway_and_speaks_doclist() {
    use super::proto::v2::docarray::node_proto::Content;
    let (addr, seen) = start_as(Docarray::V2("0.40.0")).await;
    let flow = client_with(addr, crate::model::DocarrayMode::Auto);
    let mut req = request();
    req.docs[0].embedding = Some(crate::model::Tensor {
        shape: vec![2],
        values: vec![0.5, 0.25],
    });
    let response = flow.call(req.clone(), "v2-1").await.unwrap();
    assert_eq!(response.request_id, "v2-1");
    let doc = &response.docs[0];
    assert_eq!(doc.id, "doc-1");
    assert_eq!(doc.text.as_deref(), Some("hello"));
    assert_eq!(doc.embedding, req.docs[0].embedding);
    assert_eq!(
        Value::Object(doc.tags.clone()),
        json!({"lang": "en", "seen": 1})
    );
    assert_eq!(
        Value::Object(response.parameters),
        json!({"tenant": "t1", "k": 3})
    );
    // What the gateway received is docarray v2: id as a typed text node.
    let docs = seen.v2_docs();
    let id = &docs[0][0].data["id"];
    assert_eq!(id.content, Some(Content::Text("doc-1".into())));
    // Asked once, then cached.
    flow.call(request(), "v2-2").await.unwrap();
    assert_eq!(seen.status_calls.load(Ordering::SeqCst), 1);
    assert_eq!(seen.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn auto_detects_v1_and_gateways_without_status_are_v1() {
    let (addr, seen) = start_as(Docarray::V1("0.21.1")).await;
    let flow = client_with(addr, crate::model::DocarrayMode::Auto);
    flow.call(request(), "a").await.unwrap();
    assert_eq!(seen.doc_ids(), vec![vec!["doc-1".to_owned()]]);
    assert_eq!(seen.status_calls.load(Ordering::SeqCst), 1);

    let (addr, seen) = start_as(Docarray::Unreported).await;
    let flow = client_with(addr, crate::model::DocarrayMode::Auto);
    let response = flow.call(request(), "b").await.unwrap();
    assert_eq!(response.docs[0].id, "doc-1");
    assert_eq!(seen.doc_ids(), vec![vec!["doc-1".to_owned()]]);
}

#[tokio::test]
async fn a_configured_v1_never_sends_to_a_v2_gateway() {
    let (addr, seen) = start_as(Docarray::V2("0.40.0")).await;
    let flow = client_with(addr, crate::model::DocarrayMode::V1);
    let err = flow.call(request(), "x").await.unwrap_err();
    match &err {
        FlowError::Gateway { message, .. } => {
            assert!(
                message.contains("configured docarray: v1") && message.contains("0.40.0 (v2)"),
                "{message}"
            )
        }
        other => panic!("expected Gateway, got {other:?}"),
    }
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0, "nothing was sent");
    // The matching setting works.
    let flow = client_with(addr, crate::model::DocarrayMode::V2);
    assert!(flow.call(request(), "y").await.is_ok());
}

#[tokio::test]
async fn v2_executor_errors_are_executor_errors() {
    let (addr, _) = start_as(Docarray::V2("0.40.0")).await;
    let flow = client_with(addr, crate::model::DocarrayMode::Auto);
    let mut req = request();
    req.docs[0].tags.insert("raise".into(), json!(true));
    let err = flow.call(req, "x").await.unwrap_err();
    assert_eq!(
        err,
        FlowError::Executor {
            executor: "Echo".into(),
            exception: "ValueError".into(),
            message: "boom".into(),
        }
    );
}

#[tokio::test]
async fn detection_waits_for_a_cold_gateway_and_is_redone_after_a_connection_loss() {
    // Cold: nothing listens yet; detection failing is "not accepted" and retried.
    let addr = free_port().await;
    let flow = client_with(addr, crate::model::DocarrayMode::Auto);
    let call = {
        let flow = flow.clone();
        tokio::spawn(async move { flow.call(request(), "cold").await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let listener = TcpListener::bind(addr).await.unwrap();
    let v1 = serve_as(listener, Mode::Echo, Docarray::V1("0.21.1"), async {
        let _ = stop_rx.await;
    })
    .await;
    call.await.unwrap().unwrap();
    assert_eq!(v1.status_calls.load(Ordering::SeqCst), 1);
    assert_eq!(v1.calls.load(Ordering::SeqCst), 1);

    // The gateway is replaced by a docarray v2 one on the same address.
    let _ = stop_tx.send(());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let v2 = serve_as(
        listener,
        Mode::Echo,
        Docarray::V2("0.40.0"),
        std::future::pending(),
    )
    .await;
    // The first call after the switch may meet the dead connection (Unavailable); the client then
    // forgets what it knew, so a later call asks again and speaks v2.
    let mut answer = flow.call(request(), "after-1").await;
    if answer.is_err() {
        answer = flow.call(request(), "after-2").await;
    }
    let response = answer.unwrap();
    assert_eq!(response.docs[0].id, "doc-1");
    assert_eq!(
        v2.status_calls.load(Ordering::SeqCst),
        1,
        "asked the new gateway"
    );
    assert_eq!(v2.v2_docs().len(), 1, "and sent it docarray v2");
}

/// The fake gateway behind TLS with `identity` (a certificate and key, PEM).
async fn start_tls(leaf: &crate::tls::testing::Leaf) -> (SocketAddr, Arc<Seen>) {
    use tonic::transport::{Identity, ServerTlsConfig};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let fake = Fake {
        mode: Mode::Echo,
        seen: Arc::clone(&seen),
    };
    let identity = Identity::from_pem(&leaf.cert_pem, &leaf.key_pem);
    let server = Server::builder()
        .tls_config(ServerTlsConfig::new().identity(identity))
        .unwrap()
        .add_service(JinaRpcServer::new(fake))
        .serve_with_incoming(TcpIncoming::from(listener));
    tokio::spawn(server);
    (addr, seen)
}

fn grpcs_client(url: &str, ca_pem: &str, server_name: Option<&str>) -> FlowClient {
    let mut spec = GatewaySpec::with_defaults("secure", url);
    spec.connect_timeout = Duration::from_millis(800);
    spec.tls.ca_pem = Some(ca_pem.to_string());
    spec.tls.server_name = server_name.map(str::to_string);
    FlowClient::new(&spec).unwrap()
}

#[tokio::test]
async fn grpcs_gateway_trusted_through_its_ca_bundle() {
    use crate::tls::testing::Ca;
    let ca = Ca::new("cluster-local ca");
    let leaf = ca.leaf(&["flow.flowbridge.svc.cluster.local", "127.0.0.1"]);
    let (addr, seen) = start_tls(&leaf).await;
    // A bundle with an unrelated CA first, as trust bundles hold several.
    let bundle = format!("{}{}", Ca::new("unrelated").pem, ca.pem);
    let by_ip = grpcs_client(&format!("grpcs://{addr}"), &bundle, None);
    let response = by_ip.call(request(), "tls-1").await.unwrap();
    assert_eq!(response.docs[0].id, "doc-1");
    // tls_server_name: the certificate is checked for that name, not the URL's host.
    let by_name = grpcs_client(
        &format!("grpcs://localhost:{}", addr.port()),
        &bundle,
        Some("flow.flowbridge.svc.cluster.local"),
    );
    by_name.call(request(), "tls-2").await.unwrap();
    assert_eq!(seen.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn grpcs_gateway_with_an_untrusted_certificate_is_unavailable_naming_it() {
    use crate::tls::testing::Ca;
    let leaf = Ca::new("the gateway's ca").leaf(&["127.0.0.1"]);
    let (addr, seen) = start_tls(&leaf).await;
    let client = grpcs_client(&format!("grpcs://{addr}"), &Ca::new("another ca").pem, None);
    let err = client.call(request(), "untrusted").await.unwrap_err();
    let text = err.to_string();
    match &err {
        FlowError::Unavailable { gateway, message } => {
            assert_eq!(gateway, "secure");
            assert!(
                message.to_lowercase().contains("certificate"),
                "the cause names the certificate problem: {message}"
            );
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(text.starts_with("gateway secure unavailable"), "{text}");
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
}
