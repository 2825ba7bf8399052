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

/// The URL as it may be shown: the password replaced by `***`. Text that is not a URL is
/// shown up to its first `@` only, since it cannot be told what part is secret.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => match url.rfind('@') {
            Some(at) => format!("***{}", &url[at..]),
            None => url.to_string(),
        },
    }
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

    #[test]
    fn redaction_hides_the_password_only() {
        assert_eq!(
            redact("http://reg:s3cret@registry:8081/base"),
            "http://reg:***@registry:8081/base"
        );
        assert_eq!(redact("http://registry:8081"), "http://registry:8081/");
        assert!(!redact("not a url user:s3cret@host").contains("s3cret"));
    }
}
