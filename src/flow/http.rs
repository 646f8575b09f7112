//! jina's HTTP gateway (`http://` and `https://` gateway URLs; an `https://` gateway's
//! certificate is checked against its `ca_file` bundle or the system's roots, see
//! [`crate::tls::https_client`]): one JSON POST per Flow request.
//!
//! * docarray v1 gateways: `POST /post` with `{data, execEndpoint, targetExecutor, parameters}`.
//!   An executor exception comes back as **200** with `header.status.code == 1`.
//! * docarray v2 gateways: `POST /<endpoint>` with `{data, parameters, header: {requestId,
//!   targetExecutor}}`; jina creates one route per executor endpoint (read from
//!   `GET /openapi.json` when the format is detected), and like jina's own client a request for
//!   an endpoint without a route goes to `/default` when that exists. An executor exception comes
//!   back as **500** `{"detail": "<repr of the exception>"}`.
//!
//! Outcomes map like gRPC (`flow::grpc`): an executor exception is [`FlowError::Executor`];
//! connection errors, and 502/503/504 answers without a jina body (a proxy or Knative's activator
//! speaking, not the gateway) are "not accepted" and retried by the caller; a jina 503 (an
//! executor unreachable) is [`FlowError::Unavailable`] and a jina 504 [`FlowError::Deadline`],
//! without retry; a 404 names the path; anything else is [`FlowError::Gateway`].
//!
//! The gateway's status is `GET /status` (`{"jina": {"docarray": "0.40.0", ...}}`); a gateway
//! started with `--no-debug-endpoints` has none, and then `/openapi.json` tells: v1 gateways
//! serve `/post`, v2 gateways do not.
//!
//! Knows nothing of `FlowClient`: it keeps what it needs of the gateway's settings (name,
//! docarray mode, timeout, `max_message`), errors are built with `flow::error`'s constructors,
//! and the JSON documents are `docarray::json`'s.

use std::collections::BTreeSet;
use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::docarray::{ConvertError, json};
use super::error::FlowError;
use super::format::{DocFormat, Gateway};
use super::request::{RequestHead, SendError};
use crate::model::{DocarrayMode, Document, FlowResponse, GatewaySpec};

/// The HTTP client of one gateway.
#[derive(Debug, Clone)]
pub(crate) struct HttpGateway {
    client: reqwest::Client,
    /// `http(s)://host:port`, no trailing slash.
    base: String,
    /// The gateway's name, for errors.
    name: String,
    /// The configured format (what an unreported gateway is taken to speak).
    docarray: DocarrayMode,
    /// `Deadline` errors name it.
    timeout: std::time::Duration,
    max_message_bytes: usize,
}

/// How an HTTP exchange ended before a usable body.
enum Failure {
    /// Nothing reached the gateway (connect error, proxy 502/503/504).
    NotAccepted(String),
    Failed(FlowError),
}

impl HttpGateway {
    pub(crate) fn new(spec: &GatewaySpec) -> Result<HttpGateway, String> {
        let uri: http::Uri = spec
            .url
            .parse()
            .map_err(|e| format!("url {:?} is not a valid URI: {e}", spec.url))?;
        let scheme = match uri.scheme_str() {
            Some(s @ ("http" | "https")) => s,
            other => {
                return Err(format!(
                    "url {:?} has scheme {:?}; expected http:// or https://",
                    spec.url,
                    other.unwrap_or("")
                ));
            }
        };
        let Some(authority) = uri.authority() else {
            return Err(format!("url {:?} has no host", spec.url));
        };
        if authority.host().is_empty() || authority.as_str().contains('@') {
            return Err(format!("url {:?} needs a host and no user info", spec.url));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(format!(
                "url {:?} has a path or query; a gateway URL is only scheme://host[:port]",
                spec.url
            ));
        }
        let port = authority
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        let builder = if scheme == "https" {
            crate::tls::https_client(spec.tls.ca_pem.as_deref(), spec.tls.server_name.as_deref())
                .map_err(|e| format!("TLS setup for {:?}: {e}", spec.url))?
        } else {
            crate::tls::http_client()
        };
        let client = builder
            .connect_timeout(spec.connect_timeout.min(std::time::Duration::from_secs(5)))
            .timeout(spec.timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("HTTP client for {:?}: {e}", spec.url))?;
        Ok(HttpGateway {
            client,
            base: format!("{scheme}://{}:{port}", authority.host()),
            name: spec.name.clone(),
            docarray: spec.docarray,
            timeout: spec.timeout,
            max_message_bytes: spec.max_message_bytes,
        })
    }

    /// `GET /status` (and `/openapi.json` for v2 or when there is no status).
    pub(crate) async fn ask(&self) -> Result<Gateway, SendError> {
        let mut gateway = self.status("http").await?;
        if gateway.format == DocFormat::V2 || gateway.docarray.is_none() {
            gateway.paths = self.post_paths().await;
            if gateway.docarray.is_none()
                && self.docarray == DocarrayMode::Auto
                && let Some(paths) = &gateway.paths
            {
                gateway.format = if paths.contains("/post") {
                    DocFormat::V1
                } else {
                    DocFormat::V2
                };
            }
        }
        Ok(gateway)
    }

    /// What `GET /status` says, for a gateway speaking `protocol` (also the WebSocket gateway's
    /// status, on its port).
    pub(crate) async fn status(&self, protocol: &'static str) -> Result<Gateway, SendError> {
        let status = self.get_json("/status").await;
        let mut gateway = match status {
            Ok(Some(body)) => {
                let jina: HashMap<String, String> = body
                    .get("jina")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default();
                Gateway::from_status(&jina, self.docarray)
            }
            Ok(None) => Gateway::unreported(self.docarray, protocol),
            Err(Failure::NotAccepted(cause)) => {
                return Err(SendError::NotAccepted(format!("GET /status: {cause}")));
            }
            Err(Failure::Failed(e)) => return Err(SendError::Failed(e)),
        };
        gateway.protocol = protocol;
        Ok(gateway)
    }

    /// The paths that accept POST, from `/openapi.json` (`None` when unavailable).
    pub(crate) async fn post_paths(&self) -> Option<BTreeSet<String>> {
        let body = self.get_json("/openapi.json").await.ok()??;
        let paths = body.get("paths")?.as_object()?;
        Some(
            paths
                .iter()
                .filter(|(_, ops)| ops.get("post").is_some())
                .map(|(p, _)| p.clone())
                .collect(),
        )
    }

    /// GET a JSON document; `Ok(None)` on 404.
    async fn get_json(&self, path: &str) -> Result<Option<Value>, Failure> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| self.transport_failure(&e))?;
        let status = response.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_failure(&e))?;
        if matches!(status, 502..=504) {
            return Err(Failure::NotAccepted(format!("HTTP {status}")));
        }
        if status != 200 {
            return Err(Failure::Failed(FlowError::gateway(
                &self.name,
                format!("GET {path}: HTTP {status}: {}", snippet(&body)),
            )));
        }
        serde_json::from_slice(&body).map(Some).map_err(|e| {
            Failure::Failed(FlowError::gateway(
                &self.name,
                format!("GET {path}: not JSON: {e}"),
            ))
        })
    }

    /// One POST carrying one Flow request.
    pub(crate) async fn attempt(
        &self,
        gateway: &Gateway,
        head: &RequestHead,
        docs: &[&Document],
        request_id: &str,
        metadata: &[(&'static str, String)],
    ) -> Result<FlowResponse, SendError> {
        let invalid =
            |e: ConvertError| SendError::Failed(FlowError::invalid_request(e.to_string()));
        let (path, body) = match gateway.format {
            DocFormat::V1 => {
                let mut body = json!({
                    "data": docs.iter().map(|d| json::document_to_v1(d)).collect::<Vec<_>>(),
                    "execEndpoint": head.endpoint,
                    "parameters": Value::Object(head.parameters.clone()),
                });
                if let Some(target) = &head.target_executor {
                    body["targetExecutor"] = json!(target);
                }
                ("/post".to_owned(), body)
            }
            DocFormat::V2 => {
                let data = docs
                    .iter()
                    .enumerate()
                    .map(|(i, d)| json::document_to_v2(d, &format!("docs[{i}]")))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(invalid)?;
                let mut header = json!({ "requestId": request_id });
                if let Some(target) = &head.target_executor {
                    header["targetExecutor"] = json!(target);
                }
                let body = json!({
                    "data": data,
                    "parameters": Value::Object(head.parameters.clone()),
                    "header": header,
                });
                (v2_path(&head.endpoint, gateway.paths.as_ref()), body)
            }
        };
        let body = serde_json::to_vec(&body).map_err(|e| {
            SendError::Failed(FlowError::invalid_request(format!("request body: {e}")))
        })?;
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header(http::header::CONTENT_TYPE, "application/json");
        // W3C trace context (`traceparent`, `tracestate`) as HTTP headers.
        for (key, value) in metadata {
            request = request.header(*key, value.as_str());
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| failure_to_send(self.transport_failure(&e)))?;
        let status = response.status().as_u16();
        if let Some(len) = response.content_length()
            && len > self.max_message_bytes as u64
        {
            return Err(SendError::Failed(self.gateway_error(format!(
                "POST {path}: response of {len} bytes is above max_message ({} bytes)",
                self.max_message_bytes
            ))));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| failure_to_send(self.transport_failure(&e)))?;
        if bytes.len() > self.max_message_bytes {
            return Err(SendError::Failed(self.gateway_error(format!(
                "POST {path}: response of {} bytes is above max_message ({} bytes)",
                bytes.len(),
                self.max_message_bytes
            ))));
        }
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        let jina_body = parsed
            .as_ref()
            .is_some_and(|v| v.get("header").is_some() || v.get("detail").is_some());
        let description = || {
            parsed
                .as_ref()
                .and_then(|v| {
                    v.pointer("/header/status/description")
                        .or_else(|| v.get("detail"))
                        .map(|d| match d {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                })
                .unwrap_or_else(|| snippet(&bytes))
        };
        match status {
            200 => {}
            502..=504 if !jina_body => {
                return Err(SendError::NotAccepted(format!(
                    "POST {path}: HTTP {status} without a jina body: {}",
                    snippet(&bytes)
                )));
            }
            503 => {
                return Err(SendError::Failed(FlowError::unavailable(
                    &self.name,
                    format!("HTTP 503: {}", description()),
                )));
            }
            504 => return Err(SendError::Failed(self.deadline_error())),
            500 if gateway.format == DocFormat::V2 => {
                let detail = description();
                let exception = detail
                    .split('(')
                    .next()
                    .filter(|n| {
                        !n.is_empty()
                            && n.chars()
                                .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
                    })
                    .unwrap_or("unknown")
                    .to_owned();
                return Err(SendError::Failed(FlowError::Executor {
                    executor: "unknown".to_owned(),
                    exception,
                    message: detail,
                }));
            }
            404 => {
                return Err(SendError::Failed(self.gateway_error(format!(
                    "POST {path}: HTTP 404: the gateway serves no such route (endpoint {:?})",
                    head.endpoint
                ))));
            }
            _ => {
                return Err(SendError::Failed(self.gateway_error(format!(
                    "POST {path}: HTTP {status}: {}",
                    description()
                ))));
            }
        }
        let Some(Value::Object(body)) = parsed else {
            return Err(SendError::Failed(self.gateway_error(format!(
                "POST {path}: the 200 response is not a JSON object: {}",
                snippet(&bytes)
            ))));
        };
        if let Some(error) = v1_executor_error(&body) {
            return Err(SendError::Failed(error));
        }
        let items: &[Value] = match body.get("data") {
            Some(Value::Array(items)) => items,
            Some(Value::Object(o)) => match o.get("docs") {
                Some(Value::Array(items)) => items,
                _ => &[],
            },
            _ => &[],
        };
        let v2 = gateway.format == DocFormat::V2;
        let docs = items
            .iter()
            .enumerate()
            .map(|(i, d)| json::document_from_json(d, v2, &format!("docs[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                SendError::Failed(self.gateway_error(format!("unusable response: {e}")))
            })?;
        Ok(FlowResponse {
            request_id: request_id.to_owned(),
            docs,
            parameters: match body.get("parameters") {
                Some(Value::Object(p)) => p.clone(),
                _ => Map::new(),
            },
        })
    }
    /// How a reqwest error ended an exchange: a connect error is "not accepted", a timeout the
    /// deadline, anything else a connection lost after the request was sent.
    fn transport_failure(&self, error: &reqwest::Error) -> Failure {
        let cause = describe(error);
        if error.is_connect() {
            Failure::NotAccepted(cause)
        } else if error.is_timeout() {
            Failure::Failed(self.deadline_error())
        } else {
            Failure::Failed(FlowError::unavailable(
                &self.name,
                format!("connection lost after the request was sent: {cause}"),
            ))
        }
    }

    fn deadline_error(&self) -> FlowError {
        FlowError::deadline(&self.name, self.timeout)
    }

    fn gateway_error(&self, message: String) -> FlowError {
        FlowError::gateway(&self.name, message)
    }
}

/// The route of `endpoint` on a v2 gateway: its own, else `/default` (which takes any endpoint),
/// else its own anyway (a 404 then names it).
fn v2_path(endpoint: &str, paths: Option<&BTreeSet<String>>) -> String {
    let own = if endpoint.starts_with('/') {
        endpoint.to_owned()
    } else {
        format!("/{endpoint}")
    };
    match paths {
        Some(paths) if !paths.contains(&own) && paths.contains("/default") => "/default".to_owned(),
        _ => own,
    }
}

/// A v1 200 response whose `header.status.code` is 1 (ERROR).
fn v1_executor_error(body: &Map<String, Value>) -> Option<FlowError> {
    let status = body.get("header")?.get("status")?;
    if status.get("code").and_then(Value::as_i64) != Some(1) {
        return None;
    }
    let exception = status.get("exception").cloned().unwrap_or(Value::Null);
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let description = text(status.get("description")).unwrap_or_default();
    Some(FlowError::Executor {
        executor: text(exception.get("executor")).unwrap_or_else(|| "unknown".to_owned()),
        exception: text(exception.get("name")).unwrap_or_else(|| "unknown".to_owned()),
        message: exception
            .get("args")
            .and_then(Value::as_array)
            .and_then(|a| text(a.first()))
            .unwrap_or(description),
    })
}

fn failure_to_send(failure: Failure) -> SendError {
    match failure {
        Failure::NotAccepted(cause) => SendError::NotAccepted(cause),
        Failure::Failed(e) => SendError::Failed(e),
    }
}

/// The error and its sources, joined.
fn describe(error: &reqwest::Error) -> String {
    crate::tls::describe_error(error)
}

/// The start of a body, for messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests;
