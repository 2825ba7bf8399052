//! A client for the Confluent Schema Registry REST API (also spoken by Apicurio, Karapace and
//! Redpanda): registering a schema under a subject returns its id.
//!
//! HTTP/1.1 through hyper, over TCP (`http://`) or rustls (`https://`, with an optional CA file
//! and client certificate), one short request per new schema version: the hot path never
//! calls the registry.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use http_body_util::{BodyExt, Full, Limited};

use crate::config::Secret;

/// How long one registry request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Registry answers larger than this are refused.
const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// A registry failure.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No answer (connection refused, timeout, 5xx): retried.
    #[error("schema registry at {url} is unreachable: {reason}")]
    Unreachable {
        /// Base URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The registry refused the request (incompatible schema, bad credentials...).
    #[error("schema registry refused subject {subject} (HTTP {status}): {message}")]
    Refused {
        /// Subject.
        subject: String,
        /// HTTP status.
        status: u16,
        /// The registry's message.
        message: String,
    },
}

impl RegistryError {
    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, RegistryError::Unreachable { .. })
    }
}

/// A schema registry client.
#[derive(Clone)]
pub struct RegistryClient {
    url: String,
    host: String,
    port: u16,
    base_path: String,
    authorization: Option<String>,
    /// `https://`: the TLS client.
    tls: Option<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("url", &self.url)
            .finish()
    }
}

/// Percent-encodes a path segment.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl RegistryClient {
    /// A client for `http://host[:port][/path]`.
    pub fn new(
        url: &str,
        username: Option<&str>,
        password: Option<&Secret>,
    ) -> Result<Self, String> {
        let shown = crate::config::target::redact(url);
        let https = url.starts_with("https://");
        if !url.starts_with("http://") && !https {
            return Err(format!(
                "registry URL {shown} must start with http:// or https://"
            ));
        }
        let parsed = crate::config::target::parse(url, "http(s)://host:port")
            .map_err(|e| format!("registry URL {shown} {e}"))?;
        let host = crate::config::target::host(&parsed);
        let port = parsed
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });
        let path = parsed.path().trim_end_matches('/').to_string();
        // Credentials in the URL count when none are set apart.
        let from_url = (!parsed.username().is_empty()).then(|| {
            (
                parsed.username().to_string(),
                parsed.password().unwrap_or_default().to_string(),
            )
        });
        let authorization = match (username, password, from_url) {
            (Some(u), Some(p), _) => Some(format!(
                "Basic {}",
                BASE64.encode(format!("{u}:{}", p.expose()))
            )),
            (_, _, Some((u, p))) => Some(format!("Basic {}", BASE64.encode(format!("{u}:{p}")))),
            _ => None,
        };
        let mut public = parsed.clone();
        let _ = public.set_username("");
        let _ = public.set_password(None);
        Ok(RegistryClient {
            url: public.as_str().trim_end_matches('/').to_string(),
            host,
            port,
            base_path: path,
            authorization,
            tls: if https {
                Some(tls_connector(None, None, None)?)
            } else {
                None
            },
        })
    }

    /// The client a connector's `[format]` describes (URL, basic auth, TLS files).
    pub fn from_format(f: &crate::config::FormatConfig) -> Result<Self, String> {
        let mut client = Self::new(
            f.registry_url.as_deref().unwrap_or_default(),
            f.registry_username.as_deref(),
            f.registry_password.as_ref(),
        )?;
        if client.tls.is_some() {
            client.tls = Some(tls_connector(
                f.registry_ca_file.as_deref(),
                f.registry_cert_file.as_deref(),
                f.registry_key_file.as_deref(),
            )?);
        }
        Ok(client)
    }

    /// Registers `schema` (Avro schema JSON) under `subject`; returns its id. Registering an
    /// already registered schema returns the existing id.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let body = serde_json::json!({ "schema": schema, "schemaType": "AVRO" }).to_string();
        let path = format!("/subjects/{}/versions", encode_segment(subject));
        let (status, response) = self.request("POST", &path, Some(&body)).await?;
        let parsed: serde_json::Value = serde_json::from_slice(&response).unwrap_or_default();
        if status == 200 {
            if let Some(id) = parsed["id"].as_u64() {
                // The wire format carries the id in 4 bytes: a larger one cannot be written
                // (truncated, it would name another schema).
                return u32::try_from(id).map_err(|_| RegistryError::Refused {
                    subject: subject.to_string(),
                    status,
                    message: format!(
                        "the registry answered schema id {id}, which does not fit the 4 bytes the Avro wire format gives it"
                    ),
                });
            }
        }
        let message = parsed["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&response)
                    .chars()
                    .take(500)
                    .collect()
            });
        // 429 (rate limited) and 408 are the registry asking to come back later: retried
        // with backoff, as a registry that is down.
        if status >= 500 || status == 200 || status == 429 || status == 408 {
            return Err(RegistryError::Unreachable {
                url: self.url.clone(),
                reason: format!("HTTP {status}: {message}"),
            });
        }
        Err(RegistryError::Refused {
            subject: subject.to_string(),
            status,
            message,
        })
    }

    /// Checks that the registry answers (`GET /subjects`).
    pub async fn check(&self) -> Result<(), RegistryError> {
        let (status, body) = self.request("GET", "/subjects", None).await?;
        if status == 200 {
            return Ok(());
        }
        Err(RegistryError::Refused {
            subject: "*".into(),
            status,
            message: String::from_utf8_lossy(&body).chars().take(300).collect(),
        })
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<(u16, Vec<u8>), RegistryError> {
        let unreachable = |reason: String| RegistryError::Unreachable {
            url: self.url.clone(),
            reason,
        };
        let host_header = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base_path))
            .header(hyper::header::HOST, host_header)
            .header(
                hyper::header::ACCEPT,
                "application/vnd.schemaregistry.v1+json, application/json",
            )
            .header(
                hyper::header::CONTENT_TYPE,
                "application/vnd.schemaregistry.v1+json",
            );
        if let Some(auth) = &self.authorization {
            req = req.header(hyper::header::AUTHORIZATION, auth);
        }
        let req = req
            .body(Full::new(bytes::Bytes::from(
                body.unwrap_or("").to_string(),
            )))
            .map_err(|e| unreachable(e.to_string()))?;
        let work = async {
            let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| e.to_string())?;
            match &self.tls {
                Some(connector) => {
                    let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                        .map_err(|e| format!("{}: {e}", self.host))?;
                    let tls = connector
                        .connect(name, tcp)
                        .await
                        .map_err(|e| format!("TLS: {e}"))?;
                    exchange(tls, req).await
                }
                None => exchange(tcp, req).await,
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())))
            .map_err(unreachable)
    }
}

/// One request on a fresh connection; the response body is read up to
/// [`MAX_RESPONSE_BYTES`].
async fn exchange<IO>(
    io: IO,
    req: hyper::Request<Full<bytes::Bytes>>,
) -> Result<(u16, Vec<u8>), String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let result = async {
        let response = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the response: {e}"))?
            .to_bytes();
        Ok((status, body.to_vec()))
    }
    .await;
    driver.abort();
    result
}

/// The TLS client for `https://` registries: trusted roots from `ca` (else the Mozilla roots),
/// and a client certificate when `cert` and `key` are given.
fn tls_connector(
    ca: Option<&Path>,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<tokio_rustls::TlsConnector, String> {
    let roots = crate::tls::roots(ca, "format.registry_ca_file")?;
    let builder = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match (cert, key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(
                crate::tls::certs(cert, "format.registry_cert_file")?,
                crate::tls::key(key, "format.registry_key_file")?,
            )
            .map_err(|e| format!("format.registry_cert_file / registry_key_file: {e}"))?,
        _ => builder.with_no_client_auth(),
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_subjects() {
        let c = RegistryClient::new("http://reg:8081/api/", Some("u"), Some(&Secret::new("p")))
            .unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.base_path.as_str()),
            ("reg", 8081, "/api")
        );
        assert_eq!(c.authorization.as_deref(), Some("Basic dTpw"));
        assert!(!format!("{c:?}").contains("dTpw"));
        // Credentials in the URL: used, and never shown; IPv6 literals work.
        let c = RegistryClient::new("http://u:p@[::1]:8081", None, None).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("::1", 8081));
        assert_eq!(c.authorization.as_deref(), Some("Basic dTpw"));
        assert_eq!(c.url, "http://[::1]:8081");
        let e = RegistryClient::new("http://u:s3cret@/x", None, None).unwrap_err();
        assert!(e.contains("host") && !e.contains("s3cret"), "{e}");
        assert_eq!(encode_segment("a.b-value"), "a.b-value");
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
    }

    /// A registry on a loopback port that gives every request this status and body.
    async fn canned(status: &str, body: &'static str) -> RegistryClient {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let status = status.to_string();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            }
        });
        RegistryClient::new(&format!("http://127.0.0.1:{port}"), None, None).unwrap()
    }

    /// Rate limiting is "come back later" (retried), not a refusal that stops the
    /// connector; an id beyond the wire format's 4 bytes is refused, never truncated.
    #[tokio::test]
    async fn rate_limits_are_retried_and_ids_are_never_truncated() {
        let limited = canned("429 Too Many Requests", r#"{"message":"slow down"}"#).await;
        let e = limited.register("s-value", "\"int\"").await.unwrap_err();
        assert!(matches!(e, RegistryError::Unreachable { .. }), "{e}");
        let huge = canned("200 OK", r#"{"id":4294967301}"#).await;
        let e = huge.register("s-value", "\"int\"").await.unwrap_err();
        assert!(
            matches!(&e, RegistryError::Refused { message, .. } if message.contains("4294967301")),
            "{e}"
        );
        let fine = canned("200 OK", r#"{"id":7}"#).await;
        assert_eq!(fine.register("s-value", "\"int\"").await.unwrap(), 7);
    }
}
