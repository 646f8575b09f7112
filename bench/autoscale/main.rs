//! The autoscaling simulator: flowbridge's own dispatcher (`flowbridge::dispatch`, unchanged)
//! in front of a modelled Knative Service of Flow replicas, in virtual time — tokio's paused
//! clock jumps from one timer to the next, so a 10-minute scenario takes seconds.
//!
//! * [`kpa`] — Knative's autoscaler decision (stable and panic windows, rates, bounds, scale to
//!   zero), each rule citing the knative/serving source it follows.
//! * [`knative`] — the revision: pods with cold starts and modelled service times, the
//!   activator, routing, drain.
//! * [`scenario`] — scenario files and their senders, for the direct per-event client and for
//!   flowbridge.
//!
//! `bench/autoscale.sh` runs every scenario and draws the charts; this binary alone:
//!
//! ```text
//! cargo bench --bench autoscale -- [--out DIR] [--concurrency auto|N|{min: N, max: M}]
//!     [--only direct|flowbridge] [SCENARIO.yaml ...]
//! ```
//!
//! It prints the table (markdown) and writes `DIR/<scenario>.json` with both runs' summaries
//! and per-second series.

mod duration;
mod knative;
mod kpa;
mod report;
mod scenario;

use std::path::PathBuf;

use report::{Series, Summary, simulate};
use scenario::{ClientKind, Scenario};
use serde::Serialize;

#[derive(Serialize)]
struct Report {
    scenario: String,
    about: String,
    runs: Vec<(Summary, Series)>,
}

struct Args {
    out: PathBuf,
    /// Tell flowbridge the Flow's target and max-scale (off: `--no-autoscale`).
    autoscale: bool,
    concurrency: Option<String>,
    only: Option<ClientKind>,
    files: Vec<PathBuf>,
}

fn args() -> Result<Args, String> {
    let mut out = PathBuf::from("target/autoscale");
    let mut concurrency = None;
    let mut only = None;
    let mut autoscale = true;
    let mut files = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = it.next().ok_or("--out needs a directory")?.into(),
            "--concurrency" => concurrency = Some(it.next().ok_or("--concurrency needs a value")?),
            "--no-autoscale" => autoscale = false,
            "--only" => {
                only = Some(match it.next().as_deref() {
                    Some("direct") => ClientKind::Direct,
                    Some("flowbridge") => ClientKind::Flowbridge,
                    other => return Err(format!("--only direct|flowbridge, not {other:?}")),
                })
            }
            // `cargo bench` passes --bench to harness-less benches.
            "--bench" => {}
            f if f.ends_with(".yaml") => files.push(f.into()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if files.is_empty() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/autoscale/scenarios");
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        found.sort();
        files = found;
    }
    Ok(Args {
        out,
        autoscale,
        concurrency,
        only,
        files,
    })
}

fn main() {
    if let Err(e) = run() {
        eprintln!("autoscale: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args = args()?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    println!(
        "| scenario | client | events | events/s | p50 ms | p99 ms | replica-s | Flow requests | docs/request | max replicas | back to 0 s | lost | wall s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut failed = Vec::new();
    for file in &args.files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let mut scenario: Scenario =
            serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        scenario.flowbridge.autoscale &= args.autoscale;
        if let Some(c) = &args.concurrency {
            let value: serde_norway::Value =
                serde_norway::from_str(c).map_err(|e| format!("--concurrency {c:?}: {e}"))?;
            scenario
                .flowbridge
                .gateway
                .insert("concurrency".into(), value);
        }
        let mut runs = Vec::new();
        for kind in [ClientKind::Direct, ClientKind::Flowbridge] {
            if args.only.is_some_and(|o| o != kind) {
                continue;
            }
            let (summary, series) = simulate(&scenario, kind)?;
            println!(
                "| {} | {} | {} | {:.1} | {:.0} | {:.0} | {:.0} | {} | {:.1} | {} | {} | {} | {:.1} |",
                scenario.name,
                summary.client,
                summary.events,
                summary.events_per_second,
                summary.p50_ms,
                summary.p99_ms,
                summary.replica_seconds,
                summary.flow_requests,
                summary.docs_per_request,
                summary.max_replicas,
                summary
                    .back_to_zero_s
                    .map_or("—".to_string(), |s| format!("{s:.0}")),
                summary.lost,
                summary.wall_s,
            );
            if summary.lost > 0 || summary.unprocessed_ok > 0 {
                failed.push(format!(
                    "{} / {}: {} lost, {} answered 2xx without a Flow run",
                    scenario.name, summary.client, summary.lost, summary.unprocessed_ok
                ));
            }
            runs.push((summary, series));
        }
        let report = Report {
            scenario: scenario.name.clone(),
            about: scenario.about.clone(),
            runs,
        };
        let path = args.out.join(format!("{}.json", scenario.name));
        let json = serde_json::to_string(&report).map_err(|e| e.to_string())?;
        std::fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}
