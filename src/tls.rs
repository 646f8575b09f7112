//! TLS material, read and checked when the config loads (so `flowbridge check` and a reload
//! report a bad file with its config path): the listener's rustls server config (`tls:`
//! certificate chain and key, optional client CA bundle for mutual TLS, ALPN `h2` and
//! `http/1.1`), and the PEM bundles that `grpcs://` gateways trust (`ca_file`).
//!
//! Every config uses the `ring` crypto provider, the one tonic's `tls-ring` feature builds.
//! Certificates are not re-read behind the config's back: a changed file is a new config
//! generation ([`crate::reload`] watches the files a config names).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// The listener's TLS settings and the rustls config built from them.
#[derive(Clone)]
pub struct ServerTls {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM bundle of CAs whose client certificates are accepted; `None`: no client certificates.
    pub client_ca_file: Option<PathBuf>,
    /// Built from the files when the config loaded.
    pub config: Arc<ServerConfig>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("client_ca_file", &self.client_ca_file)
            .finish_non_exhaustive()
    }
}

/// The crypto provider of every TLS config flowbridge builds.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate of a PEM file (a bundle may hold several); at least one.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    certs_from_pem(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Every certificate of PEM text; at least one.
pub fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate (-----BEGIN CERTIFICATE-----) in it".to_string());
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        format!(
            "{}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in it: {e}",
            path.display()
        )
    })
}

/// Which setting a [`server_config`] problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    CertFile,
    KeyFile,
    ClientCaFile,
}

impl Field {
    /// The config key.
    pub fn key(self) -> &'static str {
        match self {
            Field::CertFile => "cert_file",
            Field::KeyFile => "key_file",
            Field::ClientCaFile => "client_ca_file",
        }
    }
}

/// Read the files and build the listener's config; every problem, each with its setting.
pub fn server_config(
    cert_file: &Path,
    key_file: &Path,
    client_ca_file: Option<&Path>,
) -> Result<ServerTls, Vec<(Field, String)>> {
    let mut problems = Vec::new();
    let certs = read_certs(cert_file)
        .map_err(|e| problems.push((Field::CertFile, e)))
        .ok();
    let key = read_key(key_file)
        .map_err(|e| problems.push((Field::KeyFile, e)))
        .ok();
    let provider = provider();
    let verifier = match client_ca_file {
        None => None,
        Some(path) => match read_certs(path).and_then(|certs| {
            let mut roots = RootCertStore::empty();
            for (i, cert) in certs.into_iter().enumerate() {
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: certificate {}: {e}", path.display(), i + 1))?;
            }
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| format!("{}: {e}", path.display()))
        }) {
            Ok(v) => Some(v),
            Err(e) => {
                problems.push((Field::ClientCaFile, e));
                None
            }
        },
    };
    let (Some(certs), Some(key), true) = (certs, key, problems.is_empty()) else {
        return Err(problems);
    };
    let builder =
        match ServerConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
            Ok(b) => b,
            Err(e) => return Err(vec![(Field::CertFile, format!("TLS setup: {e}"))]),
        };
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        vec![(
            Field::KeyFile,
            format!(
                "{} does not fit the certificate of {}: {e}",
                key_file.display(),
                cert_file.display()
            ),
        )]
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(ServerTls {
        cert_file: cert_file.to_path_buf(),
        key_file: key_file.to_path_buf(),
        client_ca_file: client_ca_file.map(Path::to_path_buf),
        config: Arc::new(config),
    })
}
