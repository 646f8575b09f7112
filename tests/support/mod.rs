//! Test harness shared by the integration tests (`mod support;`): the real Jina Flow
//! (`tests/flow/flow.py`, run with one of the two venvs made by `scripts/jina-env.sh`: docarray
//! v1 or v2, with a gRPC or an HTTP gateway, see [`FlowKind`] and [`Protocol`]), a `flowbridge serve`
//! child process, a `redis-server` child ([`redis::RedisServer`]), free ports and a
//! dependency-free blocking HTTP/1.1 client.
//!
//! Every child runs in its own process group and is stopped with its whole group (SIGTERM, then
//! SIGKILL after 5 s) when its handle drops, including while a failing test unwinds. The Flow
//! shared by a test binary ([`shared_flow`]) lives in a static that is never dropped: it watches
//! its stdin instead, and stops itself when the test process exits (even by SIGKILL) and the pipe
//! closes.
//!
//! Logs and record files live in `target/tmp/` (kept when a test panics, so they can be read).
//!
//! * `flow`: the real Jina Flow ([`JinaFlow`], [`shared_flow`]).
//! * `http`: the blocking HTTP/1.1 client ([`http_request`], [`post_event`]).
//! * [`redis`]: a `redis-server` child.
//! * [`dockerfile`]: the Dockerfile's final stage, read as instructions.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod dockerfile;
mod flow;
mod http;
pub mod redis;

#[allow(unused_imports)] // each test binary uses a different part
pub use flow::{JinaFlow, shared_flow, shared_flow_of};
#[allow(unused_imports)]
pub use http::{HttpResponse, http_request, parse_response, post_event, try_http_request};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a Flow may take to print `FLOW READY` (it usually takes 2–10 s).
pub const FLOW_START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `flowbridge serve` may take to answer `GET /readyz` with 200.
pub const BRIDGE_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Grace period between SIGTERM and SIGKILL when stopping a child's process group.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The v1 venv's Python interpreter (`$FLOWBRIDGE_JINA_VENV`, default
/// `~/.cache/flowbridge/jina-venv`, the same default as `scripts/jina-env.sh`).
pub fn venv_python() -> PathBuf {
    venv_python_for(FlowKind::V1)
}

/// The Python interpreter of the venv for a docarray kind: v1 as [`venv_python`]; v2 from
/// `$FLOWBRIDGE_JINA_V2_VENV`, default `~/.cache/flowbridge/jina-v2-venv` (`scripts/jina-env.sh v2`).
pub fn venv_python_for(kind: FlowKind) -> PathBuf {
    let (variable, default) = match kind {
        FlowKind::V1 => ("FLOWBRIDGE_JINA_VENV", ".cache/flowbridge/jina-venv"),
        FlowKind::V2 => ("FLOWBRIDGE_JINA_V2_VENV", ".cache/flowbridge/jina-v2-venv"),
    };
    let venv = match std::env::var_os(variable) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => {
            let home =
                std::env::var_os("HOME").expect("HOME is not set, cannot locate the jina venv");
            PathBuf::from(home).join(default)
        }
    };
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "no Python in the jina {kind} venv: {} does not exist.\n\
         Run ./scripts/jina-env.sh {kind} first (or set {variable} to the venv it created).",
        python.display()
    );
    python
}

/// Which docarray the test Flow runs with (which venv starts `tests/flow/flow.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowKind {
    /// docarray 0.21 (`DocumentArrayProto`; HTTP `POST /post`).
    V1,
    /// docarray 0.40 (`DocListProto` of `LegacyDocumentJina`; HTTP `POST /<endpoint>`).
    V2,
}

impl FlowKind {
    pub const ALL: [FlowKind; 2] = [FlowKind::V1, FlowKind::V2];
}

impl std::fmt::Display for FlowKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FlowKind::V1 => "v1",
            FlowKind::V2 => "v2",
        })
    }
}

/// The protocol of the test Flow's gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Grpc,
    Http,
    Websocket,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::Grpc, Protocol::Http, Protocol::Websocket];

    /// The `--protocol` value of `tests/flow/flow.py` (jina's protocol name).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::Http => "http",
            Protocol::Websocket => "websocket",
        }
    }

    /// The URL scheme of a flowbridge gateway speaking this protocol.
    pub fn scheme(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::Http => "http",
            Protocol::Websocket => "ws",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every (docarray, protocol) cell of the test matrix.
pub fn matrix_cells() -> Vec<(FlowKind, Protocol)> {
    FlowKind::ALL
        .iter()
        .flat_map(|k| Protocol::ALL.iter().map(move |p| (*k, *p)))
        .collect()
}

/// A loopback port that was free a moment ago (bind port 0, read it, release it).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind 127.0.0.1:0 to find a free port")
}

/// The `flowbridge` binary built by cargo for this test run, or `FLOWBRIDGE_TEST_BIN` when set
/// (a copy of that build: work trees sharing one `CARGO_TARGET_DIR` overwrite each other's
/// `target/debug/flowbridge` while tests run).
pub fn flowbridge_bin() -> PathBuf {
    std::env::var_os("FLOWBRIDGE_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_flowbridge")))
}

/// The release build of `flowbridge` (the one users run), for the tests whose figures are about
/// it (memory ceilings, tests/hostile.rs): `FLOWBRIDGE_RELEASE_BIN` when set, else
/// `cargo build --release --bin flowbridge` once per test process (a no-op when
/// ./scripts/test.sh built it already; a few minutes from scratch).
pub fn release_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("FLOWBRIDGE_RELEASE_BIN") {
            return PathBuf::from(bin);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "--quiet", "--bin", "flowbridge"])
            .current_dir(repo_root())
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo build --release: {e}"));
        assert!(
            status.success(),
            "cargo build --release --bin flowbridge: {status}"
        );
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target"));
        target.join("release").join("flowbridge")
    })
    .clone()
}

/// The repository root (where `Cargo.toml` is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether something accepts TCP connections on `127.0.0.1:port`.
pub fn port_accepts(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// A fresh directory under `target/tmp/` for one child's logs and files.
/// A test-unique id: `<prefix>-<32 hex>`, so tests sharing one Flow can find their own records.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Writes `text` to `config.yaml` in a fresh directory that outlives the test (a flowbridge
/// child process reads it) and returns the path.
pub fn write_config(text: &str) -> PathBuf {
    let dir = tempfile::Builder::new()
        .prefix("flowbridge-config-")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a config directory: {e}"))
        .keep();
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

fn scratch_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("cannot create a scratch directory under CARGO_TARGET_TMPDIR")
}

/// The last `lines` lines of a log file, for panic messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Sends `signal` (e.g. "TERM", "KILL", "0") to process group `pgid`; true if it was delivered.
fn signal_group(pgid: u32, signal: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Stops `child` and every process of its group: SIGTERM, SIGKILL after [`STOP_GRACE`].
fn stop_group(child: &mut Child) -> Option<ExitStatus> {
    let pgid = child.id();
    if let Ok(Some(status)) = child.try_wait() {
        // The leader is gone; stray members keep the group id alive (so it cannot have been
        // reused): kill whatever is left.
        if signal_group(pgid, "0") {
            signal_group(pgid, "KILL");
        }
        return Some(status);
    }
    signal_group(pgid, "TERM");
    let deadline = Instant::now() + STOP_GRACE;
    let mut status = None;
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Leader still running (group id still ours) or members left behind: kill the group.
    if status.is_none() || signal_group(pgid, "0") {
        signal_group(pgid, "KILL");
    }
    match status {
        Some(s) => Some(s),
        None => child.wait().ok(),
    }
}

/// Copies the child's stdout into `log`, reporting the first line starting with `marker`.
fn watch_stdout(
    stdout: impl Read + Send + 'static,
    log: PathBuf,
    marker: &'static str,
) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log)
            .ok();
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(f) = out.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            if line.starts_with(marker)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(line);
            }
        }
        // Dropping `tx` here (EOF before the marker) tells the waiter the process is gone.
    });
    rx
}

/// A `flowbridge serve` child process on `127.0.0.1:port`, stopped (SIGTERM, then SIGKILL) on
/// drop. Not watched by anything if the test process is SIGKILLed; keep these per test.
pub struct FlowBridge {
    pub port: u16,
    /// The admin listener (`/metrics`): a free port per process, passed as
    /// `FLOWBRIDGE_ADMIN_LISTEN` so parallel tests never share the default 9090.
    pub admin_port: u16,
    /// stdout and stderr of the server.
    pub log: PathBuf,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl FlowBridge {
    /// `flowbridge serve --config <config> --port <free port>`, ready once `/readyz` says 200.
    pub fn start(config: &Path) -> FlowBridge {
        let config = config.to_string_lossy().into_owned();
        Self::start_with(&["--config", &config], &[])
    }

    /// `flowbridge serve <args> --port <free port>` with extra environment variables (they may
    /// override `FLOWBRIDGE_ADMIN_LISTEN=127.0.0.1:<free port>`).
    pub fn start_with(args: &[&str], envs: &[(&str, &str)]) -> FlowBridge {
        Self::spawn(args, envs, false)
    }

    /// [`FlowBridge::start_with`], ready once `/readyz` on the admin port says 200 (for a main
    /// port that speaks TLS).
    pub fn start_probing_admin(args: &[&str], envs: &[(&str, &str)]) -> FlowBridge {
        Self::spawn(args, envs, true)
    }

    /// The text of `GET /metrics` on the admin listener.
    pub fn metrics(&self) -> String {
        let scrape = http_request(self.admin_port, "GET", "/metrics", &[], b"");
        assert_eq!(scrape.status, 200, "GET /metrics");
        String::from_utf8_lossy(&scrape.body).into_owned()
    }

    /// [`FlowBridge::start`] with the binary `bin` instead of [`flowbridge_bin`] (e.g.
    /// [`release_bin`]).
    pub fn start_bin(bin: &Path, config: &Path) -> FlowBridge {
        let config = config.to_string_lossy().into_owned();
        Self::spawn_bin(bin, &["--config", &config], &[], false)
    }

    fn spawn(args: &[&str], envs: &[(&str, &str)], probe_admin: bool) -> FlowBridge {
        Self::spawn_bin(&flowbridge_bin(), args, envs, probe_admin)
    }

    fn spawn_bin(
        bin: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
        probe_admin: bool,
    ) -> FlowBridge {
        // `free_port` can race with another process taking the port before flowbridge binds it
        // (parallel tests, other work on the machine): start again on fresh ports.
        for _ in 0..3 {
            let mut bridge = Self::spawn_once(bin, args, envs);
            let probe = if probe_admin {
                bridge.admin_port
            } else {
                bridge.port
            };
            if bridge.wait_ready(args, probe) {
                return bridge;
            }
            eprintln!("[support] a port flowbridge was given was taken meanwhile; retrying");
        }
        panic!("flowbridge serve {args:?}: every attempt found its port taken");
    }

    fn spawn_once(bin: &Path, args: &[&str], envs: &[(&str, &str)]) -> FlowBridge {
        let port = free_port();
        let admin_port = free_port();
        let dir = scratch_dir("flowbridge-");
        let log = dir.path().join("flowbridge.log");
        let out = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone log handle {}: {e}", log.display()));
        let child = Command::new(bin)
            .arg("serve")
            .args(args)
            .arg("--port")
            .arg(port.to_string())
            .env("FLOWBRIDGE_ADMIN_LISTEN", format!("127.0.0.1:{admin_port}"))
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", bin.display()));
        FlowBridge {
            port,
            admin_port,
            log,
            child: Some(child),
            dir,
        }
    }

    /// Wait until `/readyz` on `probe` says 200: true. False when the process exited because a
    /// port it was given was taken (the caller starts again); any other exit or the timeout
    /// panics with the log.
    fn wait_ready(&mut self, args: &[&str], probe: u16) -> bool {
        let deadline = Instant::now() + BRIDGE_START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                if self.log_text().contains("Address already in use") {
                    return false;
                }
                self.dir.disable_cleanup(true);
                panic!(
                    "flowbridge serve {args:?} exited with {status} before /readyz answered 200.\n\
                     log {}:\n{}",
                    self.log.display(),
                    log_tail(&self.log, 40)
                );
            }
            let last = match try_http_request(probe, "GET", "/readyz", &[], b"") {
                Ok(r) if r.status == 200 => return true,
                Ok(r) => format!("/readyz answered {}", r.status),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                self.dir.disable_cleanup(true);
                panic!(
                    "flowbridge serve {args:?} on port {} not ready within {}s ({last}).\n\
                     log {}:\n{}",
                    self.port,
                    BRIDGE_START_TIMEOUT.as_secs(),
                    self.log.display(),
                    log_tail(&self.log, 40)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id of the server (for `/proc/<pid>/status` and `/proc/<pid>/fd`); None once
    /// it was stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A blocking HTTP/1.1 request to this server.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        http_request(self.port, method, path, headers, body)
    }

    /// Everything the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM to the server's process group without waiting.
    pub fn signal_term(&self) {
        if let Some(child) = self.child.as_ref() {
            signal_group(child.id(), "TERM");
        }
    }

    /// Sends SIGHUP (reload the config) to the server's process group without waiting.
    pub fn signal_hup(&self) {
        if let Some(child) = self.child.as_ref() {
            signal_group(child.id(), "HUP");
        }
    }

    /// Waits up to `timeout` for the server to exit; its exit status, or None if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Stops the server; returns its exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.child.take().and_then(|mut c| stop_group(&mut c))
    }
}

impl Drop for FlowBridge {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!("[support] flowbridge log kept at {}", self.log.display());
        }
    }
}

/// Runs `tests/interop/send_sdk.py <url> <args>` (the Python CloudEvents SDK sending an event and
/// reading the reply) and returns the JSON object it prints: `{status, headers, reply, reply_error,
/// body}`. Example args: `["--mode", "binary", "--type", "t", "--source", "s", "--data", "{}"]`.
pub fn send_sdk(url: &str, args: &[&str]) -> serde_json::Value {
    let script = repo_root().join("tests/interop/send_sdk.py");
    run_json_script(Command::new(venv_python()).arg(&script), url, args)
}

/// Run `tests/interop/js/send_js.mjs URL ARGS...` (the JavaScript CloudEvents SDK as a sender;
/// `./scripts/test.sh` installs its `node_modules` with `npm ci`) and parse the JSON it prints:
/// `{status, sent: {headers, body}, body}`.
pub fn send_js(url: &str, args: &[&str]) -> serde_json::Value {
    let script = repo_root().join("tests/interop/js/send_js.mjs");
    run_json_script(Command::new("node").arg(&script), url, args)
}

/// Run `command URL ARGS...`, which must exit 0 and print one JSON object.
fn run_json_script(command: &mut Command, url: &str, args: &[&str]) -> serde_json::Value {
    let what = format!("{command:?}");
    let out = command
        .arg(url)
        .args(args)
        .env("PYTHONWARNINGS", "ignore::DeprecationWarning")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} {url} {args:?} failed ({}):\n{stderr}",
        out.status
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("{what} printed no JSON ({e}):\nstdout: {stdout}\nstderr: {stderr}")
    })
}

/// Run `cmd` with `stdin` as its standard input; its output (stdout and stderr captured), or
/// why it could not start.
pub fn output_with_stdin(cmd: &mut Command, stdin: &[u8]) -> std::io::Result<std::process::Output> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut pipe = child.stdin.take().unwrap();
    // A child that exits without reading all of it closes the pipe: that is its answer.
    let _ = pipe.write_all(stdin);
    drop(pipe);
    child.wait_with_output()
}
