//! [`FlowClient`]: the connection to one Jina gateway and the retry/deadline logic of one Flow
//! call, over gRPC (`/jina.JinaRPC/Call`) or jina's HTTP gateway (`flow::http`), in the
//! gateway's docarray format (v1 or v2, `flow::format`).
//!
//! # Transports and formats
//!
//! The URL scheme picks the transport: `grpc://`/`grpcs://` for the gRPC gateway,
//! `http://`/`https://` for the HTTP gateway, `ws://`/`wss://` for the WebSocket gateway
//! (`flow::websocket`, the same DataRequest as gRPC, one connection per request). The document
//! format is `docarray: v1 | v2 | auto`:
//! before the first request (and again after the connection was lost) the client asks the
//! gateway's status (`/jina.JinaInfoRPC/_status` or `GET /status`), which names the installed
//! docarray version; below 0.30 is v1, else v2. A gateway that cannot be reached for that question
//! counts as not accepting the request (retried like any cold start). A gateway reporting another
//! format than the configured one fails every request with a [`FlowError::Gateway`] naming both,
//! so v1 bytes never reach a v2 gateway; a gateway without the status service (jina < 3.10,
//! gRPC only) is v1 under `auto` and trusted under `v1`/`v2`.
//!
//! The gRPC call itself is format-agnostic: the request and response are the shared
//! `DataRequestProto` fields (header, parameters) plus the `data` field as opaque bytes encoded
//! by the format (`RawRequest`/`RawResponse`, same field numbers, same wire bytes).
//!
//! One bidi stream per Flow request: send one `DataRequestProto`, close the send side, read until
//! the stream ends. All streams share one lazily connected HTTP/2 connection (a cloned tonic
//! `Channel`), so flowbridge starts while the gateway is down, and Knative's concurrency
//! autoscaler sees one in-flight request per event.
//!
//! # When a call is retried
//!
//! Retrying is only safe while the gateway cannot have started working on the request. tonic
//! gives us one clean boundary: the future returned by the generated `call()` resolves when the
//! *response headers* arrive (a jina gateway sends them with its first response message), and
//! every connection problem (TCP refused, connect timeout, TLS or HTTP/2 handshake failure) also
//! surfaces there, as `UNAVAILABLE` with a `tonic::ConnectError` in its source chain, before any
//! byte of our request was written. So:
//!
//! * `call()` fails with `UNAVAILABLE` → retry. That covers connect errors, h2 `REFUSED_STREAM`
//!   (the server guarantees it did not process the stream), proxies answering HTTP 502/503/504
//!   without a gRPC status (Knative activator, Envoy/Kourier "upstream connect error"), and a
//!   *Trailers-Only* `UNAVAILABLE` (no response headers, no messages). The last one is the
//!   same rule gRPC's own retry design (gRFC A6) uses: a call is committed once response headers
//!   or messages were received, not before.
//! * `call()` fails with any other code → no retry (it is mapped to an error right away).
//! * `call()` succeeded → the gateway accepted the request; nothing after that point is retried,
//!   whatever the stream then reports (a jina gateway whose executor is unreachable sends a
//!   stub response first and then `UNAVAILABLE`: that is a 503 without retry).
//!
//! The codes retried are `GatewaySpec::retry.codes` (default `UNAVAILABLE`), and only when they
//! arrive before response headers. Backoff is full-jitter exponential (`retry.initial_backoff`
//! doubling to `retry.max_backoff`). Two clocks bound a call: `connect_timeout` bounds the time
//! spent retrying a gateway that is not there yet (a cold start), and `timeout` bounds each
//! attempt once sent (as its gRPC deadline, `grpc-timeout`, so the gateway can give up too, and
//! as a local timeout). Running out of `connect_timeout` yields `Unavailable` with the last
//! cause; running out of `timeout` during an attempt yields `Deadline`.
//!
//! [`FlowClient::call`] runs that whole loop for one request. The dispatcher
//! ([`crate::dispatch`]) instead uses the pieces: [`FlowClient::prepare`] checks one event's
//! documents once (and measures them as docarray v1 protobuf, the size estimate batching uses for
//! every format), [`FlowClient::send`] makes exactly one attempt with the documents of several
//! events, encoded for the gateway's format, and leaves retrying to the dispatcher, which probes
//! a cold gateway with one request at a time while the others wait in its queue. The HTTP
//! transport follows the same rules: connection errors and proxy 502/503/504 answers without a
//! jina body are "not accepted"; a jina 503/504 is `Unavailable`/`Deadline` without retry.

use std::time::Duration;

use tokio::time::Instant;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use super::error::FlowError;
use super::format::{DocFormat, Gateway};
use super::proto::jina::HeaderProto;
use super::proto::jina::jina_info_rpc_client::JinaInfoRpcClient;
use super::proto::jina::status_proto::StatusCode;
use super::{convert, convert_v2, http as http_gateway, wire_v1};
use crate::model::{DocarrayMode, Document, FlowRequest, FlowResponse, GRPC_CODES, GatewaySpec};

/// A single TCP/TLS connect attempt is abandoned after this long (or `connect_timeout` when
/// shorter), so that a blackholed address is re-dialled by the next retry.
const CONNECT_TIMEOUT_CAP: Duration = Duration::from_secs(5);

/// A client for one gateway. Cheap to clone (clones share the connection and what was learnt
/// about the gateway).
#[derive(Debug, Clone)]
pub struct FlowClient {
    pub spec: GatewaySpec,
    transport: Transport,
    retry_codes: Vec<Code>,
    /// What the gateway said it speaks, with the count of closed connections at that time;
    /// `None` until asked, and again after a connection loss.
    known: Arc<tokio::sync::Mutex<Option<(Gateway, u64)>>>,
    /// gRPC: connections to the gateway closed so far (a new connection may reach a different
    /// gateway, e.g. a redeployed one with another docarray).
    closed: Arc<AtomicU64>,
}

/// How the gateway is reached.
#[derive(Debug, Clone)]
pub(crate) enum Transport {
    Grpc(Channel),
    Http(http_gateway::HttpGateway),
    Ws(super::websocket::WsGateway),
}

/// The `DataRequestProto` fields every docarray build shares, with `data` (field 4, a message in
/// both builds) as its encoded bytes: the same bytes on the wire as either typed build.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RawRequest {
    #[prost(message, optional, tag = "1")]
    pub header: Option<HeaderProto>,
    #[prost(message, optional, tag = "2")]
    pub parameters: Option<prost_types::Struct>,
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
}

/// A response read as [`RawRequest`] (routes, field 3, are skipped).
pub(crate) type RawResponse = RawRequest;

/// What the caller needs of the Flow's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The documents, decoded (a reply is built from them).
    Documents,
    /// Only the documents' ids (to match them to events): the documents come back with nothing
    /// but their id set, and decoding costs a fraction (gRPC and WebSocket gateways; an HTTP
    /// gateway's JSON is read whole either way).
    Ids,
}

/// How one attempt ended without a usable response.
#[derive(Debug, Clone, PartialEq)]
pub enum SendError {
    /// Failed before the gateway accepted the request (connect error, or a retryable code before
    /// any response header): safe to try again. The text describes the cause.
    NotAccepted(String),
    /// Final: the gateway had the request, or the failure is not retryable.
    Failed(FlowError),
}

/// One event's documents, checked once (every document must be expressible in docarray v1, the
/// strictest format, so an event behaves the same on every gateway), with their encoded size as
/// docarray v1 protobuf.
#[derive(Debug, Clone)]
pub struct PreparedDocs {
    docs: Vec<Document>,
    /// The same documents encoded once here as entries of a docarray v1 `DocumentArrayProto`
    /// (`wire_v1`), sent as they are to a v1 gRPC gateway (the common case); other formats
    /// convert `docs` when sending.
    v1: Vec<u8>,
}

impl PreparedDocs {
    /// Number of documents.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Encoded size of the documents in bytes (protobuf length, framing included).
    pub fn encoded_len(&self) -> usize {
        self.v1.len()
    }

    /// The document ids, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.docs.iter().map(|d| d.id.as_str())
    }

    /// The documents.
    pub fn docs(&self) -> &[Document] {
        &self.docs
    }
}

/// What a Flow request carries besides its documents; requests with equal heads can share one
/// DataRequest.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestHead {
    pub endpoint: String,
    pub target_executor: Option<String>,
    pub parameters: serde_json::Map<String, serde_json::Value>,
}

impl FlowClient {
    /// Build the client without connecting (the gateway may be down or cold).
    ///
    /// `grpc://host[:port]` is h2c (default port 80), `grpcs://host[:port]` is TLS (default
    /// port 443) trusting the system's root certificates, as in jina's own client, or only the
    /// gateway's `ca_file` bundle when it has one; `http://host[:port]` is jina's HTTP gateway.
    pub fn new(spec: &GatewaySpec) -> Result<FlowClient, FlowError> {
        let config_error = |message: String| FlowError::Config {
            gateway: spec.name.clone(),
            message,
        };
        let retry_codes = retry_codes(spec).map_err(config_error)?;
        let known = Arc::new(tokio::sync::Mutex::new(None));
        let closed = Arc::new(AtomicU64::new(0));
        let url = spec.url.as_str();
        let other = if url.starts_with("ws://") || url.starts_with("wss://") {
            Some(super::websocket::WsGateway::new(spec).map(Transport::Ws))
        } else if url.starts_with("http://") || url.starts_with("https://") {
            Some(http_gateway::HttpGateway::new(spec).map(Transport::Http))
        } else {
            None
        };
        if let Some(transport) = other {
            return Ok(FlowClient {
                spec: spec.clone(),
                transport: transport.map_err(config_error)?,
                retry_codes,
                known,
                closed,
            });
        }
        let (http_url, tls) = endpoint_url(&spec.url).map_err(config_error)?;
        let connect_timeout = spec.connect_timeout.min(CONNECT_TIMEOUT_CAP);
        // No HTTP/2 keepalive pings and no adaptive-window (BDP) pings: the jina 3.34 gateway
        // answers pings more frequent than every 5 minutes with GOAWAY "too_many_pings".
        let mut endpoint = Endpoint::from_shared(http_url.clone())
            .map_err(|e| config_error(format!("url {:?} ({http_url}): {e}", spec.url)))?
            .tcp_nodelay(true)
            .connect_timeout(connect_timeout)
            .keep_alive_while_idle(false);
        if tls {
            // `ca_file`: that bundle only; otherwise the system's roots.
            let mut tls_config = match &spec.tls.ca_pem {
                Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
                None => ClientTlsConfig::new().with_native_roots(),
            };
            if let Some(name) = &spec.tls.server_name {
                tls_config = tls_config.domain_name(name.clone());
            }
            endpoint = endpoint
                .tls_config(tls_config)
                .map_err(|e| config_error(format!("TLS setup for {:?}: {e}", spec.url)))?;
        }
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let connector = TrackingConnector {
            inner: http,
            closed: Arc::clone(&closed),
        };
        Ok(FlowClient {
            spec: spec.clone(),
            transport: Transport::Grpc(endpoint.connect_with_connector_lazy(connector)),
            retry_codes,
            known,
            closed,
        })
    }

    /// Check one event's documents for the wire (errors name the document: `docs[2].blob`);
    /// they are kept (for the v2 and HTTP formats) without a copy.
    pub fn prepare(docs: Vec<Document>) -> Result<PreparedDocs, FlowError> {
        let mut v1 = Vec::new();
        let mut scratch = Vec::new();
        for (i, d) in docs.iter().enumerate() {
            wire_v1::encode_document_field(1, d, &format!("docs[{i}]"), &mut scratch, &mut v1)
                .map_err(|e| FlowError::InvalidRequest {
                    message: e.to_string(),
                })?;
        }
        Ok(PreparedDocs { docs, v1 })
    }

    /// Check one event's documents against what the gateway is known to accept (without asking
    /// it): the v2 HTTP gateway refuses some documents (`flow::json`). Checked per event so that
    /// one event's refusal does not fail the others batched with it.
    pub async fn admit(&self, docs: &PreparedDocs) -> Result<(), FlowError> {
        let format = match self.spec.docarray {
            DocarrayMode::V1 => return Ok(()),
            DocarrayMode::V2 => Some(DocFormat::V2),
            DocarrayMode::Auto => self.known.lock().await.as_ref().map(|(g, _)| g.format),
        };
        if format != Some(DocFormat::V2) {
            return Ok(());
        }
        let http = matches!(self.transport, Transport::Http(_));
        for (i, d) in docs.docs.iter().enumerate() {
            let path = format!("docs[{i}]");
            // Over gRPC, `prepare` already checked everything a v1 conversion checks (tensor
            // shapes and the like); nested documents are what v2 adds.
            let checked = if http {
                super::json::document_to_v2(d, &path).map(drop)
            } else {
                convert_v2::refuse_nested(d, &path)
            };
            checked.map_err(|e| FlowError::InvalidRequest {
                message: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// What the gateway speaks: asked once (see the module docs), then cached until a
    /// connection loss. A gateway that cannot be reached is [`SendError::NotAccepted`].
    pub(crate) async fn gateway(&self) -> Result<Gateway, SendError> {
        let mut known = self.known.lock().await;
        let closed = self.closed.load(Ordering::SeqCst);
        let gateway = match known.as_ref() {
            Some((g, at)) if *at == closed => g.clone(),
            _ => {
                let g = self.ask().await?;
                tracing::info!(
                    gateway = %self.spec.name,
                    format = g.format.as_str(),
                    docarray = g.docarray.as_deref().unwrap_or("not reported"),
                    jina = g.jina.as_deref().unwrap_or("not reported"),
                    "gateway format detected"
                );
                // Counted before asking: a connection closed while asking makes the next request
                // ask again.
                *known = Some((g.clone(), closed));
                g
            }
        };
        drop(known);
        self.check_format(&gateway)?;
        Ok(gateway)
    }

    pub(crate) fn transport_ref(&self) -> &Transport {
        &self.transport
    }

    /// Forget what the gateway said (its connection was lost: it may have been replaced).
    async fn forget(&self) {
        *self.known.lock().await = None;
    }

    /// Ask the gateway (no cache).
    pub(crate) async fn ask(&self) -> Result<Gateway, SendError> {
        match &self.transport {
            Transport::Http(http) => http.ask(self).await,
            Transport::Ws(ws) => ws.ask(self).await,
            Transport::Grpc(channel) => {
                let mut client = JinaInfoRpcClient::new(channel.clone());
                let mut request = tonic::Request::new(());
                request.set_timeout(self.spec.timeout);
                match client.status(request).await {
                    Ok(info) => Ok(Gateway::from_status(
                        &info.into_inner().jina,
                        self.spec.docarray,
                    )),
                    // jina < 3.10 has no _status; those gateways are docarray v1 only.
                    Err(status) if status.code() == Code::Unimplemented => {
                        Ok(Gateway::unreported(self.spec.docarray, "grpc"))
                    }
                    Err(status) if self.retry_codes.contains(&status.code()) => Err(
                        SendError::NotAccepted(format!("status: {}", describe_status(&status))),
                    ),
                    Err(status) => Err(SendError::Failed(self.status_error(&status))),
                }
            }
        }
    }

    /// A configured format that differs from the reported one fails the request.
    pub(crate) fn check_format(&self, gateway: &Gateway) -> Result<(), SendError> {
        let configured = match self.spec.docarray {
            DocarrayMode::Auto => return Ok(()),
            DocarrayMode::V1 => DocFormat::V1,
            DocarrayMode::V2 => DocFormat::V2,
        };
        if configured == gateway.format {
            return Ok(());
        }
        Err(SendError::Failed(self.gateway_error(format!(
            "configured docarray: {} but the gateway reports docarray {} ({}); nothing was \
             sent. Set docarray: {} or auto",
            configured.as_str(),
            gateway.docarray.as_deref().unwrap_or("?"),
            gateway.format.as_str(),
            gateway.format.as_str(),
        ))))
    }

    /// Exactly one attempt: one DataRequest with `head` and the documents of `parts`, in order.
    /// Retrying a [`SendError::NotAccepted`] is the caller's business.
    pub async fn send<'a>(
        &self,
        head: &RequestHead,
        parts: impl IntoIterator<Item = &'a PreparedDocs>,
        request_id: &str,
    ) -> Result<FlowResponse, SendError> {
        self.send_with_metadata(head, parts, request_id, &[], Answer::Documents)
            .await
    }

    /// [`FlowClient::send`] with extra metadata on the call (the W3C `traceparent` /
    /// `tracestate` of the Flow request's span): gRPC metadata, or HTTP headers for an HTTP
    /// gateway; a pair whose value is not valid ASCII metadata is left out.
    ///
    /// The events' documents are borrowed, not copied: a request that was not accepted goes
    /// back to the queue with them.
    pub async fn send_with_metadata<'a>(
        &self,
        head: &RequestHead,
        parts: impl IntoIterator<Item = &'a PreparedDocs>,
        request_id: &str,
        metadata: &[(&'static str, String)],
        want: Answer,
    ) -> Result<FlowResponse, SendError> {
        let mut docs: Vec<&Document> = Vec::new();
        let mut v1: Vec<&[u8]> = Vec::new();
        for part in parts {
            docs.extend(&part.docs);
            v1.push(&part.v1);
        }
        let timeout = self.spec.timeout;
        let attempt = async {
            let gateway = self.gateway().await?;
            // gRPC and WebSocket carry the same DataRequestProto; HTTP gateways take JSON.
            let request = || data_request(gateway.format, head, &v1, &docs, request_id);
            match &self.transport {
                Transport::Http(http) => {
                    http.attempt(self, &gateway, head, &docs, request_id, metadata)
                        .await
                }
                Transport::Grpc(channel) => {
                    let format = gateway.format;
                    self.attempt(channel, format, request()?, request_id, metadata, want)
                        .await
                }
                Transport::Ws(ws) => {
                    ws.attempt(self, gateway.format, request()?, metadata, want)
                        .await
                }
            }
        };
        let result = match tokio::time::timeout(timeout, attempt).await {
            Err(_elapsed) => Err(SendError::Failed(self.deadline_error())),
            Ok(result) => result,
        };
        // The gateway may have changed under us: ask again before the next request. A gateway
        // error covers the case of a replaced HTTP gateway (another docarray answers 404 on
        // the other format's route) or a gRPC gateway failing to decode our documents.
        if matches!(
            result,
            Err(SendError::NotAccepted(_)
                | SendError::Failed(FlowError::Unavailable { .. } | FlowError::Gateway { .. }))
        ) {
            self.forget().await;
        }
        result
    }

    /// Send one DataRequest with the given `request_id`; wait for its result, retrying while the
    /// gateway has not accepted it (see the module docs for the clocks).
    pub async fn call(
        &self,
        request: FlowRequest,
        request_id: &str,
    ) -> Result<FlowResponse, FlowError> {
        let prepared = FlowClient::prepare(request.docs)?;
        let head = RequestHead {
            endpoint: request.endpoint,
            target_executor: request.target_executor,
            parameters: request.parameters,
        };
        let connect_deadline = Instant::now() + self.spec.connect_timeout;
        let mut backoff = Backoff::new(&self.spec.retry);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let cause = match self.send(&head, [&prepared], request_id).await {
                Ok(response) => return Ok(response),
                Err(SendError::Failed(error)) => return Err(error),
                Err(SendError::NotAccepted(cause)) => cause,
            };
            let pause = backoff.next_pause();
            let remaining = connect_deadline.saturating_duration_since(Instant::now());
            if pause >= remaining {
                tracing::debug!(
                    request_id,
                    gateway = %self.spec.name,
                    attempt,
                    cause = %cause,
                    "gateway unavailable; no time left to retry"
                );
                tokio::time::sleep(remaining).await;
                return Err(self.unavailable(format!("{cause} (after {attempt} attempts)")));
            }
            tracing::debug!(
                request_id,
                gateway = %self.spec.name,
                attempt,
                retry_in_ms = pause.as_millis() as u64,
                cause = %cause,
                "gateway unavailable; retrying"
            );
            tokio::time::sleep(pause).await;
        }
    }

    /// `Unavailable` for this gateway.
    pub fn unavailable(&self, message: String) -> FlowError {
        FlowError::Unavailable {
            gateway: self.spec.name.clone(),
            message,
        }
    }

    /// One `/jina.JinaRPC/Call` stream carrying one DataRequest (`message`, whose `data` field
    /// is the document list already encoded in `format`); the answer is read in `format` too.
    async fn attempt(
        &self,
        channel: &Channel,
        format: DocFormat,
        message: RawRequest,
        request_id: &str,
        metadata: &[(&'static str, String)],
        want: Answer,
    ) -> Result<FlowResponse, SendError> {
        let mut grpc = tonic::client::Grpc::new(channel.clone())
            .max_decoding_message_size(self.spec.max_message_bytes)
            .max_encoding_message_size(usize::MAX);
        if let Err(e) = grpc.ready().await {
            return Err(SendError::NotAccepted(format!("connection not ready: {e}")));
        }
        let mut request = tonic::Request::new(tokio_stream::once(message));
        // The gateway learns the deadline (grpc-timeout); `send` enforces it on our side.
        request.set_timeout(self.spec.timeout);
        for (key, value) in metadata {
            if let Ok(value) = value.parse() {
                request.metadata_mut().insert(*key, value);
            }
        }
        let codec = tonic_prost::ProstCodec::<RawRequest, RawResponse>::default();
        let path = http::uri::PathAndQuery::from_static("/jina.JinaRPC/Call");
        let response = match grpc.streaming(request, path, codec).await {
            Ok(response) => response,
            // Before response headers: the gateway has not accepted the request (module docs).
            Err(status) if self.retry_codes.contains(&status.code()) => {
                return Err(SendError::NotAccepted(describe_status(&status)));
            }
            Err(status) => return Err(SendError::Failed(self.status_error(&status))),
        };
        // From here on the gateway has the request: never retry.
        let mut stream = response.into_inner();
        let mut answer: Option<RawResponse> = None;
        let mut foreign: Option<String> = None;
        loop {
            match stream.message().await {
                Ok(Some(message)) => {
                    let id = message
                        .header
                        .as_ref()
                        .map(|h| h.request_id.as_str())
                        .unwrap_or_default();
                    if id == request_id {
                        // A later response for our id supersedes an earlier stub.
                        answer = Some(message);
                    } else {
                        foreign = Some(id.to_owned());
                    }
                }
                Ok(None) => break,
                // The final gRPC status wins over any (stub) response already received.
                Err(status) => return Err(SendError::Failed(self.status_error(&status))),
            }
        }
        let Some(answer) = answer else {
            let message = match foreign {
                Some(id) => {
                    format!("the Call stream answered request_id {id:?} instead of {request_id:?}")
                }
                None => "the Call stream ended without a response".to_owned(),
            };
            return Err(SendError::Failed(self.gateway_error(message)));
        };
        self.finish(format, answer, want)
    }

    /// The Flow's answer to a DataRequest (gRPC or WebSocket): an executor error, or the
    /// documents decoded from `format`.
    pub(crate) fn finish(
        &self,
        format: DocFormat,
        answer: RawResponse,
        want: Answer,
    ) -> Result<FlowResponse, SendError> {
        if let Some(error) = executor_error(answer.header.as_ref()) {
            return Err(SendError::Failed(error));
        }
        let docs = match (want, format) {
            (Answer::Ids, _) => super::ids::decode_ids(format, &answer.data).map(|ids| {
                ids.into_iter()
                    .map(|id| Document {
                        id,
                        ..Document::default()
                    })
                    .collect()
            }),
            (Answer::Documents, DocFormat::V1) => convert::decode_data(&answer.data),
            (Answer::Documents, DocFormat::V2) => convert_v2::decode_data(&answer.data),
        }
        .map_err(|e| SendError::Failed(self.gateway_error(format!("unusable response: {e}"))))?;
        Ok(FlowResponse {
            request_id: answer.header.map(|h| h.request_id).unwrap_or_default(),
            docs,
            parameters: answer
                .parameters
                .as_ref()
                .map(convert::struct_to_json)
                .unwrap_or_default(),
        })
    }

    pub(crate) fn deadline_error(&self) -> FlowError {
        FlowError::Deadline {
            gateway: self.spec.name.clone(),
            timeout_ms: u64::try_from(self.spec.timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }

    pub(crate) fn gateway_error(&self, message: String) -> FlowError {
        FlowError::Gateway {
            gateway: self.spec.name.clone(),
            message,
        }
    }

    /// Map a final (not retried) gRPC status.
    fn status_error(&self, status: &Status) -> FlowError {
        match status.code() {
            Code::DeadlineExceeded => self.deadline_error(),
            // tonic enforces the request's grpc-timeout locally too, as CANCELLED.
            Code::Cancelled if caused_by::<tonic::TimeoutExpired>(status) => self.deadline_error(),
            Code::Unavailable => FlowError::Unavailable {
                gateway: self.spec.name.clone(),
                message: describe_status(status),
            },
            // The connection broke under an accepted call (the gateway died): the outcome is
            // unknown, the gateway is gone; a 503 tells the sender to retry later.
            Code::Unknown | Code::Cancelled
                if caused_by::<tonic::transport::Error>(status) || connection_broke(status) =>
            {
                FlowError::Unavailable {
                    gateway: self.spec.name.clone(),
                    message: format!(
                        "connection lost after the gateway accepted the request: {}",
                        describe_status(status)
                    ),
                }
            }
            _ => self.gateway_error(describe_status(status)),
        }
    }
}

/// The DataRequest of one Flow request, its documents encoded in `format` (v1 from the protos
/// `prepare` already made).
fn data_request(
    format: DocFormat,
    head: &RequestHead,
    v1: &[&[u8]],
    docs: &[&Document],
    request_id: &str,
) -> Result<RawRequest, SendError> {
    let data = match format {
        DocFormat::V1 => Ok(convert::encode_array(v1.iter().copied())),
        DocFormat::V2 => convert_v2::encode_data(docs.iter().copied()),
    }
    .map_err(|e| {
        SendError::Failed(FlowError::InvalidRequest {
            message: e.to_string(),
        })
    })?;
    Ok(RawRequest {
        header: Some(HeaderProto {
            request_id: request_id.to_owned(),
            status: None,
            exec_endpoint: Some(head.endpoint.clone()),
            target_executor: head.target_executor.clone(),
            timeout: None,
        }),
        parameters: Some(convert::json_to_struct(&head.parameters)),
        data,
    })
}

/// tonic turns an h2 error met while reading the response body (the TCP connection was reset or
/// closed under the call) into `UNKNOWN "h2 protocol error: …"` without a source error, so the
/// message is all there is to tell a dead connection from a protocol violation.
fn connection_broke(status: &Status) -> bool {
    let message = status.message();
    message.starts_with("h2 protocol error")
        && (message.contains("connection reset")
            || message.contains("broken pipe")
            || message.contains("connection closed")
            || message.contains("error reading a body from connection"))
}

/// `grpc://` / `grpcs://` URL → (`http(s)://host:port`, uses TLS).
fn endpoint_url(url: &str) -> Result<(String, bool), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("url {url:?} is not a valid URI: {e}"))?;
    let (scheme, tls, default_port) = match uri.scheme_str() {
        Some("grpc") => ("http", false, 80),
        Some("grpcs") => ("https", true, 443),
        other => {
            return Err(format!(
                "url {url:?} has scheme {:?}; expected grpc:// (h2c) or grpcs:// (TLS)",
                other.unwrap_or("")
            ));
        }
    };
    let Some(authority) = uri.authority() else {
        return Err(format!("url {url:?} has no host"));
    };
    if authority.host().is_empty() {
        return Err(format!("url {url:?} has no host"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "url {url:?} has a path or query; a gateway URL is only scheme://host[:port]"
        ));
    }
    if authority.as_str().contains('@') {
        return Err(format!("url {url:?} must not carry user info"));
    }
    let port = authority.port_u16().unwrap_or(default_port);
    Ok((format!("{scheme}://{}:{port}", authority.host()), tls))
}

/// `gRPC CODE: message`, plus the underlying transport error when tonic kept one.
fn describe_status(status: &Status) -> String {
    use std::error::Error as _;
    let mut text = format!("gRPC {:?}: {}", status.code(), status.message());
    let mut source = status.source();
    let mut depth = 0;
    while let Some(err) = source {
        let part = err.to_string();
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = err.source();
        depth += 1;
        if depth > 5 {
            break;
        }
    }
    text
}

/// Whether `status` was produced from an error of type `T` (anywhere in its source chain).
fn caused_by<T: std::error::Error + 'static>(status: &Status) -> bool {
    use std::error::Error as _;
    let mut source = status.source();
    while let Some(err) = source {
        if err.is::<T>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// tonic's HTTP connector, counting the connections that close (their IO is dropped when hyper
/// ends the connection: the peer closed it, it broke, or the channel went away).
#[derive(Clone)]
struct TrackingConnector {
    inner: hyper_util::client::legacy::connect::HttpConnector,
    closed: Arc<AtomicU64>,
}

type ConnectFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl tonic::codegen::Service<http::Uri> for TrackingConnector {
    type Response = Tracked<hyper_util::rt::TokioIo<tokio::net::TcpStream>>;
    type Error = <hyper_util::client::legacy::connect::HttpConnector as tonic::codegen::Service<
        http::Uri,
    >>::Error;
    type Future = ConnectFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let closed = Arc::clone(&self.closed);
        Box::pin(async move {
            let io = connecting.await?;
            Ok(Tracked { io, closed })
        })
    }
}

/// A connection's IO that counts itself closed when dropped.
struct Tracked<T> {
    io: T,
    closed: Arc<AtomicU64>,
}

impl<T> Drop for Tracked<T> {
    fn drop(&mut self) {
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

/// The configured `retry.codes` as gRPC codes.
fn retry_codes(spec: &GatewaySpec) -> Result<Vec<Code>, String> {
    let mut codes = Vec::new();
    for name in &spec.retry.codes {
        let code = GRPC_CODES
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
            .and_then(|i| i32::try_from(i).ok())
            .map(Code::from_i32)
            .ok_or_else(|| format!("retry.codes: unknown gRPC code {name:?}"))?;
        codes.push(code);
    }
    Ok(codes)
}

/// The executor error carried by a gRPC-OK response whose header status is ERROR.
fn executor_error(header: Option<&HeaderProto>) -> Option<FlowError> {
    let status = header?.status.as_ref()?;
    if status.code != StatusCode::Error as i32 {
        return None;
    }
    let exception = status.exception.clone().unwrap_or_default();
    let message = exception
        .args
        .first()
        .filter(|a| !a.is_empty())
        .cloned()
        .unwrap_or_else(|| status.description.clone());
    let or_unknown = |s: String| {
        if s.is_empty() {
            "unknown".to_owned()
        } else {
            s
        }
    };
    Some(FlowError::Executor {
        executor: or_unknown(exception.executor),
        exception: or_unknown(exception.name),
        message,
    })
}

/// Full-jitter exponential backoff: each pause is uniform in `[0, ceiling]`; the ceiling starts at
/// `initial_backoff` and doubles up to `max_backoff`.
#[derive(Debug, Clone)]
pub struct Backoff {
    ceiling: Duration,
    initial: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(spec: &crate::model::RetrySpec) -> Backoff {
        Backoff {
            ceiling: spec.initial_backoff,
            initial: spec.initial_backoff,
            max: spec.max_backoff.max(spec.initial_backoff),
        }
    }

    /// The next pause; raises the ceiling for the one after.
    pub fn next_pause(&mut self) -> Duration {
        let pause = jittered(self.ceiling);
        self.ceiling = (self.ceiling * 2).min(self.max);
        pause
    }

    /// The ceiling the next pause is drawn under.
    pub fn ceiling(&self) -> Duration {
        self.ceiling
    }

    /// Back to `initial_backoff` (after a success).
    pub fn reset(&mut self) {
        self.ceiling = self.initial;
    }
}

/// Full jitter: a uniformly random pause in `[0, ceiling]`.
fn jittered(ceiling: Duration) -> Duration {
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(fastrand::u64(0..=micros))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::proto::jina::StatusProto;
    use crate::flow::proto::jina::status_proto::ExceptionProto;

    #[test]
    fn urls_map_to_http_endpoints_with_default_ports() {
        assert_eq!(
            endpoint_url("grpc://127.0.0.1:54321").unwrap(),
            ("http://127.0.0.1:54321".to_owned(), false)
        );
        assert_eq!(
            endpoint_url("grpc://gateway.ns.svc").unwrap(),
            ("http://gateway.ns.svc:80".to_owned(), false)
        );
        assert_eq!(
            endpoint_url("grpcs://flow.example.com/").unwrap(),
            ("https://flow.example.com:443".to_owned(), true)
        );
        assert_eq!(
            endpoint_url("grpc://[::1]:8080").unwrap(),
            ("http://[::1]:8080".to_owned(), false)
        );
    }

    #[test]
    fn bad_urls_are_explained() {
        let err = endpoint_url("ws://x:1").unwrap_err();
        assert!(err.contains("expected grpc://"), "{err}");
        let err = endpoint_url("grpc://x:1/path").unwrap_err();
        assert!(err.contains("path"), "{err}");
        assert!(endpoint_url("not a url").is_err());
        let err = endpoint_url("grpc://u:p@x:1").unwrap_err();
        assert!(err.contains("user info"), "{err}");
    }

    #[test]
    fn new_rejects_bad_url_with_gateway_name() {
        let spec = GatewaySpec::with_defaults("main", "tcp://x");
        match FlowClient::new(&spec) {
            Err(FlowError::Config { gateway, message }) => {
                assert_eq!(gateway, "main");
                assert!(message.contains("tcp"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn grpcs_client_builds() {
        let spec = GatewaySpec::with_defaults("tls", "grpcs://flow.example.com");
        assert!(FlowClient::new(&spec).is_ok());
    }

    fn with_status(status: StatusProto) -> Option<HeaderProto> {
        Some(HeaderProto {
            request_id: "r".into(),
            status: Some(status),
            ..HeaderProto::default()
        })
    }

    #[test]
    fn executor_error_uses_first_arg_else_description() {
        let header = with_status(StatusProto {
            code: StatusCode::Error as i32,
            description: "ValueError('boom', 42)".into(),
            exception: Some(ExceptionProto {
                name: "ValueError".into(),
                args: vec!["boom".into(), "42".into()],
                stacks: vec![],
                executor: "Echo".into(),
            }),
        });
        let err = executor_error(header.as_ref());
        assert_eq!(
            err,
            Some(FlowError::Executor {
                executor: "Echo".into(),
                exception: "ValueError".into(),
                message: "boom".into(),
            })
        );
        let header2 = with_status(StatusProto {
            code: StatusCode::Error as i32,
            description: "RuntimeError()".into(),
            exception: None,
        });
        let err = executor_error(header2.as_ref());
        assert_eq!(
            err,
            Some(FlowError::Executor {
                executor: "unknown".into(),
                exception: "unknown".into(),
                message: "RuntimeError()".into(),
            })
        );
        assert_eq!(
            executor_error(with_status(StatusProto::default()).as_ref()),
            None
        );
        assert_eq!(executor_error(None), None);
    }

    #[tokio::test]
    async fn unknown_retry_code_is_a_config_error() {
        let mut spec = GatewaySpec::with_defaults("g", "grpc://127.0.0.1:1");
        spec.retry.codes = vec!["unavailable".into(), "RESOURCE_EXHAUSTED".into()];
        let client = FlowClient::new(&spec).unwrap();
        assert_eq!(
            client.retry_codes,
            vec![Code::Unavailable, Code::ResourceExhausted]
        );
        spec.retry.codes = vec!["NOPE".into()];
        match FlowClient::new(&spec) {
            Err(FlowError::Config { message, .. }) => {
                assert!(message.contains("NOPE"), "{message}")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_connection_reset_under_a_call_is_unavailable_not_a_gateway_error() {
        let client =
            FlowClient::new(&GatewaySpec::with_defaults("g", "grpc://127.0.0.1:1")).unwrap();
        let reset = Status::new(
            Code::Unknown,
            "h2 protocol error: error reading a body from connection: connection reset",
        );
        match client.status_error(&reset) {
            FlowError::Unavailable { message, .. } => {
                assert!(message.contains("connection lost"), "{message}")
            }
            other => panic!("unexpected {other:?}"),
        }
        let violation = Status::new(Code::Unknown, "h2 protocol error: frame with invalid size");
        assert!(matches!(
            client.status_error(&violation),
            FlowError::Gateway { .. }
        ));
    }

    #[test]
    fn backoff_ceiling_doubles_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(&crate::model::RetrySpec {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            codes: vec![],
        });
        let mut ceilings = Vec::new();
        for _ in 0..4 {
            let ceiling = backoff.ceiling();
            assert!(backoff.next_pause() <= ceiling);
            ceilings.push(ceiling.as_millis());
        }
        assert_eq!(ceilings, vec![100, 200, 350, 350]);
        backoff.reset();
        assert_eq!(backoff.ceiling(), Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_within_ceiling() {
        for _ in 0..100 {
            assert!(jittered(Duration::from_millis(50)) <= Duration::from_millis(50));
        }
    }
}
