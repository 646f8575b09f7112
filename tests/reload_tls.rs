//! TLS on the listener and config hot reload, end to end: a `flowbridge serve` process in front
//! of the real Jina Flow (one per test binary, [`shared_flow`]).
//!
//! * HTTPS (HTTP/1.1 and h2 by ALPN) reaches the Flow; plain HTTP on the TLS port gets nothing.
//! * Certificate rotation the way a Kubernetes Secret volume does it (a new directory, then an
//!   atomic swap of the `..data` symlink): new connections get the new certificate, an open
//!   connection keeps working, and a broken certificate keeps the last good one.
//! * Reload: a valid config applied by SIGHUP and by a ConfigMap-style symlink swap, seen in what
//!   the Flow receives; an invalid one keeps the old config, logs every error with its path and
//!   counts a failure; reloads (valid and invalid) under load fail no event.
//!
//! Certificates are made here with rcgen. Waits for a reload poll (every 2 s) are bounded
//! generously; nothing asserts how fast anything is.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use support::{FlowBridge, HttpResponse, http_request, shared_flow, try_http_request, unique};

/// How long a change may take to be picked up by the 2 s poll (generous for a loaded machine).
const RELOAD_WAIT: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------------------ certificates

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Ca {
            issuer: Issuer::new(params, key),
            pem: cert.pem(),
        }
    }

    fn leaf(&self) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

/// A directory laid out like a mounted Kubernetes Secret or ConfigMap: `name` → `..data/name`,
/// `..data` → `..<version>/`. [`Mounted::publish`] writes a new version and swaps `..data`
/// atomically, as the kubelet does.
struct Mounted {
    dir: PathBuf,
    version: usize,
}

impl Mounted {
    fn new(files: &[(&str, &str)]) -> Mounted {
        let dir = tempfile::Builder::new()
            .prefix("flowbridge-mounted-")
            .tempdir()
            .unwrap()
            .keep();
        let mut m = Mounted { dir, version: 0 };
        m.publish(files);
        for (name, _) in files {
            std::os::unix::fs::symlink(format!("..data/{name}"), m.dir.join(name)).unwrap();
        }
        m
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn publish(&mut self, files: &[(&str, &str)]) {
        self.version += 1;
        let version = format!("..v{}", self.version);
        std::fs::create_dir(self.dir.join(&version)).unwrap();
        for (name, text) in files {
            std::fs::write(self.dir.join(&version).join(name), text).unwrap();
        }
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&version, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
    }
}

/// Replace a file by rename, so a poll never reads half of it.
fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

// ------------------------------------------------------------------------------ TLS client

fn client_config(ca_pem: &str, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A TLS connection to `127.0.0.1:port` for `localhost`, handshake done, HTTP/1.1 by ALPN.
fn connect(port: u16, ca_pem: &str) -> Tls {
    let tcp = TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_secs(5),
    )
    .unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(client_config(ca_pem, &[b"http/1.1"]), name).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    tls
}

/// The leaf certificate the server presented.
fn served(tls: &Tls) -> Vec<u8> {
    tls.conn.peer_certificates().unwrap()[0].to_vec()
}

/// One keep-alive HTTP/1.1 POST of a binary-mode event; the status.
fn post_event(tls: &mut Tls, id: &str, ty: &str) -> u16 {
    let body = format!(r#"{{"text": "{id}"}}"#);
    let request = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nce-specversion: 1.0\r\nce-id: {id}\r\n\
         ce-type: {ty}\r\nce-source: /reload-tls\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).unwrap();
    tls.flush().unwrap();
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = tls.read(&mut byte).unwrap();
        assert!(n > 0, "connection closed mid-response: {raw:?}");
        raw.push(byte[0]);
    }
    let head = support::parse_response(&raw, true).unwrap();
    let length: usize = head
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0u8; length];
    tls.read_exact(&mut body).unwrap();
    head.status
}

// ------------------------------------------------------------------------------ helpers

fn binary(port: u16, id: &str, ty: &str) -> HttpResponse {
    http_request(
        port,
        "POST",
        "/",
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", id),
            ("ce-type", ty),
            ("ce-source", "/reload-tls"),
            ("content-type", "application/json"),
        ],
        format!(r#"{{"text": "{id}"}}"#).as_bytes(),
    )
}

/// One sample of `/metrics` on the admin port (`name{labels}` exactly as rendered).
fn metric(bridge: &FlowBridge, series: &str) -> Option<f64> {
    let text = http_request(bridge.admin_port, "GET", "/metrics", &[], b"").text();
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')
            .map(|v| v.parse().unwrap())
    })
}

fn reloads(bridge: &FlowBridge, outcome: &str) -> f64 {
    metric(
        bridge,
        &format!("flowbridge_config_reloads_total{{outcome=\"{outcome}\"}}"),
    )
    .unwrap()
}

fn generation(bridge: &FlowBridge) -> f64 {
    metric(bridge, "flowbridge_config_generation").unwrap()
}

/// Polls `check` until it holds or `timeout` passes; whether it held.
fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every document id the Flow has recorded so far.
fn recorded_ids() -> HashSet<String> {
    shared_flow()
        .records()
        .iter()
        .flat_map(|r| r["docs"].as_array().cloned().unwrap_or_default())
        .filter_map(|d| d["id"].as_str().map(str::to_owned))
        .collect()
}

fn tls_config(flow_url: &str, certs: &Mounted) -> String {
    format!(
        r#"
tls:
  cert_file: {}
  key_file: {}
unmatched: reject
gateways:
  main: {{url: "{flow_url}", timeout: 20s}}
routes:
  - name: secure
    filters: [{{exact: {{type: tls.event}}}}]
"#,
        certs.path("tls.crt").display(),
        certs.path("tls.key").display()
    )
}

// ------------------------------------------------------------------------------ TLS

#[test]
fn https_reaches_the_flow_over_http1_and_h2_and_plain_http_gets_nothing() {
    let flow = shared_flow();
    let ca = Ca::new("flowbridge test ca");
    let leaf = ca.leaf();
    let certs = Mounted::new(&[("tls.crt", &leaf.cert_pem), ("tls.key", &leaf.key_pem)]);
    let config = support::write_config(&tls_config(&flow.grpc_url(), &certs));
    let bridge = FlowBridge::start_probing_admin(&["--config", config.to_str().unwrap()], &[]);

    // HTTP/1.1 over TLS.
    let id = unique("tls-h1");
    let mut tls = connect(bridge.port, &ca.pem);
    assert_eq!(served(&tls), leaf.der);
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(post_event(&mut tls, &id, "tls.event"), 202);
    assert!(
        flow.wait_for_record(Duration::from_secs(10), |r| r["docs"][0]["id"] == id)
            .is_some(),
        "the event sent over TLS reached the Flow"
    );

    // h2, chosen by ALPN.
    let id2 = unique("tls-h2");
    let (status, version, alpn) =
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(h2_post(bridge.port, &ca.pem, &id2));
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(version, http::Version::HTTP_2);
    assert_eq!(status, 202);
    assert!(
        flow.wait_for_record(Duration::from_secs(10), |r| r["docs"][0]["id"] == id2)
            .is_some()
    );

    // Plain HTTP on the TLS port: no HTTP answer at all.
    let plain = try_http_request(bridge.port, "GET", "/readyz", &[], b"");
    assert!(
        plain.is_err(),
        "plain HTTP on the TLS port must not be answered: {plain:?}"
    );
    // The admin listener stays plain HTTP.
    assert_eq!(
        http_request(bridge.admin_port, "GET", "/readyz", &[], b"").status,
        200
    );
}

async fn h2_post(port: u16, ca_pem: &str, id: &str) -> (u16, http::Version, Option<Vec<u8>>) {
    use http_body_util::Full;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let connector = tokio_rustls::TlsConnector::from(client_config(ca_pem, &[b"h2", b"http/1.1"]));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = http::Request::post("https://localhost/")
        .header("ce-specversion", "1.0")
        .header("ce-id", id)
        .header("ce-type", "tls.event")
        .header("ce-source", "/reload-tls")
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(format!(
            r#"{{"text": "{id}"}}"#
        ))))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    (response.status().as_u16(), response.version(), alpn)
}

#[test]
fn a_rotated_certificate_reaches_new_connections_and_open_ones_keep_working() {
    let flow = shared_flow();
    let ca = Ca::new("flowbridge rotation ca");
    let first = ca.leaf();
    let second = ca.leaf();
    let mut certs = Mounted::new(&[("tls.crt", &first.cert_pem), ("tls.key", &first.key_pem)]);
    let config = support::write_config(&tls_config(&flow.grpc_url(), &certs));
    let bridge = FlowBridge::start_probing_admin(&["--config", config.to_str().unwrap()], &[]);

    let mut open = connect(bridge.port, &ca.pem);
    assert_eq!(served(&open), first.der);
    assert_eq!(post_event(&mut open, &unique("rot-1"), "tls.event"), 202);

    // cert-manager renews: the Secret volume swaps to the new pair.
    certs.publish(&[("tls.crt", &second.cert_pem), ("tls.key", &second.key_pem)]);
    assert!(
        wait_until(RELOAD_WAIT, || served(&connect(bridge.port, &ca.pem))
            == second.der),
        "new connections never got the new certificate; log:\n{}",
        bridge.log_text()
    );
    // The connection opened before the rotation was not dropped.
    let id = unique("rot-2");
    assert_eq!(post_event(&mut open, &id, "tls.event"), 202);
    assert!(
        flow.wait_for_record(Duration::from_secs(10), |r| r["docs"][0]["id"] == id)
            .is_some()
    );
    assert_eq!(generation(&bridge), 2.0);

    // A broken certificate: the last good one stays, the error names the setting.
    certs.publish(&[
        (
            "tls.crt",
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        ),
        ("tls.key", &second.key_pem),
    ]);
    assert!(
        wait_until(RELOAD_WAIT, || reloads(&bridge, "failure") == 1.0),
        "the broken certificate was not noticed; log:\n{}",
        bridge.log_text()
    );
    let mut fresh = connect(bridge.port, &ca.pem);
    assert_eq!(served(&fresh), second.der);
    assert_eq!(post_event(&mut fresh, &unique("rot-3"), "tls.event"), 202);
    assert_eq!(generation(&bridge), 2.0);
    let log = bridge.log_text();
    assert!(log.contains("tls.cert_file"), "log:\n{log}");
    assert!(
        log.contains("config generation 2 stays active"),
        "log:\n{log}"
    );
}

// ------------------------------------------------------------------------------ reload

fn reload_config(flow_url: &str, extra_routes: &str) -> String {
    format!(
        r#"
unmatched: reject
gateways:
  main: {{url: "{flow_url}", timeout: 20s}}
routes:
  - name: first
    filters: [{{exact: {{type: reload.a}}}}]
{extra_routes}"#
    )
}

fn second_route(generation: &str) -> String {
    format!(
        r#"  - name: second
    filters: [{{exact: {{type: reload.b}}}}]
    parameters: '{{"gen": "{generation}"}}'
"#
    )
}

/// The `gen` parameter the Flow received with the event `id`.
fn gen_of(id: &str) -> Option<String> {
    let record =
        shared_flow().wait_for_record(Duration::from_secs(10), |r| r["docs"][0]["id"] == id)?;
    record["parameters"]["gen"].as_str().map(str::to_owned)
}

#[test]
fn a_valid_config_is_applied_on_sighup_and_on_a_configmap_swap() {
    let flow = shared_flow();
    let url = flow.grpc_url();
    let mut mounted = Mounted::new(&[("config.yaml", &reload_config(&url, ""))]);
    let config = mounted.path("config.yaml");
    let bridge = FlowBridge::start(&config);
    assert_eq!(generation(&bridge), 1.0);
    assert_eq!(binary(bridge.port, &unique("r-a"), "reload.a").status, 202);
    assert_eq!(binary(bridge.port, &unique("r-b"), "reload.b").status, 422);

    // SIGHUP after the new version is in place: the new route serves.
    mounted.publish(&[("config.yaml", &reload_config(&url, &second_route("v2")))]);
    bridge.signal_hup();
    let mut id = String::new();
    assert!(
        wait_until(RELOAD_WAIT, || {
            id = unique("r-b");
            binary(bridge.port, &id, "reload.b").status == 202
        }),
        "the new route never served; log:\n{}",
        bridge.log_text()
    );
    assert_eq!(gen_of(&id).as_deref(), Some("v2"));
    let log = bridge.log_text();
    assert!(log.contains("SIGHUP"), "log:\n{log}");
    assert!(log.contains("config generation 2 active"), "log:\n{log}");
    // The new route has its own series.
    assert_eq!(
        metric(
            &bridge,
            "flowbridge_event_count_total{route=\"second\",response_code=\"202\"}"
        ),
        Some(1.0)
    );

    // A ConfigMap update, no signal: the changed mapping is seen by the Flow.
    let before = generation(&bridge);
    mounted.publish(&[("config.yaml", &reload_config(&url, &second_route("v3")))]);
    assert!(
        wait_until(RELOAD_WAIT, || {
            let id = unique("r-b");
            binary(bridge.port, &id, "reload.b").status == 202
                && gen_of(&id).as_deref() == Some("v3")
        }),
        "the ConfigMap swap was never applied; log:\n{}",
        bridge.log_text()
    );
    assert_eq!(generation(&bridge), before + 1.0);
    assert_eq!(reloads(&bridge, "failure"), 0.0);
    // flowbridge_config_info names the active generation and the config's hash.
    let text = http_request(bridge.admin_port, "GET", "/metrics", &[], b"").text();
    assert!(
        text.contains(&format!(
            "flowbridge_config_info{{generation=\"{}\",hash=\"",
            before + 1.0
        )),
        "{text}"
    );
}

#[test]
fn an_invalid_config_keeps_the_old_one_and_logs_every_error_with_its_path() {
    let flow = shared_flow();
    let url = flow.grpc_url();
    let config = support::write_config(&reload_config(&url, &second_route("good")));
    let bridge = FlowBridge::start(&config);

    let broken = format!(
        r#"
unmatched: reject
gateways:
  main: {{url: "{url}", timeout: 20s}}
routes:
  - name: first
    filters: [{{cel: "event.type =="}}]
  - name: second
    gateway: nowhere
"#
    );
    write_atomic(&config, &broken);
    assert!(
        wait_until(RELOAD_WAIT, || reloads(&bridge, "failure") == 1.0),
        "the broken config was not noticed; log:\n{}",
        bridge.log_text()
    );
    // The old config still serves, mapping included.
    let id = unique("bad-b");
    assert_eq!(binary(bridge.port, &id, "reload.b").status, 202);
    assert_eq!(gen_of(&id).as_deref(), Some("good"));
    assert_eq!(generation(&bridge), 1.0);
    assert_eq!(reloads(&bridge, "success"), 0.0);
    let log = bridge.log_text();
    for path in ["routes[0].filters[0].cel", "routes[1].gateway"] {
        assert!(log.contains(path), "no error for {path} in the log:\n{log}");
    }
    assert!(
        log.contains("config generation 1 stays active"),
        "log:\n{log}"
    );

    // The same broken content is not retried by the poll (one error report, not one per 2 s) …
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(reloads(&bridge, "failure"), 1.0);
    // … but SIGHUP always tries again.
    bridge.signal_hup();
    assert!(wait_until(RELOAD_WAIT, || reloads(&bridge, "failure") == 2.0));
    assert_eq!(
        binary(bridge.port, &unique("bad-a"), "reload.a").status,
        202
    );
}

#[test]
fn reloads_under_load_fail_no_event() {
    const EVENTS: usize = 400;
    const SENDERS: usize = 32;
    let flow = shared_flow();
    let url = flow.grpc_url();
    // Each valid variant changes the gateway's settings (a new dispatcher each time, the old
    // one drains) and the mapping; the executor sleeps a little so events are in flight.
    let valid = |concurrency: u32, generation: &str| {
        format!(
            r#"
unmatched: reject
gateways:
  main: {{url: "{url}", timeout: 20s, concurrency: {concurrency}}}
routes:
  - name: load
    filters: [{{exact: {{type: reload.load}}}}]
    parameters: '{{"gen": "{generation}", "sleep": 0.02}}'
"#
        )
    };
    let variants = [
        valid(4, "a"),
        "routes: [ {name: load, gateway: missing} ]\ngateways: {}\n".to_string(),
        valid(16, "b"),
        "unmatched: sometimes\n: not yaml at all [\n".to_string(),
    ];
    let config = support::write_config(&variants[0]);
    let bridge = Arc::new(FlowBridge::start(&config));
    let prefix = unique("load");

    let done = Arc::new(AtomicBool::new(false));
    let reloader = {
        let (done, bridge, config) = (done.clone(), bridge.clone(), config.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !done.load(Ordering::SeqCst) {
                n += 1;
                write_atomic(&config, &variants[n % variants.len()]);
                bridge.signal_hup();
                std::thread::sleep(Duration::from_millis(100));
            }
            n
        })
    };
    let senders: Vec<_> = (0..SENDERS)
        .map(|t| {
            let (bridge, prefix) = (bridge.clone(), prefix.clone());
            std::thread::spawn(move || {
                (t..EVENTS)
                    .step_by(SENDERS)
                    .map(|i| {
                        let id = format!("{prefix}-{i}");
                        let r = binary(bridge.port, &id, "reload.load");
                        (id, r.status, r.text())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<(String, u16, String)> = senders
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    done.store(true, Ordering::SeqCst);
    let writes = reloader.join().unwrap();

    let failed: Vec<_> = results.iter().filter(|(_, s, _)| *s != 202).collect();
    assert!(
        failed.is_empty(),
        "{} of {EVENTS} events failed during reloads, e.g. {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    let recorded = recorded_ids();
    let missing: Vec<_> = results
        .iter()
        .filter(|(id, _, _)| !recorded.contains(id))
        .map(|(id, _, _)| id)
        .collect();
    assert!(
        missing.is_empty(),
        "{} accepted events never reached the Flow, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    // Reloads really happened while the events were in flight, both kinds.
    let (ok, bad) = (reloads(&bridge, "success"), reloads(&bridge, "failure"));
    eprintln!(
        "{writes} config writes + SIGHUP during the run: {ok} reloads applied, {bad} refused"
    );
    assert!(ok >= 2.0 && bad >= 2.0, "success {ok}, failure {bad}");
}

/// `POST /` with a bearer token (a binary-mode event of type `reload.a`).
fn with_token(port: u16, id: &str, token: &str) -> u16 {
    let auth = format!("Bearer {token}");
    http_request(
        port,
        "POST",
        "/",
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", id),
            ("ce-type", "reload.a"),
            ("ce-source", "/reload-tls"),
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        format!(r#"{{"text": "{id}"}}"#).as_bytes(),
    )
    .status
}

#[test]
fn a_rotated_bearer_token_file_applies_without_a_signal() {
    let flow = shared_flow();
    // The token lives in a Secret-style mount (symlink swap); the config names its file.
    let mut secret = Mounted::new(&[("token", "old-token\n")]);
    let config = format!(
        "auth:\n  bearer:\n    tokens_from: [{{file: {}}}]\n{}",
        secret.path("token").display(),
        reload_config(&flow.grpc_url(), "")
    );
    let mounted = Mounted::new(&[("config.yaml", &config)]);
    let bridge = FlowBridge::start(&mounted.path("config.yaml"));
    assert_eq!(with_token(bridge.port, &unique("tok"), "old-token"), 202);
    assert_eq!(with_token(bridge.port, &unique("tok"), "new-token"), 401);

    // Only the Secret changes; no SIGHUP: the watched file triggers the reload.
    secret.publish(&[("token", "new-token\n")]);
    assert!(
        wait_until(RELOAD_WAIT, || with_token(
            bridge.port,
            &unique("tok"),
            "new-token"
        ) == 202),
        "the rotated token was never accepted; log:\n{}",
        bridge.log_text()
    );
    let id = unique("tok");
    assert_eq!(with_token(bridge.port, &id, "old-token"), 401);
    assert_eq!(generation(&bridge), 2.0);
    assert!(
        bridge.log_text().contains("file changed"),
        "{}",
        bridge.log_text()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !recorded_ids().contains(&id),
        "an event refused by auth reached the Flow"
    );
}
