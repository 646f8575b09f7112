//! Tests of JWT verification: tokens signed here with a P-256 key made per run (ring), against
//! the claim checks, the messages they give, and signature, `kid` and algorithm failures.

use super::*;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::json;

fn ec_key() -> (EcdsaKeyPair, Jwk) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let jwk = Jwk {
        kid: Some("ec1".into()),
        alg: None,
        material: KeyMaterial::Ec {
            curve: Curve::P256,
            point: pair.public_key().as_ref().to_vec(),
        },
    };
    (pair, jwk)
}

fn sign(pair: &EcdsaKeyPair, header: Value, claims: Value) -> String {
    let h = B64URL.encode(header.to_string());
    let p = B64URL.encode(claims.to_string());
    let signed = format!("{h}.{p}");
    let sig = pair.sign(&SystemRandom::new(), signed.as_bytes()).unwrap();
    format!("{signed}.{}", B64URL.encode(sig.as_ref()))
}

const NOW: u64 = 1_800_000_000;

fn policy<'a>(aud: &'a [String], subjects: &'a [String]) -> Policy<'a> {
    Policy {
        issuer: "https://issuer.test",
        audiences: aud,
        subjects,
        leeway_secs: 30,
        now: NOW,
    }
}

fn claims() -> Value {
    json!({"iss": "https://issuer.test", "aud": ["sink"], "sub": "system:serviceaccount:ns:sa",
           "exp": NOW + 60, "nbf": NOW - 60})
}

fn check(token: &str, keys: &KeySet, subjects: &[String]) -> Result<String, Failure> {
    let aud = vec!["sink".to_string()];
    let parsed = parse(token)?;
    verify(&parsed, keys, &policy(&aud, subjects))
}

fn with(mut v: Value, k: &str, x: Value) -> Value {
    v[k] = x;
    v
}

#[test]
fn es256_claims_table() {
    let (pair, jwk) = ec_key();
    let keys = KeySet { keys: vec![jwk] };
    let header = json!({"alg": "ES256", "kid": "ec1"});
    let ok = sign(&pair, header.clone(), claims());
    assert_eq!(
        check(&ok, &keys, &[]).unwrap(),
        "system:serviceaccount:ns:sa"
    );
    let cases = [
        (with(claims(), "exp", json!(NOW - 31)), Reason::Expired),
        (with(claims(), "nbf", json!(NOW + 31)), Reason::NotYetValid),
        (
            with(claims(), "iss", json!("https://other")),
            Reason::WrongIssuer,
        ),
        (with(claims(), "aud", json!("other")), Reason::WrongAudience),
        (with(claims(), "exp", Value::Null), Reason::Malformed),
    ];
    for (c, reason) in cases {
        let t = sign(&pair, header.clone(), c.clone());
        assert_eq!(check(&t, &keys, &[]).unwrap_err().reason, reason, "{c}");
    }
    // Within the leeway.
    let t = sign(
        &pair,
        header.clone(),
        with(claims(), "exp", json!(NOW - 29)),
    );
    assert!(check(&t, &keys, &[]).is_ok());
    // Subjects.
    let other = vec!["system:serviceaccount:ns:other".to_string()];
    let e = check(&ok, &keys, &other).unwrap_err();
    assert_eq!(e.reason, Reason::SubjectNotAllowed);
    assert!(
        e.detail.contains("system:serviceaccount:ns:sa"),
        "{}",
        e.detail
    );
}

#[test]
fn audience_message_names_both_sides() {
    let (pair, jwk) = ec_key();
    let keys = KeySet { keys: vec![jwk] };
    let t = sign(
        &pair,
        json!({"alg": "ES256", "kid": "ec1"}),
        with(claims(), "aud", json!("x")),
    );
    let e = check(&t, &keys, &[]).unwrap_err();
    assert_eq!(
        e.detail,
        r#"audience ["x"] not accepted; expected one of ["sink"]"#
    );
}

#[test]
fn signature_kid_and_algorithm_failures() {
    let (pair, jwk) = ec_key();
    let (other, _) = ec_key();
    let keys = KeySet { keys: vec![jwk] };
    let forged = sign(&other, json!({"alg": "ES256", "kid": "ec1"}), claims());
    assert_eq!(
        check(&forged, &keys, &[]).unwrap_err().reason,
        Reason::BadSignature
    );
    let unknown = sign(&pair, json!({"alg": "ES256", "kid": "nope"}), claims());
    assert_eq!(
        check(&unknown, &keys, &[]).unwrap_err().reason,
        Reason::UnknownKey
    );
    let no_kid = sign(&pair, json!({"alg": "ES256"}), claims());
    assert!(
        check(&no_kid, &keys, &[]).is_ok(),
        "one key: used without a kid"
    );
    let wrong_alg = sign(&pair, json!({"alg": "RS256", "kid": "ec1"}), claims());
    assert_eq!(
        check(&wrong_alg, &keys, &[]).unwrap_err().reason,
        Reason::BadSignature
    );
    // alg none: header + payload + empty signature.
    let none = format!(
        "{}.{}.",
        B64URL.encode(json!({"alg": "none"}).to_string()),
        B64URL.encode(claims().to_string())
    );
    assert_eq!(
        check(&none, &keys, &[]).unwrap_err().reason,
        Reason::UnsupportedAlgorithm
    );
    let hs = format!(
        "{}.{}.AAAA",
        B64URL.encode(json!({"alg": "HS256", "kid": "ec1"}).to_string()),
        B64URL.encode(claims().to_string())
    );
    assert_eq!(
        check(&hs, &keys, &[]).unwrap_err().reason,
        Reason::UnsupportedAlgorithm
    );
    for bad in ["", "a.b", "a.b.c.d", "!!.e30.AA"] {
        assert_eq!(
            check(bad, &keys, &[]).unwrap_err().reason,
            Reason::Malformed,
            "{bad}"
        );
    }
}

#[test]
fn a_crit_header_is_refused_whatever_it_lists() {
    let (pair, jwk) = ec_key();
    let keys = KeySet { keys: vec![jwk] };
    // Validly signed by the issuer's key: only `crit` is wrong.
    let token = |crit: Value| {
        sign(
            &pair,
            json!({"alg": "ES256", "kid": "ec1", "b64": false, "crit": crit}),
            claims(),
        )
    };
    let e = check(&token(json!(["b64"])), &keys, &[]).unwrap_err();
    assert_eq!(e.reason, Reason::UnsupportedCritical);
    assert!(
        e.detail
            .contains("JWT header marks extension \"b64\" critical (`crit`)"),
        "{}",
        e.detail
    );
    let e = check(&token(json!(["exp", "http://example.com/x"])), &keys, &[]).unwrap_err();
    assert_eq!(e.reason, Reason::UnsupportedCritical);
    assert!(
        e.detail.contains("\"exp\", \"http://example.com/x\""),
        "{}",
        e.detail
    );
    for (bad, says) in [
        (json!([]), "empty array"),
        (json!("b64"), "not an array"),
        (json!(null), "not an array"),
        (json!(["b64", 7]), "not an extension name"),
    ] {
        let e = check(&token(bad.clone()), &keys, &[]).unwrap_err();
        assert_eq!(e.reason, Reason::Malformed, "{bad}");
        assert!(e.detail.contains(says), "{bad}: {}", e.detail);
    }
    // The same token without `crit` is accepted.
    let plain = sign(&pair, json!({"alg": "ES256", "kid": "ec1"}), claims());
    assert!(check(&plain, &keys, &[]).is_ok());
}
