//! The validated `state:` settings as plain data: what [`crate::config`] produces and
//! [`super::Store`] connects with. The password is read during validation (from its file or
//! environment variable) and never shown by `Debug`. Knows nothing of Redis itself.

use std::path::PathBuf;
use std::time::Duration;

/// `state.key_prefix` default.
pub const DEFAULT_KEY_PREFIX: &str = "flowbridge:";
/// `state.connect_timeout` default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// `state.command_timeout` default: the longest one Redis round trip may hold an event.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(250);

/// What a feature does while Redis does not answer (`state.on_state_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Go on without the shared state (this replica's own window / bucket), and count it.
    Open,
    /// Answer 503 (`state_unavailable`) so that the sender retries later.
    Closed,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Open => "open",
            Policy::Closed => "closed",
        }
    }
}

/// The policy of each shared feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policies {
    pub dedup: Policy,
    pub rate: Policy,
}

impl Default for Policies {
    fn default() -> Policies {
        Policies {
            dedup: Policy::Open,
            rate: Policy::Open,
        }
    }
}

/// `state:` — where the shared state lives.
#[derive(Clone, PartialEq, Eq)]
pub struct StateSpec {
    /// `redis://host:port/db` or `rediss://host:port/db` (a password in the URL is allowed but
    /// `password` is the better place).
    pub url: String,
    /// `rediss://` only: the PEM bundle trusted instead of the system roots, and its file.
    pub ca_pem: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// Read from `password: {file}` or `{env}` at load; a file is watched by the reload.
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Prepended to every key, so that several deployments can share one Redis.
    pub key_prefix: String,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub on_state_error: Policies,
}

impl StateSpec {
    /// A spec with the defaults for `url`.
    pub fn with_defaults(url: &str) -> StateSpec {
        StateSpec {
            url: url.to_string(),
            ca_pem: None,
            ca_file: None,
            password: None,
            password_file: None,
            key_prefix: DEFAULT_KEY_PREFIX.to_string(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            on_state_error: Policies::default(),
        }
    }

    /// `url` without its password, for logs.
    pub fn url_for_logs(&self) -> String {
        match (self.url.find("://"), self.url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}***{}", &self.url[..scheme + 3], &self.url[at..])
            }
            _ => self.url.clone(),
        }
    }
}

impl std::fmt::Debug for StateSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateSpec")
            .field("url", &self.url_for_logs())
            .field("ca_file", &self.ca_file)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("on_state_error", &self.on_state_error)
            .finish()
    }
}
