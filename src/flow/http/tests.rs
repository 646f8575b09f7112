//! Tests of the HTTP gateway client: routes, v1 executor errors, URLs, and an `https://` gateway
//! trusted (or not) through its CA bundle, served in-process with axum.

use super::*;

#[test]
fn v2_routes_fall_back_to_default() {
    let paths: BTreeSet<String> = ["/default".to_owned(), "/foo".to_owned()].into();
    assert_eq!(v2_path("/foo", Some(&paths)), "/foo");
    assert_eq!(v2_path("/bar", Some(&paths)), "/default");
    assert_eq!(v2_path("bar", None), "/bar");
    let only_foo: BTreeSet<String> = ["/foo".to_owned()].into();
    assert_eq!(v2_path("/bar", Some(&only_foo)), "/bar");
}

#[test]
fn v1_status_code_1_is_an_executor_error() {
    let body = json!({"header": {"status": {"code": 1, "description": "ValueError('boom')",
        "exception": {"name": "ValueError", "args": ["boom"], "executor": "Echo"}}}});
    assert_eq!(
        v1_executor_error(body.as_object().unwrap()),
        Some(FlowError::Executor {
            executor: "Echo".into(),
            exception: "ValueError".into(),
            message: "boom".into(),
        })
    );
    let ok = json!({"header": {"status": null}});
    assert_eq!(v1_executor_error(ok.as_object().unwrap()), None);
}

#[test]
fn urls_need_http_schemes_and_no_path() {
    let spec = |u: &str| GatewaySpec::with_defaults("h", u);
    let g = HttpGateway::new(&spec("http://127.0.0.1:8080")).unwrap();
    assert_eq!(g.base, "http://127.0.0.1:8080");
    assert_eq!(
        HttpGateway::new(&spec("http://flow")).unwrap().base,
        "http://flow:80"
    );
    assert!(HttpGateway::new(&spec("http://flow/x")).is_err());
    assert!(HttpGateway::new(&spec("grpc://flow:1")).is_err());
    assert_eq!(
        HttpGateway::new(&spec("https://flow")).unwrap().base,
        "https://flow:443"
    );
}

/// A docarray v1 HTTP gateway behind TLS: `GET /status`, `POST /post` echoing the documents.
/// Counts the POSTs it answers.
async fn v1_https_gateway(
    leaf: &crate::tls::testing::Leaf,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use axum::routing::{get, post};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let posts = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&posts);
    let app = axum::Router::new()
        .route(
            "/status",
            get(|| async { axum::Json(json!({"jina": {"docarray": "0.21.1", "jina": "3.34.0"}})) }),
        )
        .route(
            "/post",
            post(move |axum::Json(body): axum::Json<Value>| {
                let counter = Arc::clone(&counter);
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    axum::Json(json!({
                        "data": body["data"].clone(),
                        "header": {"requestId": "r", "status": {"code": 0}},
                        "parameters": body["parameters"].clone(),
                    }))
                }
            }),
        );
    let addr = crate::tls::testing::serve_https(app, leaf).await;
    (addr, posts)
}

/// The HTTP gateway client of `url`, trusting `ca_pem` (and checking `server_name` when given).
fn https_gateway(url: &str, ca_pem: &str, server_name: Option<&str>) -> HttpGateway {
    let mut spec = GatewaySpec::with_defaults("secure-http", url);
    spec.connect_timeout = std::time::Duration::from_millis(800);
    spec.tls.ca_pem = Some(ca_pem.to_string());
    spec.tls.server_name = server_name.map(str::to_string);
    HttpGateway::new(&spec).unwrap()
}

/// What `FlowClient::send` does with an HTTP gateway: ask it, then POST one document.
async fn call(gateway: &HttpGateway, request_id: &str) -> Result<FlowResponse, SendError> {
    let reported = gateway.ask().await?;
    let head = RequestHead {
        endpoint: "/index".into(),
        target_executor: None,
        parameters: Map::new(),
    };
    let doc = Document {
        id: "doc-1".into(),
        text: Some("hello".into()),
        ..Document::default()
    };
    gateway
        .attempt(&reported, &head, &[&doc], request_id, &[])
        .await
}

/// The text of a failure that is not a final error.
fn not_accepted(result: Result<FlowResponse, SendError>) -> String {
    match result {
        Err(SendError::NotAccepted(cause)) => cause,
        other => panic!("expected NotAccepted, got {other:?}"),
    }
}

#[tokio::test]
async fn https_gateway_trusted_through_its_ca_bundle() {
    use crate::tls::testing::Ca;
    use std::sync::atomic::Ordering;
    let ca = Ca::new("cluster-local ca");
    let leaf = ca.leaf(&["flow.flowbridge.svc.cluster.local", "127.0.0.1"]);
    let (addr, posts) = v1_https_gateway(&leaf).await;
    let bundle = format!("{}{}", Ca::new("unrelated").pem, ca.pem);
    let by_ip = https_gateway(&format!("https://{addr}"), &bundle, None);
    let response = call(&by_ip, "tls-1").await.unwrap();
    assert_eq!(response.docs[0].id, "doc-1");
    assert_eq!(response.docs[0].text.as_deref(), Some("hello"));
    // tls_server_name: the certificate is checked for that name, not the URL's host.
    let by_name = https_gateway(
        &format!("https://localhost:{}", addr.port()),
        &bundle,
        Some("flow.flowbridge.svc.cluster.local"),
    );
    call(&by_name, "tls-2").await.unwrap();
    // Without it, localhost is not a name of the certificate.
    let wrong_name = https_gateway(&format!("https://localhost:{}", addr.port()), &bundle, None);
    let cause = not_accepted(call(&wrong_name, "tls-3").await);
    assert!(cause.to_lowercase().contains("certificate"), "{cause}");
    assert_eq!(posts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn https_gateway_with_an_untrusted_certificate_is_not_accepted_naming_it() {
    use crate::tls::testing::Ca;
    use std::sync::atomic::Ordering;
    let leaf = Ca::new("the gateway's ca").leaf(&["127.0.0.1"]);
    let (addr, posts) = v1_https_gateway(&leaf).await;
    let gateway = https_gateway(&format!("https://{addr}"), &Ca::new("another ca").pem, None);
    // Not accepted: the client retries it, then answers Unavailable with this cause.
    let cause = not_accepted(call(&gateway, "untrusted").await);
    assert!(
        cause.to_lowercase().contains("certificate"),
        "the cause names the certificate problem: {cause}"
    );
    assert_eq!(posts.load(Ordering::SeqCst), 0);
}
