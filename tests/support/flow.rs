//! The real Jina Flow of the tests as a child process ([`JinaFlow`]: `tests/flow/flow.py` in
//! one of the venvs of `scripts/jina-env.sh`), and the one shared by a test binary
//! ([`shared_flow`], [`shared_flow_of`]).

use super::*;

/// A real Jina Flow running `tests/flow/flow.py`: gRPC gateway on `127.0.0.1:port`, executors
/// `recorder` (records every request to `record` as JSON lines, can sleep or raise) then
/// `tagger`. See the docstring of `tests/flow/flow.py` for what the executors do.
pub struct JinaFlow {
    pub port: u16,
    /// The docarray the Flow runs with.
    pub kind: FlowKind,
    /// The gateway's protocol.
    pub protocol: Protocol,
    /// The recorder's JSONL file (one line per request it received).
    pub record: PathBuf,
    /// stdout and stderr of the Flow.
    pub log: PathBuf,
    child: Mutex<Option<Child>>,
    /// Kept open: the Flow stops itself when this pipe closes (test process gone).
    stdin: Mutex<Option<ChildStdin>>,
    dir: Option<tempfile::TempDir>,
}

impl JinaFlow {
    /// Starts a Flow on a free port.
    pub fn start() -> JinaFlow {
        Self::start_on(free_port())
    }

    /// Starts a Flow on `port` (e.g. a port a flowbridge was configured with before the Flow
    /// existed, for cold-start tests).
    pub fn start_on(port: u16) -> JinaFlow {
        Self::try_start(port, "recorder", FlowKind::V1, Protocol::Grpc)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a Flow whose recorder deployment is called `executor_name`.
    pub fn start_named(port: u16, executor_name: &str) -> JinaFlow {
        Self::try_start(port, executor_name, FlowKind::V1, Protocol::Grpc)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a Flow of this docarray kind with a gateway of this protocol on `port`.
    pub fn start_kind(port: u16, kind: FlowKind, protocol: Protocol) -> JinaFlow {
        Self::try_start(port, "recorder", kind, protocol).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a v1 gRPC Flow on a free port with jina's tracing on, exporting its spans over
    /// OTLP/gRPC to `127.0.0.1:traces_port`.
    pub fn start_traced(traces_port: u16) -> JinaFlow {
        Self::try_start_with(
            free_port(),
            "recorder",
            FlowKind::V1,
            Protocol::Grpc,
            &["--traces-port", &traces_port.to_string()],
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_start(
        port: u16,
        executor_name: &str,
        kind: FlowKind,
        protocol: Protocol,
    ) -> Result<JinaFlow, String> {
        Self::try_start_with(port, executor_name, kind, protocol, &[])
    }

    fn try_start_with(
        port: u16,
        executor_name: &str,
        kind: FlowKind,
        protocol: Protocol,
        extra: &[&str],
    ) -> Result<JinaFlow, String> {
        let python = venv_python_for(kind);
        let dir = scratch_dir("jina-flow-");
        let record = dir.path().join("record.jsonl");
        let log = dir.path().join("flow.log");
        let script = repo_root().join("tests/flow/flow.py");
        let stderr = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log)
            .map_err(|e| format!("cannot create Flow log {}: {e}", log.display()))?;
        let started = Instant::now();
        let mut child = Command::new(&python)
            .arg(&script)
            .arg("--port")
            .arg(port.to_string())
            .arg("--record")
            .arg(&record)
            .arg("--protocol")
            .arg(protocol.as_str())
            .arg("--executor-name")
            .arg(executor_name)
            .arg("--watch-stdin")
            .args(extra)
            .env("PYTHONUNBUFFERED", "1")
            .env("JINA_OPTOUT_TELEMETRY", "1")
            .env("JINA_LOG_NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .process_group(0)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot spawn {} {}: {e}",
                    python.display(),
                    script.display()
                )
            })?;
        let stdout = child.stdout.take().ok_or("Flow stdout was not piped")?;
        let stdin = child.stdin.take();
        let ready = watch_stdout(stdout, log.clone(), "FLOW READY");

        let failure = match ready.recv_timeout(FLOW_START_TIMEOUT) {
            Ok(_) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => Some(format!(
                "no FLOW READY within {}s",
                FLOW_START_TIMEOUT.as_secs()
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Some("the Flow exited before FLOW READY".to_string())
            }
        };
        if let Some(why) = failure {
            let status = stop_group(&mut child);
            let mut dir = dir;
            dir.disable_cleanup(true);
            return Err(format!(
                "Jina Flow ({kind}, {protocol}) on port {port} failed to start: {why} \
                 (exit status: {status:?}).\n\
                 log {}, last lines:\n{}",
                log.display(),
                log_tail(&log, 40)
            ));
        }
        eprintln!(
            "[support] Jina Flow ({kind}, {protocol}) ready on 127.0.0.1:{port} in {:.1}s (log {})",
            started.elapsed().as_secs_f64(),
            log.display()
        );
        Ok(JinaFlow {
            port,
            kind,
            protocol,
            record,
            log,
            child: Mutex::new(Some(child)),
            stdin: Mutex::new(stdin),
            dir: Some(dir),
        })
    }

    /// `grpc://127.0.0.1:<port>`, the gateway URL for a flowbridge config (of a gRPC Flow).
    pub fn grpc_url(&self) -> String {
        format!("grpc://127.0.0.1:{}", self.port)
    }

    /// The gateway URL for a flowbridge config, with the scheme of the Flow's protocol:
    /// `grpc://127.0.0.1:<port>`, `http://127.0.0.1:<port>` or `ws://127.0.0.1:<port>`.
    pub fn gateway_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.protocol.scheme(), self.port)
    }

    /// Every request the recorder has received so far, in order.
    pub fn records(&self) -> Vec<serde_json::Value> {
        let text = match std::fs::read_to_string(&self.record) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("cannot read record file {}: {e}", self.record.display()),
        };
        // Only complete lines: the recorder may be writing the next one right now.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!(
                        "record file {} line {}: {e}: {l}",
                        self.record.display(),
                        i + 1
                    )
                })
            })
            .collect()
    }

    /// The records (requests) that carried a document with this id. With one Flow shared by
    /// parallel tests, give each test's documents unique ids and look them up with this.
    pub fn records_with_doc(&self, doc_id: &str) -> Vec<serde_json::Value> {
        self.records()
            .into_iter()
            .filter(|r| {
                r["docs"]
                    .as_array()
                    .is_some_and(|docs| docs.iter().any(|d| d["id"] == doc_id))
            })
            .collect()
    }

    /// Waits (up to `timeout`) for a record matching `pred`, and returns it.
    pub fn wait_for_record(
        &self,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.records().into_iter().find(|r| pred(r)) {
                return Some(r);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of the Flow's log (executor tracebacks end up there).
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// Stops the Flow and its whole process group; the port is free afterwards.
    pub fn stop(&mut self) {
        self.stop_inner();
    }

    /// Kills the Flow's whole process group at once (SIGKILL: no draining, requests in flight
    /// are cut) and waits for its leader; the record file stays readable.
    pub fn kill(&mut self) {
        if let Ok(mut stdin) = self.stdin.lock() {
            stdin.take();
        }
        let child = self.child.lock().ok().and_then(|mut c| c.take());
        if let Some(mut child) = child {
            signal_group(child.id(), "KILL");
            let _ = child.wait();
        }
    }

    fn stop_inner(&self) {
        if let Ok(mut stdin) = self.stdin.lock() {
            stdin.take();
        }
        let child = self.child.lock().ok().and_then(|mut c| c.take());
        if let Some(mut child) = child {
            stop_group(&mut child);
        }
    }
}

impl Drop for JinaFlow {
    fn drop(&mut self) {
        self.stop_inner();
        if std::thread::panicking()
            && let Some(dir) = self.dir.as_mut()
        {
            dir.disable_cleanup(true);
            eprintln!("[support] Flow files kept in {}", dir.path().display());
        }
    }
}

/// One Flow for the whole test binary (docarray v1, gRPC), started on first use. Statics are
/// never dropped: the Flow stops itself when this process exits and its stdin pipe closes.
pub fn shared_flow() -> &'static JinaFlow {
    shared_flow_of(FlowKind::V1, Protocol::Grpc)
}

/// One Flow per (docarray, protocol) cell for the whole test binary, each started on first use
/// (at most six Flow processes per binary; [`shared_flow`] is the v1 gRPC one). A cell whose
/// Flow failed to start fails every test that needs it with the same message, without retrying.
pub fn shared_flow_of(kind: FlowKind, protocol: Protocol) -> &'static JinaFlow {
    static FLOWS: [OnceLock<Result<JinaFlow, String>>; 6] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    let index = match (kind, protocol) {
        (FlowKind::V1, Protocol::Grpc) => 0,
        (FlowKind::V1, Protocol::Http) => 1,
        (FlowKind::V1, Protocol::Websocket) => 2,
        (FlowKind::V2, Protocol::Grpc) => 3,
        (FlowKind::V2, Protocol::Http) => 4,
        (FlowKind::V2, Protocol::Websocket) => 5,
    };
    match FLOWS[index].get_or_init(|| JinaFlow::try_start(free_port(), "recorder", kind, protocol))
    {
        Ok(flow) => flow,
        Err(e) => panic!("shared Jina Flow ({kind}, {protocol}) unavailable: {e}"),
    }
}
