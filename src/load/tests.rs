//! Tests of `flowbridge load`: URL parsing, the requests it builds, bad options, and runs
//! against a small in-process HTTP server (closed loop, open loop, errors).

use super::*;

fn opts(url: &str) -> LoadOptions {
    LoadOptions {
        url: url.into(),
        concurrency: 2,
        duration: Duration::from_millis(300),
        rate: None,
        ty: "t".into(),
        source: "/s".into(),
        data: Some(r#"{"text":"hi"}"#.into()),
        structured: false,
        timeout: Duration::from_secs(5),
        progress: false,
    }
}

#[test]
fn target_parsing() {
    let t = parse_target("http://127.0.0.1:9000/x?y=1").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.addr, "127.0.0.1:9000");
    assert_eq!(t.host, "127.0.0.1:9000");
    assert_eq!(t.path, "/x?y=1");
    let t = parse_target("http://localhost").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.addr, "localhost:80");
    assert_eq!(t.path, "/");
    let e = parse_target("https://x:1/").unwrap_err();
    assert!(e.contains("only http://"), "{e}");
    assert!(parse_target("127.0.0.1:80").is_err());
    assert!(parse_target("http:///x").is_err());
}

#[test]
fn binary_requests_carry_the_event_with_their_own_id() {
    let o = opts("http://127.0.0.1:1/");
    let template = Template::new(&o).unwrap_or_else(|e| panic!("{e}"));
    let target = parse_target(&o.url).unwrap_or_else(|e| panic!("{e}"));
    let r = template
        .request(&target, "run-0-7")
        .unwrap_or_else(|e| panic!("{e}"));
    let h = &r.headers().clone();
    assert_eq!(h["ce-id"], "run-0-7");
    assert_eq!(h["ce-specversion"], "1.0");
    assert_eq!(h["ce-type"], "t");
    assert_eq!(h["ce-source"], "/s");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["host"], "127.0.0.1:1");
    assert_eq!(r.method(), Method::POST);
    // The binding decodes it back to the same event.
    let body = futures_body(r);
    let decoded = cloudevents::decode(h, &body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(decoded.events[0].id, "run-0-7");
    assert_eq!(
        decoded.events[0].data,
        Some(Data::Json(serde_json::json!({"text": "hi"})))
    );
}

fn futures_body(r: Request<Full<Bytes>>) -> Bytes {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        r.into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default()
    })
}

#[test]
fn structured_requests_are_cloudevents_json() {
    let mut o = opts("http://127.0.0.1:1/");
    o.structured = true;
    let template = Template::new(&o).unwrap_or_else(|e| panic!("{e}"));
    let target = parse_target(&o.url).unwrap_or_else(|e| panic!("{e}"));
    let r = template
        .request(&target, "abc")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.headers()["content-type"], "application/cloudevents+json");
    assert!(!r.headers().contains_key("ce-id"));
    let headers = r.headers().clone();
    let body = futures_body(r);
    let decoded = cloudevents::decode(&headers, &body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(decoded.events[0].id, "abc");
    assert_eq!(decoded.events[0].ty, "t");
}

#[test]
fn bad_options_are_refused() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut o = opts("http://127.0.0.1:1/");
    o.data = Some("{not json".into());
    let e = rt.block_on(run(&o)).unwrap_err();
    assert!(e.contains("--data is not valid JSON"), "{e}");
    let mut o = opts("http://127.0.0.1:1/");
    o.concurrency = 0;
    assert!(rt.block_on(run(&o)).unwrap_err().contains("--concurrency"));
    let mut o = opts("http://127.0.0.1:1/");
    o.rate = Some(0.0);
    assert!(rt.block_on(run(&o)).unwrap_err().contains("--rate"));
}

/// A minimal HTTP/1.1 server answering every request with `status`, counting ids.
async fn tiny_server(status: u16) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::routing::post;
    let ids = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = ids.clone();
    let app = axum::Router::new().route(
        "/",
        post(move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                let id = headers
                    .get("ce-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                if let Ok(mut s) = seen.lock() {
                    s.push(id);
                }
                axum::http::StatusCode::from_u16(status)
                    .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/"), ids)
}

#[tokio::test]
async fn closed_loop_counts_are_consistent_and_ids_unique() {
    let (url, ids) = tiny_server(202).await;
    let summary = run(&opts(&url)).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(summary.sent > 0);
    assert_eq!(summary.sent, summary.answered);
    assert_eq!(summary.ok, summary.answered);
    assert_eq!(summary.errors, 0);
    assert_eq!(summary.status.get(&202), Some(&summary.answered));
    assert!(summary.transport_errors.is_empty());
    let latency = summary.latency_ms.unwrap_or_else(|| panic!("no latency"));
    assert!(latency.p50 <= latency.p99 && latency.p99 <= latency.max);
    assert_eq!(summary.kept_up, None);
    let ids = ids.lock().unwrap_or_else(|e| panic!("{e}")).clone();
    assert_eq!(ids.len() as u64, summary.answered);
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "event ids repeat");
}

#[tokio::test]
async fn non_2xx_answers_are_errors_by_status() {
    let (url, _) = tiny_server(503).await;
    let summary = run(&opts(&url)).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(summary.answered > 0);
    assert_eq!(summary.ok, 0);
    assert_eq!(summary.errors, summary.answered);
    assert_eq!(summary.status.get(&503), Some(&summary.answered));
}

#[tokio::test]
async fn open_loop_sends_at_the_rate() {
    let (url, _) = tiny_server(202).await;
    let mut o = opts(&url);
    o.rate = Some(100.0);
    o.duration = Duration::from_millis(500);
    let summary = run(&o).await.unwrap_or_else(|e| panic!("{e}"));
    // Slots at 0, 10, …, 490 ms: never more than the 50 scheduled before the end (a worker
    // may see the end before it claims the last slot on a busy machine).
    assert!((40..=50).contains(&summary.sent), "{}", summary.sent);
    assert_eq!(summary.ok, summary.sent);
    assert!(summary.lag_ms.is_some());
    assert_eq!(summary.mode, "open");
}

#[tokio::test]
async fn open_loop_reports_when_it_cannot_keep_up() {
    let (url, _) = tiny_server(202).await;
    let mut o = opts(&url);
    o.concurrency = 1;
    // 100,000 events/s on one connection is out of reach: 30,000 slots in 300 ms.
    o.rate = Some(100_000.0);
    let summary = run(&o).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(summary.sent < 30_000, "{}", summary.sent);
    assert_eq!(summary.kept_up, Some(false));
    assert!(summary.to_text().contains("could NOT keep up"));
}

#[tokio::test]
async fn a_closed_port_gives_transport_errors() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        l.local_addr().map(|a| a.port()).unwrap_or(0)
    };
    let summary = run(&opts(&format!("http://127.0.0.1:{port}/")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.answered, 0);
    assert!(
        summary
            .transport_errors
            .get("connect")
            .copied()
            .unwrap_or(0)
            > 0
    );
    assert_eq!(summary.errors, summary.sent);
    assert!(summary.latency_ms.is_none());
    let first = summary.first_transport_error.unwrap_or_default();
    assert!(first.contains(&format!("127.0.0.1:{port}")), "{first}");
}
