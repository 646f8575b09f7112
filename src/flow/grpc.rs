//! jina's gRPC gateway (`grpc://` h2c and `grpcs://` TLS gateway URLs): the lazily connected
//! tonic channel, one `/jina.JinaRPC/Call` attempt, the status question
//! (`/jina.JinaInfoRPC/_status`), and the mapping of gRPC statuses to [`FlowError`]. Knows
//! nothing of the client above it (`flow::client` decides when to retry and when to ask again);
//! every error names the gateway through the constructors of `flow::error`.
//!
//! # Where a request is accepted
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
//! The codes retried are `GatewaySpec::retry.codes` (default `UNAVAILABLE`, [`retry_codes`]),
//! and only when they arrive before response headers: [`SendError::NotAccepted`].
//! The status question asked before the first Call on a connection (`GrpcGateway::ask`) is
//! retried on those codes and on any transport failure but its own deadline too (tonic reports
//! a connection reset during the HTTP/2 handshake, or bytes that are not HTTP/2, as `UNKNOWN`,
//! `CANCELLED` or `INTERNAL`, not `UNAVAILABLE`): no Flow request was sent on that connection
//! yet.
//!
//! One bidi stream per Flow request: send one `DataRequestProto`, close the send side, read until
//! the stream ends. All streams share one lazily connected HTTP/2 connection (a cloned tonic
//! `Channel`), so flowbridge starts while the gateway is down, and Knative's concurrency
//! autoscaler sees one in-flight request per event. The connector counts the connections that
//! close, so the client knows when to ask the gateway's format again.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use super::error::FlowError;
use super::format::{DocFormat, Gateway};
use super::proto::jina::jina_info_rpc_client::JinaInfoRpcClient;
use super::request::{self, Answer, RawRequest, RawResponse, SendError};
use crate::model::{DocarrayMode, FlowResponse, GRPC_CODES, GatewaySpec};

/// A single TCP/TLS connect attempt is abandoned after this long (or `connect_timeout` when
/// shorter), so that a blackholed address is re-dialled by the next retry.
const CONNECT_TIMEOUT_CAP: Duration = Duration::from_secs(5);

/// The gRPC client of one gateway. Cheap to clone (clones share the connection).
#[derive(Debug, Clone)]
pub(crate) struct GrpcGateway {
    channel: Channel,
    /// The gateway's name, for errors.
    name: String,
    /// Each attempt's deadline (`grpc-timeout`) and the status question's.
    timeout: Duration,
    max_message_bytes: usize,
    docarray: DocarrayMode,
    /// The codes that mean "not accepted" before response headers.
    retry_codes: Vec<Code>,
}

impl GrpcGateway {
    /// The channel to `spec.url` (`grpc://host[:port]` h2c, default port 80; `grpcs://` TLS,
    /// default port 443, trusting the gateway's `ca_file` bundle or else the system's roots),
    /// without connecting. Connections that close are counted in `closed`.
    pub(crate) fn new(
        spec: &GatewaySpec,
        retry_codes: Vec<Code>,
        closed: Arc<AtomicU64>,
    ) -> Result<GrpcGateway, String> {
        let (http_url, tls) = endpoint_url(&spec.url)?;
        let connect_timeout = spec.connect_timeout.min(CONNECT_TIMEOUT_CAP);
        // No HTTP/2 keepalive pings and no adaptive-window (BDP) pings: the jina 3.34 gateway
        // answers pings more frequent than every 5 minutes with GOAWAY "too_many_pings".
        let mut endpoint = Endpoint::from_shared(http_url.clone())
            .map_err(|e| format!("url {:?} ({http_url}): {e}", spec.url))?
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
                .map_err(|e| format!("TLS setup for {:?}: {e}", spec.url))?;
        }
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let connector = TrackingConnector {
            inner: http,
            closed,
        };
        Ok(GrpcGateway {
            channel: endpoint.connect_with_connector_lazy(connector),
            name: spec.name.clone(),
            timeout: spec.timeout,
            max_message_bytes: spec.max_message_bytes,
            docarray: spec.docarray,
            retry_codes,
        })
    }

    /// The shared channel (`check --probe` asks it for the endpoints).
    pub(crate) fn channel(&self) -> &Channel {
        &self.channel
    }

    /// `/jina.JinaInfoRPC/_status`: what the gateway speaks.
    pub(crate) async fn ask(&self) -> Result<Gateway, SendError> {
        let mut client = JinaInfoRpcClient::new(self.channel.clone());
        let mut request = tonic::Request::new(());
        request.set_timeout(self.timeout);
        match client.status(request).await {
            Ok(info) => Ok(Gateway::from_status(&info.into_inner().jina, self.docarray)),
            // jina < 3.10 has no _status; those gateways are docarray v1 only.
            Err(status) if status.code() == Code::Unimplemented => {
                Ok(Gateway::unreported(self.docarray, "grpc"))
            }
            // Nothing of a Flow request was sent yet: a connection that failed under the
            // question (reset during the HTTP/2 handshake, bytes that are not HTTP/2) is a
            // gateway not accepting, retried like a cold one until `connect_timeout`. The
            // question's own deadline (a gateway that accepts and stays silent) stays a 504.
            Err(status)
                if self.retry_codes.contains(&status.code())
                    || (!caused_by::<tonic::TimeoutExpired>(&status)
                        && (caused_by::<tonic::transport::Error>(&status)
                            || connection_broke(&status))) =>
            {
                Err(SendError::NotAccepted(format!(
                    "status: {}",
                    describe_status(&status)
                )))
            }
            Err(status) => Err(SendError::Failed(self.status_error(&status))),
        }
    }

    /// One `/jina.JinaRPC/Call` stream carrying one DataRequest (`message`, whose `data` field
    /// is the document list already encoded in `format`); the answer is read in `format` too.
    pub(crate) async fn attempt(
        &self,
        format: DocFormat,
        message: RawRequest,
        request_id: &str,
        metadata: &[(&'static str, String)],
        want: Answer,
    ) -> Result<FlowResponse, SendError> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone())
            .max_decoding_message_size(self.max_message_bytes)
            .max_encoding_message_size(usize::MAX);
        if let Err(e) = grpc.ready().await {
            return Err(SendError::NotAccepted(format!("connection not ready: {e}")));
        }
        let mut request = tonic::Request::new(tokio_stream::once(message));
        // The gateway learns the deadline (grpc-timeout); `send` enforces it on our side.
        request.set_timeout(self.timeout);
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
            return Err(SendError::Failed(FlowError::gateway(&self.name, message)));
        };
        request::finish(&self.name, format, answer, want)
    }

    /// Map a final (not retried) gRPC status.
    fn status_error(&self, status: &Status) -> FlowError {
        match status.code() {
            Code::DeadlineExceeded => FlowError::deadline(&self.name, self.timeout),
            // tonic enforces the request's grpc-timeout locally too, as CANCELLED.
            Code::Cancelled if caused_by::<tonic::TimeoutExpired>(status) => {
                FlowError::deadline(&self.name, self.timeout)
            }
            Code::Unavailable => FlowError::unavailable(&self.name, describe_status(status)),
            // The connection broke under an accepted call (the gateway died): the outcome is
            // unknown, the gateway is gone; a 503 tells the sender to retry later.
            Code::Unknown | Code::Cancelled
                if caused_by::<tonic::transport::Error>(status) || connection_broke(status) =>
            {
                FlowError::unavailable(
                    &self.name,
                    format!(
                        "connection lost after the gateway accepted the request: {}",
                        describe_status(status)
                    ),
                )
            }
            // The gateway itself cancelled the call: a Jina gateway does so for the calls in
            // flight when it shuts down (a rolling update, scale-down, a restart). The request
            // did not complete; the gateway is going away: 503, the sender retries later.
            Code::Cancelled => FlowError::unavailable(
                &self.name,
                format!(
                    "the gateway cancelled the request (shutting down?): {}",
                    describe_status(status)
                ),
            ),
            _ => FlowError::gateway(&self.name, describe_status(status)),
        }
    }
}

/// The configured `retry.codes` as gRPC codes.
pub(crate) fn retry_codes(spec: &GatewaySpec) -> Result<Vec<Code>, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn retry_codes_are_read_case_insensitively() {
        let mut spec = GatewaySpec::with_defaults("g", "grpc://127.0.0.1:1");
        spec.retry.codes = vec!["unavailable".into(), "RESOURCE_EXHAUSTED".into()];
        assert_eq!(
            retry_codes(&spec).unwrap(),
            vec![Code::Unavailable, Code::ResourceExhausted]
        );
        spec.retry.codes = vec!["NOPE".into()];
        let err = retry_codes(&spec).unwrap_err();
        assert!(err.contains("NOPE"), "{err}");
    }

    #[tokio::test]
    async fn a_connection_reset_under_a_call_is_unavailable_not_a_gateway_error() {
        let spec = GatewaySpec::with_defaults("g", "grpc://127.0.0.1:1");
        let gateway = GrpcGateway::new(&spec, vec![Code::Unavailable], Arc::default()).unwrap();
        let reset = Status::new(
            Code::Unknown,
            "h2 protocol error: error reading a body from connection: connection reset",
        );
        match gateway.status_error(&reset) {
            FlowError::Unavailable { message, .. } => {
                assert!(message.contains("connection lost"), "{message}")
            }
            other => panic!("unexpected {other:?}"),
        }
        let cancelled = Status::new(Code::Cancelled, "CANCELLED");
        match gateway.status_error(&cancelled) {
            FlowError::Unavailable { message, .. } => {
                assert!(message.contains("the gateway cancelled"), "{message}")
            }
            other => panic!("unexpected {other:?}"),
        }
        let violation = Status::new(Code::Unknown, "h2 protocol error: frame with invalid size");
        assert!(matches!(
            gateway.status_error(&violation),
            FlowError::Gateway { .. }
        ));
    }
}
