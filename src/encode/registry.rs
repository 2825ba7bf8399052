//! A client for the Confluent Schema Registry REST API (also spoken by Apicurio, Karapace and
//! Redpanda): registering a schema under a subject returns its id.
//!
//! Plain HTTP/1.1 over TCP (`http://` only), one short request per new schema version: the
//! hot path never calls the registry.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
        if !url.starts_with("http://") {
            return Err(format!("registry URL {shown} must start with http://"));
        }
        let parsed = crate::config::target::parse(url, "http://host:port")
            .map_err(|e| format!("registry URL {shown} {e}"))?;
        let host = crate::config::target::host(&parsed);
        let port = parsed.port_or_known_default().unwrap_or(80);
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
        })
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
                return Ok(id as u32);
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
        if status >= 500 || status == 200 {
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
        let work = async {
            let mut stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let body = body.unwrap_or("");
            let mut req = format!(
                "{method} {}{path} HTTP/1.1\r\nHost: {}:{}\r\nAccept: application/vnd.schemaregistry.v1+json, application/json\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n",
                self.base_path,
                self.host,
                self.port,
                body.len()
            );
            if let Some(auth) = &self.authorization {
                req.push_str(&format!("Authorization: {auth}\r\n"));
            }
            req.push_str("\r\n");
            req.push_str(body);
            stream
                .write_all(req.as_bytes())
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let mut response = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                let n = stream
                    .read(&mut chunk)
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
                if n == 0 {
                    break;
                }
                response.extend_from_slice(&chunk[..n]);
                if response.len() > MAX_RESPONSE_BYTES {
                    return Err(unreachable("response too large".into()));
                }
                if let Some(done) = complete_response(&response) {
                    return done.map_err(unreachable);
                }
            }
            complete_response(&response)
                .unwrap_or_else(|| Err("connection closed before a full response".into()))
                .map_err(unreachable)
        };
        tokio::time::timeout(REQUEST_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| {
                Err(unreachable(format!(
                    "no answer within {} s",
                    REQUEST_TIMEOUT.as_secs()
                )))
            })
    }
}

/// Parses a complete HTTP/1.1 response (status, body), or `None` when more bytes are needed.
fn complete_response(buf: &[u8]) -> Option<Result<(u16, Vec<u8>), String>> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut lines = head.lines();
    let status: u16 = match lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
    {
        Some(s) => s,
        None => return Some(Err("malformed HTTP status line".into())),
    };
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                content_length = v.parse::<usize>().ok();
            } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let body = &buf[head_end + 4..];
    if chunked {
        let mut out = Vec::new();
        let mut rest = body;
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
            let size_text = String::from_utf8_lossy(&rest[..line_end]);
            let size =
                match usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16) {
                    Ok(s) => s,
                    Err(_) => return Some(Err("malformed chunked body".into())),
                };
            rest = &rest[line_end + 2..];
            if size == 0 {
                return Some(Ok((status, out)));
            }
            // The size comes from the network: no arithmetic on it may wrap.
            let Some(with_crlf) = size.checked_add(2) else {
                return Some(Err(format!("chunk size {size_text} is not plausible")));
            };
            if rest.len() < with_crlf {
                return None;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
    }
    match content_length {
        Some(n) if body.len() >= n => Some(Ok((status, body[..n].to_vec()))),
        Some(_) => None,
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_size_near_the_largest_integer_is_an_error_not_a_panic() {
        let r = complete_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab\r\n0\r\n\r\n",
        );
        assert!(matches!(r, Some(Err(_))), "{r:?}");
        let r = complete_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffe\r\nab\r\n0\r\n\r\n",
        );
        assert!(!matches!(r, Some(Ok(_))), "{r:?}");
    }

    #[test]
    fn mutated_responses_never_panic() {
        let seeds: [&[u8]; 2] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"id\":1}",
            b"HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n2\r\nef\r\n0\r\n\r\n",
        ];
        let mut rng = crate::fuzzing::rng(0x7e9);
        for i in 0..crate::fuzzing::iterations(30_000) {
            let input = crate::fuzzing::mutate(&mut rng, seeds[i % seeds.len()]);
            let _ = complete_response(&input);
        }
    }

    #[test]
    fn parses_responses() {
        let r = complete_response(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"id\":1}")
            .unwrap()
            .unwrap();
        assert_eq!(r, (200, b"{\"id\":1}".to_vec()));
        assert!(
            complete_response(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"id\"").is_none()
        );
        let c = complete_response(b"HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n2\r\nef\r\n0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(c, (409, b"abcdef".to_vec()));
        assert!(complete_response(b"garbage\r\n\r\n").unwrap().is_err());
    }

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
}
