//! Top-level values (`listen`, `admin_listen`, `limits.max_body`, `unmatched`) and the
//! listener's `tls:` (certificates made by the test CA, read at load).

use std::time::Duration;

use super::*;

// ---------------------------------------------------------------- top-level values

#[test]
fn admin_listen_default_address_and_off() {
    let routes = format!("{GW}routes: [{{name: r}}]\n");
    let c = ok(&routes);
    assert_eq!(c.admin_listen, Some("0.0.0.0:9095".parse().expect("addr")));
    let c = ok(&format!("admin_listen: 127.0.0.1:9191\n{routes}"));
    assert_eq!(
        c.admin_listen,
        Some("127.0.0.1:9191".parse().expect("addr"))
    );
    assert_eq!(
        ok(&format!("admin_listen: \"\"\n{routes}")).admin_listen,
        None
    );
    assert_eq!(
        ok(&format!("admin_listen: 'off'\n{routes}")).admin_listen,
        None
    );
    one_error(
        &format!("admin_listen: localhost:9095\n{routes}"),
        "admin_listen: expected IP:port such as 0.0.0.0:9095",
    );
}

#[test]
fn bad_listen() {
    one_error(
        &format!("listen: localhost:8080\n{GW}routes: [{{name: r}}]\n"),
        "listen: expected IP:port such as 0.0.0.0:8080",
    );
    one_error(
        &format!("listen: 0.0.0.0\n{GW}routes: [{{name: r}}]\n"),
        "listen: expected IP:port",
    );
}

#[test]
fn max_body_below_64kib() {
    one_error(
        &format!("limits: {{max_body: 1KiB}}\n{GW}routes: [{{name: r}}]\n"),
        "limits.max_body: must be at least 64KiB (65536 bytes), got 1024 bytes",
    );
    one_error(
        &format!("limits: {{max_body: 65535}}\n{GW}routes: [{{name: r}}]\n"),
        "limits.max_body: must be at least 64KiB",
    );
}

#[test]
fn limits_defaults_and_every_key() {
    let c = ok(&format!("{GW}routes: [{{name: r}}]\n"));
    assert_eq!(c.limits, Limits::default());
    assert_eq!(c.limits.head_timeout, Duration::from_secs(10));
    assert_eq!(c.limits.body_timeout, Duration::from_secs(30));
    assert_eq!(c.limits.idle_timeout, Duration::from_secs(120));
    assert_eq!(c.limits.max_header_bytes, 64 << 10);
    assert_eq!(c.limits.max_headers, 100);
    assert_eq!(c.limits.max_connections, 10_000);
    assert_eq!(c.limits.max_h2_streams, 256);
    let c = ok(&format!(
        "limits: {{max_body: 1MiB, head_timeout: 2s, body_timeout: 1m, idle_timeout: 500ms, \
         max_header_bytes: 16KiB, max_headers: 40, max_connections: 50, max_h2_streams: 8}}\n\
         {GW}routes: [{{name: r}}]\n"
    ));
    assert_eq!(
        c.limits,
        Limits {
            max_body: 1 << 20,
            head_timeout: Duration::from_secs(2),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_millis(500),
            max_header_bytes: 16 << 10,
            max_headers: 40,
            max_connections: 50,
            max_h2_streams: 8,
        }
    );
}

#[test]
fn bad_limits_are_all_reported() {
    let text = format!(
        "limits: {{head_timeout: 0s, body_timeout: 5, idle_timeout: soon, \
         max_header_bytes: 1KiB, max_headers: 0, max_connections: -1, max_h2_streams: 100000}}\n\
         {GW}routes: [{{name: r}}]\n"
    );
    let err = errors(&text).join("\n");
    for expected in [
        "limits.head_timeout: must be greater than 0",
        "limits.body_timeout: 5 needs a unit, e.g. 5s",
        "limits.idle_timeout: expected a duration",
        "limits.max_header_bytes: must be from 8KiB to 16MiB, got 1024 bytes",
        "limits.max_headers: expected a whole number from 1 to 10000, got 0",
        "limits.max_connections: expected a whole number from 1 to 1048576, got -1",
        "limits.max_h2_streams: expected a whole number from 1 to 65536, got 100000",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[test]
fn bad_size() {
    one_error(
        &format!("limits: {{max_body: 4 Mebibytes}}\n{GW}routes: [{{name: r}}]\n"),
        "limits.max_body: unknown size unit in \"4 Mebibytes\"",
    );
    one_error(
        &format!("limits: {{max_body: [1]}}\n{GW}routes: [{{name: r}}]\n"),
        "limits.max_body: expected a size such as 4MiB",
    );
    one_error(
        "gateways:\n  default: {url: \"grpc://h:1\", max_message: lots}\nroutes: [{name: r}]\n",
        "gateways.default.max_message: expected a size",
    );
}

#[test]
fn bad_unmatched() {
    one_error(
        &format!("unmatched: drop\n{GW}routes: [{{name: r}}]\n"),
        "unmatched: expected `accept` or `reject`, got \"drop\"",
    );
}

// ---------------------------------------------------------------- TLS settings

mod tls {
    use super::*;
    use crate::tls::testing::Ca;

    fn files() -> (tempfile::TempDir, String, String, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::new("config test ca");
        let leaf = ca.leaf(&["localhost"]);
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write");
            p.display().to_string()
        };
        let cert = write("tls.crt", &leaf.cert_pem);
        let key = write("tls.key", &leaf.key_pem);
        let ca = write("ca.crt", &ca.pem);
        (dir, cert, key, ca)
    }

    #[test]
    fn listener_tls_and_gateway_ca_load_and_are_watched() {
        let (_dir, cert, key, ca) = files();
        let c = ok(&format!(
            "tls: {{cert_file: {cert}, key_file: {key}, client_ca_file: {ca}}}\n\
             gateways:\n  g: {{url: \"grpcs://127.0.0.1:5443\", ca_file: {ca}, tls_server_name: flow.local}}\n  \
             h: {{url: \"https://127.0.0.1:8443\", ca_file: {ca}, tls_server_name: flow.local}}\n\
             routes:\n  - name: r\n    gateway: g\n"
        ));
        // https:// HTTP gateways take the same TLS keys as grpcs:// ones.
        assert_eq!(c.gateways["h"].url, "https://127.0.0.1:8443");
        assert_eq!(
            c.gateways["h"].tls.server_name.as_deref(),
            Some("flow.local")
        );
        assert_eq!(c.gateways["h"].tls.ca_pem, c.gateways["g"].tls.ca_pem);
        let tls = c.tls.as_ref().expect("tls");
        assert_eq!(tls.cert_file.display().to_string(), cert);
        let gw = &c.gateways["g"].tls;
        assert_eq!(gw.server_name.as_deref(), Some("flow.local"));
        assert!(
            gw.ca_pem
                .as_deref()
                .is_some_and(|p| p.contains("BEGIN CERTIFICATE"))
        );
        let watched: Vec<String> = c
            .referenced_files()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(watched, [cert, key, ca.clone(), ca.clone(), ca]);
    }

    #[test]
    fn tls_problems_are_reported_with_their_paths() {
        let (_dir, cert, _key, ca) = files();
        let errs = errors(&format!(
            "tls: {{cert_file: {cert}}}\n\
             gateways:\n  a: {{url: \"grpc://127.0.0.1:1\", ca_file: {ca}, tls_server_name: x}}\n  \
             b: {{url: \"grpcs://127.0.0.1:2\", ca_file: /nonexistent/ca.pem, tls_server_name: \"not a name!\"}}\n\
             routes:\n  - name: r\n    gateway: a\n"
        ));
        assert_eq!(errs.len(), 5, "{errs:#?}");
        let expect = [
            "tls.key_file: required with `tls`",
            "gateways.a.ca_file: only for TLS gateways (grpcs://, https://, wss://)",
            "gateways.a.tls_server_name: only for TLS gateways",
            "gateways.b.ca_file: cannot read /nonexistent/ca.pem",
            "gateways.b.tls_server_name: \"not a name!\" is not a DNS name",
        ];
        for prefix in expect {
            assert!(
                errs.iter().any(|e| e.starts_with(prefix)),
                "no error starting with {prefix:?} in {errs:#?}"
            );
        }
    }

    #[test]
    fn a_key_that_does_not_fit_fails_at_its_path() {
        let (dir, cert, _key, _ca) = files();
        let other = Ca::new("other").leaf(&["localhost"]);
        let key = dir.path().join("other.key");
        std::fs::write(&key, other.key_pem).expect("write");
        let e = one_error(
            &format!(
                "tls: {{cert_file: {cert}, key_file: {}}}\n{GW}routes:\n  - name: r\n",
                key.display()
            ),
            "tls.key_file: ",
        );
        assert!(e.contains("does not fit the certificate"), "{e}");
    }
}
