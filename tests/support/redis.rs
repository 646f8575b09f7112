//! A `redis-server` child for the shared-state tests: started on a free loopback port with no
//! persistence (`--save '' --appendonly no`), in its own process group, stopped on drop (like
//! [`super::FlowBridge`]). [`RedisServer::kill`] and [`RedisServer::restart`] make an outage.
//! `scripts/test.sh` and `.ci/run` install Debian's `redis-server` when it is missing.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, log_tail, port_accepts, scratch_dir, signal_group, stop_group};

/// One `redis-server` process (or none, between [`RedisServer::kill`] and
/// [`RedisServer::restart`]) on a fixed loopback port.
pub struct RedisServer {
    pub port: u16,
    pub log: PathBuf,
    /// Extra `redis-server` arguments (TLS, password), kept for [`RedisServer::restart`].
    extra: Vec<String>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port; returns once it accepts connections.
    pub fn start() -> RedisServer {
        Self::start_with(|_| Vec::new())
    }

    /// Starts `redis-server` over TLS only (the free port is the TLS port; no client
    /// certificates) with `password`: `cert_pem` and `key_pem` are the server's.
    pub fn start_tls(cert_pem: &str, key_pem: &str, password: &str) -> RedisServer {
        let password = password.to_string();
        let (cert_pem, key_pem) = (cert_pem.to_string(), key_pem.to_string());
        Self::start_with(move |dir| {
            let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
            std::fs::write(&cert, &cert_pem).unwrap();
            std::fs::write(&key, &key_pem).unwrap();
            [
                "--tls-cert-file",
                cert.to_str().unwrap(),
                "--tls-key-file",
                key.to_str().unwrap(),
                "--tls-auth-clients",
                "no",
                "--requirepass",
                &password,
            ]
            .iter()
            .map(ToString::to_string)
            .collect()
        })
    }

    fn start_with(extra: impl FnOnce(&std::path::Path) -> Vec<String>) -> RedisServer {
        let dir = scratch_dir("redis-");
        let extra = extra(dir.path());
        let mut server = RedisServer {
            port: free_port(),
            log: dir.path().join("redis.log"),
            extra,
            child: None,
            dir,
        };
        server.spawn();
        server
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log.display()));
        let err = log.try_clone().expect("clone the log handle");
        let port = self.port.to_string();
        let ports = if self.extra.iter().any(|a| a == "--tls-cert-file") {
            ["--port", "0", "--tls-port", &port]
        } else {
            ["--port", &port, "--tls-port", "0"]
        };
        let child = Command::new("redis-server")
            .args(ports)
            .args(["--bind", "127.0.0.1"])
            .args(&self.extra)
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}); install it (Debian: apt-get install \
                     redis-server; ./scripts/test.sh does)"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !port_accepts(self.port) {
            if Instant::now() >= deadline {
                panic!(
                    "redis-server on port {} not ready within 10 s:\n{}",
                    self.port,
                    log_tail(&self.log, 20)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the server is gone at once, with every key (no persistence).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_group(child.id(), "KILL");
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_group(&mut child);
        }
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!("[support] redis-server log kept at {}", self.log.display());
        }
    }
}
