//! Connection URLs read with a URL parser: where they point (normalised, so two spellings
//! of one server compare equal), and how they may be shown (without the password).

use url::{Host, Url};

/// The server (and database) a connection URL points to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// Host, lower case; IPv6 literals without brackets; every loopback spelling
    /// (`localhost`, `127.0.0.1`, `::1`) as `localhost`.
    pub host: String,
    /// Port (the scheme's default when absent).
    pub port: u16,
    /// Database (PostgreSQL; empty for MySQL).
    pub database: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        if !self.database.is_empty() {
            write!(f, "/{}", self.database)?;
        }
        Ok(())
    }
}

/// Parses a URL that must name a host; the error says what is wrong and shows the form.
pub fn parse(url: &str, form: &str) -> Result<Url, String> {
    let parsed =
        Url::parse(url).map_err(|e| format!("is not a valid URL ({e}); expected {form}"))?;
    match parsed.host() {
        None => Err(format!("has no host; expected {form}")),
        Some(Host::Domain("")) => Err(format!("has no host; expected {form}")),
        Some(_) => Ok(parsed),
    }
}

/// The host of a parsed URL as a connection takes it (IPv6 without brackets).
pub fn host(url: &Url) -> String {
    match url.host() {
        Some(Host::Ipv6(a)) => a.to_string(),
        Some(Host::Ipv4(a)) => a.to_string(),
        Some(Host::Domain(d)) => d.to_ascii_lowercase(),
        None => String::new(),
    }
}

fn normal_host(url: &Url) -> String {
    // Hosts of schemes the URL standard does not know (postgres://, mysql://) come as
    // text, IP literals included.
    let ip = match url.host() {
        Some(Host::Ipv4(a)) => Some(std::net::IpAddr::V4(a)),
        Some(Host::Ipv6(a)) => Some(std::net::IpAddr::V6(a)),
        Some(Host::Domain(d)) => d.trim_matches(|c| c == '[' || c == ']').parse().ok(),
        None => None,
    };
    match ip {
        Some(a) if a.is_loopback() => "localhost".into(),
        Some(a) => a.to_string(),
        None if host(url) == "localhost" => "localhost".into(),
        None => host(url),
    }
}

/// Where a PostgreSQL URL points: host, port (5432) and database (the user's name when
/// absent, as libpq does).
pub fn postgres(url: &str) -> Result<Target, String> {
    let u = parse(url, "postgres://user:password@host:port/database")?;
    let user = if u.username().is_empty() {
        "postgres".to_string()
    } else {
        decode(u.username())
    };
    let database = decode(u.path().trim_start_matches('/'));
    Ok(Target {
        host: normal_host(&u),
        port: u.port().unwrap_or(5432),
        database: if database.is_empty() { user } else { database },
    })
}

/// Where a MySQL / MariaDB URL points: host and port (3306).
pub fn mysql(url: &str) -> Result<Target, String> {
    let u = parse(url, "mysql://user:password@host:port")?;
    Ok(Target {
        host: normal_host(&u),
        port: u.port().unwrap_or(3306),
        database: String::new(),
    })
}

/// The URL as it may be shown: the password replaced by `***`, and so is the value of a
/// password-like query parameter (`?password=`, `sslpassword`, `token`, ...). Read with a URL
/// parser (the user part ends at the last `@`: `u:p@ss@host` shows no part of `p@ss`). Text
/// that is not a URL is shown from its last `@` only, since it cannot be told what part is
/// secret.
pub fn redact(url: &str) -> String {
    redact_with(url, "***")
}

/// [`redact`] with another mask.
pub fn redact_with(url: &str, mask: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some(mask));
            }
            if u.query_pairs().any(|(k, _)| secret_param(&k)) {
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if secret_param(&k) {
                            mask.to_string()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        Err(_) => {
            let tail = match url.rfind('@') {
                Some(at) => format!("{mask}{}", &url[at..]),
                None => url.to_string(),
            };
            // `password=` in what follows (a key=value string) is masked too.
            mask_secret_pairs(&tail, mask)
        }
    }
}

/// Whether a URL parameter's value is a secret.
fn secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("password") || n.contains("secret") || n.contains("token") || n == "pwd"
}

/// `key=value` pairs (separated by `&`, `;`, `,` or spaces) with secret-looking keys masked.
fn mask_secret_pairs(text: &str, mask: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let key_start = rest[..eq]
            .rfind(['&', ';', ',', ' ', '?'])
            .map_or(0, |i| i + 1);
        let value_end = rest[eq + 1..]
            .find(['&', ';', ',', ' '])
            .map_or(rest.len(), |i| eq + 1 + i);
        out.push_str(&rest[..=eq]);
        if secret_param(&rest[key_start..eq]) {
            out.push_str(mask);
        } else {
            out.push_str(&rest[eq + 1..value_end]);
        }
        rest = &rest[value_end..];
    }
    out.push_str(rest);
    out
}

/// Every URL inside `text` (a configuration line, a message) redacted with `mask`: each
/// `scheme://...` up to the next space or quote.
pub fn redact_urls_in(text: &str, mask: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(sep) = rest.find("://") {
        let start = rest[..sep]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let end = rest[sep..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`'))
            .map_or(rest.len(), |i| sep + i);
        out.push_str(&rest[..start]);
        out.push_str(&redact_with(&rest[start..end], mask));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// libpq's `sslmode` (a `postgres://` URL parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgSslMode {
    /// No TLS.
    Disable,
    /// TLS if the server insists (treated as `prefer`).
    Allow,
    /// TLS when the server offers it; the certificate not checked (the default).
    Prefer,
    /// TLS; the certificate not checked.
    Require,
    /// TLS; the chain checked against `sslrootcert`.
    VerifyCa,
    /// TLS; the chain and the host name checked.
    VerifyFull,
}

/// The TLS settings of a connection URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTls {
    /// `sslmode`.
    pub mode: PgSslMode,
    /// `sslrootcert` (`system`: the Mozilla roots).
    pub root_cert: Option<std::path::PathBuf>,
    /// `sslcert`.
    pub cert: Option<std::path::PathBuf>,
    /// `sslkey`.
    pub key: Option<std::path::PathBuf>,
}

/// Splits the TLS parameters off a `postgres://` URL: the URL without them (for
/// tokio-postgres, which does not know them all) and the settings. Errors name the
/// parameter and the values it takes.
pub fn split_postgres_tls(url: &str) -> Result<(String, PgTls), String> {
    let mut settings = PgTls {
        mode: PgSslMode::Prefer,
        root_cert: None,
        cert: None,
        key: None,
    };
    let url = split_params(url, |k, value| {
        match k {
            "sslmode" => {
                settings.mode = match value.as_str() {
                    "disable" => PgSslMode::Disable,
                    "allow" => PgSslMode::Allow,
                    "prefer" => PgSslMode::Prefer,
                    "require" => PgSslMode::Require,
                    "verify-ca" => PgSslMode::VerifyCa,
                    "verify-full" => PgSslMode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode={other} is not a mode; use disable, allow, prefer, require, verify-ca or verify-full"
                        ))
                    }
                }
            }
            "sslrootcert" => settings.root_cert = Some(value.into()),
            "sslcert" => settings.cert = Some(value.into()),
            "sslkey" => settings.key = Some(value.into()),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if settings.cert.is_some() != settings.key.is_some() {
        return Err("sslcert and sslkey go together: set both (a client certificate and its key) or neither".into());
    }
    // As libpq: verify-ca checks no name, so it authenticates the server only against a CA
    // of the user's own; with the whole Web PKI any certificate of any site would pass.
    if settings.mode == PgSslMode::VerifyCa
        && settings
            .root_cert
            .as_ref()
            .is_none_or(|p| p.as_os_str() == "system")
    {
        return Err("sslmode=verify-ca needs sslrootcert=<file of the CA that signed the server's certificate> (verify-ca checks no host name, so against the public CAs any site's certificate would pass); or use sslmode=verify-full".into());
    }
    Ok((url, settings))
}

/// The `mysql` client's `--ssl-mode` (a `mysql://` URL parameter `ssl-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MySslMode {
    /// No TLS.
    Disabled,
    /// TLS when the server offers it; the certificate not checked (the default).
    Preferred,
    /// TLS; the certificate not checked.
    Required,
    /// TLS; the chain checked against `ssl-ca`.
    VerifyCa,
    /// TLS; the chain and the host name checked.
    VerifyIdentity,
}

/// The TLS settings of a `mysql://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyTls {
    /// `ssl-mode`.
    pub mode: MySslMode,
    /// `ssl-ca`.
    pub ca: Option<std::path::PathBuf>,
    /// `ssl-cert`.
    pub cert: Option<std::path::PathBuf>,
    /// `ssl-key`.
    pub key: Option<std::path::PathBuf>,
}

/// Splits the TLS parameters (`ssl-mode`, `ssl-ca`, `ssl-cert`, `ssl-key`, named as the
/// `mysql` client's options) off a `mysql://` URL.
pub fn split_mysql_tls(url: &str) -> Result<(String, MyTls), String> {
    let mut tls = MyTls {
        mode: MySslMode::Preferred,
        ca: None,
        cert: None,
        key: None,
    };
    let url = split_params(url, |k, value| {
        match k.replace('_', "-").to_ascii_lowercase().as_str() {
            "ssl-mode" => {
                tls.mode = match value.to_ascii_uppercase().as_str() {
                    "DISABLED" => MySslMode::Disabled,
                    "PREFERRED" => MySslMode::Preferred,
                    "REQUIRED" => MySslMode::Required,
                    "VERIFY_CA" => MySslMode::VerifyCa,
                    "VERIFY_IDENTITY" => MySslMode::VerifyIdentity,
                    other => {
                        return Err(format!(
                            "ssl-mode={other} is not a mode; use DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY"
                        ))
                    }
                }
            }
            "ssl-ca" => tls.ca = Some(value.into()),
            "ssl-cert" => tls.cert = Some(value.into()),
            "ssl-key" => tls.key = Some(value.into()),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if tls.cert.is_some() != tls.key.is_some() {
        return Err("ssl-cert and ssl-key go together: set both (a client certificate and its key) or neither".into());
    }
    // As the mysql client: VERIFY_CA checks no name, so it needs a CA of the user's own.
    if tls.mode == MySslMode::VerifyCa && tls.ca.is_none() {
        return Err("ssl-mode=VERIFY_CA needs ssl-ca=<file of the CA that signed the server's certificate> (VERIFY_CA checks no host name, so against the public CAs any site's certificate would pass); or use ssl-mode=VERIFY_IDENTITY".into());
    }
    Ok((url, tls))
}

/// The URL without the query parameters `take` claims (it is given each name and decoded
/// value, and answers whether it took it).
fn split_params(
    url: &str,
    mut take: impl FnMut(&str, String) -> Result<bool, String>,
) -> Result<String, String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok(url.to_string());
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if !take(k, decode(v))? {
            kept.push(pair);
        }
    }
    Ok(if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    })
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        // By bytes: the two after `%` may be the start of a multi-byte character.
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_before_a_multibyte_character_is_kept() {
        assert_eq!(decode("a%€b%41"), "a%€bA");
        assert_eq!(decode("%e2%82%ac%"), "€%");
    }

    #[test]
    fn spellings_of_one_server_compare_equal() {
        let a = postgres("postgres://u:p@localhost/shop").unwrap();
        let b = postgres("postgresql://other@127.0.0.1:5432/shop?sslmode=disable").unwrap();
        let c = postgres("postgres://u@[::1]:5432/shop").unwrap();
        let d = postgres("postgres://u@LOCALHOST:5432/shop").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a, d);
        assert_ne!(a, postgres("postgres://u@localhost:5433/shop").unwrap());
        assert_eq!(postgres("postgres://alice@db/").unwrap().database, "alice");
        assert_eq!(
            postgres("postgres://u@db/my%20db").unwrap().database,
            "my db"
        );
        assert_eq!(
            mysql("mysql://u:p@Db.Example:3306").unwrap(),
            mysql("mariadb://x@db.example").unwrap()
        );
    }

    #[test]
    fn ipv6_literals_work() {
        let t = mysql("mysql://u:p@[2001:db8::1]:3307").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("2001:db8::1", 3307));
        assert_eq!(t.to_string(), "[2001:db8::1]:3307");
        let u = parse("http://[fe80::2]:8081/", "x").unwrap();
        assert_eq!(host(&u), "fe80::2");
    }

    #[test]
    fn a_url_without_a_host_is_refused_with_the_form() {
        for url in ["postgres:///db", "postgres://u:p@/db", "mysql://u:p@:3306"] {
            let e = postgres(url).unwrap_err();
            assert!(
                e.contains("no host") || e.contains("not a valid URL"),
                "{url}: {e}"
            );
            assert!(e.contains("://user:password@host:port"), "{url}: {e}");
        }
        assert!(mysql("mysql://")
            .unwrap_err()
            .contains("mysql://user:password@host:port"));
    }

    #[test]
    fn mysql_tls_parameters_are_split_off_and_checked() {
        let (url, t) = split_mysql_tls(
            "mysql://u:p@db:3306?ssl-mode=VERIFY_IDENTITY&ssl-ca=%2Fca.pem&prefer_socket=false",
        )
        .unwrap();
        assert_eq!(url, "mysql://u:p@db:3306?prefer_socket=false");
        assert_eq!(t.mode, MySslMode::VerifyIdentity);
        assert_eq!(t.ca, Some("/ca.pem".into()));
        assert_eq!(
            split_mysql_tls("mysql://u@db").unwrap().1.mode,
            MySslMode::Preferred
        );
        assert!(split_mysql_tls("mysql://u@db?ssl-mode=on")
            .unwrap_err()
            .contains("VERIFY_CA"));
        assert!(split_mysql_tls("mysql://u@db?ssl-key=/k")
            .unwrap_err()
            .contains("ssl-cert"));
    }

    /// VERIFY_CA / verify-ca check no host name: without a CA of the user's own they would
    /// accept any publicly signed certificate, so they are refused, as the clients do.
    #[test]
    fn verify_ca_without_a_ca_file_is_refused() {
        let e = split_mysql_tls("mysql://u@db?ssl-mode=VERIFY_CA").unwrap_err();
        assert!(e.contains("needs ssl-ca="), "{e}");
        assert!(split_mysql_tls("mysql://u@db?ssl-mode=VERIFY_CA&ssl-ca=/ca.pem").is_ok());
        for url in [
            "postgres://u@db/x?sslmode=verify-ca",
            "postgres://u@db/x?sslmode=verify-ca&sslrootcert=system",
        ] {
            let e = split_postgres_tls(url).unwrap_err();
            assert!(e.contains("needs sslrootcert="), "{url}: {e}");
        }
        assert!(
            split_postgres_tls("postgres://u@db/x?sslmode=verify-ca&sslrootcert=/ca.pem").is_ok()
        );
        // verify-full checks the name: the public CAs are a sound default there.
        assert!(split_postgres_tls("postgres://u@db/x?sslmode=verify-full").is_ok());
    }

    #[test]
    fn redaction_hides_the_password_only() {
        assert_eq!(
            redact("http://reg:s3cret@registry:8081/base"),
            "http://reg:***@registry:8081/base"
        );
        assert_eq!(redact("http://registry:8081"), "http://registry:8081/");
        assert!(!redact("not a url user:s3cret@host").contains("s3cret"));
    }

    /// The review's leaks: a password with `@` in it showed its tail, and a password given
    /// as a URL parameter was shown whole.
    #[test]
    fn redaction_reads_the_url_as_a_parser_does() {
        let shown = redact("postgres://u:p@ss@db:5432/x");
        assert!(!shown.contains("ss"), "{shown}");
        assert!(shown.contains("u:***@db:5432/x"), "{shown}");
        let shown = redact("postgres://u@db/x?sslmode=require&password=s3cret&sslpassword=k3y");
        assert!(
            !shown.contains("s3cret") && !shown.contains("k3y"),
            "{shown}"
        );
        assert!(shown.contains("sslmode=require"), "{shown}");
        let shown = redact("mysql://u:pw@h/d?ssl-mode=REQUIRED");
        assert_eq!(shown, "mysql://u:***@h/d?ssl-mode=REQUIRED");
        // Not a URL: from the last @ only, and key=value secrets masked.
        let shown = redact("host=h user=u password=s3cret dbname=x");
        assert!(
            !shown.contains("s3cret") && shown.contains("dbname=x"),
            "{shown}"
        );
        // Inside a line: every URL, whatever quotes it.
        let line = redact_urls_in(
            r#"url = "postgres://u:p@ss@db/x?password=q" # and mysql://a:b@h"#,
            "***",
        );
        assert!(
            !line.contains("ss@") && !line.contains("=q") && !line.contains(":b@"),
            "{line}"
        );
        assert!(line.starts_with("url = \"postgres://u:***@db/x"), "{line}");
    }
}
