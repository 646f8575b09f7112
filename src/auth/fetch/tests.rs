//! Tests of the discovery / JWKS fetch against in-test servers on 127.0.0.1: the request it
//! sends, the 1 MiB limit, redirects not followed, HTTPS with a `ca_file` next to the system
//! roots, and the message of each failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;

use super::*;
use crate::tls::testing::{Ca, serve_https};

fn options() -> FetchOptions<'static> {
    FetchOptions {
        ca_file: None,
        token_file: None,
        timeout: Duration::from_secs(5),
    }
}

async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn sends_accept_and_the_token_file_and_parses_the_json() {
    let app = Router::new().route(
        "/jwks",
        get(|headers: HeaderMap| async move {
            let seen = |name| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
            };
            format!(
                r#"{{"accept": "{}", "authorization": "{}"}}"#,
                seen(header::ACCEPT),
                seen(header::AUTHORIZATION)
            )
        }),
    );
    let addr = serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "sa-token\n").unwrap();
    let options = FetchOptions {
        token_file: Some(&token),
        ..options()
    };
    let doc = get_json(&format!("http://{addr}/jwks"), &options)
        .await
        .unwrap();
    assert_eq!(doc["accept"], "application/json");
    assert_eq!(doc["authorization"], "Bearer sa-token");
}

#[tokio::test]
async fn refuses_big_bodies_redirects_and_non_json() {
    let followed = Arc::new(AtomicUsize::new(0));
    let hits = followed.clone();
    let app = Router::new()
        .route(
            "/big",
            get(|| async { format!("[{}0]", "0,".repeat(MAX_DOCUMENT / 2)) }),
        )
        .route(
            "/moved",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/target")], "") }),
        )
        .route(
            "/target",
            get(move || async move {
                hits.fetch_add(1, Ordering::SeqCst);
                "{}"
            }),
        )
        .route("/text", get(|| async { "not json" }));
    let addr = serve(app).await;
    let fetch = |path: &str| {
        let url = format!("http://{addr}{path}");
        async move { get_json(&url, &options()).await.unwrap_err() }
    };
    let e = fetch("/big").await;
    assert!(
        e.ends_with("/big: cannot read the body: length limit exceeded"),
        "{e}"
    );
    let e = fetch("/moved").await;
    assert!(e.ends_with("/moved: answered 302 Found: "), "{e}");
    assert_eq!(followed.load(Ordering::SeqCst), 0);
    let e = fetch("/text").await;
    assert!(e.contains("/text: the body is not JSON: "), "{e}");
    let e = fetch("/nowhere").await;
    assert!(e.contains("answered 404 Not Found"), "{e}");
}

#[tokio::test]
async fn names_unreachable_hosts_slow_servers_and_other_schemes() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let e = get_json(&format!("http://127.0.0.1:{port}/jwks"), &options())
        .await
        .unwrap_err();
    assert!(
        e.contains(&format!("cannot connect to 127.0.0.1:{port}: ")),
        "{e}"
    );

    let app = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "{}"
        }),
    );
    let addr = serve(app).await;
    let options = FetchOptions {
        timeout: Duration::from_millis(200),
        ..options()
    };
    let e = get_json(&format!("http://{addr}/slow"), &options)
        .await
        .unwrap_err();
    assert!(e.ends_with("/slow: no answer within 0.2s"), "{e}");

    let e = get_json("ftp://127.0.0.1/jwks", &options)
        .await
        .unwrap_err();
    assert!(
        e.ends_with("only http and https URLs can be fetched"),
        "{e}"
    );
}

#[tokio::test]
async fn https_trusts_the_ca_file_and_names_a_failed_handshake() {
    let ca = Ca::new("issuer ca");
    let leaf = ca.leaf(&["127.0.0.1"]);
    let addr = serve_https(
        Router::new().route("/jwks", get(|| async { r#"{"keys": []}"# })),
        &leaf,
    )
    .await;
    let url = format!("https://{addr}/jwks");

    let e = get_json(&url, &options()).await.unwrap_err();
    assert!(
        e.contains(&format!("TLS handshake with 127.0.0.1:{}", addr.port())),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let with_ca = FetchOptions {
        ca_file: Some(&ca_file),
        ..options()
    };
    assert_eq!(
        get_json(&url, &with_ca).await.unwrap()["keys"],
        serde_json::json!([])
    );

    let missing = dir.path().join("missing.crt");
    let e = get_json(
        &url,
        &FetchOptions {
            ca_file: Some(&missing),
            ..options()
        },
    )
    .await
    .unwrap_err();
    assert!(e.contains("cannot read ca_file "), "{e}");
}
