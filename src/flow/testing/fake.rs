//! The fake Jina gateway: a tonic server built from the generated `JinaRPC` / `JinaInfoRPC`
//! server code, on a loopback port, whose behaviour (echo, executor error, slow, gRPC error,
//! stub then UNAVAILABLE, late start…) each test picks with a [`Mode`], with docarray v1 or v2
//! "installed" ([`Docarray`]). [`Seen`] records what it received, in model terms (ids, headers),
//! so no generated type leaves `flow`.
//!
//! Test support: it panics (naming the cause) when the machine cannot give it a loopback port,
//! as a test would.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpListener;
use tokio_stream::Stream;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status, Streaming};

use crate::flow::docarray::v1::json_to_value;
use crate::flow::proto::docarray::{DenseNdArrayProto, NdArrayProto, nd_array_proto};
use crate::flow::proto::jina::jina_info_rpc_server::{JinaInfoRpc, JinaInfoRpcServer};
use crate::flow::proto::jina::jina_rpc_server::{JinaRpc, JinaRpcServer};
use crate::flow::proto::jina::status_proto::{ExceptionProto, StatusCode};
use crate::flow::proto::jina::{DataRequestProto, HeaderProto, StatusProto};
use crate::flow::proto::v2;

/// What the fake gateway does with each Call (docarray v1 fakes; v2 fakes always echo).
#[derive(Clone)]
pub enum Mode {
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

/// What a fake gateway received.
#[derive(Default)]
pub struct Seen {
    /// `/jina.JinaRPC/Call` calls.
    pub calls: AtomicUsize,
    /// `/jina.JinaInfoRPC/_status` calls.
    pub status_calls: AtomicUsize,
    peers: Mutex<HashSet<SocketAddr>>,
    requests: Mutex<Vec<(DataRequestProto, Option<String>)>>,
    /// Requests received by a docarray v2 fake.
    v2_requests: Mutex<Vec<v2::jina::DataRequestProto>>,
}

/// Which docarray the fake gateway has "installed".
#[derive(Clone, Debug)]
pub enum Docarray {
    /// v1 documents; `_status` reports this version (e.g. `0.21.1`).
    V1(&'static str),
    /// v2 documents (`DocListProto`); `_status` reports this version (e.g. `0.40.0`).
    V2(&'static str),
    /// v1 documents and no `_status` service (jina < 3.10).
    Unreported,
}

/// One DataRequest a docarray v1 fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenRequest {
    pub request_id: String,
    pub exec_endpoint: Option<String>,
    pub target_executor: Option<String>,
    /// The call's `grpc-timeout` metadata, as sent.
    pub grpc_timeout: Option<String>,
    /// The ids of its documents, in order.
    pub doc_ids: Vec<String>,
}

/// The guard of `mutex`, also when a panicking test poisoned it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Seen {
    /// Every request received, in arrival order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        use crate::flow::proto::jina::data_request_proto::data_content_proto::Documents;
        lock(&self.requests)
            .iter()
            .map(|(r, grpc_timeout)| {
                let header = r.header.clone().unwrap_or_default();
                SeenRequest {
                    request_id: header.request_id,
                    exec_endpoint: header.exec_endpoint,
                    target_executor: header.target_executor,
                    grpc_timeout: grpc_timeout.clone(),
                    doc_ids: match r.data.as_ref().and_then(|d| d.documents.as_ref()) {
                        Some(Documents::Docs(array)) => {
                            array.docs.iter().map(|d| d.id.clone()).collect()
                        }
                        _ => Vec::new(),
                    },
                }
            })
            .collect()
    }

    /// The document ids of every request received, in arrival order.
    pub fn doc_ids(&self) -> Vec<Vec<String>> {
        self.requests().into_iter().map(|r| r.doc_ids).collect()
    }

    /// How many connections (client addresses) the calls came on.
    pub fn peers(&self) -> usize {
        lock(&self.peers).len()
    }

    /// For every request a v2 fake received, its documents' `id` nodes as docarray v2 writes
    /// them: the text of a text node (`None` when the node is missing or not text).
    pub fn v2_ids(&self) -> Vec<Vec<Option<String>>> {
        use v2::docarray::node_proto::Content;
        use v2::jina::data_request_proto::data_content_proto::Documents;
        lock(&self.v2_requests)
            .iter()
            .map(
                |r| match r.data.as_ref().and_then(|d| d.documents.as_ref()) {
                    Some(Documents::Docs(list)) => list
                        .docs
                        .iter()
                        .map(
                            |d| match d.data.get("id").and_then(|n| n.content.as_ref()) {
                                Some(Content::Text(id)) => Some(id.clone()),
                                _ => None,
                            },
                        )
                        .collect(),
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
            lock(&self.seen.peers).insert(peer);
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
        lock(&self.seen.requests).push((input.clone(), grpc_timeout));
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
                if let Ok(permit) = gate.acquire().await {
                    permit.forget();
                }
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
                use crate::flow::proto::jina::data_request_proto::data_content_proto::Documents;
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
    use crate::flow::proto::jina::data_request_proto::data_content_proto::Documents;
    if let Some(Documents::Docs(array)) = request.data.as_mut().and_then(|d| d.documents.as_mut()) {
        for doc in &mut array.docs {
            let mut tags = doc.tags.clone().unwrap_or_default();
            tags.fields.insert("seen".into(), json_to_value(&json!(1)));
            if padding > 0 {
                tags.fields
                    .insert("pad".into(), json_to_value(&json!("x".repeat(padding))));
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

/// Serve a docarray v1 (0.21.1) fake in `mode` on `listener` until the process ends.
pub async fn serve_on(listener: TcpListener, mode: Mode) -> Arc<Seen> {
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
    ) -> Result<Response<crate::flow::proto::jina::JinaInfoProto>, Status> {
        self.seen.status_calls.fetch_add(1, Ordering::SeqCst);
        let mut info = crate::flow::proto::jina::JinaInfoProto::default();
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
            lock(&self.seen.v2_requests).push(message.clone());
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
pub async fn serve_as(
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

/// A docarray v1 fake in `mode` on a free loopback port.
pub async fn start(mode: Mode) -> (SocketAddr, Arc<Seen>) {
    let (listener, addr) = loopback().await;
    (addr, serve_on(listener, mode).await)
}

/// An echoing fake with `docarray` on a free loopback port.
pub async fn start_as(docarray: Docarray) -> (SocketAddr, Arc<Seen>) {
    let (listener, addr) = loopback().await;
    (
        addr,
        serve_as(listener, Mode::Echo, docarray, std::future::pending()).await,
    )
}

/// An echoing docarray v1 fake behind TLS with this certificate and key (PEM), without the
/// status service, on a free loopback port.
pub async fn start_tls(cert_pem: &str, key_pem: &str) -> (SocketAddr, Arc<Seen>) {
    use tonic::transport::{Identity, ServerTlsConfig};
    let (listener, addr) = loopback().await;
    let seen = Arc::new(Seen::default());
    let fake = Fake {
        mode: Mode::Echo,
        seen: Arc::clone(&seen),
    };
    let identity = Identity::from_pem(cert_pem, key_pem);
    let server = Server::builder()
        .tls_config(ServerTlsConfig::new().identity(identity))
        .unwrap_or_else(|e| panic!("fake gateway: TLS setup: {e}"))
        .add_service(JinaRpcServer::new(fake))
        .serve_with_incoming(TcpIncoming::from(listener));
    tokio::spawn(server);
    (addr, seen)
}

/// A loopback port nobody listens on (right now).
pub async fn free_port() -> SocketAddr {
    loopback().await.1
}

/// A listener on a free loopback port, and its address.
async fn loopback() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("fake gateway: cannot listen on 127.0.0.1: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("fake gateway: no local address: {e}"));
    (listener, addr)
}
