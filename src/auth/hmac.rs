//! Webhook body signatures: `HMAC(secret, raw body)` written in a header (GitHub:
//! `X-Hub-Signature-256: sha256=<hex>`), compared in constant time by ring.

use base64::Engine as _;
use ring::hmac;

use super::Reason;
use super::jwt::Failure;
use super::spec::{HmacAlgorithm, HmacSpec, SignatureEncoding};

fn key(spec: &HmacSpec) -> hmac::Key {
    let algorithm = match spec.algorithm {
        HmacAlgorithm::Sha256 => hmac::HMAC_SHA256,
        HmacAlgorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
    };
    hmac::Key::new(algorithm, spec.secret.expose())
}

/// The header value a sender with the same secret writes for `body` (prefix included).
pub fn sign(spec: &HmacSpec, body: &[u8]) -> String {
    let tag = hmac::sign(&key(spec), body);
    let encoded = match spec.encoding {
        SignatureEncoding::Hex => hex(tag.as_ref()),
        SignatureEncoding::Base64 => base64::engine::general_purpose::STANDARD.encode(tag.as_ref()),
    };
    format!("{}{encoded}", spec.prefix)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Checks `header_value` (the signature header, `None` when absent) against `body`.
pub fn verify(spec: &HmacSpec, header_value: Option<&str>, body: &[u8]) -> Result<(), Failure> {
    let failure = |reason, detail: String| Err(Failure { reason, detail });
    let Some(value) = header_value else {
        return failure(
            Reason::Missing,
            format!("no {} header (the body signature)", spec.header),
        );
    };
    let value = value.trim();
    let Some(encoded) = value.strip_prefix(spec.prefix.as_str()) else {
        return failure(
            Reason::Malformed,
            format!(
                "the {} header does not start with {:?}",
                spec.header, spec.prefix
            ),
        );
    };
    let decoded = match spec.encoding {
        SignatureEncoding::Hex => unhex(encoded),
        SignatureEncoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok(),
    };
    let Some(tag) = decoded else {
        let enc = match spec.encoding {
            SignatureEncoding::Hex => "hex",
            SignatureEncoding::Base64 => "base64",
        };
        return failure(
            Reason::Malformed,
            format!("the {} header is not {enc}", spec.header),
        );
    };
    match hmac::verify(&key(spec), body, &tag) {
        Ok(()) => Ok(()),
        Err(_) => failure(
            Reason::BadSignature,
            format!(
                "the {} signature does not match the body (is the webhook secret the same on both sides?)",
                spec.header
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::spec::Secret;

    fn github() -> HmacSpec {
        HmacSpec {
            header: "x-hub-signature-256".into(),
            algorithm: HmacAlgorithm::Sha256,
            prefix: "sha256=".into(),
            encoding: SignatureEncoding::Hex,
            secret: Secret::new(b"It's a Secret to Everybody".to_vec()),
        }
    }

    /// GitHub's documented test vector ("Validating webhook deliveries").
    #[test]
    fn github_documented_example() {
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(&github(), b"Hello, World!"), expected);
        assert!(verify(&github(), Some(expected), b"Hello, World!").is_ok());
        let upper = expected.to_ascii_uppercase().replace("SHA256=", "sha256=");
        assert!(verify(&github(), Some(&upper), b"Hello, World!").is_ok());
    }

    #[test]
    fn failures_have_reasons_and_never_show_the_secret() {
        let spec = github();
        let good = sign(&spec, b"Hello, World!");
        let cases = [
            (None, b"Hello, World!".as_slice(), Reason::Missing),
            (
                Some(good.as_str()),
                b"Hello, World?".as_slice(),
                Reason::BadSignature,
            ),
            (Some("sha1=abcd"), b"x".as_slice(), Reason::Malformed),
            (Some("sha256=zz"), b"x".as_slice(), Reason::Malformed),
            (Some("sha256=abc"), b"x".as_slice(), Reason::Malformed),
        ];
        for (header, body, reason) in cases {
            let e = verify(&spec, header, body).unwrap_err();
            assert_eq!(e.reason, reason, "{header:?}");
            assert!(!e.detail.contains("Secret to Everybody"));
        }
    }

    #[test]
    fn sha1_and_base64() {
        let spec = HmacSpec {
            header: "x-signature".into(),
            algorithm: HmacAlgorithm::Sha1,
            prefix: String::new(),
            encoding: SignatureEncoding::Base64,
            secret: Secret::new(b"key".to_vec()),
        };
        // HMAC-SHA1("key", "The quick brown fox jumps over the lazy dog") (RFC 2104 examples on
        // Wikipedia): de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9.
        let body = b"The quick brown fox jumps over the lazy dog";
        let expected = base64::engine::general_purpose::STANDARD
            .encode(unhex("de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9").unwrap());
        assert_eq!(sign(&spec, body), expected);
        assert!(verify(&spec, Some(&expected), body).is_ok());
    }
}
