//! `flowbridge send` to an `https://` URL: the certificate is checked against the system's roots,
//! which `SSL_CERT_FILE` replaces (the same client settings as replies to `https://` sinks).
//! The server is a blocking rustls listener on loopback with certificates made here with rcgen.

#![allow(clippy::unwrap_used, clippy::expect_used)]

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

/// An HTTPS sink answering 202 to every request; records each request's `ce-id`.
fn start_sink(cert_pem: &str, key_pem: &str) -> (String, Arc<Mutex<Vec<String>>>) {
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
            loop {
                let mut header = String::new();
                if stream.read_line(&mut header).is_err() || header.trim().is_empty() {
                    break;
                }
                let lower = header.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if let Some(v) = lower.strip_prefix("ce-id:") {
                    record.lock().unwrap().push(v.trim().to_string());
                }
            }
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
    assert_eq!(*seen.lock().unwrap(), ["https-1"]);

    // Another CA in SSL_CERT_FILE: the certificate is not trusted and nothing is delivered.
    let (other, _, _) = ca_and_leaf("another ca");
    let untrusted = dir.path().join("other.pem");
    std::fs::write(&untrusted, &other).unwrap();
    let (code, out, err) = send(&url, "https-2", &untrusted);
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert_eq!(*seen.lock().unwrap(), ["https-1"]);
}
