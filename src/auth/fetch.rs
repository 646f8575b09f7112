//! One HTTP(S) GET of a JSON document (OIDC discovery, JWKS), with reqwest: a fresh client per
//! fetch (they are rare, and a rotated `ca_file` or token applies at the next one), TLS from
//! [`crate::tls::https_client_with_extra_roots`] (ring) trusting the system roots plus an
//! optional CA bundle (a cluster's `ca.crt`), an optional bearer token read from a file at each
//! fetch, a timeout and a 1 MiB body limit. Redirects are not followed (a 3xx is an error like
//! any other non-2xx) and no proxy is used.
//!
//! Knows nothing of OIDC: it returns the parsed JSON; errors name the URL and what failed.

use std::path::Path;
use std::time::Duration;

/// Largest document accepted.
const MAX_DOCUMENT: usize = 1 << 20;

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

async fn get(url: &str, options: &FetchOptions<'_>) -> Result<serde_json::Value, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err("only http and https URLs can be fetched".to_string()),
    };
    let host = uri.host().ok_or("the URL has no host")?;
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let builder = if tls {
        let ca_pem = match options.ca_file {
            // Bytes, as PEM is read: text around the certificates need not be UTF-8.
            Some(file) => Some(
                std::fs::read(file)
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .map_err(|e| format!("cannot read ca_file {}: {e}", file.display()))?,
            ),
            None => None,
        };
        crate::tls::https_client_with_extra_roots(ca_pem.as_deref()).map_err(|e| {
            match options.ca_file {
                Some(file) => format!("ca_file {}: {e}", file.display()),
                None => e,
            }
        })?
    } else {
        crate::tls::http_client()
    };
    let client = builder
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let mut request = client
        .get(url)
        .header(http::header::ACCEPT, "application/json");
    if let Some(file) = options.token_file {
        let token = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read token_file {}: {e}", file.display()))?;
        request = request.bearer_auth(token.trim());
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| send_error(&e, host, port))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("cannot read the body: {}", crate::tls::describe_error(&e)))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT {
            return Err("cannot read the body: length limit exceeded".to_string());
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        let snippet: String = text.chars().take(200).collect();
        return Err(format!("answered {status}: {snippet}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("the body is not JSON: {e}"))
}

/// What a failed send says: the TLS problem, the connection problem (the innermost cause, as
/// `connect(2)` or the resolver gave it) or the request failure.
fn send_error(error: &reqwest::Error, host: &str, port: u16) -> String {
    let mut chain: Vec<&(dyn std::error::Error + 'static)> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = next {
        chain.push(e);
        next = e.source();
    }
    if let Some(tls) = chain.iter().find_map(|e| rustls_cause(*e)) {
        return format!("TLS handshake with {host}:{port} failed: {tls}");
    }
    if error.is_connect()
        && let Some(cause) = chain.last()
    {
        return format!("cannot connect to {host}:{port}: {cause}");
    }
    format!("request failed: {}", crate::tls::describe_error(error))
}

/// The rustls error of a failed handshake: `e` itself, or inside the `io::Error`s that wrap it
/// (the TLS stream gives one, the connector wraps it in another).
fn rustls_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let mut io = e.downcast_ref::<std::io::Error>()?;
    loop {
        let inner = io.get_ref()?;
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        io = inner.downcast_ref::<std::io::Error>()?;
    }
}

#[cfg(test)]
mod tests;
