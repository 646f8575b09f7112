//! TLS material, read and checked when the config loads (so `flowbridge check` and a reload
//! report a bad file with its config path): the listener's rustls server config (`tls:`
//! certificate chain and key, optional client CA bundle for mutual TLS, ALPN `h2` and
//! `http/1.1`), the PEM bundles that `grpcs://` and `https://` gateways trust (`ca_file`), and
//! the rustls client config of every HTTPS client flowbridge builds ([`https_client`]: HTTP
//! gateways, reply sinks, `flowbridge send`; [`https_client_with_extra_roots`]: OIDC discovery
//! and JWKS fetches).
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

/// Make ring the process-wide rustls provider, for clients that pick the process default
/// (a plain `reqwest::Client::new()`, the OTLP HTTP exporter): reqwest is built without a
/// provider of its own. Idempotent; a provider installed earlier stays.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The rustls config of an HTTPS client: trusts `ca_pem` only when given, otherwise the
/// system's roots (`rustls-native-certs`, which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`);
/// `server_name` is the name the server's certificate is checked for instead of the URL's host
/// (SNI still carries the URL's host). ALPN offers `h2` and `http/1.1`.
pub fn https_client_config(
    ca_pem: Option<&str>,
    server_name: Option<&str>,
) -> Result<rustls::ClientConfig, String> {
    let roots = match ca_pem {
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            add_pem_roots(&mut roots, pem)?;
            roots
        }
        None => system_roots(),
    };
    client_config(roots, server_name)
}

/// The system's roots (`rustls-native-certs`); certificates it cannot parse are skipped.
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    roots
}

/// Adds every certificate of a PEM bundle to `roots`; at least one.
fn add_pem_roots(roots: &mut RootCertStore, pem: &str) -> Result<(), String> {
    for (i, cert) in certs_from_pem(pem.as_bytes())?.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| format!("CA certificate {}: {e}", i + 1))?;
    }
    Ok(())
}

fn client_config(
    roots: RootCertStore,
    server_name: Option<&str>,
) -> Result<rustls::ClientConfig, String> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let mut config = match server_name {
        None => builder.with_root_certificates(roots).with_no_client_auth(),
        Some(name) => {
            let name = rustls::pki_types::ServerName::try_from(name.to_string())
                .map_err(|_| format!("{name:?} is not a DNS name or IP address"))?;
            let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| format!("TLS setup: {e}"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NamedVerifier { inner, name }))
                .with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// A reqwest builder for plain `http://` only: no TLS config of ours (no roots loaded), but the
/// process default provider installed, without which reqwest panics while building.
pub fn http_client() -> reqwest::ClientBuilder {
    install_default_provider();
    reqwest::Client::builder()
}

/// A reqwest builder whose TLS is [`https_client_config`].
pub fn https_client(
    ca_pem: Option<&str>,
    server_name: Option<&str>,
) -> Result<reqwest::ClientBuilder, String> {
    install_default_provider();
    let config = https_client_config(ca_pem, server_name)?;
    Ok(reqwest::Client::builder().tls_backend_preconfigured(config))
}

/// A reqwest builder like [`https_client`] without `ca_pem` and `server_name`, that trusts the
/// system's roots and, next to them, the CAs of `extra_pem` (an OIDC issuer's `ca_file`: the
/// cluster CA of the API server, while a discovered `jwks_uri` may be on a public host).
pub fn https_client_with_extra_roots(
    extra_pem: Option<&str>,
) -> Result<reqwest::ClientBuilder, String> {
    install_default_provider();
    let mut roots = system_roots();
    if let Some(pem) = extra_pem {
        add_pem_roots(&mut roots, pem)?;
    }
    let config = client_config(roots, None)?;
    Ok(reqwest::Client::builder().tls_backend_preconfigured(config))
}

/// An error and its sources, joined with `: ` (a certificate problem is a source of an HTTP
/// client's connect error, not part of its message).
pub fn describe_error(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(err) = source {
        let part = err.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = err.source();
    }
    text
}

/// Checks the server's certificate with webpki for a fixed name (`tls_server_name`) instead of
/// the name the connection was opened for.
#[derive(Debug)]
struct NamedVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: rustls::pki_types::ServerName<'static>,
}

impl rustls::client::danger::ServerCertVerifier for NamedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
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

/// Certificates for tests: a CA that signs leaf certificates.
#[cfg(test)]
pub(crate) mod testing {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    pub(crate) struct Ca {
        issuer: Issuer<'static, KeyPair>,
        /// The CA certificate, PEM.
        pub(crate) pem: String,
    }

    /// A leaf certificate and its key.
    pub(crate) struct Leaf {
        pub(crate) cert_pem: String,
        pub(crate) key_pem: String,
    }

    impl Ca {
        pub(crate) fn new(name: &str) -> Ca {
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

        /// A server certificate for `names` (DNS names or IP addresses).
        pub(crate) fn leaf(&self, names: &[&str]) -> Leaf {
            let key = KeyPair::generate().unwrap();
            let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            let params = CertificateParams::new(names).unwrap();
            let cert = params.signed_by(&key, &self.issuer).unwrap();
            Leaf {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            }
        }
    }

    /// Serve `app` over TLS with `leaf` on a loopback port (HTTP/1.1 and h2); the address.
    pub(crate) async fn serve_https(app: axum::Router, leaf: &Leaf) -> std::net::SocketAddr {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use hyper_util::service::TowerToHyperService;
        use rustls::pki_types::PrivateKeyDer;
        use rustls::pki_types::pem::PemObject;
        let certs = super::certs_from_pem(leaf.cert_pem.as_bytes()).unwrap();
        let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(super::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let service = TowerToHyperService::new(app.clone());
                tokio::spawn(async move {
                    // A client that does not trust the certificate ends here.
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Ca;
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_matching_cert_and_key_build_a_config_offering_h2_and_http1() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("test ca");
        let leaf = ca.leaf(&["localhost"]);
        let chain = format!("{}{}", leaf.cert_pem, ca.pem);
        let cert = write(dir.path(), "tls.crt", &chain);
        let key = write(dir.path(), "tls.key", &leaf.key_pem);
        let ca_file = write(dir.path(), "ca.crt", &ca.pem);
        let tls = server_config(&cert, &key, Some(&ca_file)).unwrap();
        assert_eq!(
            tls.config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert_eq!(tls.client_ca_file.as_deref(), Some(ca_file.as_path()));
    }

    #[test]
    fn every_bad_file_is_named_with_its_setting() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("test ca");
        let one = ca.leaf(&["localhost"]);
        let other = ca.leaf(&["localhost"]);
        let cert = write(dir.path(), "tls.crt", &one.cert_pem);
        let wrong_key = write(dir.path(), "other.key", &other.key_pem);
        let garbage = write(dir.path(), "garbage.pem", "not pem at all\n");
        let missing = dir.path().join("missing.crt");

        let problems = server_config(&missing, &garbage, Some(&garbage)).unwrap_err();
        let fields: Vec<Field> = problems.iter().map(|(f, _)| *f).collect();
        assert_eq!(
            fields,
            [Field::CertFile, Field::KeyFile, Field::ClientCaFile],
            "{problems:?}"
        );
        assert!(problems[0].1.contains("missing.crt"), "{problems:?}");
        assert!(problems[1].1.contains("no PEM private key"), "{problems:?}");
        assert!(problems[2].1.contains("no certificate"), "{problems:?}");

        let problems = server_config(&cert, &wrong_key, None).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, Field::KeyFile);
        assert!(
            problems[0].1.contains("does not fit the certificate"),
            "{problems:?}"
        );
    }

    #[test]
    fn https_client_configs_offer_h2_and_http1_and_refuse_bad_input() {
        let ca = Ca::new("a");
        let config = https_client_config(Some(&ca.pem), Some("flow.local")).unwrap();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let err = https_client_config(Some("not pem"), None).unwrap_err();
        assert!(err.contains("no certificate"), "{err}");
        let err = https_client_config(Some(&ca.pem), Some("not a name!")).unwrap_err();
        assert!(err.contains("not a DNS name"), "{err}");
    }

    #[test]
    fn a_bundle_yields_every_certificate() {
        let a = Ca::new("a");
        let b = Ca::new("b");
        let bundle = format!("{}\n{}", a.pem, b.pem);
        assert_eq!(certs_from_pem(bundle.as_bytes()).unwrap().len(), 2);
        assert!(certs_from_pem(b"").is_err());
    }
}
