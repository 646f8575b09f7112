//! Validation of `auth:` (top level and per webhook) and `webhooks:`: every problem with its path,
//! like the rest of [`super::validate`]. Secrets are read here, from their files and environment
//! variables, so a missing secret stops the load before any socket opens; a `jwks_file` is read
//! and parsed here too. Messages name the file or variable, never the secret.
//!
//! Produces the plain-data specs of [`crate::auth::spec`] and parses a `jwks_file` with
//! [`crate::auth::jwks`], both leaves that import nothing of the crate; the verifiers
//! ([`crate::auth::Auth`]) are built from the specs later, without this module.

use std::collections::HashMap;
use std::time::Duration;

use serde_norway::Value;

use super::check::{Context, NAME_RULE, duration, http_url, is_valid_name};
use super::path::{Path, Report};
use super::raw::{RawAuth, RawBearer, RawHmac, RawOidc, RawSecretRef, RawWebhook};
use crate::auth::jwks::KeySet;
use crate::auth::spec::{
    AuthSpec, BearerSpec, HmacAlgorithm, HmacSpec, JwksSource, OidcSpec, Secret, SignatureEncoding,
    WebhookSpec,
};

/// `auth.oidc.leeway` default.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// `auth.oidc.refresh_interval` default.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(600);
/// `auth.oidc.refresh_min_interval` default.
pub const DEFAULT_REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(10);

/// Validates one `auth:` block. `Some(None)`: no block; `None`: errors were reported.
/// `webhook` allows `hmac` (it signs a webhook's body; a CloudEvents delivery has no such
/// signature).
pub fn auth(
    raw: Option<&RawAuth>,
    path: &Path,
    webhook: bool,
    ctx: &Context<'_>,
    report: &mut Report,
) -> Option<Option<AuthSpec>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    let before = report.errors.len();
    if raw.oidc.is_none() && raw.bearer.is_none() && raw.hmac.is_none() {
        let methods = if webhook {
            "`oidc`, `bearer` or `hmac`"
        } else {
            "`oidc` or `bearer`"
        };
        report.error(
            path.clone(),
            format!("lists no method; set {methods} (or remove `auth` to accept every request)"),
        );
        return None;
    }
    let oidc = raw
        .oidc
        .as_ref()
        .and_then(|o| oidc(o, &path.key("oidc"), report));
    let bearer = raw
        .bearer
        .as_ref()
        .and_then(|b| bearer(b, &path.key("bearer"), ctx, report));
    let hmac = match &raw.hmac {
        Some(_) if !webhook => {
            report.error(
                path.key("hmac"),
                "hmac signs the body of a plain webhook; it applies only under webhooks[].auth",
            );
            None
        }
        Some(h) => hmac(h, &path.key("hmac"), ctx, report),
        None => None,
    };
    if report.errors.len() > before {
        return None;
    }
    Some(Some(AuthSpec { oidc, bearer, hmac }))
}

fn optional_duration(
    value: Option<&Value>,
    default: Duration,
    zero_ok: bool,
    path: &Path,
    report: &mut Report,
) -> Option<Duration> {
    match value {
        None => Some(default),
        Some(Value::String(s)) if zero_ok && humantime::parse_duration(s.trim()).is_ok() => {
            humantime::parse_duration(s.trim()).ok()
        }
        Some(v) => duration(v, path, report),
    }
}

fn oidc(raw: &RawOidc, path: &Path, report: &mut Report) -> Option<OidcSpec> {
    let before = report.errors.len();
    let issuer = match raw.issuer.as_deref() {
        None => {
            report.error(
                path.key("issuer"),
                "required: the `iss` of accepted tokens, e.g. https://kubernetes.default.svc.cluster.local \
                 (kubectl get --raw /.well-known/openid-configuration shows it)",
            );
            None
        }
        Some(text) => match http_url(text) {
            Ok(url) => Some(url),
            Err(e) => {
                report.error(path.key("issuer"), e);
                None
            }
        },
    };
    let audiences = match raw.audiences.as_deref() {
        None | Some([]) => {
            report.error(
                path.key("audiences"),
                "required: at least one accepted `aud`, the audience set on the Trigger's \
                 subscriber or the Source's sink",
            );
            None
        }
        Some(list) => {
            for (i, a) in list.iter().enumerate() {
                if a.trim().is_empty() {
                    report.error(path.key("audiences").index(i), "must not be empty");
                }
            }
            Some(list.to_vec())
        }
    };
    let jwks = match (raw.jwks_file.as_deref(), raw.jwks_url.as_deref()) {
        (Some(_), Some(_)) => {
            report.error(
                path.key("jwks_url"),
                "set either jwks_file or jwks_url, not both (neither: discovered from the issuer)",
            );
            None
        }
        (Some(file), None) => match std::fs::read_to_string(file) {
            Err(e) => {
                report.error(path.key("jwks_file"), format!("cannot read {file:?}: {e}"));
                None
            }
            Ok(text) => match KeySet::parse(&text) {
                Ok(_) => Some(JwksSource::File(file.into())),
                Err(e) => {
                    report.error(path.key("jwks_file"), format!("{file:?}: {e}"));
                    None
                }
            },
        },
        (None, Some(url)) => match http_url(url) {
            Ok(url) => Some(JwksSource::Url(url)),
            Err(e) => {
                report.error(path.key("jwks_url"), e);
                None
            }
        },
        (None, None) => Some(JwksSource::Discovery),
    };
    let readable =
        |key: &str, value: Option<&str>, report: &mut Report| -> Option<std::path::PathBuf> {
            let file = value?;
            if let Err(e) = std::fs::metadata(file) {
                report.error(path.key(key), format!("cannot read {file:?}: {e}"));
            }
            Some(file.into())
        };
    let ca_file = readable("ca_file", raw.ca_file.as_deref(), report);
    if let Some(file) = &ca_file
        && let Ok(pem) = std::fs::read(file)
        && crate::tls::certs_from_pem(&pem).is_err()
    {
        report.error(
            path.key("ca_file"),
            format!("{}: no PEM certificate in it", file.display()),
        );
    }
    let token_file = readable("token_file", raw.token_file.as_deref(), report);
    let subjects = raw.subjects.clone().unwrap_or_default();
    for (i, s) in subjects.iter().enumerate() {
        if s.trim().is_empty() {
            report.error(path.key("subjects").index(i), "must not be empty");
        }
    }
    let leeway = optional_duration(
        raw.leeway.as_ref(),
        DEFAULT_LEEWAY,
        true,
        &path.key("leeway"),
        report,
    );
    let refresh_interval = optional_duration(
        raw.refresh_interval.as_ref(),
        DEFAULT_REFRESH_INTERVAL,
        false,
        &path.key("refresh_interval"),
        report,
    );
    let refresh_min_interval = optional_duration(
        raw.refresh_min_interval.as_ref(),
        DEFAULT_REFRESH_MIN_INTERVAL,
        true,
        &path.key("refresh_min_interval"),
        report,
    );
    if report.errors.len() > before {
        return None;
    }
    Some(OidcSpec {
        issuer: issuer?,
        audiences: audiences?,
        jwks: jwks?,
        ca_file,
        token_file,
        subjects,
        leeway: leeway?,
        refresh_interval: refresh_interval?,
        refresh_min_interval: refresh_min_interval?,
    })
}

/// Reads one secret; `what` names it in messages ("token", "secret").
pub(super) fn secret(
    raw: &RawSecretRef,
    path: &Path,
    what: &str,
    ctx: &Context<'_>,
    report: &mut Report,
) -> Option<Secret> {
    let text = match (raw.file.as_deref(), raw.env.as_deref()) {
        (Some(_), Some(_)) | (None, None) => {
            report.error(
                path.clone(),
                format!("set exactly one of `file` and `env` (where the {what} is)"),
            );
            return None;
        }
        (Some(file), None) => match std::fs::read(file) {
            Ok(bytes) => (
                bytes,
                format!("file {file:?}"),
                path.key("file"),
                Some(std::path::PathBuf::from(file)),
            ),
            Err(e) => {
                report.error(path.key("file"), format!("cannot read {file:?}: {e}"));
                return None;
            }
        },
        (None, Some(name)) => match (ctx.env)(name) {
            Some(value) => (
                value.into_bytes(),
                format!("environment variable {name}"),
                path.key("env"),
                None,
            ),
            None => {
                report.error(
                    path.key("env"),
                    format!("environment variable {name} is not set"),
                );
                return None;
            }
        },
    };
    let (mut bytes, origin, at, file) = text;
    // Files written by `echo` or a Secret mount often end in a newline; it is not part of it.
    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        bytes.pop();
    }
    if bytes.is_empty() {
        report.error(at, format!("{origin} holds an empty {what}"));
        return None;
    }
    Some(match file {
        Some(file) => Secret::from_file(bytes, file),
        None => Secret::new(bytes),
    })
}

fn bearer(
    raw: &RawBearer,
    path: &Path,
    ctx: &Context<'_>,
    report: &mut Report,
) -> Option<BearerSpec> {
    let list = raw.tokens_from.as_deref().unwrap_or_default();
    if list.is_empty() {
        report.error(
            path.key("tokens_from"),
            "required: at least one `{file: PATH}` or `{env: NAME}` holding an accepted token",
        );
        return None;
    }
    let mut tokens = Vec::new();
    let before = report.errors.len();
    for (i, r) in list.iter().enumerate() {
        if let Some(t) = secret(r, &path.key("tokens_from").index(i), "token", ctx, report) {
            tokens.push(t);
        }
    }
    (report.errors.len() == before).then_some(BearerSpec { tokens })
}

/// A header name as configured, lower-cased; `None` (reported) when not a valid name.
fn header_name(text: &str, path: &Path, report: &mut Report) -> Option<String> {
    let lower = text.trim().to_ascii_lowercase();
    if http::HeaderName::from_bytes(lower.as_bytes()).is_err() || lower.is_empty() {
        report.error(
            path.clone(),
            format!("{text:?} is not a valid HTTP header name"),
        );
        return None;
    }
    Some(lower)
}

fn hmac(raw: &RawHmac, path: &Path, ctx: &Context<'_>, report: &mut Report) -> Option<HmacSpec> {
    let before = report.errors.len();
    let header = match raw.header.as_deref() {
        None => {
            report.error(
                path.key("header"),
                "required: the header with the signature, e.g. X-Hub-Signature-256 (GitHub)",
            );
            None
        }
        Some(h) => header_name(h, &path.key("header"), report),
    };
    let algorithm = match raw.algorithm.as_deref() {
        None | Some("sha256") => Some(HmacAlgorithm::Sha256),
        Some("sha1") => Some(HmacAlgorithm::Sha1),
        Some(other) => {
            report.error(
                path.key("algorithm"),
                format!("expected sha256 or sha1, got {other:?}"),
            );
            None
        }
    };
    let encoding = match raw.encoding.as_deref() {
        None | Some("hex") => Some(SignatureEncoding::Hex),
        Some("base64") => Some(SignatureEncoding::Base64),
        Some(other) => {
            report.error(
                path.key("encoding"),
                format!("expected hex or base64, got {other:?}"),
            );
            None
        }
    };
    let secret = match &raw.secret {
        None => {
            report.error(
                path.key("secret"),
                "required: `{file: PATH}` or `{env: NAME}` holding the shared secret",
            );
            None
        }
        Some(r) => secret(r, &path.key("secret"), "secret", ctx, report),
    };
    if report.errors.len() > before {
        return None;
    }
    Some(HmacSpec {
        header: header?,
        algorithm: algorithm?,
        prefix: raw.prefix.clone().unwrap_or_default(),
        encoding: encoding?,
        secret: secret?,
    })
}

/// Validates `webhooks:`; `None` when errors were reported.
pub fn webhooks(
    raw: Option<&[RawWebhook]>,
    path: &Path,
    ctx: &Context<'_>,
    report: &mut Report,
) -> Option<Vec<WebhookSpec>> {
    let before = report.errors.len();
    let mut first_use: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, w) in raw.unwrap_or_default().iter().enumerate() {
        let path = path.index(i);
        let errors_before = report.errors.len();
        let name = match w.name.as_deref() {
            None => {
                report.error(
                    path.key("name"),
                    "required: the webhook is served at POST /webhooks/<name>",
                );
                None
            }
            Some(n) if !is_valid_name(n) => {
                report.error(
                    path.key("name"),
                    format!("invalid webhook name {n:?}: {NAME_RULE}"),
                );
                None
            }
            Some(n) => {
                if let Some(first) = first_use.get(n) {
                    report.error(
                        path.key("name"),
                        format!("duplicate webhook name {n:?} (first used by webhooks[{first}])"),
                    );
                } else {
                    first_use.insert(n, i);
                }
                Some(n.to_string())
            }
        };
        let source = match w.source.as_deref().map(str::trim) {
            None | Some("") => {
                report.error(
                    path.key("source"),
                    "required: the `source` of the events, e.g. https://github.com/acme/shop",
                );
                None
            }
            Some(s) => Some(s.to_string()),
        };
        let header = |key: &str, value: Option<&str>, report: &mut Report| -> Option<String> {
            value.and_then(|v| header_name(v, &path.key(key), report))
        };
        let type_header = header("type_header", w.type_header.as_deref(), report);
        let id_header = header("id_header", w.id_header.as_deref(), report);
        let subject_header = header("subject_header", w.subject_header.as_deref(), report);
        let ty = match (w.ty.as_deref().map(str::trim), &w.type_header) {
            (Some(""), _) => {
                report.error(path.key("type"), "must not be empty");
                None
            }
            (Some(t), None) if t.contains("{header}") => {
                report.error(
                    path.key("type"),
                    format!("{t:?} uses {{header}} but no type_header says which header fills it"),
                );
                None
            }
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => Some("{header}".to_string()),
            (None, None) => {
                report.error(
                    path.key("type"),
                    "required: a fixed event type, or a template such as com.github.{header} \
                     with type_header: X-GitHub-Event",
                );
                None
            }
        };
        let auth = auth(w.auth.as_ref(), &path.key("auth"), true, ctx, report);
        if report.errors.len() > errors_before {
            continue;
        }
        if let (Some(name), Some(source), Some(ty), Some(auth)) = (name, source, ty, auth) {
            out.push(WebhookSpec {
                name,
                source,
                ty,
                type_header,
                id_header,
                subject_header,
                auth,
            });
        }
    }
    (report.errors.len() == before).then_some(out)
}
