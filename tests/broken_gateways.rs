//! Broken gateways: a `flowbridge serve` process in front of in-test fake gateways that
//! misbehave (accept and stay silent, answer garbage, a truncated protobuf, the other docarray,
//! reset the connection, a reply sink that hangs). Each case asserts the status and error code
//! the README documents, that the answer came within the route's deadline + 1 s, and that
//! flowbridge's resources (VmRSS, open file descriptors from `/proc/<pid>`, tokio tasks from
//! `/metrics`) are back to their baseline once the fake closed its connections. Each case prints
//! one line of figures (docs/reliability.md):
//!
//! ```text
//! cargo test --test broken_gateways -- --nocapture
//! ```
//!
//! The clocks are small (`timeout: 1s`, `connect_timeout: 1s`) so the suite stays fast. Each
//! case runs twice against the same flowbridge: the first round is the warm-up (the baseline is
//! taken after it and after well-behaved traffic), the second is measured.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use flowbridge::flow::testing::{Docarray, Mode, Seen, serve_as, start};
use http_body_util::StreamBody;
use hyper::body::Frame;
use support::{FlowBridge, HttpResponse, http_request, unique, write_config};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio_stream::Stream;

/// The gateway clocks of every case.
const TIMEOUT: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The route's `reply.timeout`.
const REPLY_TIMEOUT: Duration = Duration::from_secs(1);

/// How a fake misbehaves.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// Accepts TCP and never sends a byte (no HTTP/2 preface, no SETTINGS).
    Silent,
    /// Completes HTTP/2 (`_status` answers UNIMPLEMENTED: a v1 gateway) and never answers the
    /// Call.
    HangCall,
    /// Answers the connection with bytes that are not HTTP/2.
    Garbage,
    /// Answers the Call with a gRPC message that is a truncated protobuf, then status OK.
    Truncated,
    /// Sends the Call's response headers, then resets the TCP connection (SO_LINGER 0).
    ResetAfterHeaders,
    /// Resets every TCP connection as soon as it is accepted (before HTTP/2).
    ResetOnAccept,
    /// A healthy docarray v2 gateway (the crate's fake) for a gateway configured `docarray: v1`.
    V2Gateway,
    /// A plain HTTP reply sink that accepts and never answers (the gateway is healthy).
    SilentSink,
}

/// What a fake saw.
#[derive(Default)]
struct Counters {
    connections: AtomicUsize,
    calls: AtomicUsize,
}

/// A fake on its own runtime: stopping it drops every connection it holds.
struct Fake {
    rt: Runtime,
    counters: Arc<Counters>,
    seen: Option<Arc<Seen>>,
}

impl Fake {
    fn start(port: u16, fault: Fault) -> Fake {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(bind(port));
        let counters = Arc::new(Counters::default());
        let mut seen = None;
        if fault == Fault::V2Gateway {
            seen = Some(rt.block_on(serve_as(
                listener,
                Mode::Echo,
                Docarray::V2("0.40.0"),
                std::future::pending(),
            )));
        } else {
            let c = Arc::clone(&counters);
            rt.spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    c.connections.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(serve(stream, fault, Arc::clone(&c)));
                }
            });
        }
        Fake { rt, counters, seen }
    }

    /// Calls received (`/jina.JinaRPC/Call`, or POSTs for a sink).
    fn calls(&self) -> usize {
        match &self.seen {
            Some(seen) => seen.calls.load(Ordering::SeqCst),
            None => self.counters.calls.load(Ordering::SeqCst),
        }
    }

    fn connections(&self) -> usize {
        self.counters.connections.load(Ordering::SeqCst)
    }

    /// Close every connection and the listener.
    fn stop(self) {
        self.rt.shutdown_timeout(Duration::from_secs(1));
    }
}

/// The listener on `127.0.0.1:port` (again: the port of the previous round).
async fn bind(port: u16) -> TcpListener {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => return listener,
            Err(e) if Instant::now() < deadline => {
                eprintln!("[fake] bind {port}: {e}; again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("bind 127.0.0.1:{port}: {e}"),
        }
    }
}

/// Read and discard until the peer closes.
async fn drain(stream: &mut TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

async fn serve(mut stream: TcpStream, fault: Fault, counters: Arc<Counters>) {
    match fault {
        Fault::Silent => drain(&mut stream).await,
        Fault::SilentSink => {
            // One request counted, then silence.
            let mut buf = vec![0u8; 16 * 1024];
            if matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {
                counters.calls.fetch_add(1, Ordering::SeqCst);
            }
            drain(&mut stream).await;
        }
        Fault::Garbage => {
            let _ = stream
                .write_all(b"\x00garbage\xff\xfe this is not HTTP/2 at all\r\n\r\n")
                .await;
            drain(&mut stream).await;
        }
        Fault::ResetOnAccept => {
            let _ = stream.set_zero_linger();
            drop(stream);
        }
        Fault::HangCall | Fault::Truncated | Fault::ResetAfterHeaders => {
            h2(stream, fault, counters).await
        }
        Fault::V2Gateway => unreachable!("served by the crate's fake"),
    }
}

type Body = StreamBody<Pin<Box<dyn Stream<Item = Result<Frame<Bytes>, Infallible>> + Send>>>;

/// An HTTP/2 gRPC server on one connection that answers the Call according to `fault`.
async fn h2(stream: TcpStream, fault: Fault, counters: Arc<Counters>) {
    if fault == Fault::ResetAfterHeaders {
        // Dropping the socket then sends a TCP RST instead of a FIN.
        let _ = stream.set_zero_linger();
    }
    let reset = Arc::new(tokio::sync::Notify::new());
    let notify = Arc::clone(&reset);
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let counters = Arc::clone(&counters);
        let notify = Arc::clone(&notify);
        async move { Ok::<_, Infallible>(answer(req, fault, &counters, notify).await) }
    });
    let conn = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        // Dropping the connection drops the socket (an RST, see above).
        () = reset.notified() => {}
    }
}

fn grpc_response(
    headers: &[(&str, &str)],
    frames: Vec<Frame<Bytes>>,
    then_hang: bool,
) -> hyper::Response<Body> {
    let mut builder = hyper::Response::builder()
        .status(200)
        .header("content-type", "application/grpc");
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let items = tokio_stream::iter(frames.into_iter().map(Ok));
    let stream: Pin<Box<dyn Stream<Item = Result<Frame<Bytes>, Infallible>> + Send>> = if then_hang
    {
        Box::pin(tokio_stream::StreamExt::chain(
            items,
            tokio_stream::pending(),
        ))
    } else {
        Box::pin(items)
    };
    builder.body(StreamBody::new(stream)).unwrap()
}

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    fault: Fault,
    counters: &Counters,
    reset: Arc<tokio::sync::Notify>,
) -> hyper::Response<Body> {
    if req.uri().path() != "/jina.JinaRPC/Call" {
        // `_status` (and anything else): Trailers-Only UNIMPLEMENTED, a gateway without the
        // status service, i.e. docarray v1.
        return grpc_response(&[("grpc-status", "12")], Vec::new(), false);
    }
    counters.calls.fetch_add(1, Ordering::SeqCst);
    match fault {
        Fault::HangCall => std::future::pending().await,
        Fault::Truncated => {
            // One gRPC message of 5 bytes: field 1 (header), length-delimited, announcing 50
            // bytes of which 3 follow.
            let message = Bytes::from_static(&[0, 0, 0, 0, 5, 0x0a, 0x32, 1, 2, 3]);
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            grpc_response(
                &[],
                vec![Frame::data(message), Frame::trailers(trailers)],
                false,
            )
        }
        Fault::ResetAfterHeaders => {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                reset.notify_one();
            });
            grpc_response(&[], Vec::new(), true)
        }
        _ => unreachable!("{fault:?} is not an HTTP/2 fake"),
    }
}

/// VmRSS (KiB) and open file descriptors of the server process, and its tokio tasks alive
/// (`flowbridge_runtime_tasks`).
#[derive(Debug, Clone, Copy)]
struct Usage {
    rss_kib: u64,
    fds: usize,
    tasks: u64,
}

fn usage(bridge: &FlowBridge) -> Usage {
    let pid = bridge.pid().expect("flowbridge is running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"));
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let tasks = bridge
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix("flowbridge_runtime_tasks "))
        .and_then(|v| v.trim().parse().ok())
        .expect("flowbridge_runtime_tasks in /metrics");
    Usage {
        rss_kib,
        fds,
        tasks,
    }
}

/// Usage once the fds and tasks are back within 2 of `base` (or after 5 s), given time to
/// settle.
fn settled(bridge: &FlowBridge, base: Option<Usage>) -> Usage {
    let deadline = Instant::now() + Duration::from_secs(5);
    std::thread::sleep(Duration::from_millis(200));
    loop {
        let now = usage(bridge);
        let back = base.is_none_or(|b| {
            now.fds <= b.fds + 2 && now.tasks <= b.tasks + 2 && now.rss_kib * 10 <= b.rss_kib * 11
        });
        if back || Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn post(port: u16, ty: &str) -> HttpResponse {
    let id = unique("broken");
    http_request(
        port,
        "POST",
        "/",
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", &id),
            ("ce-type", ty),
            ("ce-source", "/broken/tests"),
            ("content-type", "application/json"),
        ],
        br#"{"text": "hello"}"#,
    )
}

/// What one case expects.
struct Case {
    name: &'static str,
    fault: Fault,
    status: u16,
    code: &'static str,
    /// The clock that bounds the answer (the answer must come within it + 1 s).
    deadline: Duration,
}

/// What the measured round saw.
struct Outcome {
    calls: usize,
    connections: usize,
}

/// Runs `case` against a fresh flowbridge: a warm-up round, the baseline, the measured round.
fn run(case: &Case) -> Outcome {
    let good_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (good, _) = good_rt.block_on(start(Mode::Echo));
    let port = support::free_port();
    let t = TIMEOUT.as_millis();
    let ct = CONNECT_TIMEOUT.as_millis();
    let (bad_url, reply) = if case.fault == Fault::SilentSink {
        (
            format!("grpc://{good}"),
            format!(
                "\n    reply: {{type: broken.reply, to: \"http://127.0.0.1:{port}/\", timeout: 1s}}"
            ),
        )
    } else {
        (format!("grpc://127.0.0.1:{port}"), String::new())
    };
    let config = write_config(&format!(
        r#"
gateways:
  good: {{url: "grpc://{good}", timeout: {t}ms, connect_timeout: {ct}ms, docarray: v1}}
  bad: {{url: "{bad_url}", timeout: {t}ms, connect_timeout: {ct}ms, docarray: v1,
         retry: {{initial_backoff: 50ms, max_backoff: 200ms}}}}
routes:
  - name: good
    gateway: good
    filters: [{{exact: {{type: broken.good}}}}]
  - name: bad
    gateway: bad{reply}
"#
    ));
    let bridge = FlowBridge::start(&config);
    for _ in 0..20 {
        assert_eq!(post(bridge.port, "broken.good").status, 202);
    }
    let mut base = None;
    let mut figures = None;
    for round in ["warm-up", "measured"] {
        let fake = Fake::start(port, case.fault);
        let started = Instant::now();
        let r = post(bridge.port, "broken.bad");
        let took = started.elapsed();
        let (calls, connections) = (fake.calls(), fake.connections());
        fake.stop();
        let body = r.text();
        assert_eq!(r.status, case.status, "{} ({round}): {body}", case.name);
        assert_eq!(
            r.json()["error"]["code"],
            case.code,
            "{} ({round}): {body}",
            case.name
        );
        assert!(
            took <= case.deadline + Duration::from_secs(1),
            "{} ({round}): answered after {took:?}, deadline {:?}: {body}",
            case.name,
            case.deadline
        );
        for _ in 0..5 {
            assert_eq!(post(bridge.port, "broken.good").status, 202);
        }
        let after = settled(&bridge, base);
        if base.is_none() {
            base = Some(after);
        } else {
            figures = Some((after, took, calls, connections, body));
        }
    }
    let base = base.unwrap();
    let (after, took, calls, connections, body) = figures.unwrap();
    eprintln!(
        "[broken_gateways] case={} status={} code={} seconds={:.2} rss_kib={}->{} fds={}->{} \
         tasks={}->{} calls={calls} connections={connections}",
        case.name,
        case.status,
        case.code,
        took.as_secs_f64(),
        base.rss_kib,
        after.rss_kib,
        base.fds,
        after.fds,
        base.tasks,
        after.tasks,
    );
    eprintln!("[broken_gateways]   answer: {body}");
    assert!(
        after.fds <= base.fds + 2 && after.fds + 2 >= base.fds,
        "{}: fds {} after, baseline {}",
        case.name,
        after.fds,
        base.fds
    );
    assert!(
        after.tasks <= base.tasks + 2 && after.tasks + 2 >= base.tasks,
        "{}: {} tokio tasks after, baseline {}",
        case.name,
        after.tasks,
        base.tasks
    );
    assert!(
        after.rss_kib * 10 <= base.rss_kib * 11,
        "{}: VmRSS {} KiB after, baseline {} KiB",
        case.name,
        after.rss_kib,
        base.rss_kib
    );
    drop(bridge);
    drop(good_rt);
    Outcome { calls, connections }
}

#[test]
fn accepts_tcp_and_never_sends_http2_settings() {
    run(&Case {
        name: "silent TCP (no HTTP/2 preface)",
        fault: Fault::Silent,
        status: 504,
        code: "gateway_timeout",
        deadline: TIMEOUT,
    });
}

#[test]
fn completes_http2_and_never_answers_the_call() {
    let seen = run(&Case {
        name: "HTTP/2 up, Call never answered",
        fault: Fault::HangCall,
        status: 504,
        code: "gateway_timeout",
        deadline: TIMEOUT,
    });
    assert_eq!(seen.calls, 1, "a call the gateway has is not retried");
}

#[test]
fn answers_garbage_bytes() {
    // Not a response: a gateway that does not speak HTTP/2 is not accepting, retried like a
    // cold one until `connect_timeout` (README, Status codes), then 503.
    let seen = run(&Case {
        name: "garbage bytes (not HTTP/2)",
        fault: Fault::Garbage,
        status: 503,
        code: "gateway_unavailable",
        deadline: CONNECT_TIMEOUT,
    });
    assert!(
        seen.connections >= 2,
        "a request never accepted is retried: {} connections",
        seen.connections
    );
    assert_eq!(seen.calls, 0);
}

#[test]
fn answers_a_truncated_protobuf() {
    let seen = run(&Case {
        name: "truncated protobuf answer",
        fault: Fault::Truncated,
        status: 502,
        code: "gateway_error",
        deadline: TIMEOUT,
    });
    assert_eq!(seen.calls, 1, "an answered call is not retried");
}

#[test]
fn a_docarray_v2_gateway_for_a_v1_route() {
    let seen = run(&Case {
        name: "docarray v2 gateway, route v1",
        fault: Fault::V2Gateway,
        status: 502,
        code: "gateway_error",
        deadline: TIMEOUT,
    });
    assert_eq!(seen.calls, 0, "v1 bytes never reach a v2 gateway");
}

#[test]
fn resets_the_connection_after_the_response_headers() {
    let seen = run(&Case {
        name: "TCP reset after response headers",
        fault: Fault::ResetAfterHeaders,
        status: 503,
        code: "gateway_unavailable",
        deadline: TIMEOUT,
    });
    assert_eq!(seen.calls, 1, "an accepted call is not retried");
}

#[test]
fn resets_every_connection_before_http2() {
    let seen = run(&Case {
        name: "TCP reset on accept (not accepted)",
        fault: Fault::ResetOnAccept,
        status: 503,
        code: "gateway_unavailable",
        deadline: CONNECT_TIMEOUT,
    });
    assert!(
        seen.connections >= 2,
        "a request never accepted is retried: {} connections",
        seen.connections
    );
}

#[test]
fn a_reply_sink_that_never_answers() {
    let seen = run(&Case {
        name: "reply sink accepts, never answers",
        fault: Fault::SilentSink,
        status: 502,
        code: "reply_sink_failed",
        deadline: REPLY_TIMEOUT,
    });
    assert_eq!(seen.calls, 1);
}
