//! [`FlowClient`]: the gRPC connection to one Jina gateway and the retry/deadline logic of one
//! Flow call over `/jina.JinaRPC/Call`.
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
//! Backoff is full-jitter exponential (50 ms doubling to a 2 s cap), and `GatewaySpec::timeout`
//! bounds the whole call, retries included: each attempt gets the remaining time as its gRPC
//! deadline (`grpc-timeout`, so the gateway can give up too) and as a local timeout. Running out
//! of time while waiting between retries yields `Unavailable` with the last cause; running out
//! during an attempt yields `Deadline`.

use std::time::Duration;

use tokio::time::Instant;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use super::convert;
use super::error::FlowError;
use super::proto::jina::DataRequestProto;
use super::proto::jina::jina_rpc_client::JinaRpcClient;
use super::proto::jina::status_proto::StatusCode;
use crate::model::{FlowRequest, FlowResponse, GatewaySpec};

/// First backoff ceiling; doubled after every failed attempt.
const BACKOFF_START: Duration = Duration::from_millis(50);
/// Largest backoff ceiling.
const BACKOFF_CAP: Duration = Duration::from_secs(2);
/// A single TCP/TLS connect attempt is abandoned after this long (or the call's timeout when
/// shorter), so that a blackholed address is re-dialled by the next retry.
const CONNECT_TIMEOUT_CAP: Duration = Duration::from_secs(5);

/// A client for one gateway. Cheap to clone (clones share the HTTP/2 connection).
#[derive(Debug, Clone)]
pub struct FlowClient {
    pub spec: GatewaySpec,
    channel: Channel,
}

/// How one attempt ended without a usable response.
enum AttemptError {
    /// Failed before the gateway accepted the request: safe to try again.
    Retry(Status),
    /// Final: map to the caller's error.
    Fail(FlowError),
}

impl FlowClient {
    /// Build the client without connecting (the gateway may be down or cold).
    ///
    /// `grpc://host[:port]` is h2c (default port 80), `grpcs://host[:port]` is TLS with the
    /// system's root certificates (default port 443), as in jina's own client.
    pub fn new(spec: &GatewaySpec) -> Result<FlowClient, FlowError> {
        let config_error = |message: String| FlowError::Config {
            gateway: spec.name.clone(),
            message,
        };
        let (http_url, tls) = endpoint_url(&spec.url).map_err(config_error)?;
        let connect_timeout = spec.timeout.min(CONNECT_TIMEOUT_CAP);
        // No HTTP/2 keepalive pings and no adaptive-window (BDP) pings: the jina 3.34 gateway
        // answers pings more frequent than every 5 minutes with GOAWAY "too_many_pings".
        let mut endpoint = Endpoint::from_shared(http_url.clone())
            .map_err(|e| config_error(format!("url {:?} ({http_url}): {e}", spec.url)))?
            .tcp_nodelay(true)
            .connect_timeout(connect_timeout)
            .keep_alive_while_idle(false);
        if tls {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_native_roots())
                .map_err(|e| config_error(format!("TLS setup for {:?}: {e}", spec.url)))?;
        }
        Ok(FlowClient {
            spec: spec.clone(),
            channel: endpoint.connect_lazy(),
        })
    }

    /// Send one DataRequest with the given `request_id`; wait for its result.
    pub async fn call(
        &self,
        request: FlowRequest,
        request_id: &str,
    ) -> Result<FlowResponse, FlowError> {
        let message = convert::build_request(&request, request_id).map_err(|e| {
            FlowError::InvalidRequest {
                message: e.to_string(),
            }
        })?;
        let deadline = Instant::now() + self.spec.timeout;
        let mut ceiling = BACKOFF_START;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let outcome = tokio::time::timeout(
                remaining,
                self.attempt(message.clone(), remaining, request_id),
            )
            .await;
            let status = match outcome {
                Err(_elapsed) => return Err(self.deadline_error()),
                Ok(Ok(response)) => return Ok(response),
                Ok(Err(AttemptError::Fail(error))) => return Err(error),
                Ok(Err(AttemptError::Retry(status))) => status,
            };
            let cause = describe_status(&status);
            let pause = jittered(ceiling);
            ceiling = (ceiling * 2).min(BACKOFF_CAP);
            let remaining = deadline.saturating_duration_since(Instant::now());
            if pause >= remaining {
                tracing::debug!(
                    request_id,
                    gateway = %self.spec.name,
                    attempt,
                    cause = %cause,
                    "gateway unavailable; no time left to retry"
                );
                tokio::time::sleep(remaining).await;
                return Err(FlowError::Unavailable {
                    gateway: self.spec.name.clone(),
                    message: format!("{cause} (after {attempt} attempts)"),
                });
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

    /// One `/jina.JinaRPC/Call` stream carrying `message`.
    async fn attempt(
        &self,
        message: DataRequestProto,
        remaining: Duration,
        request_id: &str,
    ) -> Result<FlowResponse, AttemptError> {
        let mut client = JinaRpcClient::new(self.channel.clone())
            .max_decoding_message_size(self.spec.max_message_bytes)
            .max_encoding_message_size(usize::MAX);
        let mut request = tonic::Request::new(tokio_stream::once(message));
        request.set_timeout(remaining);
        let response = match client.call(request).await {
            Ok(response) => response,
            // Before response headers: the gateway has not accepted the request (module docs).
            Err(status) if status.code() == Code::Unavailable => {
                return Err(AttemptError::Retry(status));
            }
            Err(status) => return Err(AttemptError::Fail(self.status_error(&status))),
        };
        // From here on the gateway has the request: never retry.
        let mut stream = response.into_inner();
        let mut answer: Option<DataRequestProto> = None;
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
                Err(status) => return Err(AttemptError::Fail(self.status_error(&status))),
            }
        }
        let Some(answer) = answer else {
            let message = match foreign {
                Some(id) => {
                    format!("the Call stream answered request_id {id:?} instead of {request_id:?}")
                }
                None => "the Call stream ended without a response".to_owned(),
            };
            return Err(AttemptError::Fail(self.gateway_error(message)));
        };
        if let Some(error) = executor_error(&answer) {
            return Err(AttemptError::Fail(error));
        }
        convert::read_response(answer)
            .map_err(|e| AttemptError::Fail(self.gateway_error(format!("unusable response: {e}"))))
    }

    fn deadline_error(&self) -> FlowError {
        FlowError::Deadline {
            gateway: self.spec.name.clone(),
            timeout_ms: u64::try_from(self.spec.timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }

    fn gateway_error(&self, message: String) -> FlowError {
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
            _ => self.gateway_error(describe_status(status)),
        }
    }
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

/// The executor error carried by a gRPC-OK response whose header status is ERROR.
fn executor_error(response: &DataRequestProto) -> Option<FlowError> {
    let status = response.header.as_ref()?.status.as_ref()?;
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

/// Full jitter: a uniformly random pause in `[0, ceiling]`.
fn jittered(ceiling: Duration) -> Duration {
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(fastrand::u64(0..=micros))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::proto::jina::status_proto::ExceptionProto;
    use crate::flow::proto::jina::{HeaderProto, StatusProto};

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
        let err = endpoint_url("http://x:1").unwrap_err();
        assert!(err.contains("expected grpc://"), "{err}");
        let err = endpoint_url("grpc://x:1/path").unwrap_err();
        assert!(err.contains("path"), "{err}");
        assert!(endpoint_url("not a url").is_err());
        let err = endpoint_url("grpc://u:p@x:1").unwrap_err();
        assert!(err.contains("user info"), "{err}");
    }

    #[test]
    fn new_rejects_bad_url_with_gateway_name() {
        let spec = GatewaySpec {
            name: "main".into(),
            url: "tcp://x".into(),
            timeout: Duration::from_secs(1),
            max_message_bytes: 1024,
        };
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
        let spec = GatewaySpec {
            name: "tls".into(),
            url: "grpcs://flow.example.com".into(),
            timeout: Duration::from_secs(1),
            max_message_bytes: 1024,
        };
        assert!(FlowClient::new(&spec).is_ok());
    }

    fn with_status(status: StatusProto) -> DataRequestProto {
        DataRequestProto {
            header: Some(HeaderProto {
                request_id: "r".into(),
                status: Some(status),
                ..HeaderProto::default()
            }),
            ..DataRequestProto::default()
        }
    }

    #[test]
    fn executor_error_uses_first_arg_else_description() {
        let err = executor_error(&with_status(StatusProto {
            code: StatusCode::Error as i32,
            description: "ValueError('boom', 42)".into(),
            exception: Some(ExceptionProto {
                name: "ValueError".into(),
                args: vec!["boom".into(), "42".into()],
                stacks: vec![],
                executor: "Echo".into(),
            }),
        }));
        assert_eq!(
            err,
            Some(FlowError::Executor {
                executor: "Echo".into(),
                exception: "ValueError".into(),
                message: "boom".into(),
            })
        );
        let err = executor_error(&with_status(StatusProto {
            code: StatusCode::Error as i32,
            description: "RuntimeError()".into(),
            exception: None,
        }));
        assert_eq!(
            err,
            Some(FlowError::Executor {
                executor: "unknown".into(),
                exception: "unknown".into(),
                message: "RuntimeError()".into(),
            })
        );
        assert_eq!(executor_error(&with_status(StatusProto::default())), None);
        assert_eq!(executor_error(&DataRequestProto::default()), None);
    }

    #[test]
    fn jitter_stays_within_ceiling() {
        for _ in 0..100 {
            assert!(jittered(Duration::from_millis(50)) <= Duration::from_millis(50));
        }
    }
}
