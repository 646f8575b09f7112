//! [`FlowClient`]: the connection to one Jina gateway and the retry/deadline logic of one Flow
//! call, over gRPC (`flow::grpc`), jina's HTTP gateway (`flow::http`) or its WebSocket gateway
//! (`flow::websocket`), in the gateway's docarray format (v1 or v2, `flow::format`). The
//! transports know nothing of this client; it picks one, asks the gateway's format, and decides
//! what is retried.
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
//! by the format (`RawRequest`/`RawResponse` in `flow::request`, same field numbers, same wire
//! bytes).
//!
//! # When a call is retried
//!
//! Retrying is only safe while the gateway cannot have started working on the request: an
//! attempt ends [`SendError::NotAccepted`] only before that point (for gRPC, before response
//! headers arrive; `flow::grpc` explains the boundary), and every failure after it is final.
//!
//! The gRPC codes retried are `GatewaySpec::retry.codes` (default `UNAVAILABLE`), and only when
//! they arrive before response headers. Backoff is full-jitter exponential
//! (`retry.initial_backoff` doubling to `retry.max_backoff`, `flow::retry`). Two clocks bound a
//! call: `connect_timeout` bounds the time spent retrying a gateway that is not there yet (a cold
//! start), and `timeout` bounds each attempt once sent (as its gRPC deadline, `grpc-timeout`, so
//! the gateway can give up too, and as a local timeout). Running out of `connect_timeout` yields
//! `Unavailable` with the last cause; running out of `timeout` during an attempt yields
//! `Deadline`.
//!
//! [`FlowClient::call`] runs that whole loop for one request. The dispatcher
//! ([`crate::dispatch`]) instead uses the pieces: [`FlowClient::prepare`] checks one event's
//! documents once (and measures them as docarray v1 protobuf, the size estimate batching uses for
//! every format), [`FlowClient::send`] makes exactly one attempt with the documents of several
//! events, encoded for the gateway's format, and leaves retrying to the dispatcher, which probes
//! a cold gateway with one request at a time while the others wait in its queue. The HTTP
//! transport follows the same rules: connection errors and proxy 502/503/504 answers without a
//! jina body are "not accepted"; a jina 503/504 is `Unavailable`/`Deadline` without retry.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

use super::docarray::{json, refuse_nested, wire_v1};
use super::error::FlowError;
use super::format::{DocFormat, Gateway};
use super::grpc::{self, GrpcGateway};
use super::http::HttpGateway;
use super::request::data_request;
use super::retry::Backoff;
use super::websocket::WsGateway;
use crate::model::{DocarrayMode, Document, FlowRequest, FlowResponse, GatewaySpec};

use super::request::{Answer, PreparedDocs, RequestHead, SendError};

/// A client for one gateway. Cheap to clone (clones share the connection and what was learnt
/// about the gateway).
#[derive(Debug, Clone)]
pub struct FlowClient {
    pub spec: GatewaySpec,
    transport: Transport,
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
    Grpc(GrpcGateway),
    Http(HttpGateway),
    Ws(WsGateway),
    /// A modelled gateway called in-process (simulations; `flow::testing::model`).
    #[cfg(any(test, feature = "test-util"))]
    InProcess(Arc<dyn super::testing::InProcess>),
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
        let retry_codes = grpc::retry_codes(spec).map_err(config_error)?;
        let closed = Arc::new(AtomicU64::new(0));
        let url = spec.url.as_str();
        let transport = if url.starts_with("ws://") || url.starts_with("wss://") {
            WsGateway::new(spec).map(Transport::Ws)
        } else if url.starts_with("http://") || url.starts_with("https://") {
            HttpGateway::new(spec).map(Transport::Http)
        } else {
            GrpcGateway::new(spec, retry_codes, Arc::clone(&closed)).map(Transport::Grpc)
        }
        .map_err(config_error)?;
        Ok(FlowClient {
            spec: spec.clone(),
            transport,
            known: Arc::new(tokio::sync::Mutex::new(None)),
            closed,
        })
    }

    /// A client whose requests go to `gateway`, a model called in-process instead of a server
    /// (simulations; `spec.url` is only a name). It speaks docarray v1.
    #[cfg(any(test, feature = "test-util"))]
    pub fn in_process(
        spec: &GatewaySpec,
        gateway: Arc<dyn super::testing::InProcess>,
    ) -> FlowClient {
        FlowClient {
            spec: spec.clone(),
            transport: Transport::InProcess(gateway),
            known: Arc::new(tokio::sync::Mutex::new(None)),
            closed: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Check one event's documents for the wire (errors name the document: `docs[2].blob`);
    /// they are kept (for the v2 and HTTP formats) without a copy.
    pub fn prepare(docs: Vec<Document>) -> Result<PreparedDocs, FlowError> {
        let mut v1 = Vec::new();
        let mut scratch = Vec::new();
        for (i, d) in docs.iter().enumerate() {
            wire_v1::encode_document_field(1, d, &format!("docs[{i}]"), &mut scratch, &mut v1)
                .map_err(|e| FlowError::invalid_request(e.to_string()))?;
        }
        Ok(PreparedDocs { docs, v1 })
    }

    /// Check one event's documents against what the gateway is known to accept (without asking
    /// it): the v2 HTTP gateway refuses some documents (`docarray::json`). Checked per event so
    /// that one event's refusal does not fail the others batched with it.
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
                json::document_to_v2(d, &path).map(drop)
            } else {
                refuse_nested(d, &path)
            };
            checked.map_err(|e| FlowError::invalid_request(e.to_string()))?;
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
            Transport::Http(http) => http.ask().await,
            Transport::Ws(ws) => ws.ask().await,
            Transport::Grpc(grpc) => grpc.ask().await,
            #[cfg(any(test, feature = "test-util"))]
            Transport::InProcess(_) => Ok(Gateway {
                format: DocFormat::V1,
                protocol: "grpc",
                docarray: None,
                jina: None,
                paths: None,
            }),
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
        Err(SendError::Failed(FlowError::gateway(
            &self.spec.name,
            format!(
                "configured docarray: {} but the gateway reports docarray {} ({}); nothing was \
                 sent. Set docarray: {} or auto",
                configured.as_str(),
                gateway.docarray.as_deref().unwrap_or("?"),
                gateway.format.as_str(),
                gateway.format.as_str(),
            ),
        )))
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
                    http.attempt(&gateway, head, &docs, request_id, metadata)
                        .await
                }
                Transport::Grpc(grpc) => {
                    grpc.attempt(gateway.format, request()?, request_id, metadata, want)
                        .await
                }
                Transport::Ws(ws) => ws.attempt(gateway.format, request()?, metadata, want).await,
                #[cfg(any(test, feature = "test-util"))]
                Transport::InProcess(model) => {
                    let docs = docs.iter().map(|&d| d.clone()).collect();
                    model.call(head, docs, request_id).await
                }
            }
        };
        let result = match tokio::time::timeout(timeout, attempt).await {
            Err(_elapsed) => Err(SendError::Failed(FlowError::deadline(
                &self.spec.name,
                timeout,
            ))),
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
        FlowError::unavailable(&self.spec.name, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test]
    async fn unknown_retry_code_is_a_config_error() {
        let mut spec = GatewaySpec::with_defaults("g", "grpc://127.0.0.1:1");
        spec.retry.codes = vec!["unavailable".into(), "RESOURCE_EXHAUSTED".into()];
        assert!(FlowClient::new(&spec).is_ok());
        spec.retry.codes = vec!["NOPE".into()];
        match FlowClient::new(&spec) {
            Err(FlowError::Config { message, .. }) => {
                assert!(message.contains("NOPE"), "{message}")
            }
            other => panic!("unexpected {other:?}"),
        }
        // Checked for every transport, not only gRPC.
        spec.url = "http://127.0.0.1:1".into();
        assert!(matches!(
            FlowClient::new(&spec),
            Err(FlowError::Config { .. })
        ));
    }
}
