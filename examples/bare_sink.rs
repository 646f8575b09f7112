//! The floor of an HTTP sink in Rust on this machine, for the CPU-per-event comparison in
//! `bench/bench.py` (docs/benchmarks.md): an axum server, on the same tokio runtime settings as
//! `flowbridge serve`, that reads each request's body and answers `202 Accepted` without looking
//! at it — no CloudEvent decode, no routing, no Flow.
//!
//! ```text
//! cargo run --release --example bare_sink -- PORT
//! ```
//!
//! Prints `BARE SINK READY port=PORT` once it listens on 127.0.0.1:PORT.

use std::process::ExitCode;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;

async fn accept(_body: Bytes) -> StatusCode {
    StatusCode::ACCEPTED
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(port) = std::env::args().nth(1).and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("usage: bare_sink PORT");
        return ExitCode::from(64);
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bare_sink: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::from(69);
        }
    };
    println!("BARE SINK READY port={port}");
    let app = Router::new().route("/", post(accept));
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare_sink: {e}");
            ExitCode::FAILURE
        }
    }
}
