//! Configuration: YAML → raw serde structs (unknown keys rejected) → validated [`Config`], with
//! every problem reported at once with its path (`routes[2].filters[0].cel: ...`), before any
//! socket opens. Also the embedded default config used without `--config`.
//!
//! Loading happens in three steps:
//! 1. the text is parsed as a YAML document (syntax errors stop here, with line and column);
//! 2. it is deserialized into [`raw`] structs by [`lenient`]: each unknown key or wrong type is
//!    reported (with the valid keys) and taken out, and the rest goes on;
//! 3. [`validate`] checks every value and compiles filters and CEL programs, collecting every
//!    problem. All problems of steps 2 and 3 come out together, sorted in document order, each
//!    with its path and the line [`lines`] finds for it. Warnings (loop risks, no routes) do not
//!    fail the load; they are kept on [`Config::warnings`].
//!
//! Files:
//! * [`raw`]: the serde structs the YAML deserializes into (every field optional).
//! * [`lenient`]: deserialization that reports and takes out each refused node, and goes on.
//! * [`path`]: config paths (`routes[2].filters[0]`) and the [`path::Report`] of problems.
//! * [`lines`]: the line of each path in the file.
//! * [`check`]: the shared checkers (names, URLs, sizes, durations) and the validation context.
//! * [`validate`]: orchestrates validation; checks the top-level values and the listener's TLS.
//! * [`gateway`]: one `gateways` entry. [`route`]: one `routes` entry (filters, mapping,
//!   reply, schema). [`auth`]: the `auth:` blocks and `webhooks:`. [`state`]: `state:`.
//!
//! Uses [`crate::model`], [`crate::rules`] (the compilers and the rule set it builds), the plain
//! data of [`crate::state::spec`],
//! [`crate::tls`] (certificates are read at load), the plain data of [`crate::auth::spec`] and
//! the JWKS parser [`crate::auth::jwks`]. Nothing here builds a verifier, a client or a socket.
//!
//! YAML crate: `serde_norway`, the maintained fork of `serde_yaml` with the same serde API
//! (`serde_yaml` is archived and unmaintained).

mod auth;
mod check;
mod gateway;
mod lenient;
mod limits;
mod lines;
mod path;
pub mod raw;
mod route;
mod state;
pub mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path as FsPath;

use crate::model::GatewaySpec;
use crate::rules::{RuleSet, Unmatched};
use check::{Compilers, Context};
use path::{Problem, Report};
use raw::{RawConfig, RawGateway, RawRoute};

pub use check::parse_admin_listen;
pub use limits::Limits;

/// Gateway of the embedded default config when neither `--gateway` nor `FLOWBRIDGE_GATEWAY` is
/// given: the port a Jina Flow exported to Kubernetes listens on.
pub const DEFAULT_GATEWAY: &str = "grpc://127.0.0.1:8080";

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// The admin listener (`/metrics`, `/healthz`, `/readyz`); `None` when disabled
    /// (`admin_listen: ""` or `off`).
    pub admin_listen: Option<SocketAddr>,
    /// `limits:`: body size, read deadlines, header and connection caps.
    pub limits: Limits,
    pub unmatched: Unmatched,
    pub gateways: BTreeMap<String, GatewaySpec>,
    pub rules: RuleSet,
    /// How long queued and in-flight events may take to finish after SIGTERM.
    pub shutdown_grace: std::time::Duration,
    /// Inbound auth of `POST /` (and of webhooks without their own); `None`: open.
    pub auth: Option<crate::auth::spec::AuthSpec>,
    /// `POST /webhooks/<name>` endpoints.
    pub webhooks: Vec<crate::auth::spec::WebhookSpec>,
    /// TLS on the listener (`tls:`); `None`: plain HTTP.
    pub tls: Option<crate::tls::ServerTls>,
    /// Shared state for replicas (`state:`); `None`: each process keeps its own.
    pub state: Option<crate::state::StateSpec>,
    /// Suspicious but legal settings (a reply the route would match again, no routes), in
    /// document order; `flowbridge check` prints them, `serve` logs them.
    pub warnings: Vec<ConfigError>,
}

/// Command-line / env values that override or fill in the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--gateway` / `FLOWBRIDGE_GATEWAY`: gateway of the embedded default config.
    pub gateway: Option<String>,
    /// `--port` or `$PORT`: replaces the port of `listen`.
    pub port: Option<u16>,
}

/// One config problem.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// Where: `routes[2].filters[0].cel`, or `line 4 column 3` for YAML syntax errors.
    pub path: String,
    pub message: String,
    /// The line (1-based) of the node `path` names, or of its nearest ancestor in the file when
    /// the node is missing; `None` when there is no file line (a YAML syntax error carries its
    /// own in `path`, the embedded default config has none).
    pub line: Option<usize>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for e in &self.0 {
            writeln!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// The files this config names besides itself (TLS certificate, key and CA bundles, auth
    /// secret files, a JWKS file), which a reload watches too.
    pub fn referenced_files(&self) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        if let Some(tls) = &self.tls {
            files.push(tls.cert_file.clone());
            files.push(tls.key_file.clone());
            files.extend(tls.client_ca_file.clone());
        }
        for spec in self.gateways.values() {
            files.extend(spec.tls.ca_file.clone());
        }
        if let Some(state) = &self.state {
            files.extend(state.ca_file.clone());
            files.extend(state.password_file.clone());
        }
        let schemas = self.rules.routes.iter().filter_map(|r| r.schema.as_ref());
        files.extend(schemas.filter_map(|s| s.file().map(std::path::Path::to_path_buf)));
        let hooks = self.webhooks.iter().filter_map(|w| w.auth.as_ref());
        for auth in self.auth.iter().chain(hooks) {
            files.extend(auth.files());
        }
        files
    }
}

/// Load from a file, or the embedded default when `path` is `None`.
pub fn load(path: Option<&FsPath>, overrides: &Overrides) -> Result<Config, ConfigErrors> {
    let Some(path) = path else {
        return embedded_default(overrides);
    };
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            path: origin.clone(),
            message: format!("cannot read the config file: {e}"),
            line: None,
        }])
    })?;
    from_yaml(&text, &origin, overrides)
}

/// Parse and validate YAML text (`origin` names the file in messages).
pub fn from_yaml(text: &str, origin: &str, overrides: &Overrides) -> Result<Config, ConfigErrors> {
    let env = |name: &str| std::env::var(name).ok();
    let ctx = Context {
        compilers: &Compilers::REAL,
        env: &env,
    };
    from_yaml_with(text, origin, overrides, &ctx)
}

/// [`from_yaml`] with explicit compilers and environment (the test seam).
pub(crate) fn from_yaml_with(
    text: &str,
    origin: &str,
    overrides: &Overrides,
    ctx: &Context<'_>,
) -> Result<Config, ConfigErrors> {
    let doc: serde_norway::Value =
        serde_norway::from_str(text).map_err(|e| ConfigErrors(vec![yaml_error(&e)]))?;
    if doc.is_null() {
        return Err(ConfigErrors(vec![ConfigError {
            path: origin.to_string(),
            message: "the config is empty; it needs at least `gateways` and `routes` \
                      (see config/demo.yaml)"
                .to_string(),
            line: None,
        }]));
    }
    let lines = lines::Lines::index(text);
    // Unknown keys and wrong types are taken out and reported; validation checks the rest, so
    // one load lists every mistake.
    let (raw, refused) = lenient::deserialize(&doc);
    let mut report = Report::default();
    let config = raw.and_then(|raw| validate::validate(raw, ctx, &mut report));
    // Drop what only repeats a refusal: problems at or under a node taken out, and at the
    // mapping an unknown key was taken from (an "empty filter" once its only key is gone).
    report.errors.retain(|p| {
        !refused
            .iter()
            .any(|r| p.path.starts_with(&r.path) || r.path.parent().as_ref() == Some(&p.path))
    });
    report.errors.extend(refused);
    report.sort_by_document(&doc);
    finish(config, report, overrides, Some(&lines))
}

/// The config used without `--config`: listen on 0.0.0.0:8080, one gateway `default` (from
/// `--gateway` / `FLOWBRIDGE_GATEWAY`, else [`DEFAULT_GATEWAY`]), one route `default` that
/// matches every event with the default mapping and no reply.
fn embedded_default(overrides: &Overrides) -> Result<Config, ConfigErrors> {
    let raw = RawConfig {
        gateways: Some(BTreeMap::from([(
            "default".to_string(),
            RawGateway {
                url: Some(
                    overrides
                        .gateway
                        .clone()
                        .unwrap_or_else(|| DEFAULT_GATEWAY.to_string()),
                ),
                ..RawGateway::default()
            },
        )])),
        routes: Some(vec![RawRoute {
            name: Some("default".to_string()),
            ..RawRoute::default()
        }]),
        ..RawConfig::default()
    };
    let env = |name: &str| std::env::var(name).ok();
    let ctx = Context {
        compilers: &Compilers::REAL,
        env: &env,
    };
    let mut report = Report::default();
    let config = validate::validate(raw, &ctx, &mut report);
    finish(config, report, overrides, None).map_err(|ConfigErrors(errors)| {
        // The only user input here is the gateway URL; name where it came from.
        ConfigErrors(
            errors
                .into_iter()
                .map(|e| ConfigError {
                    path: if e.path == "gateways.default.url" {
                        "--gateway / FLOWBRIDGE_GATEWAY".to_string()
                    } else {
                        e.path
                    },
                    message: e.message,
                    line: None,
                })
                .collect(),
        )
    })
}

fn finish(
    config: Option<Config>,
    report: Report,
    overrides: &Overrides,
    lines: Option<&lines::Lines>,
) -> Result<Config, ConfigErrors> {
    let convert = |problems: Vec<Problem>| -> Vec<ConfigError> {
        problems
            .into_iter()
            .map(|p| ConfigError {
                line: lines.and_then(|l| l.line_of(&p.path)),
                path: p.path.to_string(),
                message: p.message,
            })
            .collect()
    };
    match config {
        Some(mut config) if report.errors.is_empty() => {
            if let Some(port) = overrides.port {
                config.listen.set_port(port);
            }
            config.warnings = convert(report.warnings);
            Ok(config)
        }
        _ => {
            let mut errors = convert(report.errors);
            if errors.is_empty() {
                // Validation failed without saying why; never report success silently.
                errors.push(ConfigError {
                    path: String::new(),
                    message: "invalid configuration".to_string(),
                    line: None,
                });
            }
            Err(ConfigErrors(errors))
        }
    }
}

/// A YAML syntax or type error: the path is `line L column C`; the message is serde's, which
/// starts with the YAML path (`routes[0]: unknown field ...`) when there is one.
fn yaml_error(error: &serde_norway::Error) -> ConfigError {
    let text = error.to_string();
    match error.location() {
        Some(loc) => {
            let at = format!(" at line {} column {}", loc.line(), loc.column());
            ConfigError {
                path: format!("line {} column {}", loc.line(), loc.column()),
                message: text.replacen(&at, "", 1),
                line: None,
            }
        }
        None => ConfigError {
            path: "yaml".to_string(),
            message: text,
            line: None,
        },
    }
}

#[cfg(test)]
mod tests;
