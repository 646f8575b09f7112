//! WebSocket gateways (`ws://`): what the matrix (tests/matrix.rs, cells `v1_ws` and `v2_ws`)
//! does not cover. Against a real Jina 3.34 Flow started with `protocol='websocket'`: a cold
//! start (the event waits while the Flow starts, then runs once), a gateway that never comes
//! (503 after `connect_timeout`) and `check --probe`. Against in-test fake WebSocket servers
//! (fault injection only): the gateway closing with 1011 (unreachable executor → 503, its
//! deadline → 504), an upgrade answered 503 by a proxy (retried, then 503), a connection dropped
//! after the request (503, not retried), an unreadable answer (502), a plain HTTP server (502),
//! and the exact bytes flowbridge sends: the `bytes` subprotocol, one DataRequest frame, then
//! the one-zero-byte end marker.

// Test code: panicking on a broken fixture is the point. The handshake callback's error type is
// tungstenite's (a whole HTTP response), not ours to shrink.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

mod support;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use support::{FlowBridge, FlowKind, HttpResponse, JinaFlow, Protocol, unique, write_config};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn config(url: &str, connect_timeout: &str) -> PathBuf {
    write_config(&format!(
        r#"
gateways:
  main:
    url: {url}
    timeout: 10s
    connect_timeout: {connect_timeout}
    retry: {{ initial_backoff: 50ms, max_backoff: 200ms }}
routes:
  - name: all
    endpoint: /index
"#
    ))
}

fn send(bridge: &FlowBridge, id: &str) -> HttpResponse {
    bridge.request(
        "POST",
        "/",
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", id),
            ("ce-type", "ws.test"),
            ("ce-source", "/ws"),
            ("content-type", "application/json"),
        ],
        br#"{"text": "over websocket"}"#,
    )
}

// ---------------------------------------------------------------------------------------------
// Real Flows.

fn cold_start(kind: FlowKind) {
    let port = support::free_port();
    let bridge = FlowBridge::start(&config(&format!("ws://127.0.0.1:{port}"), "120s"));
    let id = unique("ws-cold");
    let sender = {
        let port = bridge.port;
        let id = id.clone();
        std::thread::spawn(move || {
            support::http_request(
                port,
                "POST",
                "/",
                &[
                    ("ce-specversion", "1.0"),
                    ("ce-id", &id),
                    ("ce-type", "ws.test"),
                    ("ce-source", "/ws"),
                    ("content-type", "application/json"),
                ],
                br#"{"text": "wake up"}"#,
            )
        })
    };
    // The event is already waiting when the Flow starts.
    std::thread::sleep(Duration::from_millis(500));
    let flow = JinaFlow::start_kind(port, kind, Protocol::Websocket);
    let r = sender.join().unwrap();
    assert_eq!(r.status, 202, "{}", r.text());
    let records = flow.records();
    assert_eq!(
        records.len(),
        1,
        "exactly one request reached the Flow: {records:?}"
    );
    assert_eq!(records[0]["docs"][0]["id"], id.as_str());
    assert_eq!(records[0]["docs"][0]["text"], "wake up");
    assert_eq!(records[0]["protocol"], "websocket");

    // check --probe names the protocol and the format; a websocket gateway lists no endpoints.
    let out = std::process::Command::new(support::flowbridge_bin())
        .args(["check", "--probe", "--config"])
        .arg(config(&format!("ws://127.0.0.1:{port}"), "5s"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let format = match kind {
        FlowKind::V1 => "(v1)",
        FlowKind::V2 => "(v2)",
    };
    assert!(
        stdout.contains("websocket, docarray ") && stdout.contains(format),
        "{stdout}"
    );
}

#[test]
fn cold_start_v1() {
    cold_start(FlowKind::V1);
}

#[test]
fn cold_start_v2() {
    cold_start(FlowKind::V2);
}

#[test]
fn a_gateway_that_never_comes_is_503_after_connect_timeout() {
    let port = support::free_port();
    let bridge = FlowBridge::start(&config(&format!("ws://127.0.0.1:{port}"), "1s"));
    let started = Instant::now();
    let r = send(&bridge, &unique("ws-down"));
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "gateway_unavailable");
    assert!(started.elapsed() >= Duration::from_millis(800));
}

// ---------------------------------------------------------------------------------------------
// Fake gateways (fault injection).

/// What a fake gateway does with each connection.
#[derive(Clone, Copy)]
enum Fault {
    /// Upgrade, read the request, close with 1011 and this reason.
    Close1011(&'static str),
    /// Answer the upgrade with HTTP 503 (a proxy with no backend).
    Upgrade503,
    /// Upgrade, read the request, drop the TCP connection.
    Drop,
    /// Upgrade, read the request, answer a frame that is not a DataRequest.
    Garbage,
    /// Not a WebSocket server: answer every request with HTTP 200.
    PlainHttp,
}

/// What the fake gateway saw.
#[derive(Default)]
struct Seen {
    connections: usize,
    subprotocols: Vec<String>,
    /// Sizes of the binary frames received, per connection, in order.
    frames: Vec<Vec<Vec<u8>>>,
}

/// A fake gateway on a loopback port: `/status` says docarray 0.21.1 (v1); `/` upgrades and
/// then does `fault`.
fn fake_gateway(fault: Fault) -> (u16, Arc<Mutex<Seen>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let seen_in = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen_in.clone();
                tokio::spawn(serve(stream, fault, seen));
            }
        });
    });
    (port, seen)
}

async fn serve(mut stream: tokio::net::TcpStream, fault: Fault, seen: Arc<Mutex<Seen>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    // Peek at the request line: GET /status is plain HTTP, GET / the upgrade.
    let mut head = [0u8; 16];
    let Ok(n) = stream.peek(&mut head).await else {
        return;
    };
    let line = String::from_utf8_lossy(&head[..n]).to_string();
    let plain = |status: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    if line.starts_with("GET /status") || matches!(fault, Fault::PlainHttp | Fault::Upgrade503) {
        let mut buf = vec![0u8; 4096];
        let _ = stream.read(&mut buf).await;
        let answer = if line.starts_with("GET /status") {
            plain(
                "200 OK",
                r#"{"jina": {"jina": "3.34.0", "docarray": "0.21.1"}}"#,
            )
        } else if matches!(fault, Fault::Upgrade503) {
            seen.lock().unwrap().connections += 1;
            plain("503 Service Unavailable", "no healthy upstream")
        } else {
            seen.lock().unwrap().connections += 1;
            plain("200 OK", "{}")
        };
        let _ = stream.write_all(answer.as_bytes()).await;
        return;
    }
    let subprotocol = Arc::new(Mutex::new(String::new()));
    let recorded = subprotocol.clone();
    let callback = move |request: &Request, response: Response| {
        let value = request
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .unwrap_or_default();
        *recorded.lock().unwrap() = value;
        // Like jina: the subprotocol is not echoed.
        Ok(response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let index = {
        let mut s = seen.lock().unwrap();
        s.connections += 1;
        s.subprotocols.push(subprotocol.lock().unwrap().clone());
        s.frames.push(Vec::new());
        s.frames.len() - 1
    };
    // Read the request frame (and the end marker when it comes right behind it).
    let mut frames = 0;
    while frames < 2 {
        match tokio::time::timeout(Duration::from_millis(300), ws.next()).await {
            Ok(Some(Ok(Message::Binary(bytes)))) => {
                seen.lock().unwrap().frames[index].push(bytes.to_vec());
                frames += 1;
            }
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    match fault {
        Fault::Close1011(reason) => {
            let _ = ws
                .close(Some(CloseFrame {
                    code: CloseCode::Error,
                    reason: reason.into(),
                }))
                .await;
        }
        Fault::Drop => drop(ws),
        Fault::Garbage => {
            let _ = ws
                .send(Message::Binary(vec![0xff, 0xff, 0xff].into()))
                .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Fault::Upgrade503 | Fault::PlainHttp => {}
    }
}

fn against(fault: Fault, connect_timeout: &str) -> (HttpResponse, Arc<Mutex<Seen>>, Duration) {
    let (port, seen) = fake_gateway(fault);
    let bridge = FlowBridge::start(&config(&format!("ws://127.0.0.1:{port}"), connect_timeout));
    let started = Instant::now();
    let r = send(&bridge, &unique("ws-fault"));
    (r, seen, started.elapsed())
}

#[test]
fn an_unreachable_executor_is_503_without_retry_and_the_wire_is_as_jina_expects() {
    let (r, seen, _) = against(
        Fault::Close1011(
            "Network error while connecting to deployment at {'127.0.0.1:5'}. It may be down.",
        ),
        "30s",
    );
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "gateway_unavailable");
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("(1011)") && message.contains("It may be down"),
        "{message}"
    );
    let seen = seen.lock().unwrap();
    // Accepted, so not retried: one connection.
    assert_eq!(seen.connections, 1);
    assert_eq!(seen.subprotocols, ["bytes"]);
    let frames = &seen.frames[0];
    assert_eq!(frames.len(), 2, "a request frame and the end marker");
    assert_eq!(frames[1], [0u8], "the end marker is one zero byte");
    // The request frame is a DataRequest: field 1 (header) first, carrying the endpoint.
    assert_eq!(
        frames[0][0],
        0x0a,
        "starts with the header field: {:?}",
        String::from_utf8_lossy(&frames[0])
    );
    assert!(
        frames[0].windows(b"/index".len()).any(|w| w == b"/index"),
        "the exec endpoint is in the frame: {:?}",
        String::from_utf8_lossy(&frames[0])
    );
    assert!(
        frames[0]
            .windows(b"over websocket".len())
            .any(|w| w == b"over websocket"),
        "the document text is in the frame"
    );
}

#[test]
fn a_gateway_deadline_close_is_504() {
    let (r, _, _) = against(
        Fault::Close1011(
            "Connection to deployment at {'127.0.0.1:5'} timed out. You can adjust `timeout_send` attribute.",
        ),
        "30s",
    );
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "gateway_timeout");
}

#[test]
fn an_upgrade_answered_503_by_a_proxy_is_retried_until_connect_timeout() {
    let (r, seen, took) = against(Fault::Upgrade503, "1s");
    assert_eq!(r.status, 503, "{}", r.text());
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("HTTP 503"), "{message}");
    assert!(seen.lock().unwrap().connections >= 2, "retried");
    assert!(took >= Duration::from_millis(800), "{took:?}");
}

#[test]
fn a_connection_dropped_after_the_request_is_503_without_retry() {
    let (r, seen, _) = against(Fault::Drop, "30s");
    assert_eq!(r.status, 503, "{}", r.text());
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("after the gateway accepted the request"),
        "{message}"
    );
    assert_eq!(seen.lock().unwrap().connections, 1);
}

#[test]
fn an_unreadable_answer_is_502() {
    let (r, _, _) = against(Fault::Garbage, "30s");
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "gateway_error");
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("unusable response frame"), "{message}");
}

#[test]
fn a_plain_http_server_is_502_naming_the_upgrade() {
    let (r, seen, _) = against(Fault::PlainHttp, "30s");
    assert_eq!(r.status, 502, "{}", r.text());
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("HTTP 200 instead of 101"), "{message}");
    assert_eq!(seen.lock().unwrap().connections, 1);
}
