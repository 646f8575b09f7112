//! Reply events: built from the Flow's result for routes with `reply`, and either returned in the
//! HTTP response (binary mode, only when the sender asked with `Prefer: reply`) or POSTed to a
//! sink (`reply.to`, e.g. `$K_SINK`) before the original event is acknowledged. A reply that
//! carries the `traceparent`/`tracestate` extensions (tracing on) is POSTed with the same values
//! as W3C HTTP headers too, which is where Knative's broker ingress reads them.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::cloudevents;
use crate::model::{CloudEvent, Data, ExtValue, FlowResponse, now_timestamp};
use crate::rules::ReplySpec;
use crate::rules::mapping::MappingError;
use crate::telemetry::trace;

/// Extension naming the original event's id (valid CloudEvents extension name).
pub const EXT_ORIGIN_ID: &str = "originid";
/// Extension naming the original event's source.
pub const EXT_ORIGIN_SOURCE: &str = "originsource";
/// Extension carrying the Jina request id of the Flow call.
pub const EXT_REQUEST_ID: &str = "jinarequestid";

/// Build the reply event for `original` from the Flow's response.
pub fn build(
    spec: &ReplySpec,
    original: &CloudEvent,
    response: &FlowResponse,
) -> Result<CloudEvent, MappingError> {
    let data = spec.data.render(original, &response.docs)?;
    let mut extensions = BTreeMap::new();
    extensions.insert(
        EXT_ORIGIN_ID.to_string(),
        ExtValue::String(original.id.clone()),
    );
    extensions.insert(
        EXT_ORIGIN_SOURCE.to_string(),
        ExtValue::String(original.source.clone()),
    );
    extensions.insert(
        EXT_REQUEST_ID.to_string(),
        ExtValue::String(response.request_id.clone()),
    );
    Ok(CloudEvent {
        datacontenttype: Some("application/json".to_string()),
        subject: original.subject.clone(),
        time: Some(now_timestamp()),
        extensions,
        data: Some(Data::Json(data)),
        ..CloudEvent::new(uuid::Uuid::new_v4().to_string(), &spec.source, &spec.ty)
    })
}

/// POSTs reply events to sinks in binary mode.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
}

impl Sender {
    /// `https://` sinks are checked against the system's roots (`SSL_CERT_FILE` or
    /// `SSL_CERT_DIR` replace them, see [`crate::tls::https_client_config`]).
    pub fn new() -> Result<Sender, String> {
        Sender::trusting(None)
    }

    /// Like [`Sender::new`], trusting only the CAs of `ca_pem` when given.
    pub fn trusting(ca_pem: Option<&str>) -> Result<Sender, String> {
        let client = crate::tls::https_client(ca_pem, None)?
            .build()
            .map_err(|e| format!("cannot build the reply HTTP client: {e}"))?;
        Ok(Sender { client })
    }

    /// Deliver `event` to `url` within `timeout` (the route's `reply.timeout`); Ok only for a 2xx
    /// answer.
    pub async fn send(
        &self,
        url: &str,
        event: &CloudEvent,
        timeout: Duration,
    ) -> Result<(), String> {
        let (mut headers, body) = cloudevents::encode_binary(event);
        for name in [trace::TRACEPARENT, trace::TRACESTATE] {
            if let Some(ExtValue::String(value)) = event.extensions.get(name)
                && let Ok(value) = http::HeaderValue::from_str(value)
            {
                headers.insert(name, value);
            }
        }
        let response = self
            .client
            .post(url)
            .timeout(timeout)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| crate::tls::describe_error(&e))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            let text = response.text().await.unwrap_or_default();
            Err(format!(
                "answered {status}: {}",
                crate::text::truncate(&text, 200)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::testing::{Ca, serve_https};
    use std::sync::{Arc, Mutex};

    /// An `https://` sink on loopback recording the `ce-id` of each POST; answers `status`.
    async fn sink(
        leaf: &crate::tls::testing::Leaf,
        status: u16,
    ) -> (String, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let app = axum::Router::new().route(
            "/sink",
            axum::routing::post(move |headers: http::HeaderMap| {
                let record = Arc::clone(&record);
                async move {
                    let id = headers
                        .get("ce-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    record.lock().unwrap().push(id);
                    http::StatusCode::from_u16(status).unwrap()
                }
            }),
        );
        let addr = serve_https(app, leaf).await;
        (format!("https://{addr}/sink"), seen)
    }

    #[tokio::test]
    async fn replies_reach_an_https_sink_it_trusts() {
        let ca = Ca::new("eventing ca");
        let (url, seen) = sink(&ca.leaf(&["127.0.0.1"]), 202).await;
        let sender = Sender::trusting(Some(&ca.pem)).unwrap();
        let event = CloudEvent::new("reply-1".to_string(), "/flowbridge", "t.reply");
        sender
            .send(&url, &event, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(*seen.lock().unwrap(), ["reply-1"]);
    }

    #[tokio::test]
    async fn an_untrusted_https_sink_fails_naming_the_certificate() {
        let (url, seen) = sink(&Ca::new("eventing ca").leaf(&["127.0.0.1"]), 202).await;
        let sender = Sender::trusting(Some(&Ca::new("other").pem)).unwrap();
        let event = CloudEvent::new("reply-2".to_string(), "/flowbridge", "t.reply");
        let err = sender
            .send(&url, &event, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.to_lowercase().contains("certificate"), "{err}");
        assert!(seen.lock().unwrap().is_empty());
    }
}
