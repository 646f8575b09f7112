//! One HTTP(S) GET of a JSON document (OIDC discovery, JWKS): a fresh HTTP/1.1 connection per
//! fetch (they are rare), TLS with rustls on ring trusting the system roots plus an optional CA
//! bundle (a cluster's `ca.crt`), an optional bearer token read from a file at each fetch, a
//! timeout and a 1 MiB body limit. Redirects are not followed.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};

/// Largest document accepted.
const MAX_DOCUMENT: usize = 1 << 20;

/// Certificates of a PEM bundle; an error when it holds none.
pub fn parse_ca_bundle(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate in it".to_string());
    }
    Ok(certs)
}

/// What a fetch may use besides the URL.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions<'a> {
    pub ca_file: Option<&'a Path>,
    pub token_file: Option<&'a Path>,
    pub timeout: Duration,
}

/// GETs `url` and parses the body as JSON. Errors name the URL and what failed.
pub async fn get_json(url: &str, options: &FetchOptions<'_>) -> Result<serde_json::Value, String> {
    match tokio::time::timeout(options.timeout, get(url, options)).await {
        Ok(result) => result.map_err(|e| format!("GET {url}: {e}")),
        Err(_) => Err(format!(
            "GET {url}: no answer within {}s",
            options.timeout.as_secs_f64()
        )),
    }
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

async fn get(url: &str, options: &FetchOptions<'_>) -> Result<serde_json::Value, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err("only http and https URLs can be fetched".to_string()),
    };
    let host = uri.host().ok_or("the URL has no host")?;
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = tokio::net::TcpStream::connect((bare_host, port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let io: Box<dyn Io> = if tls {
        let config = client_config(options.ca_file)?;
        let name = ServerName::try_from(bare_host.to_string())
            .map_err(|e| format!("{host} is not a valid TLS server name: {e}"))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {host}:{port} failed: {e}"))?;
        Box::new(stream)
    } else {
        Box::new(tcp)
    };
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Empty<bytes::Bytes>>(TokioIo::new(io))
            .await
            .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    let driver = tokio::spawn(connection);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = uri.authority().map_or(host, |a| a.as_str());
    let mut request = http::Request::get(path)
        .header(http::header::HOST, authority)
        .header(http::header::ACCEPT, "application/json");
    if let Some(file) = options.token_file {
        let token = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read token_file {}: {e}", file.display()))?;
        request = request.header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", token.trim()),
        );
    }
    let request = request
        .body(Empty::new())
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_DOCUMENT)
        .collect()
        .await
        .map_err(|e| format!("cannot read the body: {e}"))?
        .to_bytes();
    driver.abort();
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        let snippet: String = text.chars().take(200).collect();
        return Err(format!("answered {status}: {snippet}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("the body is not JSON: {e}"))
}

fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(file) = ca_file {
        let pem = std::fs::read(file)
            .map_err(|e| format!("cannot read ca_file {}: {e}", file.display()))?;
        let certs =
            parse_ca_bundle(&pem).map_err(|e| format!("ca_file {}: {e}", file.display()))?;
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("ca_file {}: {e}", file.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
