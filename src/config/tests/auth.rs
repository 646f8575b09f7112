//! `auth:` blocks and `webhooks:`: secrets from files and the environment, every problem with
//! its path.

use std::time::Duration;

use super::*;

#[test]
fn auth_and_webhooks_parse_with_secrets_from_env_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "file-token\n").unwrap();
    let yaml = format!(
        "{GW}auth:\n  oidc:\n    issuer: https://kubernetes.default.svc.cluster.local\n    \
         audiences: [flowbridge]\n    subjects: [\"system:serviceaccount:knative-eventing:pinger\"]\n    \
         leeway: 0s\n  bearer:\n    tokens_from: [{{file: {}}}, {{env: TOKEN}}]\n\
         webhooks:\n  - name: github\n    source: https://github.com/acme/shop\n    \
         type: com.github.{{header}}\n    type_header: X-GitHub-Event\n    id_header: X-GitHub-Delivery\n    \
         auth:\n      hmac: {{header: X-Hub-Signature-256, prefix: \"sha256=\", secret: {{env: HOOK}}}}\n",
        token_file.display()
    );
    let config = parse_env(&yaml, &[("TOKEN", "env-token"), ("HOOK", "s3cret")]).unwrap();
    let auth = config.auth.as_ref().unwrap();
    let oidc = auth.oidc.as_ref().unwrap();
    assert_eq!(oidc.jwks, crate::auth::spec::JwksSource::Discovery);
    assert_eq!(oidc.leeway, Duration::ZERO);
    let tokens: Vec<&[u8]> = auth
        .bearer
        .as_ref()
        .unwrap()
        .tokens
        .iter()
        .map(|t| t.expose())
        .collect();
    assert_eq!(tokens, [b"file-token".as_slice(), b"env-token".as_slice()]);
    let hook = &config.webhooks[0];
    assert_eq!(hook.type_header.as_deref(), Some("x-github-event"));
    let hmac = hook.auth.as_ref().unwrap().hmac.as_ref().unwrap();
    assert_eq!(hmac.header, "x-hub-signature-256");
    assert_eq!(hmac.secret.expose(), b"s3cret");
    // Debug output (logged configs, panics) never carries a secret.
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("s3cret") && !debug.contains("env-token") && !debug.contains("file-token")
    );
}

#[test]
fn auth_and_webhook_errors_all_at_once_with_paths() {
    let yaml = format!(
        "{GW}auth:\n  oidc:\n    issuer: not a url\n    jwks_file: /nonexistent/jwks.json\n    \
         jwks_url: https://x/jwks\n  bearer:\n    tokens_from: [{{env: NOPE}}, {{}}]\n  \
         hmac: {{header: X-Sig, secret: {{env: NOPE}}}}\n\
         webhooks:\n  - name: Git Hub\n    type: a.{{header}}\n  \
         - name: ok\n    source: s\n    type: t\n    auth:\n      hmac: {{header: \"bad header\", algorithm: md5, encoding: b32}}\n"
    );
    let errs = errors(&yaml);
    let expected = [
        // Missing keys sort first among their siblings.
        "auth.oidc.audiences: required",
        "auth.oidc.issuer: not a URL",
        "auth.oidc.jwks_url: set either jwks_file or jwks_url",
        "auth.bearer.tokens_from[0].env: environment variable NOPE is not set",
        "auth.bearer.tokens_from[1]: set exactly one of `file` and `env`",
        "auth.hmac: hmac signs the body of a plain webhook",
        "webhooks[0].source: required",
        "webhooks[0].name: invalid webhook name \"Git Hub\"",
        "webhooks[0].type: \"a.{header}\" uses {header} but no type_header",
        "webhooks[1].auth.hmac.secret: required",
        "webhooks[1].auth.hmac.header: \"bad header\" is not a valid HTTP header name",
        "webhooks[1].auth.hmac.algorithm: expected sha256 or sha1, got \"md5\"",
        "webhooks[1].auth.hmac.encoding: expected hex or base64, got \"b32\"",
    ];
    for (e, want) in errs.iter().zip(expected) {
        assert!(
            e.starts_with(want),
            "expected {want:?}, got {e:?}\nall: {errs:#?}"
        );
    }
    assert_eq!(errs.len(), expected.len(), "{errs:#?}");
}

#[test]
fn empty_auth_and_bad_jwks_file_are_errors() {
    one_error(&format!("{GW}auth: {{}}\n"), "auth: lists no method");
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).unwrap();
    let e = one_error(
        &format!(
            "{GW}auth:\n  oidc: {{issuer: \"https://i\", audiences: [a], jwks_file: {}}}\n",
            jwks.display()
        ),
        "auth.oidc.jwks_file:",
    );
    assert!(e.contains("no usable signature key"), "{e}");
}
