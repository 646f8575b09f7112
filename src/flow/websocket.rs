//! jina's WebSocket gateway (`ws://` and `wss://` gateway URLs; a `wss://` gateway's certificate
//! is checked like an `https://` one's): one WebSocket connection per Flow request.
//!
//! What jina 3.34's websocket gateway expects (read from its FastAPI app, the same for docarray
//! v1 and v2; see `proto/README.md`):
//!
//! * The upgrade is `GET /` with `Sec-WebSocket-Protocol: bytes`. Without exactly that value the
//!   gateway speaks JSON, which docarray v2 cannot use; and it never echoes the subprotocol in its
//!   `101`, which a strict client handshake refuses. So the upgrade is made here, with reqwest
//!   over HTTP/1.1, and the upgraded connection is handed to tungstenite for framing.
//! * One request is one binary frame holding a `DataRequestProto`, the very message of gRPC's
//!   `/jina.JinaRPC/Call` (data in the gateway's docarray format); a binary frame of one zero byte
//!   says no more requests follow. The answer is one binary frame, matched by
//!   `header.request_id`; after the last answer the gateway closes with 1000.
//! * An executor exception is an answer with `header.status.code == ERROR`, as over gRPC. An
//!   executor the gateway cannot reach closes the connection with 1011 and a reason ("…It may be
//!   down."); a gateway-side deadline with 1011 "…timed out…".
//! * The gateway's status is `GET /status` on the same port, as for the HTTP gateway
//!   ([`super::http`]); a docarray v2 gateway refuses connections until its Flow is ready, so a
//!   cold start looks like a refused connection and is retried.
//!
//! Outcomes map like gRPC (`flow::grpc`): a connect error, a TLS failure, or an upgrade
//! answered 502/503/504 (a proxy or Knative's activator, not the gateway) is "not accepted" and
//! retried by the caller, as is a connection that breaks while our request frame is written;
//! once the frame is written the gateway has the request, and nothing is retried: a close 1011
//! is [`FlowError::Unavailable`] (or [`FlowError::Deadline`] when the gateway timed out), a
//! connection lost without an answer is `Unavailable`, an answer that cannot be read is
//! [`FlowError::Gateway`].
//!
//! One connection per request rather than many requests on one connection: one broken
//! connection (a 1011, a dead gateway) then fails exactly one request with a precise status, and
//! Knative's queue-proxy counts each request as in flight, which its concurrency autoscaler needs.
//! The cost is an HTTP/1.1 upgrade per request (a few milliseconds on loopback).
//!
//! Knows nothing of `FlowClient`: it keeps what it needs of the gateway's settings, and the
//! DataRequest and its answer are `flow::request`'s.

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use prost::Message as _;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

use super::error::FlowError;
use super::format::{DocFormat, Gateway};
use super::http::HttpGateway;
use super::request::{self, Answer, RawRequest, RawResponse, SendError};
use crate::model::{FlowResponse, GatewaySpec};

/// The subprotocol that makes jina's gateway read protobuf frames.
const SUBPROTOCOL: &str = "bytes";
/// "No more requests on this connection": a binary frame of one zero byte.
const END_OF_REQUESTS: &[u8] = &[0];

/// The WebSocket client of one gateway.
#[derive(Debug, Clone)]
pub(crate) struct WsGateway {
    /// HTTP/1.1 only: the upgrade needs it.
    client: reqwest::Client,
    /// `http(s)://host:port/`: the upgrade request's URL.
    url: String,
    /// `GET /status` on the same host and port.
    status: HttpGateway,
    /// The gateway's name, for errors.
    name: String,
    /// `Deadline` errors name it.
    timeout: std::time::Duration,
    max_message_bytes: usize,
}

impl WsGateway {
    pub(crate) fn new(spec: &GatewaySpec) -> Result<WsGateway, String> {
        let http_url = if let Some(rest) = spec.url.strip_prefix("ws://") {
            format!("http://{rest}")
        } else if let Some(rest) = spec.url.strip_prefix("wss://") {
            format!("https://{rest}")
        } else {
            return Err(format!(
                "url {:?}: expected ws:// or wss:// for a websocket gateway",
                spec.url
            ));
        };
        // The status client checks the URL's shape (host, port, no path) for both.
        let status = HttpGateway::new(&GatewaySpec {
            url: http_url.clone(),
            ..spec.clone()
        })
        .map_err(|e| e.replace(&format!("{http_url:?}"), &format!("{:?}", spec.url)))?;
        let builder = if http_url.starts_with("https://") {
            crate::tls::https_client(spec.tls.ca_pem.as_deref(), spec.tls.server_name.as_deref())
                .map_err(|e| format!("TLS setup for {:?}: {e}", spec.url))?
        } else {
            crate::tls::http_client()
        };
        // No overall timeout here: it would cut the upgraded connection; `FlowClient::send`
        // bounds every attempt by the gateway's `timeout`.
        let client = builder
            .http1_only()
            .connect_timeout(spec.connect_timeout.min(std::time::Duration::from_secs(5)))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("WebSocket client for {:?}: {e}", spec.url))?;
        let url = format!("{}/", http_url.trim_end_matches('/'));
        Ok(WsGateway {
            client,
            url,
            status,
            name: spec.name.clone(),
            timeout: spec.timeout,
            max_message_bytes: spec.max_message_bytes,
        })
    }

    /// `GET /status` on the gateway's port: what it speaks. A websocket gateway lists no
    /// endpoints (it serves only `/`, `/status` and `/dry_run`), so there is no `/openapi.json`
    /// to read, unlike an HTTP gateway.
    pub(crate) async fn ask(&self) -> Result<Gateway, SendError> {
        self.status.status("websocket").await
    }

    /// One connection carrying one Flow request (`message`, whose documents are in `format`).
    pub(crate) async fn attempt(
        &self,
        format: DocFormat,
        message: RawRequest,
        metadata: &[(&'static str, String)],
        want: Answer,
    ) -> Result<FlowResponse, SendError> {
        let request_id = message
            .header
            .as_ref()
            .map(|h| h.request_id.clone())
            .unwrap_or_default();
        let mut ws = self.connect(metadata).await?;
        let frame = Bytes::from(message.encode_to_vec());
        if let Err(e) = ws.send(Message::Binary(frame)).await {
            // The frame did not get through whole: the gateway cannot have started on it.
            return Err(SendError::NotAccepted(format!(
                "the connection broke while the request was sent: {e}"
            )));
        }
        // From here on the gateway has the request: never retry. The end marker only lets the
        // gateway close once it has answered; failing to send it changes nothing.
        let _ = ws
            .send(Message::Binary(Bytes::from_static(END_OF_REQUESTS)))
            .await;
        let answer = self.read_answer(&mut ws, &request_id).await;
        // Close politely (the gateway closes too once it has answered); errors do not matter.
        let _ = ws.close(None).await;
        request::finish(&self.name, format, answer?, want)
    }

    /// TCP (+ TLS), then the HTTP/1.1 upgrade with the `bytes` subprotocol.
    async fn connect(
        &self,
        metadata: &[(&'static str, String)],
    ) -> Result<WebSocketStream<reqwest::Upgraded>, SendError> {
        let key = generate_key();
        let mut request = self
            .client
            .get(&self.url)
            .header(CONNECTION, "Upgrade")
            .header(UPGRADE, "websocket")
            .header(SEC_WEBSOCKET_VERSION, "13")
            .header(SEC_WEBSOCKET_KEY, &key)
            .header(SEC_WEBSOCKET_PROTOCOL, SUBPROTOCOL);
        for (name, value) in metadata {
            if let Ok(value) = http::HeaderValue::from_str(value) {
                request = request.header(*name, value);
            }
        }
        let response = request
            .send()
            .await
            .map_err(|e| SendError::NotAccepted(crate::tls::describe_error(&e)))?;
        let status = response.status().as_u16();
        if status != 101 {
            let body = response.bytes().await.unwrap_or_default();
            let text = String::from_utf8_lossy(&body);
            let shown: String = text.chars().take(200).collect();
            // A proxy or Knative's activator answering for a gateway that is not there (yet).
            if matches!(status, 502..=504) {
                return Err(SendError::NotAccepted(format!(
                    "the WebSocket upgrade was answered HTTP {status}: {shown}"
                )));
            }
            return Err(SendError::Failed(self.gateway_error(format!(
                "the WebSocket upgrade was answered HTTP {status} instead of 101 (is this a \
                 websocket gateway?): {shown}"
            ))));
        }
        let expected = derive_accept_key(key.as_bytes());
        let accept = response.headers().get(SEC_WEBSOCKET_ACCEPT);
        if accept.map(http::HeaderValue::as_bytes) != Some(expected.as_bytes()) {
            return Err(SendError::Failed(self.gateway_error(format!(
                "the WebSocket upgrade answered Sec-WebSocket-Accept {accept:?}, expected \
                 {expected:?}"
            ))));
        }
        let upgraded = response.upgrade().await.map_err(|e| {
            SendError::NotAccepted(format!(
                "the WebSocket upgrade failed: {}",
                crate::tls::describe_error(&e)
            ))
        })?;
        let max = self.max_message_bytes;
        let config = WebSocketConfig::default()
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        Ok(WebSocketStream::from_raw_socket(upgraded, Role::Client, Some(config)).await)
    }

    /// Read frames until the answer to `request_id` (pings are answered while reading).
    async fn read_answer(
        &self,
        ws: &mut WebSocketStream<reqwest::Upgraded>,
        request_id: &str,
    ) -> Result<RawResponse, SendError> {
        let failed = SendError::Failed;
        let mut foreign: Option<String> = None;
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(bytes))) => {
                    let answer = RawResponse::decode(bytes.as_ref()).map_err(|e| {
                        failed(self.gateway_error(format!("unusable response frame: {e}")))
                    })?;
                    let id = answer.header.as_ref().map(|h| h.request_id.as_str());
                    if id == Some(request_id) {
                        return Ok(answer);
                    }
                    foreign = Some(id.unwrap_or_default().to_owned());
                }
                Some(Ok(Message::Text(text))) => {
                    let shown: String = text.chars().take(120).collect();
                    return Err(failed(self.gateway_error(format!(
                        "the gateway answered a text frame (JSON mode?) instead of protobuf: {shown}"
                    ))));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(failed(self.closed(frame.as_ref(), foreign.as_deref())));
                }
                Some(Ok(_ping_pong_or_frame)) => {}
                Some(Err(e)) => {
                    return Err(failed(self.unavailable(format!(
                        "connection lost after the gateway accepted the request: {e}"
                    ))));
                }
                None => {
                    return Err(failed(self.unavailable(
                        "connection lost after the gateway accepted the request: it closed without \
                         a close frame or an answer"
                            .to_owned(),
                    )));
                }
            }
        }
    }

    /// The gateway closed before answering.
    fn closed(&self, frame: Option<&CloseFrame>, foreign: Option<&str>) -> FlowError {
        let (code, reason) = match frame {
            Some(f) => (f.code, f.reason.as_str()),
            None => (CloseCode::Status, ""),
        };
        let code_number: u16 = code.into();
        match code {
            // jina's gateway → executor deadline (`timeout_send`).
            CloseCode::Error if reason.contains("timed out") => {
                FlowError::deadline(&self.name, self.timeout)
            }
            // An executor the gateway cannot reach, or a gateway going away.
            CloseCode::Error | CloseCode::Away | CloseCode::Again => self.unavailable(format!(
                "the gateway closed the connection ({code_number}) without an answer: {reason}"
            )),
            _ => {
                let other = foreign
                    .map(|id| format!(" (it answered request_id {id:?} instead)"))
                    .unwrap_or_default();
                self.gateway_error(format!(
                    "the gateway closed the connection ({code_number} {reason:?}) without \
                     answering the request{other}"
                ))
            }
        }
    }

    fn unavailable(&self, message: String) -> FlowError {
        FlowError::unavailable(&self.name, message)
    }

    fn gateway_error(&self, message: String) -> FlowError {
        FlowError::gateway(&self.name, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str) -> WsGateway {
        WsGateway::new(&GatewaySpec::with_defaults("ws", url)).expect("client")
    }

    #[test]
    fn ws_and_wss_urls_build_clients() {
        assert!(WsGateway::new(&GatewaySpec::with_defaults("a", "ws://127.0.0.1:1")).is_ok());
        assert!(
            WsGateway::new(&GatewaySpec::with_defaults(
                "b",
                "wss://flow.example.com:443"
            ))
            .is_ok()
        );
        let e = WsGateway::new(&GatewaySpec::with_defaults("c", "ws://127.0.0.1:1/path"))
            .expect_err("a path");
        assert!(
            e.starts_with("url \"ws://127.0.0.1:1/path\" has a path"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn close_codes_map_to_statuses() {
        let flow = client("ws://127.0.0.1:1");
        let frame = |code: CloseCode, reason: &str| CloseFrame {
            code,
            reason: reason.to_owned().into(),
        };
        let timed_out = frame(
            CloseCode::Error,
            "Connection to deployment at {'127.0.0.1:5'} timed out. You can adjust `timeout_send` attribute.",
        );
        assert!(matches!(
            flow.closed(Some(&timed_out), None),
            FlowError::Deadline { .. }
        ));
        let down = frame(
            CloseCode::Error,
            "Network error while connecting to deployment at {'127.0.0.1:5'}. It may be down.",
        );
        match flow.closed(Some(&down), None) {
            FlowError::Unavailable { message, .. } => {
                assert!(
                    message.contains("(1011)") && message.contains("It may be down"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
        match flow.closed(Some(&frame(CloseCode::Normal, "")), Some("other")) {
            FlowError::Gateway { message, .. } => {
                assert!(
                    message.contains("1000") && message.contains("\"other\""),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_not_accepted() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let ws = client(&format!("ws://127.0.0.1:{port}"));
        match ws.connect(&[]).await {
            Err(SendError::NotAccepted(cause)) => assert!(!cause.is_empty()),
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("connected to a closed port"),
        }
    }
}
