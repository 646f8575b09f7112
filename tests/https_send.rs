//! `https://` targets of flowbridge's HTTP client: `flowbridge send` to an `https://` URL, and a
//! route's reply POSTed to an `https://` `reply.to` sink (as Knative Eventing with TLS hands out
//! in `K_SINK`), in front of the real Jina Flow. Certificates are checked against the system's
//! roots, which `SSL_CERT_FILE` replaces. The sink is a blocking rustls listener on loopback with
//! certificates made here with rcgen.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

/// A CA certificate (PEM) and a leaf for 127.0.0.1 signed by it (certificate PEM, key PEM).
fn ca_and_leaf(name: &str) -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let ca_cert = params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(params, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), leaf.pem(), key.serialize_pem())
}

/// The headers of one request, names lowercase.
type Headers = HashMap<String, String>;

/// An HTTPS sink answering 202 to every request; records each request's headers.
fn start_sink(cert_pem: &str, key_pem: &str) -> (String, Arc<Mutex<Vec<Headers>>>) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/events", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            let Ok(conn) = rustls::ServerConnection::new(Arc::clone(&config)) else {
                return;
            };
            let mut stream = BufReader::new(rustls::StreamOwned::new(conn, tcp));
            // A client that does not trust the certificate fails the handshake here.
            let mut line = String::new();
            if stream.read_line(&mut line).is_err() || line.is_empty() {
                continue;
            }
            let mut length = 0;
            let mut headers = Headers::new();
            loop {
                let mut header = String::new();
                if stream.read_line(&mut header).is_err() || header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
                }
            }
            if let Some(v) = headers.get("content-length") {
                length = v.parse().unwrap_or(0);
            }
            record.lock().unwrap().push(headers);
            let mut body = vec![0; length];
            let _ = stream.read_exact(&mut body);
            let stream = stream.get_mut();
            let _ = stream.write_all(
                b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
            let _ = stream.flush();
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
    });
    (url, seen)
}

fn send(url: &str, id: &str, cert_file: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flowbridge"))
        .args([
            "send", url, "--type", "t.test", "--source", "/https", "--id", id,
        ])
        .args(["--no-reply"])
        .env("SSL_CERT_FILE", cert_file)
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn send_reaches_an_https_url_trusted_through_ssl_cert_file() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_leaf("eventing ca");
    let (url, seen) = start_sink(&cert, &key);
    let trusted = dir.path().join("ca.pem");
    std::fs::write(&trusted, &ca).unwrap();

    let (code, out, err) = send(&url, "https-1", &trusted);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], 202, "{v}");
    assert_eq!(ids(&seen), ["https-1"]);

    // Another CA in SSL_CERT_FILE: the certificate is not trusted and nothing is delivered.
    let (other, _, _) = ca_and_leaf("another ca");
    let untrusted = dir.path().join("other.pem");
    std::fs::write(&untrusted, &other).unwrap();
    let (code, out, err) = send(&url, "https-2", &untrusted);
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert_eq!(ids(&seen), ["https-1"]);
}

fn ids(seen: &Mutex<Vec<Headers>>) -> Vec<String> {
    let seen = seen.lock().unwrap();
    seen.iter()
        .map(|h| h.get("ce-id").cloned().unwrap_or_default())
        .collect()
}

fn reply_config(flow: &support::JinaFlow) -> std::path::PathBuf {
    support::write_config(&format!(
        "gateways: {{ main: {{ url: {} }} }}\n\
         routes:\n  - name: to-sink\n    reply: {{ type: https.sunk, to: $K_SINK }}\n",
        flow.grpc_url()
    ))
}

fn event(bridge: &support::FlowBridge, id: &str) -> support::HttpResponse {
    bridge.request(
        "POST",
        "/",
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", id),
            ("ce-type", "https.tosink"),
            ("ce-source", "/https"),
            ("content-type", "application/json"),
        ],
        br#"{"text": "to the https sink"}"#,
    )
}

#[test]
fn replies_reach_an_https_k_sink_trusted_through_ssl_cert_file() {
    let flow = support::shared_flow();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_leaf("eventing ca");
    let (sink, seen) = start_sink(&cert, &key);
    let trusted = dir.path().join("ca.pem");
    std::fs::write(&trusted, &ca).unwrap();
    let (other, _, _) = ca_and_leaf("another ca");
    let untrusted = dir.path().join("other.pem");
    std::fs::write(&untrusted, &other).unwrap();
    let config = reply_config(flow);
    let config = config.to_str().unwrap();

    let bridge = support::FlowBridge::start_with(
        &["--config", config],
        &[
            ("K_SINK", sink.as_str()),
            ("SSL_CERT_FILE", trusted.to_str().unwrap()),
        ],
    );
    let id = support::unique("https-reply");
    let r = event(&bridge, &id);
    assert_eq!(r.status, 202, "{}", r.text());
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "the sink got the reply before the ack");
        assert_eq!(
            seen[0].get("ce-type").map(String::as_str),
            Some("https.sunk")
        );
        assert_eq!(seen[0].get("ce-originid"), Some(&id));
    }
    drop(bridge);

    // The sink's certificate is not trusted: the reply fails, and so does the event (502).
    let bridge = support::FlowBridge::start_with(
        &["--config", config],
        &[
            ("K_SINK", sink.as_str()),
            ("SSL_CERT_FILE", untrusted.to_str().unwrap()),
        ],
    );
    let r = event(&bridge, &support::unique("https-untrusted"));
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("reply_sink_failed"), "{}", r.text());
    assert!(
        r.text().to_lowercase().contains("certificate"),
        "{}",
        r.text()
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}
