//! The benchmarks' null Jina gateway and direct gRPC baseline (see docs/benchmarks.md):
//!
//! ```text
//! cargo run --release --features null-gateway --example null_gateway -- serve PORT
//! cargo run --release --features null-gateway --example null_gateway -- direct grpc://127.0.0.1:PORT RATE SECONDS
//! ```
//!
//! `serve` answers every `/jina.JinaRPC/Call` on 127.0.0.1:PORT at once (prints `NULL GATEWAY
//! READY port=PORT`). `direct` calls a gateway with flowbridge's own `FlowClient` (one
//! one-document request per call, the request flowbridge makes for a small JSON event), open
//! loop at RATE calls/s for SECONDS, and prints one JSON object: `{"sent", "ok", "errors",
//! "throughput", "latency_ms": {p50, p90, p99, …}}` — the baseline that flowbridge's added
//! latency is measured against.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use flowbridge::config::Overrides;
use flowbridge::flow::FlowClient;
use flowbridge::load::stats::Histogram;
use flowbridge::model::{Document, FlowRequest};
use serde_json::json;
use tokio::time::Instant;

/// Calls in flight at most in `direct` mode (as `flowbridge load`'s workers).
const WORKERS: usize = 32;

fn usage() -> ExitCode {
    eprintln!(
        "usage: null_gateway serve PORT\n       null_gateway direct grpc://HOST:PORT RATE SECONDS"
    );
    ExitCode::from(64)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["serve", port] => {
            let Ok(port) = port.parse::<u16>() else {
                return usage();
            };
            runtime.block_on(serve(port))
        }
        ["direct", url, rate, seconds] => {
            let (Ok(rate), Ok(seconds)) = (rate.parse::<f64>(), seconds.parse::<f64>()) else {
                return usage();
            };
            runtime.block_on(direct(url, rate, Duration::from_secs_f64(seconds)))
        }
        _ => usage(),
    }
}

async fn serve(port: u16) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("NULL GATEWAY READY port={port}");
    match flowbridge::flow::testing::null::serve(listener).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn direct(url: &str, rate: f64, duration: Duration) -> ExitCode {
    // The gateway exactly as `flowbridge serve --gateway URL` configures it (all defaults).
    let overrides = Overrides {
        gateway: Some(url.to_string()),
        ..Overrides::default()
    };
    let spec = match flowbridge::config::load(None, &overrides) {
        Ok(config) => config.gateways.into_values().next(),
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            return ExitCode::from(64);
        }
    };
    let Some(spec) = spec else {
        eprintln!("error: the embedded default config has no gateway");
        return ExitCode::from(64);
    };
    let client = match FlowClient::new(&spec) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(64);
        }
    };
    let start = Instant::now();
    let end = start + duration;
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let client = client.clone();
        let next = next.clone();
        tasks.spawn(async move {
            let mut latency = Histogram::new();
            let (mut ok, mut errors) = (0u64, 0u64);
            loop {
                let slot = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let due = start + Duration::from_secs_f64(slot as f64 / rate);
                if due >= end {
                    break;
                }
                tokio::time::sleep_until(due).await;
                let id = uuid::Uuid::new_v4().simple().to_string();
                let doc = Document {
                    id: id.clone(),
                    text: Some("hello from the direct baseline".into()),
                    ..Document::default()
                };
                let request = FlowRequest {
                    endpoint: "/".into(),
                    target_executor: None,
                    parameters: serde_json::Map::new(),
                    docs: vec![doc],
                };
                let sent = Instant::now();
                match client.call(request, &id).await {
                    Ok(_) => {
                        latency.record_duration(sent.elapsed());
                        ok += 1;
                    }
                    Err(_) => errors += 1,
                }
            }
            (latency, ok, errors)
        });
    }
    let mut latency = Histogram::new();
    let (mut ok, mut errors) = (0u64, 0u64);
    while let Some(Ok((h, o, e))) = tasks.join_next().await {
        latency.merge(&h);
        ok += o;
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let out = json!({
        "url": url,
        "rate": rate,
        "sent": ok + errors,
        "ok": ok,
        "errors": errors,
        "elapsed_s": elapsed,
        "throughput": (ok + errors) as f64 / elapsed,
        "latency_ms": latency.summary(),
    });
    println!("{out}");
    if ok > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
