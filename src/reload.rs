//! Config hot reload: on SIGHUP, and when the config file or a file it names (listener
//! certificate and key, client and gateway CA bundles) changes, load and validate the config
//! again and swap the new [`Runtime`] in only when it is valid; otherwise keep the active one
//! and log every error with its path, as `flowbridge check` prints them.
//!
//! Change detection polls every [`POLL_INTERVAL`]: it hashes the *content* of the config file
//! and of the files the active config names, read through their paths. That sees a Kubernetes
//! ConfigMap or Secret volume update (the kubelet writes a new directory and atomically swaps the
//! `..data` symlink, so the file's inode and mtime seen through the old path tell nothing), an
//! editor's rename-over, and an in-place write alike, without inotify. A content hash that was
//! tried and failed is not tried again until the content changes once more (no error log every
//! 2 s); SIGHUP always reloads.
//!
//! Every attempt counts in `flowbridge_config_reloads_total{outcome}`; a successful one sets
//! `flowbridge_config_generation` and `flowbridge_config_info{generation,hash}` and logs
//! `config generation N active` with what was kept and rebuilt ([`crate::runtime::Changes`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info, warn};

use crate::config::{self, Config, ConfigError, ConfigErrors, Overrides};
use crate::ingress::AppState;
use crate::runtime::{self, Runtime};

/// How often the config file and the files it names are checked for new content.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Where the config comes from, and the command-line values applied on top of it every time.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// `--config`; `None`: the embedded default (SIGHUP re-applies it; nothing to watch).
    pub path: Option<PathBuf>,
    pub overrides: Overrides,
    /// `--admin-listen` / `FLOWBRIDGE_ADMIN_LISTEN`, which replaces the file's `admin_listen`.
    pub admin_listen: Option<Option<SocketAddr>>,
}

/// A config loaded from a [`Source`].
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    /// [`runtime::hash`] of the config text (`embedded` for the embedded default).
    pub hash: String,
    /// Content hash of the config file and the files it names, to notice the next change.
    pub fingerprint: Vec<u8>,
}

impl Source {
    /// Where the config comes from, for messages.
    pub fn origin(&self) -> String {
        self.path.as_deref().map_or_else(
            || "embedded default config".to_string(),
            |p| p.display().to_string(),
        )
    }

    /// Read, parse and validate the config (every error, with its path).
    pub fn load(&self) -> Result<Loaded, ConfigErrors> {
        let (mut config, hash, text) = match &self.path {
            None => (
                config::load(None, &self.overrides)?,
                "embedded".to_string(),
                Vec::new(),
            ),
            Some(path) => {
                let text = std::fs::read(path).map_err(|e| {
                    ConfigErrors(vec![ConfigError {
                        path: path.display().to_string(),
                        message: format!("cannot read the config file: {e}"),
                        line: None,
                    }])
                })?;
                let utf8 = String::from_utf8(text.clone()).map_err(|_| {
                    ConfigErrors(vec![ConfigError {
                        path: path.display().to_string(),
                        message: "the config file is not UTF-8 text".to_string(),
                        line: None,
                    }])
                })?;
                let origin = path.display().to_string();
                let config = config::from_yaml(&utf8, &origin, &self.overrides)?;
                (config, runtime::hash(&text), text)
            }
        };
        if let Some(admin) = self.admin_listen {
            config.admin_listen = admin;
        }
        let fingerprint = fingerprint_of(&text, &config.referenced_files());
        Ok(Loaded {
            config,
            hash,
            fingerprint,
        })
    }

    /// The content hash of the config file and of `referenced` files, as read now.
    pub fn fingerprint(&self, referenced: &[PathBuf]) -> Vec<u8> {
        let text = match &self.path {
            Some(path) => read_or_marker(path),
            None => Vec::new(),
        };
        fingerprint_of(&text, referenced)
    }
}

/// A file's bytes, or a marker naming the error (a missing file is a state too).
fn read_or_marker(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| format!("\0unreadable: {:?}", e.kind()).into_bytes())
}

fn fingerprint_of(config_text: &[u8], referenced: &[PathBuf]) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut part = |bytes: &[u8]| {
        ctx.update(&(bytes.len() as u64).to_le_bytes());
        ctx.update(bytes);
    };
    part(config_text);
    for file in referenced {
        part(file.as_os_str().as_encoded_bytes());
        part(&read_or_marker(file));
    }
    ctx.finish().as_ref().to_vec()
}

/// Why a reload was attempted (`trigger` in the logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Sighup,
    FileChanged,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Sighup => "SIGHUP",
            Trigger::FileChanged => "file changed",
        }
    }
}

/// Load the config again and swap it in when valid. Returns the fingerprint of what was read
/// (so a failed content is not retried until it changes again).
pub fn reload(state: &AppState, source: &Source, trigger: Trigger) -> Vec<u8> {
    let active = state.runtime();
    let metrics = &state.metrics;
    let fail = |errors: &[ConfigError]| {
        metrics.reloaded("failure");
        for e in errors {
            error!(path = %e.path, trigger = trigger.as_str(), "config reload: {}", e.message);
        }
        error!(
            errors = errors.len(),
            trigger = trigger.as_str(),
            generation = active.generation,
            hash = %active.hash,
            "config reload failed ({} error(s) in {}); config generation {} stays active",
            errors.len(),
            source.origin(),
            active.generation
        );
    };
    let loaded = match source.load() {
        Ok(l) => l,
        Err(ConfigErrors(errors)) => {
            fail(&errors);
            return source.fingerprint(&active.config.referenced_files());
        }
    };
    let fingerprint = loaded.fingerprint.clone();
    let (next, changes) = match Runtime::build(loaded.config, loaded.hash, Some(&active), metrics) {
        Ok(built) => built,
        Err(message) => {
            fail(&[ConfigError {
                path: source.origin(),
                message,
                line: None,
            }]);
            return fingerprint;
        }
    };
    for w in &next.config.warnings {
        warn!(path = %w.path, "{}", w.message);
    }
    for setting in &changes.need_restart {
        warn!(
            setting,
            "config reload: {setting} changed but only takes effect after a restart; the running value stays"
        );
    }
    next.log_auth();
    // OIDC key sets of the new verifiers, fetched before the swap (this runs on a blocking
    // thread of the runtime, where blocking on a future is allowed).
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.block_on(next.auth.prefetch());
    }
    let generation = next.generation;
    let hash = next.hash.clone();
    let routes = next.config.rules.routes.len();
    state.runtime.store(Arc::new(next));
    metrics.set_config(generation, &hash);
    metrics.reloaded("success");
    info!(
        generation,
        hash = %hash,
        trigger = trigger.as_str(),
        routes,
        gateways_kept = ?changes.kept,
        gateways_rebuilt = ?changes.rebuilt,
        gateways_removed = ?changes.removed,
        "config generation {generation} active"
    );
    fingerprint
}

/// Reload on SIGHUP, and when the content of the config file or of a file it names changes
/// (checked every [`POLL_INTERVAL`]). Runs until the process exits.
pub async fn watch(state: Arc<AppState>, source: Arc<Source>, mut seen: Vec<u8>) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            warn!(error = %e, "cannot listen for SIGHUP; config reload only on file change");
            None
        }
    };
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let trigger = tokio::select! {
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => None } } => Trigger::Sighup,
            _ = tick.tick() => Trigger::FileChanged,
        };
        let run = {
            let state = state.clone();
            let source = source.clone();
            let seen = seen.clone();
            move || {
                if trigger == Trigger::FileChanged {
                    // The embedded default has no file to watch.
                    source.path.as_ref()?;
                    let now = source.fingerprint(&state.runtime().config.referenced_files());
                    if now == seen {
                        return None;
                    }
                }
                Some(reload(&state, &source, trigger))
            }
        };
        // Reading files and compiling CEL is blocking work; keep it off the event threads.
        match tokio::task::spawn_blocking(run).await {
            Ok(Some(fingerprint)) => seen = fingerprint,
            Ok(None) => {}
            Err(e) => error!(error = %e, "config reload task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_fingerprint_follows_the_content_of_the_config_and_the_files_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, crate::tls::testing::Ca::new("one").pem).unwrap();
        let config = dir.path().join("config.yaml");
        let text = format!(
            "gateways:\n  g: {{url: \"grpcs://127.0.0.1:1\", ca_file: {}}}\nroutes:\n  - name: r\n",
            ca.display()
        );
        std::fs::write(&config, &text).unwrap();
        let source = Source {
            path: Some(config.clone()),
            admin_listen: Some(None),
            ..Source::default()
        };
        let loaded = source.load().unwrap();
        // The command line's --admin-listen wins over the file.
        assert_eq!(loaded.config.admin_listen, None);
        assert_eq!(loaded.hash, runtime::hash(text.as_bytes()));
        let files = loaded.config.referenced_files();
        assert_eq!(files, std::slice::from_ref(&ca));
        assert_eq!(source.fingerprint(&files), loaded.fingerprint);

        // Rewriting the same bytes is no change; a new CA bundle is, the config untouched.
        std::fs::write(&config, &text).unwrap();
        assert_eq!(source.fingerprint(&files), loaded.fingerprint);
        std::fs::write(&ca, crate::tls::testing::Ca::new("two").pem).unwrap();
        let after_ca = source.fingerprint(&files);
        assert_ne!(after_ca, loaded.fingerprint);
        // A vanished file is a state of its own too.
        std::fs::remove_file(&ca).unwrap();
        let gone = source.fingerprint(&files);
        assert_ne!(gone, after_ca);
        assert!(source.load().unwrap_err().0[0].path.contains("ca_file"));
    }
}
