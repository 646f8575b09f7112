//! `flowbridge check --probe`: ask each gateway what it speaks (protocol, docarray version and
//! format, jina version) and which endpoints it serves, once, without retrying.
//!
//! Endpoint listing: a docarray v2 gateway answers `/jina.JinaDiscoverEndpointsRPC/
//! endpoint_discovery` (gRPC) or lists one POST route per endpoint in `/openapi.json` (HTTP). A
//! docarray v1 gateway cannot list its executors' endpoints (jina 3.34 fails the discovery call,
//! and its HTTP routes are generic), so for those the probe says so instead of warning.
//!
//! Returns a [`ProbeReport`]; printing it is the CLI's business (nothing here writes output).

use std::collections::BTreeSet;

use tonic::Code;

use super::client::{FlowClient, Transport};
use super::format::{DocFormat, Gateway};
use super::proto::jina::jina_discover_endpoints_rpc_client::JinaDiscoverEndpointsRpcClient;
use super::request::SendError;
use crate::model::GatewaySpec;

/// What the probe learnt about one gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    /// What the gateway reported; `Err` when it could not be asked (the text says why).
    pub gateway: Result<Gateway, String>,
    /// The endpoints the gateway serves, or why they are not known.
    pub endpoints: Result<BTreeSet<String>, String>,
    /// The configured format disagrees with the reported one (the text says how).
    pub mismatch: Option<String>,
    /// How long the status question took (connection included): a floor for the Flow's
    /// no-load latency.
    pub round_trip: Option<std::time::Duration>,
}

/// Endpoints jina serves for itself.
const INTERNAL: [&str; 3] = ["_jina_dry_run_", "/dry_run", "/status"];

/// Probe one gateway (one question each, bounded by the gateway's `timeout`).
pub async fn probe(spec: &GatewaySpec) -> ProbeReport {
    let client = match FlowClient::new(spec) {
        Ok(c) => c,
        Err(e) => {
            return ProbeReport {
                gateway: Err(e.to_string()),
                endpoints: Err("not asked".into()),
                mismatch: None,
                round_trip: None,
            };
        }
    };
    let asked = std::time::Instant::now();
    let answer = tokio::time::timeout(spec.timeout, client.ask()).await;
    let round_trip = Some(asked.elapsed());
    let gateway = match answer {
        Err(_) => Err(format!(
            "no answer within {}",
            humantime::format_duration(spec.timeout)
        )),
        Ok(Err(SendError::NotAccepted(cause))) => Err(format!("unreachable: {cause}")),
        Ok(Err(SendError::Failed(e))) => Err(e.to_string()),
        Ok(Ok(g)) => Ok(g),
    };
    let Ok(gateway) = gateway else {
        return ProbeReport {
            gateway,
            endpoints: Err("not asked".into()),
            mismatch: None,
            round_trip: None,
        };
    };
    let mismatch = match client.check_format(&gateway) {
        Err(SendError::Failed(e)) => Some(e.to_string()),
        _ => None,
    };
    let endpoints = if gateway.format == DocFormat::V1 {
        Err("a docarray v1 gateway cannot list its endpoints; not checked".into())
    } else {
        match &client.transport_ref() {
            Transport::Http(_) => gateway
                .paths
                .clone()
                .map(|p| {
                    p.into_iter()
                        .filter(|e| !INTERNAL.contains(&e.as_str()))
                        .collect()
                })
                .ok_or_else(|| "the gateway serves no /openapi.json; not checked".to_owned()),
            Transport::Ws(_) => Err(
                "a websocket gateway cannot list its endpoints (it serves only /, /status and \
                 /dry_run); not checked"
                    .into(),
            ),
            #[cfg(any(test, feature = "test-util"))]
            Transport::InProcess(_) => Err("a modelled gateway has no endpoints to list".into()),
            Transport::Grpc(grpc) => {
                let mut discovery = JinaDiscoverEndpointsRpcClient::new(grpc.channel().clone());
                let mut request = tonic::Request::new(());
                request.set_timeout(spec.timeout);
                match discovery.endpoint_discovery(request).await {
                    Ok(found) => Ok(found
                        .into_inner()
                        .endpoints
                        .into_iter()
                        .filter(|e| !INTERNAL.contains(&e.as_str()))
                        .collect()),
                    Err(status) if status.code() == Code::Unimplemented => Err(
                        "the gateway has no endpoint discovery (jina < 3.34); not checked".into(),
                    ),
                    Err(status) => Err(format!(
                        "endpoint discovery failed ({:?}: {}); not checked",
                        status.code(),
                        status.message()
                    )),
                }
            }
        }
    };
    ProbeReport {
        gateway: Ok(gateway),
        endpoints,
        mismatch,
        round_trip,
    }
}

/// How a route's literal `endpoint` fares against the served endpoints: `Ok(note)` when served
/// (the note says when only through `/default`), `Err(warning)` when not.
pub fn check_endpoint(served: &BTreeSet<String>, endpoint: &str) -> Result<Option<String>, String> {
    if served.contains(endpoint) {
        return Ok(None);
    }
    if served.contains("/default") {
        return Ok(Some(format!(
            "endpoint {endpoint} is not listed, but /default accepts any endpoint"
        )));
    }
    let list = served.iter().cloned().collect::<Vec<_>>().join(", ");
    Err(format!(
        "endpoint {endpoint} is not served by this gateway (it serves {list}); a Flow returns \
         the documents unchanged for an unknown endpoint"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked_with_default_as_catch_all() {
        let served: BTreeSet<String> = ["/foo".to_owned()].into();
        assert_eq!(check_endpoint(&served, "/foo"), Ok(None));
        let err = check_endpoint(&served, "/bar").unwrap_err();
        assert!(err.contains("/bar") && err.contains("/foo"), "{err}");
        let with_default: BTreeSet<String> = ["/foo".to_owned(), "/default".to_owned()].into();
        let note = check_endpoint(&with_default, "/bar").unwrap().unwrap();
        assert!(note.contains("/default accepts any endpoint"), "{note}");
    }
}
