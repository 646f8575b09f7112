//! JSON Web Key Sets (RFC 7517): the public keys an OIDC issuer signs tokens with. Only
//! signature keys flowbridge can verify with are kept: RSA (`kty: RSA`, `n`, `e`) and EC on
//! P-256 / P-384 (`kty: EC`, `crv`, `x`, `y`). Symmetric (`oct`) keys are never loaded, so no
//! token can be checked against a shared secret taken from a public document.

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;

/// base64url, padded or not (JOSE writes it unpadded; some tools pad).
pub const B64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// An elliptic curve of an EC key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

/// Public key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    /// Big-endian modulus and exponent.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// Uncompressed point `04 || x || y`.
    Ec { curve: Curve, point: Vec<u8> },
}

/// One usable key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The key's `alg`, when the set pins one.
    pub alg: Option<String>,
    pub material: KeyMaterial,
}

/// The usable keys of a JWKS document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
}

impl KeySet {
    /// Parses a JWKS document; an error when it is not one or holds no usable key.
    pub fn parse(text: &str) -> Result<KeySet, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON ({e}); expected a JWKS"))?;
        KeySet::from_value(&value)
    }

    pub fn from_value(value: &Value) -> Result<KeySet, String> {
        let Some(list) = value.get("keys").and_then(Value::as_array) else {
            return Err("not a JWKS: no `keys` array".to_string());
        };
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for (i, k) in list.iter().enumerate() {
            match parse_key(k) {
                Ok(Some(key)) => keys.push(key),
                Ok(None) => {}
                Err(e) => skipped.push(format!("keys[{i}]: {e}")),
            }
        }
        if keys.is_empty() {
            let why = if skipped.is_empty() {
                String::new()
            } else {
                format!(" ({})", skipped.join("; "))
            };
            return Err(format!(
                "no usable signature key (RSA, or EC P-256/P-384) among {} keys{why}",
                list.len()
            ));
        }
        Ok(KeySet { keys })
    }

    /// The key named `kid`; without a kid, the only key (if there is exactly one).
    pub fn find(&self, kid: Option<&str>) -> Option<&Jwk> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
    }

    /// Key ids, for messages.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().filter_map(|k| k.kid.as_deref()).collect()
    }
}

fn field<'a>(key: &'a Value, name: &str) -> Option<&'a str> {
    key.get(name).and_then(Value::as_str)
}

fn bytes(key: &Value, name: &str) -> Result<Vec<u8>, String> {
    let text = field(key, name).ok_or_else(|| format!("missing `{name}`"))?;
    B64URL
        .decode(text)
        .map_err(|e| format!("`{name}` is not base64url ({e})"))
}

/// One key: `Ok(None)` for keys that are not for signatures or of a type we skip silently.
fn parse_key(key: &Value) -> Result<Option<Jwk>, String> {
    if field(key, "use").is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    let kid = field(key, "kid").map(str::to_string);
    let alg = field(key, "alg").map(str::to_string);
    let material = match field(key, "kty") {
        Some("RSA") => {
            let n = strip_zeros(bytes(key, "n")?);
            let e = strip_zeros(bytes(key, "e")?);
            if n.len() < 256 {
                return Err(format!(
                    "RSA modulus of {} bits; at least 2048 are required",
                    n.len() * 8
                ));
            }
            KeyMaterial::Rsa { n, e }
        }
        Some("EC") => {
            let (curve, size) = match field(key, "crv") {
                Some("P-256") => (Curve::P256, 32),
                Some("P-384") => (Curve::P384, 48),
                other => return Err(format!("unsupported EC curve {other:?}")),
            };
            let x = bytes(key, "x")?;
            let y = bytes(key, "y")?;
            if x.len() != size || y.len() != size {
                return Err(format!("EC coordinates must be {size} bytes each"));
            }
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            KeyMaterial::Ec { curve, point }
        }
        // Symmetric keys (`oct`) and curves ring does not verify (`OKP`) are skipped.
        Some(_) => return Ok(None),
        None => return Err("missing `kty`".to_string()),
    };
    Ok(Some(Jwk { kid, alg, material }))
}

fn strip_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|b| **b == 0).count();
    v.drain(..zeros);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_rsa_and_ec_skips_oct_and_encryption_keys() {
        let n = B64URL.encode([0x80u8; 256]);
        let xy = B64URL.encode([7u8; 32]);
        let text = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "r", "n": n, "e": "AQAB"},
            {"kty": "EC", "kid": "e", "crv": "P-256", "x": xy, "y": xy},
            {"kty": "oct", "kid": "s", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": n, "e": "AQAB"},
        ]})
        .to_string();
        let set = KeySet::parse(&text).unwrap();
        assert_eq!(set.kids(), ["r", "e"]);
        assert!(matches!(
            &set.find(Some("e")).unwrap().material,
            KeyMaterial::Ec { curve: Curve::P256, point } if point.len() == 65 && point[0] == 4
        ));
        assert!(set.find(Some("s")).is_none());
        assert!(set.find(None).is_none(), "two keys: no kid, no pick");
    }

    #[test]
    fn rejects_documents_without_usable_keys() {
        assert!(KeySet::parse("[]").unwrap_err().contains("no `keys`"));
        let only_oct = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#;
        assert!(
            KeySet::parse(only_oct)
                .unwrap_err()
                .contains("no usable signature key")
        );
        let small =
            serde_json::json!({"keys":[{"kty":"RSA","n": B64URL.encode([1u8; 128]),"e":"AQAB"}]});
        assert!(
            KeySet::from_value(&small)
                .unwrap_err()
                .contains("1024 bits")
        );
    }
}
