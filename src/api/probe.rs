//! `sluice probe`: a container healthcheck without curl in the image. One HTTP/1.1 GET (of
//! `/ready` by default), over plain HTTP or HTTPS; success when the answer is 2xx.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long the whole probe may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// How the probe reaches the API.
#[derive(Debug, Default, Clone)]
pub struct ProbeOptions {
    /// HTTPS: the CA file that signed the API's certificate (default: the Mozilla roots).
    pub cacert: Option<PathBuf>,
    /// HTTPS: the name the certificate must carry, when the URL's host is another (a
    /// healthcheck inside the container probes 127.0.0.1, the certificate names the
    /// service).
    pub servername: Option<String>,
    /// Sent as `Authorization: Bearer <token>` (the full `/ready` answer needs it).
    pub token: Option<String>,
}

/// GETs `url` (`http://host:port/path` or `https://...`); the status and body, or why it
/// failed.
pub async fn get(url: &str, options: &ProbeOptions) -> Result<(u16, String), String> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(format!(
            "{url}: give the API's URL as http://host:port/path or https://host:port/path"
        ));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let authority = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_string()
    } else {
        format!("{authority}:{}", if tls { 443 } else { 80 })
    };
    let host = authority
        .rsplit_once(':')
        .map_or(authority.as_str(), |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let auth = options
        .token
        .as_ref()
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\n{auth}Connection: close\r\n\r\n");
    let exchange = async {
        let conn = tokio::net::TcpStream::connect(&authority)
            .await
            .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
        if tls {
            let name = options.servername.clone().unwrap_or(host);
            let connector = connector(options)?;
            let server_name = rustls::pki_types::ServerName::try_from(name.clone())
                .map_err(|_| format!("{name} is not a host name a certificate can carry"))?;
            let stream = connector.connect(server_name, conn).await.map_err(|e| {
                format!("TLS with {authority} failed: {e} (check --cacert and --servername)")
            })?;
            exchange_on(stream, &request).await
        } else {
            exchange_on(conn, &request).await
        }
    };
    let buf = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| format!("{url}: no answer within {} s", TIMEOUT.as_secs()))??;
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{url}: not an HTTP answer"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// The TLS client: the CA file's roots (or the Mozilla roots), names checked.
fn connector(options: &ProbeOptions) -> Result<tokio_rustls::TlsConnector, String> {
    let roots = crate::tls::roots(options.cacert.as_deref(), "--cacert")?;
    let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Writes the request and reads the whole answer.
async fn exchange_on<S: AsyncRead + AsyncWrite + Unpin>(
    mut conn: S,
    request: &str,
) -> Result<Vec<u8>, String> {
    conn.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    // A TLS server may close without close_notify; what arrived is the answer.
    match conn.read_to_end(&mut buf).await {
        Ok(_) => {}
        Err(e) if !buf.is_empty() && e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => return Err(e.to_string()),
    }
    Ok(buf)
}
