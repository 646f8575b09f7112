//! [`FlowClient`] against the in-process fake Jina gateway (`flowbridge::flow::testing`, feature
//! `test-util`): echo round trips, one HTTP/2 connection, executor errors, cold starts and
//! retries, deadlines, gRPC status mapping, docarray format detection (v1, v2, none, a gateway
//! replaced under the client), and `grpcs://` gateways trusted through a CA bundle.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use flowbridge::flow::testing::{
    Docarray, Mode, free_port, serve_as, serve_on, start, start_as, start_tls,
};
use flowbridge::flow::{FlowClient, FlowError};
use flowbridge::model::{DocarrayMode, Document, FlowRequest, GatewaySpec, Tensor};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tonic::Code;

/// A CA that signs leaf certificates (rcgen, as `src/tls.rs`'s tests make them).
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pem: String,
}

/// A leaf certificate and its key, PEM.
struct Leaf {
    cert_pem: String,
    key_pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Ca {
            issuer: Issuer::new(params, key),
            pem: cert.pem(),
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    fn leaf(&self, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

fn client(addr: SocketAddr, timeout: Duration) -> FlowClient {
    let mut spec = GatewaySpec::with_defaults("fake", &format!("grpc://{addr}"));
    spec.timeout = timeout;
    spec.connect_timeout = timeout;
    spec.max_message_bytes = 64 * 1024;
    FlowClient::new(&spec).unwrap()
}

fn request() -> FlowRequest {
    FlowRequest {
        endpoint: "/index".into(),
        target_executor: Some("echo".into()),
        parameters: json!({"tenant": "t1", "k": 3})
            .as_object()
            .cloned()
            .unwrap(),
        docs: vec![Document {
            id: "doc-1".into(),
            text: Some("hello".into()),
            tags: json!({"lang": "en"}).as_object().cloned().unwrap(),
            ..Document::default()
        }],
    }
}

#[tokio::test]
async fn echo_round_trip_sends_header_parameters_and_docs() {
    let (addr, seen) = start(Mode::Echo).await;
    let response = client(addr, Duration::from_secs(5))
        .call(request(), "rid-1")
        .await
        .unwrap();
    assert_eq!(response.request_id, "rid-1");
    assert_eq!(
        Value::Object(response.parameters),
        json!({"tenant": "t1", "k": 3})
    );
    assert_eq!(response.docs.len(), 1);
    let doc = &response.docs[0];
    assert_eq!(doc.id, "doc-1");
    assert_eq!(doc.text.as_deref(), Some("hello"));
    assert_eq!(
        Value::Object(doc.tags.clone()),
        json!({"lang": "en", "seen": 1})
    );
    let embedding = doc.embedding.as_ref().unwrap();
    assert_eq!(embedding.values, vec![0.5, 0.25]);

    let requests = seen.requests();
    let sent = &requests[0];
    assert_eq!(sent.request_id, "rid-1");
    assert_eq!(sent.exec_endpoint.as_deref(), Some("/index"));
    assert_eq!(sent.target_executor.as_deref(), Some("echo"));
    assert!(
        sent.grpc_timeout.is_some(),
        "the call deadline travels as grpc-timeout"
    );
}

#[tokio::test]
async fn concurrent_calls_share_one_connection() {
    let (addr, seen) = start(Mode::Echo).await;
    let flow = client(addr, Duration::from_secs(5));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let flow = flow.clone();
        tasks.push(tokio::spawn(async move {
            flow.call(request(), &format!("rid-{i}")).await
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let response = task.await.unwrap().unwrap();
        assert_eq!(response.request_id, format!("rid-{i}"));
    }
    assert_eq!(seen.calls.load(Ordering::SeqCst), 16);
    assert_eq!(seen.peers(), 1, "one HTTP/2 connection");
}

#[tokio::test]
async fn executor_error_names_executor_and_exception() {
    let (addr, _) = start(Mode::ExecutorError).await;
    let err = client(addr, Duration::from_secs(5))
        .call(request(), "rid")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        FlowError::Executor {
            executor: "Echo".into(),
            exception: "ValueError".into(),
            message: "boom".into(),
        }
    );
}

#[tokio::test]
async fn cold_gateway_is_retried_until_it_starts() {
    let addr = free_port().await;
    let flow = client(addr, Duration::from_secs(10));
    let started = Instant::now();
    let call = tokio::spawn(async move { flow.call(request(), "cold").await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let listener = TcpListener::bind(addr).await.unwrap();
    let seen = serve_on(listener, Mode::Echo).await;
    let response = call.await.unwrap().unwrap();
    assert_eq!(response.request_id, "cold");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        seen.calls.load(Ordering::SeqCst),
        1,
        "only the accepted attempt reached it"
    );
}

#[tokio::test]
async fn gateway_never_up_is_unavailable_after_the_timeout() {
    let addr = free_port().await;
    let timeout = Duration::from_millis(1500);
    let started = Instant::now();
    let err = client(addr, timeout)
        .call(request(), "down")
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    match &err {
        FlowError::Unavailable { gateway, message } => {
            assert_eq!(gateway, "fake");
            assert!(message.contains("attempts"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(elapsed >= Duration::from_millis(1300), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
}

#[tokio::test]
async fn slow_gateway_hits_the_deadline() {
    let (addr, _) = start(Mode::Slow(Duration::from_secs(5))).await;
    let started = Instant::now();
    let err = client(addr, Duration::from_millis(400))
        .call(request(), "slow")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        FlowError::Deadline {
            gateway: "fake".into(),
            timeout_ms: 400
        }
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn other_grpc_codes_are_gateway_errors_without_retry() {
    let (addr, seen) = start(Mode::Fail(Code::Internal)).await;
    let err = client(addr, Duration::from_secs(5))
        .call(request(), "x")
        .await
        .unwrap_err();
    match &err {
        FlowError::Gateway { gateway, message } => {
            assert_eq!(gateway, "fake");
            assert!(message.contains("Internal"), "{message}");
            assert!(message.contains("fake gateway says no"), "{message}");
        }
        other => panic!("expected Gateway, got {other:?}"),
    }
    assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn gateway_deadline_exceeded_status_is_deadline() {
    let (addr, _) = start(Mode::Fail(Code::DeadlineExceeded)).await;
    let err = client(addr, Duration::from_secs(5))
        .call(request(), "x")
        .await
        .unwrap_err();
    assert!(matches!(err, FlowError::Deadline { .. }), "{err:?}");
}

#[tokio::test]
async fn trailers_only_unavailable_is_retried_until_the_deadline() {
    let (addr, seen) = start(Mode::Fail(Code::Unavailable)).await;
    let err = client(addr, Duration::from_millis(800))
        .call(request(), "x")
        .await
        .unwrap_err();
    assert!(matches!(err, FlowError::Unavailable { .. }), "{err:?}");
    assert!(seen.calls.load(Ordering::SeqCst) >= 2, "retried");
}

#[tokio::test]
async fn unavailable_after_a_stub_response_is_not_retried_and_wins() {
    let (addr, seen) = start(Mode::StubThenUnavailable).await;
    let err = client(addr, Duration::from_secs(3))
        .call(request(), "x")
        .await
        .unwrap_err();
    match &err {
        FlowError::Unavailable { message, .. } => {
            assert!(message.contains("Communication error"), "{message}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(
        seen.calls.load(Ordering::SeqCst),
        1,
        "accepted: never retried"
    );
}

#[tokio::test]
async fn foreign_request_id_and_empty_stream_are_gateway_errors() {
    let (addr, _) = start(Mode::ForeignId).await;
    let err = client(addr, Duration::from_secs(3))
        .call(request(), "mine")
        .await
        .unwrap_err();
    match &err {
        FlowError::Gateway { message, .. } => {
            assert!(message.contains("someone-else"), "{message}")
        }
        other => panic!("expected Gateway, got {other:?}"),
    }

    let (addr, _) = start(Mode::NoResponse).await;
    let err = client(addr, Duration::from_secs(3))
        .call(request(), "mine")
        .await
        .unwrap_err();
    match &err {
        FlowError::Gateway { message, .. } => {
            assert!(message.contains("without a response"), "{message}")
        }
        other => panic!("expected Gateway, got {other:?}"),
    }
}

#[tokio::test]
async fn responses_above_max_message_bytes_are_refused() {
    let (addr, _) = start(Mode::Big(100 * 1024)).await;
    let err = client(addr, Duration::from_secs(3))
        .call(request(), "big")
        .await
        .unwrap_err();
    assert!(matches!(err, FlowError::Gateway { .. }), "{err:?}");

    let (addr, _) = start(Mode::Big(10 * 1024)).await;
    let ok = client(addr, Duration::from_secs(3))
        .call(request(), "small")
        .await;
    assert!(ok.is_ok(), "{ok:?}");
}

#[tokio::test]
async fn invalid_documents_fail_before_sending() {
    let (addr, seen) = start(Mode::Echo).await;
    let mut req = request();
    req.docs[0].blob = Some(bytes::Bytes::from_static(b"x"));
    let err = client(addr, Duration::from_secs(3))
        .call(req, "bad")
        .await
        .unwrap_err();
    match &err {
        FlowError::InvalidRequest { message } => {
            assert!(message.starts_with("docs[0]:"), "{message}")
        }
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn configured_retry_codes_are_retried_only_before_acceptance() {
    let (addr, seen) = start(Mode::Fail(Code::ResourceExhausted)).await;
    // Not in the default list: one attempt, a gateway error.
    let err = client(addr, Duration::from_secs(2))
        .call(request(), "x")
        .await
        .unwrap_err();
    assert!(matches!(err, FlowError::Gateway { .. }), "{err:?}");
    assert_eq!(seen.calls.load(Ordering::SeqCst), 1);

    let (addr, seen) = start(Mode::Fail(Code::ResourceExhausted)).await;
    let mut spec = GatewaySpec::with_defaults("fake", &format!("grpc://{addr}"));
    spec.connect_timeout = Duration::from_millis(600);
    spec.retry.initial_backoff = Duration::from_millis(20);
    spec.retry.codes = vec!["UNAVAILABLE".into(), "RESOURCE_EXHAUSTED".into()];
    let err = FlowClient::new(&spec)
        .unwrap()
        .call(request(), "x")
        .await
        .unwrap_err();
    match &err {
        FlowError::Unavailable { message, .. } => {
            assert!(message.contains("ResourceExhausted"), "{message}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(seen.calls.load(Ordering::SeqCst) >= 2, "retried");
}

fn client_with(addr: SocketAddr, docarray: DocarrayMode) -> FlowClient {
    let mut spec = GatewaySpec::with_defaults("fake", &format!("grpc://{addr}"));
    spec.timeout = Duration::from_secs(5);
    spec.connect_timeout = Duration::from_secs(5);
    spec.docarray = docarray;
    FlowClient::new(&spec).unwrap()
}

#[tokio::test]
async fn auto_detects_a_v2_gateway_and_speaks_doclist() {
    let (addr, seen) = start_as(Docarray::V2("0.40.0")).await;
    let flow = client_with(addr, DocarrayMode::Auto);
    let mut req = request();
    req.docs[0].embedding = Some(Tensor {
        shape: vec![2],
        values: vec![0.5, 0.25],
    });
    let response = flow.call(req.clone(), "v2-1").await.unwrap();
    assert_eq!(response.request_id, "v2-1");
    let doc = &response.docs[0];
    assert_eq!(doc.id, "doc-1");
    assert_eq!(doc.text.as_deref(), Some("hello"));
    assert_eq!(doc.embedding, req.docs[0].embedding);
    assert_eq!(
        Value::Object(doc.tags.clone()),
        json!({"lang": "en", "seen": 1})
    );
    assert_eq!(
        Value::Object(response.parameters),
        json!({"tenant": "t1", "k": 3})
    );
    // What the gateway received is docarray v2: id as a typed text node.
    assert_eq!(seen.v2_ids(), vec![vec![Some("doc-1".to_owned())]]);
    // Asked once, then cached.
    flow.call(request(), "v2-2").await.unwrap();
    assert_eq!(seen.status_calls.load(Ordering::SeqCst), 1);
    assert_eq!(seen.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn auto_detects_v1_and_gateways_without_status_are_v1() {
    let (addr, seen) = start_as(Docarray::V1("0.21.1")).await;
    let flow = client_with(addr, DocarrayMode::Auto);
    flow.call(request(), "a").await.unwrap();
    assert_eq!(seen.doc_ids(), vec![vec!["doc-1".to_owned()]]);
    assert_eq!(seen.status_calls.load(Ordering::SeqCst), 1);

    let (addr, seen) = start_as(Docarray::Unreported).await;
    let flow = client_with(addr, DocarrayMode::Auto);
    let response = flow.call(request(), "b").await.unwrap();
    assert_eq!(response.docs[0].id, "doc-1");
    assert_eq!(seen.doc_ids(), vec![vec!["doc-1".to_owned()]]);
}

#[tokio::test]
async fn a_configured_v1_never_sends_to_a_v2_gateway() {
    let (addr, seen) = start_as(Docarray::V2("0.40.0")).await;
    let flow = client_with(addr, DocarrayMode::V1);
    let err = flow.call(request(), "x").await.unwrap_err();
    match &err {
        FlowError::Gateway { message, .. } => {
            assert!(
                message.contains("configured docarray: v1") && message.contains("0.40.0 (v2)"),
                "{message}"
            )
        }
        other => panic!("expected Gateway, got {other:?}"),
    }
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0, "nothing was sent");
    // The matching setting works.
    let flow = client_with(addr, DocarrayMode::V2);
    assert!(flow.call(request(), "y").await.is_ok());
}

#[tokio::test]
async fn v2_executor_errors_are_executor_errors() {
    let (addr, _) = start_as(Docarray::V2("0.40.0")).await;
    let flow = client_with(addr, DocarrayMode::Auto);
    let mut req = request();
    req.docs[0].tags.insert("raise".into(), json!(true));
    let err = flow.call(req, "x").await.unwrap_err();
    assert_eq!(
        err,
        FlowError::Executor {
            executor: "Echo".into(),
            exception: "ValueError".into(),
            message: "boom".into(),
        }
    );
}

#[tokio::test]
async fn detection_waits_for_a_cold_gateway_and_is_redone_after_a_connection_loss() {
    // Cold: nothing listens yet; detection failing is "not accepted" and retried.
    let addr = free_port().await;
    let flow = client_with(addr, DocarrayMode::Auto);
    let call = {
        let flow = flow.clone();
        tokio::spawn(async move { flow.call(request(), "cold").await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let listener = TcpListener::bind(addr).await.unwrap();
    let v1 = serve_as(listener, Mode::Echo, Docarray::V1("0.21.1"), async {
        let _ = stop_rx.await;
    })
    .await;
    call.await.unwrap().unwrap();
    assert_eq!(v1.status_calls.load(Ordering::SeqCst), 1);
    assert_eq!(v1.calls.load(Ordering::SeqCst), 1);

    // The gateway is replaced by a docarray v2 one on the same address.
    let _ = stop_tx.send(());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let v2 = serve_as(
        listener,
        Mode::Echo,
        Docarray::V2("0.40.0"),
        std::future::pending(),
    )
    .await;
    // The first call after the switch may meet the dead connection (Unavailable); the client then
    // forgets what it knew, so a later call asks again and speaks v2.
    let mut answer = flow.call(request(), "after-1").await;
    if answer.is_err() {
        answer = flow.call(request(), "after-2").await;
    }
    let response = answer.unwrap();
    assert_eq!(response.docs[0].id, "doc-1");
    assert_eq!(
        v2.status_calls.load(Ordering::SeqCst),
        1,
        "asked the new gateway"
    );
    assert_eq!(v2.v2_ids().len(), 1, "and sent it docarray v2");
}

fn grpcs_client(url: &str, ca_pem: &str, server_name: Option<&str>) -> FlowClient {
    let mut spec = GatewaySpec::with_defaults("secure", url);
    spec.connect_timeout = Duration::from_millis(800);
    spec.tls.ca_pem = Some(ca_pem.to_string());
    spec.tls.server_name = server_name.map(str::to_string);
    FlowClient::new(&spec).unwrap()
}

#[tokio::test]
async fn grpcs_gateway_trusted_through_its_ca_bundle() {
    let ca = Ca::new("cluster-local ca");
    let leaf = ca.leaf(&["flow.flowbridge.svc.cluster.local", "127.0.0.1"]);
    let (addr, seen) = start_tls(&leaf.cert_pem, &leaf.key_pem).await;
    // A bundle with an unrelated CA first, as trust bundles hold several.
    let bundle = format!("{}{}", Ca::new("unrelated").pem, ca.pem);
    let by_ip = grpcs_client(&format!("grpcs://{addr}"), &bundle, None);
    let response = by_ip.call(request(), "tls-1").await.unwrap();
    assert_eq!(response.docs[0].id, "doc-1");
    // tls_server_name: the certificate is checked for that name, not the URL's host.
    let by_name = grpcs_client(
        &format!("grpcs://localhost:{}", addr.port()),
        &bundle,
        Some("flow.flowbridge.svc.cluster.local"),
    );
    by_name.call(request(), "tls-2").await.unwrap();
    assert_eq!(seen.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn grpcs_gateway_with_an_untrusted_certificate_is_unavailable_naming_it() {
    let leaf = Ca::new("the gateway's ca").leaf(&["127.0.0.1"]);
    let (addr, seen) = start_tls(&leaf.cert_pem, &leaf.key_pem).await;
    let client = grpcs_client(&format!("grpcs://{addr}"), &Ca::new("another ca").pem, None);
    let err = client.call(request(), "untrusted").await.unwrap_err();
    let text = err.to_string();
    match &err {
        FlowError::Unavailable { gateway, message } => {
            assert_eq!(gateway, "secure");
            assert!(
                message.to_lowercase().contains("certificate"),
                "the cause names the certificate problem: {message}"
            );
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(text.starts_with("gateway secure unavailable"), "{text}");
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
}
