//! Inbound auth end to end: a `flowbridge serve` process in front of the real Jina Flow, with
//! real keys and real signatures.
//!
//! * OIDC: an RSA key (made by `openssl genpkey`) and an EC P-256 key (made by ring) published as
//!   a JWKS by an HTTP server inside the test on 127.0.0.1; tokens signed here (valid RS256,
//!   PS256 and ES256; expired, not yet valid, wrong audience, wrong issuer, wrong key for a known
//!   kid, unknown kid, alg none, HS256 keyed with the public key, a `crit` header naming an
//!   extension, subject not allowed, a static bearer token) are answered 2xx / 401 / 403, and
//!   only accepted events reach the Flow. Key
//!   rotation: a new kid in the served JWKS is fetched when a token names it, at most once per
//!   `refresh_min_interval`.
//!   Discovery: a discovery document naming another issuer is not used (503 `auth_unavailable`).
//! * Webhooks: a GitHub-style push signed with `X-Hub-Signature-256` becomes a CloudEvent the
//!   Flow's executor sees with the configured type, id and source; a bad or missing signature is
//!   401 and reaches nothing.
//! * Metrics: `flowbridge_auth_failures_total` and `flowbridge_webhook_requests_total` scraped
//!   from the admin listener after each run.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

use support::{FlowBridge, HttpResponse, http_request, shared_flow, unique};

const ISSUER: &str = "https://issuer.flowbridge.test";
const AUDIENCE: &str = "flowbridge-sink";
const SUBJECT: &str =
    "system:serviceaccount:knative-eventing:trigger-a-oidc-eventing.knative.dev-trigger";
const STATIC_TOKEN: &str = "static-token-3f9a1c";

/// A 2048-bit RSA key made by `openssl genpkey` (ring verifies and signs RSA but cannot
/// generate RSA keys).
fn rsa_key() -> RsaKeyPair {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("key.pem");
    let der = dir.path().join("key.der");
    let openssl = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl is needed to generate the test RSA keys");
        assert!(status.success(), "openssl {args:?} failed: {status}");
    };
    let (pem_s, der_s) = (pem.to_str().unwrap(), der.to_str().unwrap());
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        pem_s,
    ]);
    // ring reads the PKCS#1 RSAPrivateKey form.
    openssl(&[
        "rsa",
        "-in",
        pem_s,
        "-outform",
        "DER",
        "-traditional",
        "-out",
        der_s,
    ]);
    RsaKeyPair::from_der(&std::fs::read(&der).unwrap()).unwrap()
}

fn ec_key() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap()
}

fn rsa_jwk(key: &RsaKeyPair, kid: &str) -> Value {
    let public: signature::RsaPublicKeyComponents<Vec<u8>> = key.public().into();
    json!({"kty": "RSA", "kid": kid, "use": "sig", "n": B64.encode(&public.n), "e": B64.encode(&public.e)})
}

fn ec_jwk(key: &EcdsaKeyPair, kid: &str) -> Value {
    let point = key.public_key().as_ref();
    json!({"kty": "EC", "kid": kid, "crv": "P-256", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])})
}

enum Signer<'a> {
    Rsa(&'a RsaKeyPair, &'static dyn signature::RsaEncoding),
    Ec(&'a EcdsaKeyPair),
    Hmac(&'a [u8]),
    Unsigned,
}

fn jwt(signer: Signer<'_>, header: Value, claims: &Value) -> String {
    let signed = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let rng = SystemRandom::new();
    let sig = match signer {
        Signer::Rsa(key, encoding) => {
            let mut sig = vec![0; key.public().modulus_len()];
            key.sign(encoding, &rng, signed.as_bytes(), &mut sig)
                .unwrap();
            sig
        }
        Signer::Ec(key) => key.sign(&rng, signed.as_bytes()).unwrap().as_ref().to_vec(),
        Signer::Hmac(secret) => {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
            ring::hmac::sign(&key, signed.as_bytes()).as_ref().to_vec()
        }
        Signer::Unsigned => Vec::new(),
    };
    format!("{signed}.{}", B64.encode(sig))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims() -> Value {
    json!({"iss": ISSUER, "aud": [AUDIENCE], "sub": SUBJECT, "iat": now(), "nbf": now() - 10, "exp": now() + 300})
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

/// An HTTP server on 127.0.0.1 answering every request with the current JWKS, counting hits;
/// once given a discovery document, it answers `GET /.well-known/openid-configuration` with it
/// (not counted in `hits`).
struct JwksServer {
    port: u16,
    jwks: Arc<Mutex<String>>,
    discovery: Arc<Mutex<Option<String>>>,
    hits: Arc<AtomicUsize>,
    discovery_hits: Arc<AtomicUsize>,
}

impl JwksServer {
    fn start(jwks: Value) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let doc = Arc::new(Mutex::new(jwks.to_string()));
        let hits = Arc::new(AtomicUsize::new(0));
        let discovery = Arc::new(Mutex::new(None::<String>));
        let discovery_hits = Arc::new(AtomicUsize::new(0));
        let (d, h) = (doc.clone(), hits.clone());
        let (disc, dh) = (discovery.clone(), discovery_hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let path = text.split(' ').nth(1).unwrap_or("");
                let discovered = disc.lock().unwrap().clone();
                let body = match discovered {
                    Some(doc) if path == "/.well-known/openid-configuration" => {
                        dh.fetch_add(1, Ordering::SeqCst);
                        doc
                    }
                    _ => {
                        h.fetch_add(1, Ordering::SeqCst);
                        d.lock().unwrap().clone()
                    }
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        JwksServer {
            port,
            jwks: doc,
            discovery,
            hits,
            discovery_hits,
        }
    }

    fn serve_discovery(&self, doc: Value) {
        *self.discovery.lock().unwrap() = Some(doc.to_string());
    }

    fn discovery_hits(&self) -> usize {
        self.discovery_hits.load(Ordering::SeqCst)
    }

    fn serve(&self, jwks: Value) {
        *self.jwks.lock().unwrap() = jwks.to_string();
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn post_event(bridge: &FlowBridge, token: Option<&str>) -> (HttpResponse, String) {
    let id = unique("auth");
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("ce-specversion", "1.0"),
        ("ce-id", id.as_str()),
        ("ce-type", "auth.test"),
        ("ce-source", "/auth/test"),
        ("content-type", "application/json"),
    ];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    let r = http_request(bridge.port, "POST", "/", &headers, br#"{"text": "hello"}"#);
    (r, id)
}

/// `name{labels}` → value of every sample on the admin listener's `/metrics`.
fn scrape(bridge: &FlowBridge) -> std::collections::BTreeMap<String, f64> {
    let r = http_request(bridge.admin_port, "GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200);
    r.text()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn auth_failures(
    m: &std::collections::BTreeMap<String, f64>,
    endpoint: &str,
    method: &str,
    reason: &str,
) -> f64 {
    let series = format!(
        "flowbridge_auth_failures_total{{endpoint=\"{endpoint}\",method=\"{method}\",reason=\"{reason}\"}}"
    );
    m.get(&series).copied().unwrap_or(0.0)
}

#[test]
fn oidc_and_bearer_tokens_through_the_real_flow() {
    let flow = shared_flow();
    let rsa = rsa_key();
    let other_rsa = rsa_key();
    let ec = ec_key();
    let server = JwksServer::start(json!({"keys": [rsa_jwk(&rsa, "rsa1"), ec_jwk(&ec, "ec1")]}));
    let config = support::write_config(&format!(
        r#"
unmatched: reject
auth:
  oidc:
    issuer: {ISSUER}
    audiences: [{AUDIENCE}, another-audience]
    jwks_url: http://127.0.0.1:{port}/openid/v1/jwks
    subjects: ["{SUBJECT}"]
    leeway: 5s
    refresh_min_interval: 1s
  bearer:
    tokens_from: [{{env: FB_TEST_STATIC_TOKEN}}]
gateways:
  main: {{url: "{flow}", timeout: 20s}}
routes:
  - name: all
    gateway: main
"#,
        port = server.port,
        flow = flow.grpc_url()
    ));
    let config = config.to_string_lossy().into_owned();
    let bridge = FlowBridge::start_with(
        &["--config", &config],
        &[("FB_TEST_STATIC_TOKEN", STATIC_TOKEN)],
    );
    assert!(server.hits() >= 1, "keys are fetched at startup");

    // Accepted: RS256, PS256, ES256, the static token.
    let rs256 = jwt(
        Signer::Rsa(&rsa, &signature::RSA_PKCS1_SHA256),
        json!({"alg": "RS256", "kid": "rsa1", "typ": "JWT"}),
        &claims(),
    );
    let ps256 = jwt(
        Signer::Rsa(&rsa, &signature::RSA_PSS_SHA256),
        json!({"alg": "PS256", "kid": "rsa1"}),
        &claims(),
    );
    let es256 = jwt(
        Signer::Ec(&ec),
        json!({"alg": "ES256", "kid": "ec1"}),
        &claims(),
    );
    for token in [&rs256, &ps256, &es256, STATIC_TOKEN] {
        let (r, id) = post_event(&bridge, Some(token));
        assert_eq!(r.status, 202, "{}", r.text());
        assert_eq!(
            flow.records_with_doc(&id).len(),
            1,
            "accepted event {id} reached the Flow"
        );
    }

    let rs = |claims: &Value| {
        jwt(
            Signer::Rsa(&rsa, &signature::RSA_PKCS1_SHA256),
            json!({"alg": "RS256", "kid": "rsa1"}),
            claims,
        )
    };
    let public_n = {
        let p: signature::RsaPublicKeyComponents<Vec<u8>> = rsa.public().into();
        p.n
    };
    let refused: Vec<(&str, Option<String>, u16, &str, &str)> = vec![
        ("missing", None, 401, "missing", "no Authorization header"),
        (
            "expired",
            Some(rs(&with(claims(), "exp", json!(now() - 60)))),
            401,
            "expired",
            "token expired at",
        ),
        (
            "not yet valid",
            Some(rs(&with(claims(), "nbf", json!(now() + 600)))),
            401,
            "not_yet_valid",
            "token not valid before",
        ),
        (
            "wrong aud",
            Some(rs(&with(claims(), "aud", json!("someone-else")))),
            401,
            "wrong_audience",
            "audience [\"someone-else\"] not accepted; expected one of [\"flowbridge-sink\", \"another-audience\"]",
        ),
        (
            "wrong iss",
            Some(rs(&with(claims(), "iss", json!("https://evil.test")))),
            401,
            "wrong_issuer",
            "issuer \"https://evil.test\" not accepted",
        ),
        (
            "wrong key",
            Some(jwt(
                Signer::Rsa(&other_rsa, &signature::RSA_PKCS1_SHA256),
                json!({"alg": "RS256", "kid": "rsa1"}),
                &claims(),
            )),
            401,
            "bad_signature",
            "signature does not verify with key \"rsa1\"",
        ),
        (
            "unknown kid",
            Some(jwt(
                Signer::Rsa(&other_rsa, &signature::RSA_PKCS1_SHA256),
                json!({"alg": "RS256", "kid": "nobody"}),
                &claims(),
            )),
            401,
            "unknown_key",
            "key id \"nobody\" is not in the issuer's key set",
        ),
        (
            "alg none",
            Some(jwt(Signer::Unsigned, json!({"alg": "none"}), &claims())),
            401,
            "unsupported_algorithm",
            "alg \"none\"",
        ),
        (
            "HS256 keyed with the public key",
            Some(jwt(
                Signer::Hmac(&public_n),
                json!({"alg": "HS256", "kid": "rsa1"}),
                &claims(),
            )),
            401,
            "unsupported_algorithm",
            "alg \"HS256\" (shared-secret HMAC) is not accepted",
        ),
        (
            "crit naming an extension (b64, RFC 7797)",
            Some(jwt(
                Signer::Rsa(&rsa, &signature::RSA_PKCS1_SHA256),
                json!({"alg": "RS256", "kid": "rsa1", "b64": false, "crit": ["b64"]}),
                &claims(),
            )),
            401,
            "unsupported_crit",
            "JWT header marks extension \"b64\" critical (`crit`)",
        ),
        (
            "crit naming a private extension",
            Some(jwt(
                Signer::Ec(&ec),
                json!({"alg": "ES256", "kid": "ec1", "https://ext.test/policy": "strict",
                       "crit": ["https://ext.test/policy"]}),
                &claims(),
            )),
            401,
            "unsupported_crit",
            "JWT header marks extension \"https://ext.test/policy\" critical",
        ),
        (
            "subject not allowed",
            Some(rs(&with(
                claims(),
                "sub",
                json!("system:serviceaccount:default:intruder"),
            ))),
            403,
            "subject_not_allowed",
            "subject \"system:serviceaccount:default:intruder\" is not allowed",
        ),
        (
            "wrong static token",
            Some("static-token-guess".to_string()),
            401,
            "bad_token",
            "matches none of the configured tokens",
        ),
    ];
    for (what, token, status, reason, message) in &refused {
        let (r, id) = post_event(&bridge, token.as_deref());
        assert_eq!(r.status, *status, "{what}: {}", r.text());
        let body = r.json();
        let text = body["error"]["message"].as_str().unwrap();
        assert!(
            text.contains(message),
            "{what}: message {text:?} should contain {message:?}"
        );
        let code = if *status == 403 {
            "forbidden"
        } else {
            "unauthenticated"
        };
        assert_eq!(body["error"]["code"], code, "{what}");
        if let Some(token) = token {
            assert!(
                !r.text().contains(token.as_str()),
                "{what}: the token is echoed"
            );
            let signature = token.rsplit('.').next().unwrap();
            assert!(
                signature.is_empty() || !r.text().contains(signature),
                "{what}: the signature is echoed"
            );
        }
        if *status == 401 {
            let challenge = r.header("www-authenticate").unwrap_or_default();
            assert!(
                challenge.starts_with("Bearer realm=\"flowbridge\""),
                "{what}: {challenge:?}"
            );
            if *reason != "missing" {
                assert!(
                    challenge.contains("error=\"invalid_token\""),
                    "{what}: {challenge:?}"
                );
            }
        }
        assert!(
            flow.records_with_doc(&id).is_empty(),
            "{what}: a refused event reached the Flow"
        );
        let _ = reason;
    }
    let log = bridge.log_text();
    for (_, token, ..) in &refused {
        if let Some(token) = token {
            assert!(!log.contains(token.as_str()), "a token was logged");
        }
    }
    assert!(!log.contains(STATIC_TOKEN), "the static token was logged");

    let m = scrape(&bridge);
    let expected = [
        ("oidc", "missing", 1.0),
        ("oidc", "expired", 1.0),
        ("oidc", "not_yet_valid", 1.0),
        ("oidc", "wrong_audience", 1.0),
        ("oidc", "wrong_issuer", 1.0),
        ("oidc", "bad_signature", 1.0),
        ("oidc", "unknown_key", 1.0),
        ("oidc", "unsupported_algorithm", 2.0),
        ("oidc", "unsupported_crit", 2.0),
        ("oidc", "subject_not_allowed", 1.0),
        ("bearer", "bad_token", 1.0),
    ];
    for (method, reason, n) in expected {
        assert_eq!(
            auth_failures(&m, "/", method, reason),
            n,
            "{method}/{reason}"
        );
    }
    assert_eq!(
        m.get("flowbridge_events_rejected_total{reason=\"unauthenticated\"}"),
        Some(&12.0)
    );
    assert_eq!(
        m.get("flowbridge_events_rejected_total{reason=\"forbidden\"}"),
        Some(&1.0)
    );

    // Key rotation: the issuer now publishes rsa2 (and no longer rsa1).
    let rsa2 = rsa_key();
    server.serve(json!({"keys": [rsa_jwk(&rsa2, "rsa2"), ec_jwk(&ec, "ec1")]}));
    std::thread::sleep(Duration::from_millis(1100)); // past refresh_min_interval
    let before = server.hits();
    let rotated = jwt(
        Signer::Rsa(&rsa2, &signature::RSA_PKCS1_SHA256),
        json!({"alg": "RS256", "kid": "rsa2"}),
        &claims(),
    );
    let (r, id) = post_event(&bridge, Some(&rotated));
    assert_eq!(r.status, 202, "token of the new key: {}", r.text());
    assert_eq!(flow.records_with_doc(&id).len(), 1);
    assert_eq!(server.hits(), before + 1, "one fetch for the new kid");
    // Unknown kids right after a fetch do not make flowbridge hammer the issuer.
    for _ in 0..3 {
        let t = jwt(
            Signer::Rsa(&rsa2, &signature::RSA_PKCS1_SHA256),
            json!({"alg": "RS256", "kid": "rsa3"}),
            &claims(),
        );
        assert_eq!(post_event(&bridge, Some(&t)).0.status, 401);
    }
    assert_eq!(
        server.hits(),
        before + 1,
        "rate-limited: no fetch within refresh_min_interval"
    );
    // The retired key no longer verifies.
    let (r, _) = post_event(&bridge, Some(&rs256));
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(
        r.text()
            .contains("key id \\\"rsa1\\\" is not in the issuer's key set"),
        "{}",
        r.text()
    );
}

/// OpenID Connect Discovery 1.0 §4.3: a discovery document whose `issuer` is not exactly the
/// configured one (another issuer, or the same with a trailing slash) is not used — its JWKS is
/// never fetched, tokens get 503 `auth_unavailable` with `Retry-After`, and the log says which
/// issuers differ — and the same server's matching document is.
#[test]
fn a_discovery_document_of_another_issuer_is_not_used() {
    let flow = shared_flow();
    let rsa = rsa_key();
    let server = JwksServer::start(json!({"keys": [rsa_jwk(&rsa, "rsa1")]}));
    // The issuer is the test server itself, so flowbridge discovers its keys there.
    let issuer = format!("http://127.0.0.1:{}", server.port);
    let discovery = |claimed: &str| {
        json!({"issuer": claimed, "jwks_uri": format!("{issuer}/keys"),
               "id_token_signing_alg_values_supported": ["RS256"]})
    };
    server.serve_discovery(discovery(ISSUER));
    let config = support::write_config(&format!(
        r#"
auth:
  oidc:
    issuer: {issuer}
    audiences: [{AUDIENCE}]
    refresh_min_interval: 1s
gateways:
  main: {{url: "{flow}", timeout: 20s}}
routes:
  - name: all
    gateway: main
"#,
        flow = flow.grpc_url()
    ));
    let bridge = FlowBridge::start(&config);
    assert!(server.discovery_hits() >= 1, "discovery at startup");
    let token = jwt(
        Signer::Rsa(&rsa, &signature::RSA_PKCS1_SHA256),
        json!({"alg": "RS256", "kid": "rsa1"}),
        &with(claims(), "iss", json!(issuer)),
    );
    let refused = |claimed: &str| {
        let (r, id) = post_event(&bridge, Some(&token));
        assert_eq!(r.status, 503, "{}", r.text());
        assert_eq!(
            r.json()["error"]["code"],
            "auth_unavailable",
            "{}",
            r.text()
        );
        assert_eq!(r.header("retry-after"), Some("1"), "{:?}", r.headers);
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        let says = format!(
            "the discovery document's issuer {claimed:?} is not the configured issuer {issuer:?}"
        );
        assert!(message.contains(&says), "{message}");
        assert!(
            flow.records_with_doc(&id).is_empty(),
            "an event reached the Flow"
        );
    };
    // Right after startup (within refresh_min_interval): the startup fetch's reason.
    refused(ISSUER);
    std::thread::sleep(Duration::from_millis(1100));
    let before = server.discovery_hits();
    refused(ISSUER);
    assert_eq!(
        server.discovery_hits(),
        before + 1,
        "fetched again for the token"
    );
    // Exact comparison: a trailing slash is another issuer.
    server.serve_discovery(discovery(&format!("{issuer}/")));
    std::thread::sleep(Duration::from_millis(1100));
    refused(&format!("{issuer}/"));
    assert_eq!(
        server.hits(),
        0,
        "the JWKS of a mismatched document was fetched"
    );
    let log = bridge.log_text();
    assert!(
        log.contains(&format!(
            // JSON log lines: the quotes are escaped.
            "the discovery document's issuer \\\"{ISSUER}\\\" is not the configured issuer \\\"{issuer}\\\""
        )),
        "{log}"
    );
    let m = scrape(&bridge);
    assert_eq!(auth_failures(&m, "/", "oidc", "keys_unavailable"), 3.0);
    assert_eq!(
        m.get("flowbridge_events_rejected_total{reason=\"auth_unavailable\"}"),
        Some(&3.0)
    );

    // The issuer's own document: its keys are used.
    server.serve_discovery(discovery(&issuer));
    std::thread::sleep(Duration::from_millis(1100));
    let (r, id) = post_event(&bridge, Some(&token));
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(flow.records_with_doc(&id).len(), 1);
    assert_eq!(server.hits(), 1, "the JWKS fetched once");
}

fn github_hmac(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

#[test]
fn github_webhook_through_the_real_flow() {
    let flow = shared_flow();
    let secret = "It's a Secret to Everybody";
    let config = support::write_config(&format!(
        r#"
unmatched: reject
auth:
  bearer:
    tokens_from: [{{env: FB_TEST_STATIC_TOKEN}}]
webhooks:
  - name: github
    source: https://github.com/acme/shop
    type: com.github.{{header}}
    type_header: X-GitHub-Event
    id_header: X-GitHub-Delivery
    auth:
      hmac: {{header: X-Hub-Signature-256, prefix: "sha256=", secret: {{env: FB_TEST_GITHUB_SECRET}}}}
gateways:
  main: {{url: "{flow}", timeout: 20s}}
routes:
  - name: pushes
    gateway: main
    filters:
      - exact: {{type: com.github.push}}
"#,
        flow = flow.grpc_url()
    ));
    let config = config.to_string_lossy().into_owned();
    let bridge = FlowBridge::start_with(
        &["--config", &config],
        &[
            ("FB_TEST_STATIC_TOKEN", STATIC_TOKEN),
            ("FB_TEST_GITHUB_SECRET", secret),
        ],
    );
    let push = |delivery: &str, signature: Option<&str>, event: Option<&str>| {
        let body = json!({"ref": "refs/heads/main", "repository": {"full_name": "acme/shop"},
                          "head_commit": {"message": "fix the mugs"}})
        .to_string();
        let good = github_hmac(secret.as_bytes(), body.as_bytes());
        let mut headers = vec![
            ("content-type", "application/json"),
            ("x-github-delivery", delivery),
            ("user-agent", "GitHub-Hookshot/test"),
        ];
        if let Some(event) = event {
            headers.push(("x-github-event", event));
        }
        let signature = signature.map_or(good, str::to_string);
        if !signature.is_empty() {
            headers.push(("x-hub-signature-256", signature.as_str()));
        }
        http_request(
            bridge.port,
            "POST",
            "/webhooks/github",
            &headers,
            body.as_bytes(),
        )
    };

    let delivery = unique("delivery");
    let r = push(&delivery, None, Some("push"));
    assert_eq!(r.status, 202, "{}", r.text());
    let records = flow.records_with_doc(&delivery);
    assert_eq!(records.len(), 1, "the push reached the Flow once");
    let doc = records[0]["docs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == delivery.as_str())
        .unwrap();
    let ce = &doc["tags"]["cloudevent"];
    assert_eq!(ce["type"], "com.github.push", "{doc}");
    assert_eq!(ce["id"], delivery.as_str());
    assert_eq!(ce["source"], "https://github.com/acme/shop");
    assert_eq!(ce["datacontenttype"], "application/json");
    assert_eq!(
        doc["tags"]["ref"], "refs/heads/main",
        "the JSON body is the data: {doc}"
    );

    // A forged signature (the secret differs by one character) and a missing one.
    let forged_delivery = unique("forged");
    let forged = github_hmac(b"It's a Secret to Everybody!", b"x");
    let r = push(&forged_delivery, Some(&forged), Some("push"));
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "unauthenticated");
    assert!(
        r.text().contains("signature does not match the body"),
        "{}",
        r.text()
    );
    assert!(!r.text().contains(secret));
    assert_eq!(
        r.header("www-authenticate"),
        Some("HMAC realm=\"flowbridge\", header=\"x-hub-signature-256\"")
    );
    let unsigned_delivery = unique("unsigned");
    let r = push(&unsigned_delivery, Some(""), Some("push"));
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(
        r.text().contains("no x-hub-signature-256 header"),
        "{}",
        r.text()
    );
    assert!(
        flow.records_with_doc(&forged_delivery).is_empty(),
        "a forged push reached the Flow"
    );
    assert!(flow.records_with_doc(&unsigned_delivery).is_empty());

    // Signed, but without the header that gives the type: 400.
    let r = push(&unique("notype"), None, None);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "invalid_webhook_request");
    assert!(
        r.text().contains("header x-github-event is missing"),
        "{}",
        r.text()
    );
    // A signed `ping` no route wants: `unmatched: reject` → 422, as on POST /.
    let r = push(&unique("ping"), None, Some("ping"));
    assert_eq!(r.status, 422, "{}", r.text());

    // Unknown webhook names and the abuse-protection handshake.
    let r = http_request(
        bridge.port,
        "POST",
        "/webhooks/gitlab",
        &[("content-type", "application/json")],
        b"{}",
    );
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(
        r.text()
            .contains("no webhook named \\\"gitlab\\\" (configured: [\\\"github\\\"])"),
        "{}",
        r.text()
    );
    let r = http_request(
        bridge.port,
        "OPTIONS",
        "/webhooks/github",
        &[("webhook-request-origin", "eventemitter.example.com")],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("webhook-allowed-origin"), Some("*"));
    let r = http_request(
        bridge.port,
        "OPTIONS",
        "/webhooks/gitlab",
        &[("webhook-request-origin", "x")],
        b"",
    );
    assert_eq!(r.status, 404);

    // POST / keeps the top-level auth (the webhook's hmac replaced it only for the webhook).
    let (r, _) = post_event(&bridge, None);
    assert_eq!(r.status, 401);

    let m = scrape(&bridge);
    assert_eq!(
        m.get("flowbridge_webhook_requests_total{webhook=\"github\"}"),
        Some(&5.0)
    );
    assert_eq!(
        auth_failures(&m, "/webhooks/github", "hmac", "bad_signature"),
        1.0
    );
    assert_eq!(
        auth_failures(&m, "/webhooks/github", "hmac", "missing"),
        1.0
    );
    assert_eq!(auth_failures(&m, "/", "bearer", "missing"), 1.0);
    assert_eq!(
        m.get("flowbridge_events_rejected_total{reason=\"unknown_webhook\"}"),
        Some(&1.0)
    );
}

#[test]
fn check_accepts_the_github_webhook_example() {
    let path = support::repo_root().join("config/github-webhook.yaml");
    let run = |env: &[(&str, &str)]| {
        std::process::Command::new(support::flowbridge_bin())
            .args(["check", "--config", path.to_str().unwrap()])
            .env_remove("GITHUB_WEBHOOK_SECRET")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let out = run(&[("GITHUB_WEBHOOK_SECRET", "s3cret-value")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("webhook github: POST /webhooks/github → type com.github.{header}"),
        "{stdout}"
    );
    assert!(
        stdout.contains("auth POST /: oidc (issuer https://kubernetes.default.svc.cluster.local"),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cret-value"), "check printed the secret");
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "webhooks[0].auth.hmac.secret.env: environment variable GITHUB_WEBHOOK_SECRET is not set"
    ));
}
