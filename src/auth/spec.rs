//! The validated `auth:` and `webhooks:` settings as plain data: what [`crate::config`] produces
//! and [`super::Auth`] / the webhook ingress consume. Secrets (bearer tokens, HMAC keys) are read
//! from their files and environment variables during validation and kept in [`Secret`], whose
//! `Debug` never shows the value.

use std::time::Duration;

/// A secret value (token or HMAC key). `Debug` prints its length only.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    bytes: Vec<u8>,
    /// The file it was read from (watched for changes by the config reload), if any.
    file: Option<std::path::PathBuf>,
}

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret { bytes, file: None }
    }

    /// A secret read from `file`.
    pub fn from_file(bytes: Vec<u8>, file: std::path::PathBuf) -> Secret {
        Secret {
            bytes,
            file: Some(file),
        }
    }

    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// The file the secret came from (`None`: an environment variable).
    pub fn file(&self) -> Option<&std::path::Path> {
        self.file.as_deref()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(<{} bytes>)", self.bytes.len())
    }
}

/// One `auth:` block: every method listed; a request passing any one of them is accepted.
#[derive(Debug, Clone, Default)]
pub struct AuthSpec {
    pub oidc: Option<OidcSpec>,
    pub bearer: Option<BearerSpec>,
    /// Only in a webhook's `auth:`.
    pub hmac: Option<HmacSpec>,
}

impl AuthSpec {
    /// The files this block reads (secret files, a JWKS file, a CA bundle): a config reload
    /// watches them, so a rotated Kubernetes Secret applies without a SIGHUP.
    pub fn files(&self) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        if let Some(o) = &self.oidc {
            if let JwksSource::File(f) = &o.jwks {
                files.push(f.clone());
            }
            files.extend(o.ca_file.clone());
        }
        if let Some(b) = &self.bearer {
            files.extend(
                b.tokens
                    .iter()
                    .filter_map(|t| t.file().map(ToOwned::to_owned)),
            );
        }
        if let Some(h) = &self.hmac {
            files.extend(h.secret.file().map(ToOwned::to_owned));
        }
        files
    }

    /// Names of the configured methods, in checking order.
    pub fn methods(&self) -> Vec<&'static str> {
        let mut m = Vec::new();
        if self.oidc.is_some() {
            m.push("oidc");
        }
        if self.bearer.is_some() {
            m.push("bearer");
        }
        if self.hmac.is_some() {
            m.push("hmac");
        }
        m
    }
}

/// Where the verification keys of an OIDC issuer come from.
#[derive(Debug, Clone, PartialEq)]
pub enum JwksSource {
    /// A JWKS document on disk (re-read when a token names an unknown key).
    File(std::path::PathBuf),
    /// A JWKS document at this URL.
    Url(String),
    /// `<issuer>/.well-known/openid-configuration`, then its `jwks_uri`.
    Discovery,
}

/// `auth.oidc`: `Authorization: Bearer <JWT>` signed by the issuer's keys.
#[derive(Debug, Clone)]
pub struct OidcSpec {
    /// The exact `iss` claim expected.
    pub issuer: String,
    /// Accepted `aud` values (a token passes when its `aud` holds any of them).
    pub audiences: Vec<String>,
    pub jwks: JwksSource,
    /// CA bundle (PEM) trusted, next to the system roots, when fetching over HTTPS.
    pub ca_file: Option<std::path::PathBuf>,
    /// Bearer token file sent when fetching (a Kubernetes API server serves its JWKS to
    /// service accounts only); read at each fetch, since kubelet rotates it.
    pub token_file: Option<std::path::PathBuf>,
    /// Allowed `sub` values; empty = any subject of the issuer.
    pub subjects: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Keys are fetched again when older than this.
    pub refresh_interval: Duration,
    /// A token naming an unknown key triggers a fetch at most this often.
    pub refresh_min_interval: Duration,
}

/// `auth.bearer`: static tokens.
#[derive(Debug, Clone)]
pub struct BearerSpec {
    pub tokens: Vec<Secret>,
}

/// HMAC algorithm of a webhook signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmacAlgorithm {
    Sha256,
    Sha1,
}

/// How the signature is written in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureEncoding {
    Hex,
    Base64,
}

/// `webhooks[].auth.hmac`: a signature of the raw body in a header.
#[derive(Debug, Clone)]
pub struct HmacSpec {
    /// Header carrying the signature (lower-case).
    pub header: String,
    pub algorithm: HmacAlgorithm,
    /// Text before the signature in the header value (`sha256=`), may be empty.
    pub prefix: String,
    pub encoding: SignatureEncoding,
    pub secret: Secret,
}

/// One `webhooks:` entry: `POST /webhooks/<name>` turns a plain request into a CloudEvent.
#[derive(Debug, Clone)]
pub struct WebhookSpec {
    pub name: String,
    /// The event `source`.
    pub source: String,
    /// The event `type`; `{header}` is replaced by the value of `type_header`.
    pub ty: String,
    /// Header whose value fills `{header}` in `ty` (lower-case).
    pub type_header: Option<String>,
    /// Header giving the event `id` (else a fresh UUID).
    pub id_header: Option<String>,
    /// Header giving the event `subject`.
    pub subject_header: Option<String>,
    /// The webhook's own auth; `None` = the top-level `auth`.
    pub auth: Option<AuthSpec>,
}

impl WebhookSpec {
    /// `com.github.{header} ({header} = X-GitHub-Event)`, for `check`.
    pub fn describe_type(&self) -> String {
        match &self.type_header {
            Some(h) => format!("{} ({{header}} = {h})", self.ty),
            None => self.ty.clone(),
        }
    }
}

/// One line describing an `auth:` block, for `flowbridge check` (never a secret).
pub fn describe(spec: Option<&AuthSpec>) -> String {
    let Some(spec) = spec else {
        return "none (open: every request is accepted)".to_string();
    };
    let mut parts = Vec::new();
    if let Some(o) = &spec.oidc {
        let keys = match &o.jwks {
            JwksSource::File(p) => format!("keys from {}", p.display()),
            JwksSource::Url(u) => format!("keys from {u}"),
            JwksSource::Discovery => "keys by discovery".to_string(),
        };
        let subjects = if o.subjects.is_empty() {
            "any subject".to_string()
        } else {
            format!("subjects {:?}", o.subjects)
        };
        parts.push(format!(
            "oidc (issuer {}, audiences {:?}, {subjects}, {keys})",
            o.issuer, o.audiences
        ));
    }
    if let Some(b) = &spec.bearer {
        parts.push(format!("bearer ({} token(s))", b.tokens.len()));
    }
    if let Some(h) = &spec.hmac {
        let alg = match h.algorithm {
            HmacAlgorithm::Sha256 => "sha256",
            HmacAlgorithm::Sha1 => "sha1",
        };
        parts.push(format!("hmac ({alg} in {})", h.header));
    }
    parts.join(" or ")
}
