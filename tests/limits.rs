//! The server limits of `limits:` one at a time, on a `flowbridge serve` with short limits: what
//! the client sees (the connection closed, 408, 431), when, and the `flowbridge_limits_total`
//! series that counted it. No Flow is needed: no request here reaches a gateway. The same limits
//! under load, beside a well-behaved sender and the real Flow, are tests/hostile.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{FlowBridge, write_config};

const CONFIG: &str = "\
limits: {head_timeout: 1s, body_timeout: 1s, idle_timeout: 2s, max_header_bytes: 16KiB, \
max_headers: 20, max_connections: 8}
gateways: {default: {url: \"grpc://127.0.0.1:9\", connect_timeout: 1s}}
routes: [{name: all}]
";

/// Everything the server sends until it closes the connection, and how long that took.
fn until_closed(mut stream: TcpStream) -> (String, Duration) {
    let start = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("connection not closed within 10 s: {e}"),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

fn connect(bridge: &FlowBridge) -> TcpStream {
    TcpStream::connect(("127.0.0.1", bridge.port)).expect("connect")
}

fn limit_count(bridge: &FlowBridge, limit: &str) -> u64 {
    let count = gauge(
        bridge,
        &format!("flowbridge_limits_total{{limit=\"{limit}\"}}"),
    );
    u64::try_from(count).expect("a count")
}

/// The count of `limit` once it reached `want` (the server counts just after it closed the
/// connection, so a scrape right after the close may come first); panics after 5 s.
fn wait_count(bridge: &FlowBridge, limit: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = limit_count(bridge, limit);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{limit}: counted {got}, want {want}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value of the series `name` (with its labels) on `/metrics`.
fn gauge(bridge: &FlowBridge, name: &str) -> i64 {
    bridge
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .trim()
        .parse()
        .expect("a value")
}

#[test]
fn each_limit_answers_as_documented_and_is_counted() {
    let config = write_config(CONFIG);
    let bridge = FlowBridge::start(&config);

    // A head that never ends: closed without an answer at head_timeout (1 s), not idle_timeout.
    let mut slow = connect(&bridge);
    slow.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nce-id: 1")
        .expect("write");
    let (got, took) = until_closed(slow);
    assert_eq!(got, "", "a half-read head gets no answer");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(1900),
        "closed after {took:?}, head_timeout is 1 s"
    );
    wait_count(&bridge, "head_timeout", 1);

    // A body trickled after a complete head: 408 body_timeout, Connection: close, then closed.
    let mut trickle = connect(&bridge);
    trickle
        .write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: t1\r\nce-type: t\r\n\
              ce-source: /s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        )
        .expect("write");
    let (got, took) = until_closed(trickle);
    assert!(got.starts_with("HTTP/1.1 408 "), "{got}");
    assert!(got.contains("connection: close"), "{got}");
    assert!(got.contains("\"code\":\"body_timeout\""), "{got}");
    assert!(got.contains("limits.body_timeout (1s)"), "{got}");
    assert!(
        took < Duration::from_millis(1900),
        "answered after {took:?}"
    );
    wait_count(&bridge, "body_timeout", 1);

    // Over max_header_bytes (16 KiB), and over max_headers (20): 431, closed.
    let mut big = connect(&bridge);
    let mut head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 20 << 10));
    head.extend_from_slice(b"\r\n\r\n");
    let _ = big.write_all(&head);
    let (got, _) = until_closed(big);
    assert!(got.starts_with("HTTP/1.1 431 "), "{got}");
    let mut many = connect(&bridge);
    let mut head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..30 {
        head.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    many.write_all(&head).expect("write");
    let (got, _) = until_closed(many);
    assert!(got.starts_with("HTTP/1.1 431 "), "{got}");
    wait_count(&bridge, "header_too_large", 2);

    // A keep-alive connection that answered a request, then idles: closed at idle_timeout (2 s)
    // after that answer.
    let mut idle = connect(&bridge);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let (got, took) = until_closed(idle);
    assert!(got.starts_with("HTTP/1.1 200 "), "{got}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_millis(3500),
        "closed after {took:?}, idle_timeout is 2 s"
    );
    wait_count(&bridge, "idle_timeout", 1);

    // max_connections (8): the ninth is accepted and closed at once; the eight still work.
    let held: Vec<TcpStream> = (0..8).map(|_| connect(&bridge)).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while gauge(&bridge, "flowbridge_connections_open") < 8 {
        assert!(Instant::now() < deadline, "8 connections not seen open");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (got, took) = until_closed(connect(&bridge));
    assert_eq!(got, "");
    assert!(took < Duration::from_millis(500), "refused after {took:?}");
    wait_count(&bridge, "max_connections", 1);
    let mut first = held.into_iter().next().expect("one");
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let (got, _) = until_closed(first);
    assert!(got.starts_with("HTTP/1.1 200 "), "{got}");

    // Every connection above is gone once its idle_timeout passed: the gauge comes back to 0.
    let deadline = Instant::now() + Duration::from_secs(10);
    while gauge(&bridge, "flowbridge_connections_open") != 0 {
        assert!(
            Instant::now() < deadline,
            "connections still open after 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(gauge(&bridge, "flowbridge_runtime_tasks") > 0);
}
