//! JSON Web Token verification (RFC 7519 / 7515 compact form) with ring: header, signature
//! against a key of the issuer's [`KeySet`], then the claims (`iss`, `aud`, `exp`, `nbf`, `sub`).
//! The signature is checked before any claim is trusted.
//!
//! Accepted algorithms: RS256/384/512, PS256/384/512 (RSA keys of at least 2048 bits), ES256
//! (P-256) and ES384 (P-384). `none` and the HMAC family (`HS*`) are refused outright: a public
//! key must never be usable as a shared secret. A key whose JWKS entry pins an `alg` only
//! verifies tokens with that `alg`. A header with `crit` (RFC 7515 §4.1.11) is refused: flowbridge
//! understands no JWS extension, so any listed one is unknown, and an empty or non-string list is
//! malformed.
//!
//! Pure: no I/O, the time is a parameter.
//!
//! Hand-written on ring rather than with the `jsonwebtoken` crate: since its 10.0 (12.0.0 is the
//! current release) it verifies through aws-lc-rs (`aws_lc_rs` feature) or RustCrypto
//! (`rust_crypto`) and has no ring backend (ring was its backend up to 9.x). Either would put a
//! second crypto stack beside the ring one that rustls, tonic and the HMAC checks use (this crate
//! is built without aws-lc on purpose). A custom `jsonwebtoken::crypto::CryptoProvider` over ring
//! would mean writing these same ring calls as its verifier factory, installed process-wide. What
//! is hand-written here is the compact-form parsing and the claim checks; the signature
//! arithmetic is ring's.

use base64::Engine as _;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;

use super::Reason;
use super::jwks::{B64URL, Curve, Jwk, KeyMaterial, KeySet};

/// Algorithms verified, as written in a JWT header.
pub const ALGORITHMS: [&str; 8] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
];

/// Longest echo of a claim value in a message.
const MAX_ECHO: usize = 100;

/// Why a token was refused (no part of the token in `detail` beyond claim values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: Reason,
    pub detail: String,
}

fn fail<T>(reason: Reason, detail: impl Into<String>) -> Result<T, Failure> {
    Err(Failure {
        reason,
        detail: detail.into(),
    })
}

/// What the claims must satisfy.
#[derive(Debug, Clone)]
pub struct Policy<'a> {
    pub issuer: &'a str,
    pub audiences: &'a [String],
    /// Empty: any subject.
    pub subjects: &'a [String],
    pub leeway_secs: u64,
    /// Seconds since the Unix epoch.
    pub now: u64,
}

/// The decoded (not yet verified) header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub alg: String,
    pub kid: Option<String>,
}

/// A token split and decoded, signature not yet checked.
#[derive(Debug)]
pub struct Parsed<'t> {
    pub header: Header,
    signed: &'t str,
    signature: Vec<u8>,
    payload: Vec<u8>,
}

/// `s` quoted and cut to [`MAX_ECHO`] characters, for messages.
pub(crate) fn echo(s: &str) -> String {
    let cut: String = s.chars().take(MAX_ECHO).collect();
    if cut.len() < s.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

/// Splits and decodes a compact JWT, and checks its `alg` is one we verify.
pub fn parse(token: &str) -> Result<Parsed<'_>, Failure> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return fail(
            Reason::Malformed,
            "not a JWT: expected three base64url parts separated by dots",
        );
    };
    let signed = &token[..h.len() + 1 + p.len()];
    let header_bytes = B64URL.decode(h).map_err(|_| Failure {
        reason: Reason::Malformed,
        detail: "JWT header is not base64url".into(),
    })?;
    let header: Value = serde_json::from_slice(&header_bytes).map_err(|_| Failure {
        reason: Reason::Malformed,
        detail: "JWT header is not a JSON object".into(),
    })?;
    let Some(alg) = header.get("alg").and_then(Value::as_str) else {
        return fail(Reason::Malformed, "JWT header has no `alg`");
    };
    if alg.eq_ignore_ascii_case("none") {
        return fail(
            Reason::UnsupportedAlgorithm,
            "alg \"none\" (an unsigned token) is not accepted",
        );
    }
    if alg.starts_with("HS") {
        return fail(
            Reason::UnsupportedAlgorithm,
            format!(
                "alg {} (shared-secret HMAC) is not accepted: tokens must be signed with the issuer's private key",
                echo(alg)
            ),
        );
    }
    if !ALGORITHMS.contains(&alg) {
        return fail(
            Reason::UnsupportedAlgorithm,
            format!(
                "alg {} is not accepted; expected one of {ALGORITHMS:?}",
                echo(alg)
            ),
        );
    }
    check_crit(&header)?;
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .map(str::to_string);
    let payload = B64URL.decode(p).map_err(|_| Failure {
        reason: Reason::Malformed,
        detail: "JWT payload is not base64url".into(),
    })?;
    let signature = B64URL.decode(s).map_err(|_| Failure {
        reason: Reason::Malformed,
        detail: "JWT signature is not base64url".into(),
    })?;
    Ok(Parsed {
        header: Header {
            alg: alg.to_string(),
            kid,
        },
        signed,
        signature,
        payload,
    })
}

/// RFC 7515 §4.1.11: `crit` names header extensions the recipient must understand, or refuse
/// the token. flowbridge understands none, so a present `crit` is always refused: a non-empty
/// list of names as [`Reason::UnsupportedCritical`], anything else (an empty list, a non-list,
/// a non-string entry) as [`Reason::Malformed`].
fn check_crit(header: &Value) -> Result<(), Failure> {
    let Some(crit) = header.get("crit") else {
        return Ok(());
    };
    let Some(list) = crit.as_array() else {
        return fail(
            Reason::Malformed,
            "JWT header `crit` is not an array of extension names (RFC 7515 §4.1.11)",
        );
    };
    if list.is_empty() {
        return fail(
            Reason::Malformed,
            "JWT header `crit` is an empty array, which RFC 7515 §4.1.11 forbids",
        );
    }
    let names: Option<Vec<&str>> = list.iter().map(Value::as_str).collect();
    let Some(names) = names else {
        return fail(
            Reason::Malformed,
            "JWT header `crit` holds a value that is not an extension name (RFC 7515 §4.1.11)",
        );
    };
    let shown: Vec<String> = names.iter().take(5).map(|n| echo(n)).collect();
    let more = if names.len() > shown.len() {
        ", …"
    } else {
        ""
    };
    fail(
        Reason::UnsupportedCritical,
        format!(
            "JWT header marks extension {}{more} critical (`crit`); flowbridge understands no JWS \
             extension, so the token is refused (RFC 7515 §4.1.11)",
            shown.join(", ")
        ),
    )
}

/// Verifies a parsed token against `keys` and `policy`; returns its subject (`sub`, may be empty).
pub fn verify(parsed: &Parsed<'_>, keys: &KeySet, policy: &Policy<'_>) -> Result<String, Failure> {
    let kid = parsed.header.kid.as_deref();
    let Some(key) = keys.find(kid) else {
        return match kid {
            Some(kid) => fail(
                Reason::UnknownKey,
                format!(
                    "key id {} is not in the issuer's key set (known: {:?})",
                    echo(kid),
                    keys.kids()
                ),
            ),
            None => fail(
                Reason::UnknownKey,
                format!(
                    "the token names no key (`kid`) and the key set has {} keys",
                    keys.keys.len()
                ),
            ),
        };
    };
    check_signature(parsed, key)?;
    let claims: Value = serde_json::from_slice(&parsed.payload).map_err(|_| Failure {
        reason: Reason::Malformed,
        detail: "JWT payload is not a JSON object".into(),
    })?;
    if !claims.is_object() {
        return fail(Reason::Malformed, "JWT payload is not a JSON object");
    }
    check_claims(&claims, policy)
}

fn check_signature(parsed: &Parsed<'_>, key: &Jwk) -> Result<(), Failure> {
    let alg = parsed.header.alg.as_str();
    let name = key
        .kid
        .as_deref()
        .map_or_else(|| "the key".to_string(), echo);
    if let Some(pinned) = &key.alg
        && pinned != alg
    {
        return fail(
            Reason::BadSignature,
            format!(
                "key {name} is for alg {}, the token says {alg}",
                echo(pinned)
            ),
        );
    }
    let message = parsed.signed.as_bytes();
    let sig = parsed.signature.as_slice();
    let ok = match (&key.material, alg) {
        (KeyMaterial::Rsa { n, e }, _) if alg.starts_with("RS") || alg.starts_with("PS") => {
            let params: &signature::RsaParameters = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
                _ => &signature::RSA_PSS_2048_8192_SHA512,
            };
            RsaPublicKeyComponents { n, e }
                .verify(params, message, sig)
                .is_ok()
        }
        (KeyMaterial::Ec { curve, point }, "ES256" | "ES384") => {
            let algorithm = match (curve, alg) {
                (Curve::P256, "ES256") => &signature::ECDSA_P256_SHA256_FIXED,
                (Curve::P384, "ES384") => &signature::ECDSA_P384_SHA384_FIXED,
                _ => {
                    return fail(
                        Reason::BadSignature,
                        format!("key {name} is on curve {curve:?}, which alg {alg} does not use"),
                    );
                }
            };
            UnparsedPublicKey::new(algorithm, point)
                .verify(message, sig)
                .is_ok()
        }
        (material, _) => {
            let kty = match material {
                KeyMaterial::Rsa { .. } => "an RSA key",
                KeyMaterial::Ec { .. } => "an EC key",
            };
            return fail(
                Reason::BadSignature,
                format!("key {name} is {kty}, which alg {alg} does not use"),
            );
        }
    };
    if ok {
        Ok(())
    } else {
        fail(
            Reason::BadSignature,
            format!("signature does not verify with key {name} ({alg})"),
        )
    }
}

fn numeric(claims: &Value, name: &str) -> Result<Option<u64>, Failure> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(f) if f >= 0.0 => Ok(Some(f as u64)),
            _ => fail(
                Reason::Malformed,
                format!("claim `{name}` is not a NumericDate"),
            ),
        },
    }
}

fn rfc3339(secs: u64) -> String {
    chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap_or(i64::MAX), 0)
        .map_or_else(|| secs.to_string(), |t| t.to_rfc3339())
}

fn check_claims(claims: &Value, policy: &Policy<'_>) -> Result<String, Failure> {
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    if iss != policy.issuer {
        return fail(
            Reason::WrongIssuer,
            format!(
                "issuer {} not accepted; expected {:?}",
                echo(iss),
                policy.issuer
            ),
        );
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences
        .iter()
        .any(|a| policy.audiences.iter().any(|p| p == a))
    {
        let shown: Vec<String> = audiences.iter().take(5).map(|a| echo(a)).collect();
        return fail(
            Reason::WrongAudience,
            format!(
                "audience [{}] not accepted; expected one of {:?}",
                shown.join(", "),
                policy.audiences
            ),
        );
    }
    let Some(exp) = numeric(claims, "exp")? else {
        return fail(Reason::Malformed, "the token has no `exp` claim");
    };
    if policy.now > exp.saturating_add(policy.leeway_secs) {
        return fail(
            Reason::Expired,
            format!(
                "token expired at {} ({}s ago, leeway {}s)",
                rfc3339(exp),
                policy.now - exp,
                policy.leeway_secs
            ),
        );
    }
    if let Some(nbf) = numeric(claims, "nbf")?
        && policy.now.saturating_add(policy.leeway_secs) < nbf
    {
        return fail(
            Reason::NotYetValid,
            format!(
                "token not valid before {} ({}s from now, leeway {}s)",
                rfc3339(nbf),
                nbf - policy.now,
                policy.leeway_secs
            ),
        );
    }
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !policy.subjects.is_empty() && !policy.subjects.iter().any(|s| s == sub) {
        return fail(
            Reason::SubjectNotAllowed,
            format!("subject {} is not allowed", echo(sub)),
        );
    }
    Ok(sub.to_string())
}

#[cfg(test)]
mod tests;
