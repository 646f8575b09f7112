//! Hostile clients (issue 17, item 2): a `flowbridge serve` process in front of the real Jina
//! Flow (`support::shared_flow`, docarray v1 over gRPC) while a well-behaved sender POSTs real
//! CloudEvents at a steady rate, and one hostile client case at a time:
//!
//! 1. slowloris: 500 connections trickling an HTTP/1.1 head, one byte a second;
//! 2. a trickled body: 50 complete heads (`Content-Length: 1000`), then the body a byte a second;
//! 3. a 1 MiB header line; 4. 10,000 small header fields (60,000 bytes: `max_headers` at work);
//! 5. HTTP/2 rapid reset on h2c: HEADERS then RST_STREAM(CANCEL), 50 pairs a write, a new
//!    connection as soon as the server ends the last, for 5 s; 5b. the same paced (HEADERS, 1 ms,
//!    RST_STREAM), so that each stream is reset after the server started its request;
//! 6. a SETTINGS flood and 7. a PING flood on h2c, never reading a byte;
//! 8. a client that pipelines requests on one connection and never reads the responses;
//! 9. 5,000 idle keep-alive connections.
//!
//! Every hostile byte is written by hand on raw tokio sockets (`tests/hostile/http1.rs`,
//! `tests/hostile/h2.rs`; the sender is `tests/hostile/sender.rs`), on a runtime of one worker
//! thread at nice +10 (the cases share the machine's cores with flowbridge and the Flow; a
//! remote attacker would not take CPU time from them). Each case asserts:
//!
//! - the well-behaved sender lost nothing (every event answered 2xx); its p99 latency during the
//!   case against its p99 in a quiet window measured right before it (the machine is shared: a
//!   fresh quiet window keeps the comparison fair) is printed, and held to at most 2× with
//!   `FLOWBRIDGE_HOSTILE_STRICT=1` (`bench/hostile.sh`): a latency ratio on a shared machine is a
//!   benchmark's figure, the rest is behaviour;
//! - flowbridge's VmRSS (sampled every 100 ms from `/proc/<pid>/status`) stayed at most 64 MiB
//!   during the case, and is back within +10 % of its baseline afterwards; its open file
//!   descriptors (`/proc/<pid>/fd`) are back within ±2 of the baseline, and the admin gauges
//!   `flowbridge_connections_open` (exactly) and `flowbridge_runtime_tasks` (within 8) are back
//!   to theirs;
//! - what the case itself must end with (see each case), and for the limit cases that
//!   `flowbridge_limits_total{limit="…"}` rose by one for each hostile connection (5b: that
//!   `reset_flood` rose, README "Server limits").
//!
//! The sender: 4 keep-alive HTTP/1.1 connections, 200 events/s in all (open loop: each event has
//! a scheduled time, and its latency is measured from that time, so a stalled connection counts
//! for the events queued behind it), unique ids, and at the end every event answered 2xx must be
//! in the Flow's record. The limits are short (`head_timeout: 2s`, `body_timeout: 3s`,
//! `idle_timeout: 3s`) so the suite takes about two minutes. It prints one line per case as it
//! goes and the table at the end, with flowbridge's and the machine's CPU in each window (to tell
//! a case's cost from the neighbours' noise), and writes every event's latency to
//! `target/tmp/hostile-samples-<pid>.csv`:
//!
//! ```text
//! cargo test --test hostile -- --nocapture
//! ```
//!
//! A failing check does not stop the suite: every case runs, the table is printed, and the test
//! then fails listing every check that did not hold.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

// The suite's own modules, in tests/hostile/ (not test targets of their own).
#[path = "hostile/h2.rs"]
mod h2;
#[path = "hostile/http1.rs"]
mod http1;
#[path = "hostile/net.rs"]
mod net;
#[path = "hostile/resources.rs"]
mod resources;
#[path = "hostile/sender.rs"]
mod sender;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use h2::{FRAME_PING, FRAME_SETTINGS, flood, frame, rapid_reset};
use http1::{
    IDLE_CONNECTIONS, idle_connections, never_reads, oversized_heads, slowloris, trickled_body,
};
use resources::{Cpu, Sampler, Scrape, Usage, show, usage};
use sender::{Sample, Sender};
use support::{FlowBridge, release_bin, shared_flow, write_config};

/// `limits.head_timeout` in the test config.
const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// `limits.body_timeout` in the test config.
const BODY_TIMEOUT: Duration = Duration::from_secs(3);
/// `limits.idle_timeout` in the test config.
const IDLE_TIMEOUT: Duration = Duration::from_secs(3);
/// How late after its clock a limit may act (timers, a loaded 2-core machine).
const SLACK: Duration = Duration::from_secs(2);
/// How late the never-reading client may be closed after its writes stalled, beyond
/// `idle_timeout`.
const STALL_SLACK: Duration = Duration::from_secs(6);

/// Most VmRSS flowbridge may have during a case.
const RSS_CEILING_KIB: u64 = 64 * 1024;
/// Well-behaved events per second, over [`SENDER_CONNECTIONS`] keep-alive connections.
const RATE: u32 = 200;
const SENDER_CONNECTIONS: u32 = 4;
/// The quiet window measured before each case.
const QUIET: Duration = Duration::from_secs(5);
/// Most the case p99 may be, as a multiple of the quiet p99.
const P99_RATIO: f64 = 2.0;
/// Marks a missed p99 target among the failures. A latency ratio on a shared 2-core machine is a
/// benchmark figure, not a behaviour: it is printed always, and fails the test only with
/// `FLOWBRIDGE_HOSTILE_STRICT=1` (`bench/hostile.sh`), so CI gates on what flowbridge does
/// (nothing lost, every limit on time, memory and descriptors back) and the benchmark on the
/// target.
const P99_MISS: &str = "p99 target missed: ";
/// How long the baseline may take to come back after a case.
const SETTLE: Duration = Duration::from_secs(6);

#[derive(Debug, Clone, Copy)]
enum Case {
    Slowloris,
    TrickledBody,
    HugeHeader,
    ManyHeaders,
    RapidReset,
    PacedRapidReset,
    SettingsFlood,
    PingFlood,
    NeverReads,
    IdleConnections,
}

const CASES: [Case; 10] = [
    Case::Slowloris,
    Case::TrickledBody,
    Case::HugeHeader,
    Case::ManyHeaders,
    Case::RapidReset,
    Case::PacedRapidReset,
    Case::SettingsFlood,
    Case::PingFlood,
    Case::NeverReads,
    Case::IdleConnections,
];

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Slowloris => "slowloris (500 heads, 1 byte/s)",
            Case::TrickledBody => "trickled body (50, 1 byte/s)",
            Case::HugeHeader => "1 MiB header line",
            Case::ManyHeaders => "10,000 header fields",
            Case::RapidReset => "h2c rapid reset",
            Case::PacedRapidReset => "h2c rapid reset, paced",
            Case::SettingsFlood => "h2c SETTINGS flood",
            Case::PingFlood => "h2c PING flood",
            Case::NeverReads => "pipelines, never reads",
            Case::IdleConnections => "5,000 idle keep-alives",
        }
    }

    async fn run(self, port: u16) -> Outcome {
        match self {
            Case::Slowloris => slowloris(port).await,
            Case::TrickledBody => trickled_body(port).await,
            Case::HugeHeader => {
                let mut head = b"POST / HTTP/1.1\r\nHost: x\r\nX-Huge: ".to_vec();
                head.resize(head.len() + (1 << 20), b'a');
                head.extend_from_slice(b"\r\n\r\n");
                oversized_heads(port, head).await
            }
            Case::ManyHeaders => {
                // 6 bytes a field: 60,000 bytes, under `max_header_bytes` (64 KiB), so this is
                // `max_headers` (100) at work.
                let mut head = b"POST / HTTP/1.1\r\nHost: x\r\n".to_vec();
                for _ in 0..10_000 {
                    head.extend_from_slice(b"a: 1\r\n");
                }
                head.extend_from_slice(b"\r\n");
                assert!(head.len() < 64 * 1024);
                oversized_heads(port, head).await
            }
            Case::RapidReset => rapid_reset(port, false).await,
            Case::PacedRapidReset => rapid_reset(port, true).await,
            Case::SettingsFlood => {
                // SETTINGS_ENABLE_PUSH = 0: harmless, and each one asks for an ACK.
                flood(port, frame(FRAME_SETTINGS, 0, 0, &[0, 2, 0, 0, 0, 0])).await
            }
            Case::PingFlood => flood(port, frame(FRAME_PING, 0, 0, b"hostile!")).await,
            Case::NeverReads => never_reads(port).await,
            Case::IdleConnections => idle_connections(port).await,
        }
    }
}

/// What a case saw: a one-line summary, the checks that failed, and the limit counter that must
/// have risen by at least this much.
#[derive(Default)]
struct Outcome {
    summary: String,
    failures: Vec<String>,
    limits: Vec<(&'static str, u64)>,
}

/// One row of the table.
struct Row {
    case: &'static str,
    outcome: String,
    quiet_p50: Duration,
    case_p50: Duration,
    quiet_p99: Duration,
    case_p99: Duration,
    events: usize,
    lost: usize,
    /// The quiet window's start, the case's start and end, since the sender started.
    windows: [Duration; 3],
    /// flowbridge's and the machine's CPU (% of one core), quiet window and case.
    cpu: ((f64, f64), (f64, f64)),
    rss_max_kib: u64,
    before: Usage,
    after: Usage,
    fds_max: usize,
    connections: (Option<u64>, Option<u64>),
    tasks: (Option<u64>, Option<u64>),
    limits: BTreeMap<String, u64>,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.case_p99.as_secs_f64() / self.quiet_p99.as_secs_f64().max(1e-6)
    }

    fn line(&self) -> String {
        let limits = if self.limits.is_empty() {
            "–".to_string()
        } else {
            self.limits
                .iter()
                .map(|(k, v)| format!("{k}+{v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let ((bridge_quiet, machine_quiet), (bridge_case, machine_case)) = self.cpu;
        format!(
            "| {} | {} | {:.1}→{:.1} ms ({:.2}×), p50 {:.1}→{:.1} ms, {} events, {} lost | {:.0}→{:.0} % / {:.0}→{:.0} % | {} / {}→{} KiB | {}→{} (max {}) | {}→{} | {}→{} | {} |",
            self.case,
            self.outcome,
            ms(self.quiet_p99),
            ms(self.case_p99),
            self.ratio(),
            ms(self.quiet_p50),
            ms(self.case_p50),
            self.events,
            self.lost,
            bridge_quiet,
            bridge_case,
            machine_quiet,
            machine_case,
            self.rss_max_kib,
            self.before.rss_kib,
            self.after.rss_kib,
            self.before.fds,
            self.after.fds,
            self.fds_max,
            show(self.connections.0),
            show(self.connections.1),
            show(self.tasks.0),
            show(self.tasks.1),
            limits
        )
    }
}

const HEADER: &str = "| case | outcome | well-behaved p99 quiet→case (ratio) | CPU quiet→case: flowbridge / machine (100 % = a core) | VmRSS max / before→after | fds before→after | connections_open | runtime_tasks | limits_total rose |\n|---|---|---|---|---|---|---|---|---|";

/// Runs one case between a quiet window and the return to the baseline; its row and failures.
fn run_case(bridge: &FlowBridge, sender: &Sender, case: Case, t0: Instant) -> (Row, Vec<String>) {
    let pid = bridge.pid().unwrap();
    let name = case.name();
    let quiet_from = Instant::now();
    let cpu_from = Cpu::now(pid);
    std::thread::sleep(QUIET);
    let quiet_to = Instant::now();
    let cpu_quiet = Cpu::now(pid);
    let before = usage(pid);
    let scrape_before = Scrape::of(bridge);
    let sampler = Sampler::start(pid);

    let case_from = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .on_thread_start(lower_priority)
        .enable_all()
        .build()
        .unwrap();
    // On the runtime's (lower-priority) worker, not on this thread.
    let run = rt.block_on(rt.spawn(case.run(bridge.port)));
    // Whatever the case left open closes here.
    rt.shutdown_timeout(Duration::from_secs(1));
    let case_to = Instant::now();
    let cpu_case = Cpu::now(pid);
    let (rss_max_kib, fds_max) = sampler.stop();
    let mut outcome = run.unwrap_or_else(|e| {
        let why = match e.try_into_panic() {
            Ok(panic) => panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default(),
            Err(e) => e.to_string(),
        };
        Outcome {
            summary: format!("panicked: {why}"),
            failures: vec![format!("panicked: {why}")],
            limits: Vec::new(),
        }
    });

    // Back to the baseline: fds, VmRSS, open connections and tasks.
    let settle_until = Instant::now() + SETTLE;
    let (after, scrape_after) = loop {
        std::thread::sleep(Duration::from_millis(200));
        let after = usage(pid);
        let scrape = Scrape::of(bridge);
        let back = after.fds.abs_diff(before.fds) <= 2
            && after.rss_kib * 10 <= before.rss_kib * 11
            && scrape.connections_open == scrape_before.connections_open
            && tasks_back(scrape_before.tasks, scrape.tasks);
        if back || Instant::now() >= settle_until {
            break (after, scrape);
        }
    };
    // Every well-behaved event of the case has its answer by now.
    let quiet = sender.window(quiet_from, quiet_to);
    let during = sender.window(case_from, case_to);

    let failures = &mut outcome.failures;
    for (window, w) in [("quiet window", &quiet), ("case", &during)] {
        if !w.failures.is_empty() {
            failures.push(format!(
                "well-behaved sender lost {} of {} events in the {window}: {}",
                w.failures.len(),
                w.count,
                w.failures
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
    }
    if during.p99.as_secs_f64() > quiet.p99.as_secs_f64() * P99_RATIO {
        failures.push(format!(
            "{P99_MISS}well-behaved p99 {:.1} ms during the case, {:.1} ms quiet: more than {P99_RATIO}×",
            during.p99.as_secs_f64() * 1e3,
            quiet.p99.as_secs_f64() * 1e3
        ));
    }
    if rss_max_kib > RSS_CEILING_KIB {
        failures.push(format!(
            "VmRSS reached {rss_max_kib} KiB during the case (ceiling {RSS_CEILING_KIB})"
        ));
    }
    if after.rss_kib * 10 > before.rss_kib * 11 {
        failures.push(format!(
            "VmRSS {} KiB after the case, {} KiB before: more than +10 %",
            after.rss_kib, before.rss_kib
        ));
    }
    if after.fds.abs_diff(before.fds) > 2 {
        failures.push(format!(
            "{} fds after the case, {} before",
            after.fds, before.fds
        ));
    }
    match (
        scrape_before.connections_open,
        scrape_after.connections_open,
    ) {
        (Some(b), Some(a)) if a == b => {}
        (b, a) => failures.push(format!(
            "flowbridge_connections_open {} after the case, {} before",
            show(a),
            show(b)
        )),
    }
    if !tasks_back(scrape_before.tasks, scrape_after.tasks) {
        failures.push(format!(
            "flowbridge_runtime_tasks {} after the case, {} before",
            show(scrape_after.tasks),
            show(scrape_before.tasks)
        ));
    }
    let limits = scrape_after.limits_since(&scrape_before);
    for &(limit, at_least) in &outcome.limits {
        let rose = limits.get(limit).copied().unwrap_or(0);
        if rose < at_least {
            failures.push(format!(
                "flowbridge_limits_total{{limit=\"{limit}\"}} rose by {rose}, expected at least \
                 {at_least}"
            ));
        }
    }
    let failures = outcome
        .failures
        .iter()
        .map(|f| format!("{name}: {f}"))
        .collect();
    let row = Row {
        case: name,
        outcome: outcome.summary,
        quiet_p50: quiet.p50,
        case_p50: during.p50,
        quiet_p99: quiet.p99,
        case_p99: during.p99,
        cpu: (cpu_from.until(&cpu_quiet), cpu_quiet.until(&cpu_case)),
        windows: [quiet_from - t0, case_from - t0, case_to - t0],
        events: during.count,
        lost: during.failures.len(),
        rss_max_kib,
        before,
        after,
        fds_max,
        connections: (
            scrape_before.connections_open,
            scrape_after.connections_open,
        ),
        tasks: (scrape_before.tasks, scrape_after.tasks),
        limits,
    };
    (row, failures)
}

/// `flowbridge_runtime_tasks` back within a few of its baseline (the sender's requests in
/// flight come and go).
fn tasks_back(before: Option<u64>, after: Option<u64>) -> bool {
    matches!((before, after), (Some(b), Some(a)) if a <= b + 8)
}

/// Lowers the calling thread's scheduling priority (nice +10): the hostile clients share the
/// machine's cores with flowbridge and the Flow, and a remote attacker would not take CPU time
/// from them.
fn lower_priority() {
    // SAFETY: plain syscalls; on Linux PRIO_PROCESS with a thread id applies to that thread.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

/// Raises this process's soft RLIMIT_NOFILE to the hard limit (flowbridge inherits it): the idle
/// case holds 5,000 connections on each side.
fn raise_nofile() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    let needed = (IDLE_CONNECTIONS + 1_000) as libc::rlim_t;
    assert!(
        limit.rlim_cur >= needed,
        "RLIMIT_NOFILE hard limit {} is below the {needed} descriptors this suite needs",
        limit.rlim_cur
    );
}

/// Writes every well-behaved event (when it was due, its latency, its answer) and the windows
/// of each case to a CSV file under `target/tmp/`, for a closer look; its path.
fn dump_samples(t0: Instant, samples: &[Sample], rows: &[Row]) -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hostile-samples-{}.csv", std::process::id()));
    let mut text = String::from("# case,quiet_from_s,case_from_s,case_to_s\n");
    for r in rows {
        let [q, f, t] = r.windows;
        text.push_str(&format!(
            "# {},{:.3},{:.3},{:.3}\n",
            r.case,
            q.as_secs_f64(),
            f.as_secs_f64(),
            t.as_secs_f64()
        ));
    }
    text.push_str("due_s,latency_ms,outcome\n");
    for s in samples {
        let outcome = match &s.outcome {
            Ok(status) => status.to_string(),
            Err(e) => format!("{e:?}"),
        };
        text.push_str(&format!(
            "{:.4},{:.2},{outcome}\n",
            (s.scheduled - t0).as_secs_f64(),
            s.latency.as_secs_f64() * 1e3
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Hundreds of connections at once before any baseline is taken — a crowd answered and closed,
/// then a crowd of half-sent heads closed by `head_timeout`: the first such crowds grow what
/// stays grown (tokio's I/O registration slab, the allocator's arenas, the blocking thread of the
/// memory trim) — a high mark, not a leak, which the first case would otherwise be measured
/// against (the broken-gateway suite warms up the same way).
fn warm_up(port: u16) {
    use std::io::{Read, Write};
    for head in [
        &b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &b"POST / HTTP/1.1\r\nHost: x\r\n"[..],
    ] {
        let mut crowd: Vec<std::net::TcpStream> = (0..600)
            .map(|_| {
                let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
                s.write_all(head).expect("write");
                s.set_read_timeout(Some(HEAD_TIMEOUT + SLACK))
                    .expect("read timeout");
                s
            })
            .collect();
        let mut buf = [0u8; 512];
        for s in &mut crowd {
            let _ = s.read(&mut buf);
        }
        drop(crowd);
    }
    std::thread::sleep(Duration::from_secs(1));
}

#[test]
fn hostile_clients_do_not_hurt_well_behaved_senders() {
    raise_nofile();
    let flow = shared_flow();
    let config = write_config(&format!(
        r#"
limits:
  max_body: 4MiB
  head_timeout: {head}s
  body_timeout: {body}s
  idle_timeout: {idle}s
  max_header_bytes: 64KiB
  max_headers: 100
  max_h2_streams: 256
gateways:
  main: {{url: "{url}", timeout: 20s}}
routes:
  - name: all
"#,
        head = HEAD_TIMEOUT.as_secs(),
        body = BODY_TIMEOUT.as_secs(),
        idle = IDLE_TIMEOUT.as_secs(),
        url = flow.grpc_url(),
    ));
    // The release build: the RSS ceiling is about the binary users run (a debug build's own
    // code is three times larger, 40 MiB before any connection).
    let bridge = FlowBridge::start_bin(&release_bin(), &config);
    let t0 = Instant::now();
    let sender = Sender::start(bridge.port);
    // Warm-up: connections, the Flow's first requests, the adaptive concurrency.
    std::thread::sleep(Duration::from_secs(3));
    warm_up(bridge.port);

    let (mut rows, mut failures) = (Vec::new(), Vec::new());
    for case in CASES {
        let (row, f) = run_case(&bridge, &sender, case, t0);
        eprintln!("[hostile] {}", row.line());
        for f in &f {
            eprintln!("[hostile]   FAILED {f}");
        }
        rows.push(row);
        failures.extend(f);
    }

    let samples = sender.stop();
    let dump = dump_samples(t0, &samples, &rows);
    let lost: Vec<&Sample> = samples.iter().filter(|s| !s.ok()).collect();
    if !lost.is_empty() {
        failures.push(format!(
            "well-behaved sender: {} of {} events not answered 2xx (first: {}: {:?})",
            lost.len(),
            samples.len(),
            lost[0].id,
            lost[0].outcome
        ));
    }
    // Every 2xx event reached the Flow.
    let recorded: HashSet<String> = flow
        .records()
        .iter()
        .flat_map(|r| r["docs"].as_array().cloned().unwrap_or_default())
        .filter_map(|d| d["id"].as_str().map(str::to_string))
        .collect();
    let missing: Vec<&str> = samples
        .iter()
        .filter(|s| s.ok() && !recorded.contains(&s.id))
        .map(|s| s.id.as_str())
        .collect();
    if !missing.is_empty() {
        failures.push(format!(
            "{} events answered 2xx are not in the Flow's record (first: {})",
            missing.len(),
            missing[0]
        ));
    }

    eprintln!(
        "[hostile] well-behaved sender: {} events at {RATE}/s over {SENDER_CONNECTIONS} \
         connections, {} not 2xx, {} missing from the Flow's record (every event: {})",
        samples.len(),
        lost.len(),
        missing.len(),
        dump.display()
    );
    eprintln!("{HEADER}");
    for row in &rows {
        eprintln!("{}", row.line());
    }
    let strict = std::env::var_os("FLOWBRIDGE_HOSTILE_STRICT").is_some_and(|v| v == "1");
    let (timing, mut failures): (Vec<String>, Vec<String>) =
        failures.into_iter().partition(|f| f.contains(P99_MISS));
    for miss in &timing {
        eprintln!("[hostile] {miss} (reported; FLOWBRIDGE_HOSTILE_STRICT=1 fails on it)");
    }
    if strict {
        failures.extend(timing);
    }
    assert!(
        failures.is_empty(),
        "{} checks failed (flowbridge log {}):\n{}",
        failures.len(),
        bridge.log.display(),
        failures.join("\n")
    );
}
