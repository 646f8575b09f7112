//! One scenario run with one client, on its own paused-clock runtime, and its figures.

use std::time::Duration;

use serde::Serialize;

use super::scenario::{ClientKind, Run, Scenario};
use super::{knative, scenario};

/// One run's figures (the table's row).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub client: &'static str,
    pub events: u64,
    pub lost: u64,
    /// Answered 2xx although the Flow never ran them (must be 0).
    pub unprocessed_ok: u64,
    pub retries: u64,
    /// Answered events / (last answer − first send).
    pub events_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub replica_seconds: f64,
    pub flow_requests: u64,
    pub docs_per_request: f64,
    pub max_replicas: u32,
    /// From the last answer until no pod was left (`None`: not within the run).
    pub back_to_zero_s: Option<f64>,
    /// Virtual seconds simulated, and the wall-clock seconds it took.
    pub simulated_s: f64,
    pub wall_s: f64,
}

#[derive(Serialize)]
pub struct Series {
    pub revision: Vec<knative::Sample>,
    pub client: Vec<scenario::ClientSample>,
}

/// One scenario with one client, on its own paused-clock runtime.
pub fn simulate(scenario: &Scenario, kind: ClientKind) -> Result<(Summary, Series), String> {
    let wall = std::time::Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let start = tokio::time::Instant::now();
        let run = Run::new(scenario, kind, 1)?;
        run.play().await;
        // One more second so that the last samples are taken.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let simulated = start.elapsed().as_secs_f64();
        let totals = run.revision.totals();
        let samples = run.revision.samples();
        let mut ledger = run.ledger.lock().unwrap_or_else(|p| p.into_inner());
        let mut latencies = std::mem::take(&mut ledger.latencies);
        latencies.sort_by(f32::total_cmp);
        let pct = |p: f64| -> f64 {
            if latencies.is_empty() {
                return 0.0;
            }
            let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
            f64::from(latencies[i]) * 1000.0
        };
        let span = match (ledger.first_send, ledger.last_answer) {
            (Some(a), Some(b)) if b > a => (b - a).as_secs_f64(),
            _ => 0.0,
        };
        let back_to_zero = ledger.last_answer.and_then(|last| {
            let from = last.as_secs() as usize;
            samples
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, s)| s.pods == 0)
                .map(|(i, _)| (i + 1) as f64 - last.as_secs_f64())
        });
        let summary = Summary {
            client: kind.as_str(),
            events: latencies.len() as u64,
            lost: ledger.lost,
            unprocessed_ok: ledger.unprocessed_ok,
            retries: ledger.retries,
            events_per_second: if span > 0.0 {
                latencies.len() as f64 / span
            } else {
                0.0
            },
            p50_ms: pct(0.5),
            p99_ms: pct(0.99),
            replica_seconds: totals.replica_seconds,
            flow_requests: totals.requests,
            docs_per_request: if totals.requests > 0 {
                totals.docs as f64 / totals.requests as f64
            } else {
                0.0
            },
            max_replicas: totals.max_ready,
            back_to_zero_s: back_to_zero,
            simulated_s: simulated,
            wall_s: wall.elapsed().as_secs_f64(),
        };
        let series = Series {
            revision: samples,
            client: std::mem::take(&mut ledger.series),
        };
        Ok((summary, series))
    })
}
