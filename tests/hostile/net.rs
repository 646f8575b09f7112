//! Socket helpers the hostile clients share.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

pub async fn connect(port: u16) -> Result<TcpStream, String> {
    let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(loopback(port)))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(stream)
}

pub fn deadline(at: Instant) -> tokio::time::Instant {
    tokio::time::Instant::from_std(at)
}

pub fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// min–max of some durations.
pub fn spread(times: &[Duration]) -> String {
    match (times.iter().min(), times.iter().max()) {
        (Some(lo), Some(hi)) => format!("{:.2}–{:.2}s", lo.as_secs_f64(), hi.as_secs_f64()),
        _ => "–".to_string(),
    }
}

/// The byte length of the first complete HTTP/1.1 response in `raw` (Content-Length or
/// chunked), if it is all there.
pub fn complete_response(raw: &[u8]) -> Option<usize> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        let end = raw[split..].windows(5).position(|w| w == b"0\r\n\r\n")?;
        return Some(split + end + 5);
    }
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap_or(0));
    (raw.len() >= split + length).then_some(split + length)
}

/// Collects task results, a panicked task as an error.
pub async fn join_all<T>(
    tasks: Vec<tokio::task::JoinHandle<Result<T, String>>>,
) -> Vec<Result<T, String>> {
    let mut results = Vec::with_capacity(tasks.len());
    for t in tasks {
        results.push(t.await.unwrap_or_else(|e| Err(format!("task failed: {e}"))));
    }
    results
}

/// Errors grouped with their counts, for a failure message.
pub fn tally(errors: &[String]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for e in errors {
        *counts.entry(e.as_str()).or_default() += 1;
    }
    counts
        .iter()
        .take(5)
        .map(|(e, n)| format!("{n}× {e}"))
        .collect::<Vec<_>>()
        .join("; ")
}
