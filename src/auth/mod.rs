//! Inbound authentication: who may deliver events. [`Auth`] is built once per config generation
//! from the validated specs ([`spec::AuthSpec`], [`spec::WebhookSpec`]) and holds one
//! [`Verifier`] for `POST /` (top-level `auth:`) and one per webhook (its own `auth:`, else the
//! top-level one). A verifier lists methods; a request passing any one is accepted:
//!
//! * `oidc` ([`jwt`], [`jwks`], [`fetch`]): `Authorization: Bearer <JWT>` signed by the issuer's
//!   keys, with `iss`, `aud`, `exp`/`nbf` and optional allowed subjects checked. Keys come from a
//!   file, a URL, or the issuer's discovery document (used only when its `issuer` is exactly the
//!   configured one); they are cached, fetched again when older
//!   than `refresh_interval`, and when a token names an unknown key (at most once per
//!   `refresh_min_interval`).
//! * `bearer`: static tokens, compared in constant time.
//! * `hmac` ([`hmac`]): a signature of the raw body in a header (webhooks).
//!
//! Failures are [`AuthError`]s with a bounded [`Reason`] (the metric label) and a message that
//! names what was wrong but never the token or secret. The ingress turns them into 401 / 403 /
//! 503 (`ingress/error.rs`). Nothing here knows about axum; headers are `http` types.
//!
//! Files:
//! * [`spec`]: the validated settings as plain data (what `config` produces); imports nothing.
//! * [`jwks`]: JSON Web Key Sets, parsed (also by `config`, to check a `jwks_file`).
//! * [`jwt`]: JWT verification with ring (pure).
//! * [`hmac`]: webhook body signatures.
//! * [`fetch`]: the HTTP(S) GET of discovery and JWKS documents (reqwest).
//!
//! Layering: this module never imports [`crate::config`]; `config` depends on [`spec`] and
//! [`jwks`] only, and the runtime hands the specs to [`Auth::new`].

pub mod fetch;
pub mod hmac;
pub mod jwks;
pub mod jwt;
pub mod spec;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use http::HeaderMap;
use subtle::ConstantTimeEq as _;
use tracing::{info, warn};

use jwks::KeySet;
use jwt::Failure;
use spec::{AuthSpec, BearerSpec, HmacSpec, JwksSource, OidcSpec, WebhookSpec};

/// How long one discovery or JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request was refused: the `reason` label of `flowbridge_auth_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No credential for the method (no `Authorization`, no signature header).
    Missing,
    /// A credential that cannot be read (not `Bearer`, not a JWT, not hex…).
    Malformed,
    /// A JWT signature or a body HMAC that does not verify.
    BadSignature,
    /// A static bearer token that matches none of the configured ones.
    BadToken,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    /// A valid token whose `sub` is not in `subjects` (403).
    SubjectNotAllowed,
    /// The token's `kid` is not in the issuer's key set.
    UnknownKey,
    /// `alg` none, HS*, or another algorithm not verified.
    UnsupportedAlgorithm,
    /// A JWT header whose `crit` lists an extension flowbridge does not understand (it
    /// understands none; RFC 7515 §4.1.11).
    UnsupportedCritical,
    /// No keys could be loaded to verify tokens with (503).
    KeysUnavailable,
}

impl Reason {
    pub const ALL: [Reason; 13] = [
        Reason::Missing,
        Reason::Malformed,
        Reason::BadSignature,
        Reason::BadToken,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::WrongIssuer,
        Reason::WrongAudience,
        Reason::SubjectNotAllowed,
        Reason::UnknownKey,
        Reason::UnsupportedAlgorithm,
        Reason::UnsupportedCritical,
        Reason::KeysUnavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::Malformed => "malformed",
            Reason::BadSignature => "bad_signature",
            Reason::BadToken => "bad_token",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::WrongIssuer => "wrong_issuer",
            Reason::WrongAudience => "wrong_audience",
            Reason::SubjectNotAllowed => "subject_not_allowed",
            Reason::UnknownKey => "unknown_key",
            Reason::UnsupportedAlgorithm => "unsupported_algorithm",
            Reason::UnsupportedCritical => "unsupported_crit",
            Reason::KeysUnavailable => "keys_unavailable",
        }
    }

    /// Which failure wins when every method failed: a refused identity (403) over a credential
    /// the method could read but not accept, over one it could not read (a static token is
    /// not a JWT), over an unavailable verifier, over no credential at all.
    fn rank(self) -> u8 {
        match self {
            Reason::SubjectNotAllowed => 4,
            Reason::Missing => 0,
            Reason::KeysUnavailable => 1,
            Reason::Malformed => 2,
            _ => 3,
        }
    }
}

/// Auth methods (`method` label).
pub const METHODS: [&str; 3] = ["oidc", "bearer", "hmac"];

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{method}: {detail}")]
pub struct AuthError {
    /// One of [`METHODS`].
    pub method: &'static str,
    pub reason: Reason,
    /// What was wrong; never the credential itself.
    pub detail: String,
    /// `WWW-Authenticate` value for a 401.
    pub challenge: String,
}

/// One endpoint's methods.
#[derive(Debug)]
pub struct Verifier {
    methods: Vec<Method>,
}

#[derive(Debug)]
enum Method {
    Oidc(Arc<OidcVerifier>),
    Bearer(BearerSpec),
    Hmac(HmacSpec),
}

impl Method {
    fn name(&self) -> &'static str {
        match self {
            Method::Oidc(_) => "oidc",
            Method::Bearer(_) => "bearer",
            Method::Hmac(_) => "hmac",
        }
    }
}

/// The verifiers of every endpoint.
#[derive(Debug, Default)]
pub struct Auth {
    main: Option<Arc<Verifier>>,
    webhooks: BTreeMap<String, Arc<Verifier>>,
}

impl Auth {
    /// Builds the verifiers of the top-level `auth:` block (`POST /`) and of each webhook (its
    /// own `auth:`, else the top-level one); no I/O, see [`Auth::prefetch`].
    pub fn new(main: Option<&AuthSpec>, webhooks: &[WebhookSpec]) -> Arc<Auth> {
        let main = main.map(|spec| Arc::new(build(spec)));
        let webhooks = webhooks
            .iter()
            .filter_map(|w| {
                let verifier = match &w.auth {
                    Some(spec) => Arc::new(build(spec)),
                    None => main.clone()?,
                };
                Some((w.name.clone(), verifier))
            })
            .collect();
        Arc::new(Auth { main, webhooks })
    }

    /// The verifier of `POST /`; `None`: open.
    pub fn main(&self) -> Option<&Verifier> {
        self.main.as_deref()
    }

    /// The verifier of `POST /webhooks/<name>`; `None`: open.
    pub fn webhook(&self, name: &str) -> Option<&Verifier> {
        self.webhooks.get(name).map(Arc::as_ref)
    }

    /// Loads every OIDC key set once (at startup), logging the outcome; failures are retried
    /// when the first token arrives.
    pub async fn prefetch(&self) {
        let mut seen: Vec<*const OidcVerifier> = Vec::new();
        for verifier in self.main.iter().chain(self.webhooks.values()) {
            for m in &verifier.methods {
                if let Method::Oidc(o) = m
                    && !seen.contains(&Arc::as_ptr(o))
                {
                    seen.push(Arc::as_ptr(o));
                    o.refresh_now().await;
                }
            }
        }
    }
}

fn build(spec: &AuthSpec) -> Verifier {
    let mut methods = Vec::new();
    if let Some(o) = &spec.oidc {
        methods.push(Method::Oidc(Arc::new(OidcVerifier::new(o.clone()))));
    }
    if let Some(b) = &spec.bearer {
        methods.push(Method::Bearer(b.clone()));
    }
    if let Some(h) = &spec.hmac {
        methods.push(Method::Hmac(h.clone()));
    }
    Verifier { methods }
}

/// The token of `Authorization: Bearer <token>`.
fn bearer_token(headers: &HeaderMap) -> Result<&str, Failure> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Err(Failure {
            reason: Reason::Missing,
            detail: "no Authorization header".into(),
        });
    };
    let malformed = |detail: &str| Failure {
        reason: Reason::Malformed,
        detail: detail.into(),
    };
    let text = value
        .to_str()
        .map_err(|_| malformed("the Authorization header is not ASCII"))?;
    let (scheme, token) = text.trim().split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(malformed("the Authorization scheme is not Bearer"));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(malformed("the Bearer token is empty"));
    }
    Ok(token)
}

/// Characters allowed in a quoted `error_description` (RFC 6750 §3).
fn quoted(text: &str) -> String {
    text.chars()
        .filter(|c| matches!(c, ' ' | '!' | '#'..='[' | ']'..='~'))
        .take(200)
        .collect()
}

impl Verifier {
    /// Whether a method needs the body (HMAC); if not, auth runs before the body is read.
    pub fn needs_body(&self) -> bool {
        self.methods.iter().any(|m| matches!(m, Method::Hmac(_)))
    }

    /// Names of the methods, for logs.
    pub fn method_names(&self) -> Vec<&'static str> {
        self.methods.iter().map(Method::name).collect()
    }

    /// Accepts the request when any method passes; otherwise the most telling failure.
    /// `body` is the raw body (empty when [`Verifier::needs_body`] is false).
    pub async fn check(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), AuthError> {
        let mut worst: Option<(&'static str, Failure)> = None;
        for m in &self.methods {
            let result = match m {
                Method::Oidc(o) => match bearer_token(headers) {
                    Ok(token) => o.verify(token).await.map(|_| ()),
                    Err(e) => Err(e),
                },
                Method::Bearer(b) => bearer_token(headers).and_then(|t| check_static(b, t)),
                Method::Hmac(h) => {
                    let value = headers.get(h.header.as_str()).map(|v| v.to_str());
                    match value {
                        Some(Err(_)) => Err(Failure {
                            reason: Reason::Malformed,
                            detail: format!("the {} header is not ASCII", h.header),
                        }),
                        Some(Ok(v)) => hmac::verify(h, Some(v), body),
                        None => hmac::verify(h, None, body),
                    }
                }
            };
            match result {
                Ok(()) => return Ok(()),
                Err(f) => {
                    if worst
                        .as_ref()
                        .is_none_or(|(_, w)| f.reason.rank() > w.reason.rank())
                    {
                        worst = Some((m.name(), f));
                    }
                }
            }
        }
        let (method, failure) = worst.unwrap_or((
            "none",
            Failure {
                reason: Reason::Missing,
                detail: "no auth method configured".into(),
            },
        ));
        Err(AuthError {
            method,
            reason: failure.reason,
            challenge: self.challenge(&failure),
            detail: failure.detail,
        })
    }

    fn challenge(&self, failure: &Failure) -> String {
        let token_based = self
            .methods
            .iter()
            .any(|m| matches!(m, Method::Oidc(_) | Method::Bearer(_)));
        if !token_based {
            let header = self
                .methods
                .iter()
                .find_map(|m| match m {
                    Method::Hmac(h) => Some(h.header.as_str()),
                    _ => None,
                })
                .unwrap_or("signature");
            return format!("HMAC realm=\"flowbridge\", header=\"{header}\"");
        }
        if failure.reason == Reason::Missing {
            "Bearer realm=\"flowbridge\"".to_string()
        } else {
            format!(
                "Bearer realm=\"flowbridge\", error=\"invalid_token\", error_description=\"{}\"",
                quoted(&failure.detail)
            )
        }
    }
}

fn check_static(spec: &BearerSpec, token: &str) -> Result<(), Failure> {
    // Every configured token is compared (no early exit), each in constant time.
    let matched = spec.tokens.iter().fold(0u8, |acc, t| {
        acc | t.expose().ct_eq(token.as_bytes()).unwrap_u8()
    });
    if matched == 1 {
        Ok(())
    } else {
        Err(Failure {
            reason: Reason::BadToken,
            detail: "the bearer token matches none of the configured tokens".into(),
        })
    }
}

/// Keys of one issuer and when they were loaded.
#[derive(Debug)]
struct Loaded {
    keys: Arc<KeySet>,
    at: Instant,
}

/// An OIDC issuer's policy and its cached key set.
#[derive(Debug)]
pub struct OidcVerifier {
    spec: OidcSpec,
    keys: RwLock<Option<Loaded>>,
    /// Serializes fetches; holds when the last one was attempted and how it failed.
    fetch: tokio::sync::Mutex<Attempt>,
}

/// The last key fetch.
#[derive(Debug, Default)]
struct Attempt {
    at: Option<Instant>,
    /// Why it failed (`None`: it succeeded, or none was made yet).
    error: Option<String>,
}

impl OidcVerifier {
    pub fn new(spec: OidcSpec) -> OidcVerifier {
        OidcVerifier {
            spec,
            keys: RwLock::new(None),
            fetch: tokio::sync::Mutex::new(Attempt::default()),
        }
    }

    fn cached(&self) -> Option<(Arc<KeySet>, Instant)> {
        self.keys
            .read()
            .ok()
            .and_then(|g| g.as_ref().map(|l| (l.keys.clone(), l.at)))
    }

    /// Verifies a JWT; returns its subject.
    pub async fn verify(&self, token: &str) -> Result<String, Failure> {
        let parsed = jwt::parse(token)?;
        let kid = parsed.header.kid.as_deref();
        let keys = self.keys_for(kid).await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let policy = jwt::Policy {
            issuer: &self.spec.issuer,
            audiences: &self.spec.audiences,
            subjects: &self.spec.subjects,
            leeway_secs: self.spec.leeway.as_secs(),
            now,
        };
        jwt::verify(&parsed, &keys, &policy)
    }

    /// Keys that know `kid`, fetching when the cache lacks it or is stale (rate-limited).
    async fn keys_for(&self, kid: Option<&str>) -> Result<Arc<KeySet>, Failure> {
        let usable = |c: &Option<(Arc<KeySet>, Instant)>| {
            c.as_ref().is_some_and(|(k, at)| {
                k.find(kid).is_some() && at.elapsed() < self.spec.refresh_interval
            })
        };
        let current = self.cached();
        if usable(&current) {
            return Ok(current.map(|(k, _)| k).unwrap_or_default());
        }
        let mut last_attempt = self.fetch.lock().await;
        // Another request may have fetched while this one waited.
        let current = self.cached();
        if usable(&current) {
            return Ok(current.map(|(k, _)| k).unwrap_or_default());
        }
        let allowed = last_attempt
            .at
            .is_none_or(|t| t.elapsed() >= self.spec.refresh_min_interval);
        if allowed {
            last_attempt.at = Some(Instant::now());
            match self.load().await {
                Ok(keys) => {
                    last_attempt.error = None;
                    let keys = Arc::new(keys);
                    self.store(keys.clone());
                    return Ok(keys);
                }
                Err(e) => {
                    warn!(issuer = %self.spec.issuer, error = %e, "cannot load the OIDC keys; using the cached ones if any");
                    last_attempt.error = Some(e);
                }
            }
        }
        match current {
            // Stale or without the kid: verification says which.
            Some((keys, _)) => Ok(keys),
            None => Err(Failure {
                reason: Reason::KeysUnavailable,
                // The last failure, also when this request was within refresh_min_interval of it.
                detail: match &last_attempt.error {
                    Some(e) => format!("the issuer's keys cannot be loaded: {e}"),
                    None => "the issuer's keys are not loaded yet; try again".to_string(),
                },
            }),
        }
    }

    fn store(&self, keys: Arc<KeySet>) {
        if let Ok(mut guard) = self.keys.write() {
            *guard = Some(Loaded {
                keys,
                at: Instant::now(),
            });
        }
    }

    /// Fetch now, ignoring the rate limit (startup).
    async fn refresh_now(&self) {
        let mut last_attempt = self.fetch.lock().await;
        last_attempt.at = Some(Instant::now());
        match self.load().await {
            Ok(keys) => {
                info!(issuer = %self.spec.issuer, keys = ?keys.kids(), "OIDC keys loaded");
                last_attempt.error = None;
                self.store(Arc::new(keys));
            }
            Err(e) => {
                warn!(issuer = %self.spec.issuer, error = %e, "cannot load the OIDC keys yet; tokens get 503 until they load");
                last_attempt.error = Some(e);
            }
        }
    }

    async fn load(&self) -> Result<KeySet, String> {
        let options = fetch::FetchOptions {
            ca_file: self.spec.ca_file.as_deref(),
            token_file: self.spec.token_file.as_deref(),
            timeout: FETCH_TIMEOUT,
        };
        match &self.spec.jwks {
            JwksSource::File(path) => {
                let text = tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                KeySet::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
            }
            JwksSource::Url(url) => {
                let doc = fetch::get_json(url, &options).await?;
                KeySet::from_value(&doc).map_err(|e| format!("{url}: {e}"))
            }
            JwksSource::Discovery => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.spec.issuer.trim_end_matches('/')
                );
                let doc = fetch::get_json(&url, &options).await?;
                check_discovered_issuer(&url, &doc, &self.spec.issuer)?;
                let Some(jwks_uri) = doc.get("jwks_uri").and_then(|v| v.as_str()) else {
                    return Err(format!("{url}: no `jwks_uri` in the discovery document"));
                };
                let keys = fetch::get_json(jwks_uri, &options).await?;
                KeySet::from_value(&keys).map_err(|e| format!("{jwks_uri}: {e}"))
            }
        }
    }
}

/// OpenID Connect Discovery 1.0 §4.3: the document's `issuer` must be exactly the issuer it was
/// fetched for, or its keys are not used (a document served for one issuer must not vouch for
/// another). Exact string comparison, as the spec asks: no trailing-slash or case folding.
fn check_discovered_issuer(url: &str, doc: &serde_json::Value, issuer: &str) -> Result<(), String> {
    match doc.get("issuer") {
        Some(serde_json::Value::String(found)) if found == issuer => Ok(()),
        Some(serde_json::Value::String(found)) => Err(format!(
            "{url}: the discovery document's issuer {} is not the configured issuer {issuer:?}; \
             its keys are not used (OpenID Connect Discovery 1.0 §4.3)",
            jwt::echo(found)
        )),
        _ => Err(format!(
            "{url}: the discovery document has no `issuer` string to match the configured issuer \
             {issuer:?}; its keys are not used (OpenID Connect Discovery 1.0 §4.3)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spec::Secret;

    #[test]
    fn the_discovered_issuer_must_be_the_configured_one_exactly() {
        let url = "https://issuer.test/.well-known/openid-configuration";
        let doc =
            |issuer: serde_json::Value| serde_json::json!({"issuer": issuer, "jwks_uri": "x"});
        assert!(
            check_discovered_issuer(
                url,
                &doc("https://issuer.test".into()),
                "https://issuer.test"
            )
            .is_ok()
        );
        for (found, says) in [
            (
                serde_json::json!("https://issuer.test/"),
                "issuer \"https://issuer.test/\" is not",
            ),
            (
                serde_json::json!("https://ISSUER.test"),
                "issuer \"https://ISSUER.test\" is not",
            ),
            (
                serde_json::json!("https://evil.test"),
                "issuer \"https://evil.test\" is not",
            ),
            (serde_json::json!(null), "no `issuer` string"),
        ] {
            let e = check_discovered_issuer(url, &doc(found.clone()), "https://issuer.test")
                .unwrap_err();
            assert!(e.contains(says), "{found}: {e}");
            assert!(
                e.contains("configured issuer \"https://issuer.test\""),
                "{e}"
            );
        }
        assert!(
            check_discovered_issuer(
                url,
                &serde_json::json!({"jwks_uri": "x"}),
                "https://issuer.test"
            )
            .unwrap_err()
            .contains("no `issuer` string")
        );
    }

    #[test]
    fn static_tokens_and_header_parsing() {
        let spec = BearerSpec {
            tokens: vec![
                Secret::new(b"alpha".to_vec()),
                Secret::new(b"beta".to_vec()),
            ],
        };
        assert!(check_static(&spec, "beta").is_ok());
        assert_eq!(
            check_static(&spec, "bet").unwrap_err().reason,
            Reason::BadToken
        );
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h).unwrap_err().reason, Reason::Missing);
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&h).unwrap_err().reason, Reason::Malformed);
        h.insert("authorization", "bearer  tok ".parse().unwrap());
        assert_eq!(bearer_token(&h).unwrap(), "tok");
    }

    #[tokio::test]
    async fn most_telling_failure_wins_and_challenge_hides_the_token() {
        let verifier = Verifier {
            methods: vec![Method::Bearer(BearerSpec {
                tokens: vec![Secret::new(b"right".to_vec())],
            })],
        };
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer wrong-token".parse().unwrap());
        let e = verifier.check(&h, b"").await.unwrap_err();
        assert_eq!((e.method, e.reason), ("bearer", Reason::BadToken));
        assert!(!e.challenge.contains("wrong-token") && !e.detail.contains("wrong-token"));
        assert!(
            e.challenge
                .starts_with("Bearer realm=\"flowbridge\", error=\"invalid_token\"")
        );
        let e = verifier.check(&HeaderMap::new(), b"").await.unwrap_err();
        assert_eq!(e.challenge, "Bearer realm=\"flowbridge\"");
    }
}
