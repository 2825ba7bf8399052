//! TLS to PostgreSQL, set with libpq's URL parameters: `sslmode` (`disable`, `allow`,
//! `prefer` (the default), `require`, `verify-ca`, `verify-full`), `sslrootcert`, `sslcert`,
//! `sslkey`. The query sessions (tokio-postgres) and the replication session
//! (pgwire-replication) get the same settings; both use rustls.
//!
//! As in libpq: `prefer` (and `allow`) use TLS when the server offers it and do not check its
//! certificate; `require` insists on TLS without checking; `verify-ca` checks the chain
//! against `sslrootcert`; `verify-full` also checks the host name.

use std::sync::Arc;

pub use crate::config::target::{
    split_postgres_tls as split_url, PgSslMode as SslMode, PgTls as TlsSettings,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// How the settings of a URL apply to the two clients.
pub trait TlsSettingsExt {
    fn postgres_mode(&self) -> tokio_postgres::config::SslMode;
    fn client_config(&self) -> Result<ClientConfig, String>;
    fn replication(&self) -> pgwire_replication::TlsConfig;
}

impl TlsSettingsExt for TlsSettings {
    /// The tokio-postgres mode: whether TLS is tried, and whether it is required.
    fn postgres_mode(&self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as M;
        match self.mode {
            SslMode::Disable => M::Disable,
            SslMode::Allow | SslMode::Prefer => M::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => M::Require,
        }
    }

    /// The rustls client configuration for these settings.
    fn client_config(&self) -> Result<ClientConfig, String> {
        let provider = crate::tls::provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let verifier: Arc<dyn ServerCertVerifier> = match self.mode {
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let roots = roots(self)?;
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| format!("sslrootcert: {e}"))?;
                if self.mode == SslMode::VerifyFull {
                    webpki
                } else {
                    Arc::new(ChainOnly(webpki))
                }
            }
            _ => Arc::new(Unverified(provider)),
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(
                    crate::tls::certs(cert, "sslcert")?,
                    crate::tls::key(key, "sslkey")?,
                )
                .map_err(|e| format!("sslcert / sslkey: {e}")),
            _ => Ok(builder.with_no_client_auth()),
        }
    }

    /// The replication session's TLS settings.
    fn replication(&self) -> pgwire_replication::TlsConfig {
        use pgwire_replication::config::SslMode as R;
        let mut tls = pgwire_replication::TlsConfig::disabled();
        tls.mode = match self.mode {
            SslMode::Disable => R::Disable,
            SslMode::Allow | SslMode::Prefer => R::Prefer,
            SslMode::Require => R::Require,
            SslMode::VerifyCa => R::VerifyCa,
            SslMode::VerifyFull => R::VerifyFull,
        };
        tls.ca_pem_path = self.root_cert.clone().filter(|p| p.as_os_str() != "system");
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            tls = tls.with_client_cert(cert, key);
        }
        tls
    }
}

/// The trusted roots: `sslrootcert`, else the Mozilla roots (as `sslrootcert=system`).
fn roots(settings: &TlsSettings) -> Result<Arc<RootCertStore>, String> {
    let ca = settings
        .root_cert
        .as_deref()
        .filter(|p| p.as_os_str() != "system");
    Ok(Arc::new(crate::tls::roots(ca, "sslrootcert")?))
}

/// A TLS failure of a connection attempt said precisely (what failed and which setting
/// decides it); `None` when the failure is not about TLS.
pub fn explain(e: &tokio_postgres::Error, tls: &TlsSettings, host: &str) -> Option<String> {
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    let ca = || {
        tls.root_cert
            .as_ref()
            .map_or("the Mozilla roots (no sslrootcert)".to_string(), |p| {
                format!("sslrootcert {}", p.display())
            })
    };
    let why = if chain.contains("server does not support TLS") {
        format!(
            "the server does not accept TLS, but sslmode={} requires it",
            mode_name(tls.mode)
        )
    } else if chain.contains("NotValidForName") || chain.contains("not valid for name") {
        format!("the server's certificate is not valid for the host name {host} (sslmode=verify-full checks it; use the name the certificate carries)")
    } else if chain.contains("UnknownIssuer") || chain.contains("unknown issuer") {
        format!("the server's certificate is not signed by a CA in {}", ca())
    } else if chain.contains("Expired") || chain.contains("expired") {
        "the server's certificate has expired".to_string()
    } else if chain.contains("NotValidYet") || chain.contains("not valid yet") {
        "the server's certificate is not valid yet (check the clocks)".to_string()
    } else if chain.contains("TLS handshake") || chain.contains("InvalidCertificate") {
        return Some(chain);
    } else {
        return None;
    };
    Some(format!("{why} ({chain})"))
}

fn mode_name(mode: SslMode) -> &'static str {
    match mode {
        SslMode::Disable => "disable",
        SslMode::Allow => "allow",
        SslMode::Prefer => "prefer",
        SslMode::Require => "require",
        SslMode::VerifyCa => "verify-ca",
        SslMode::VerifyFull => "verify-full",
    }
}

/// `verify-ca`: the chain is checked, the host name is not.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName)) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` / `require`: encrypted, the certificate not checked (the handshake signatures
/// still are).
#[derive(Debug)]
struct Unverified(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn tls_parameters_are_split_off_and_checked() {
        let (url, s) = split_url(
            "postgres://u:p@db:5432/shop?sslmode=verify-full&application_name=x&sslrootcert=%2Fca.pem",
        )
        .unwrap();
        assert_eq!(url, "postgres://u:p@db:5432/shop?application_name=x");
        assert_eq!(s.mode, SslMode::VerifyFull);
        assert_eq!(s.root_cert, Some(PathBuf::from("/ca.pem")));
        let (url, s) = split_url("postgres://u@db/shop").unwrap();
        assert_eq!(
            (url.as_str(), s.mode),
            ("postgres://u@db/shop", SslMode::Prefer)
        );
        let (url, _) = split_url("postgres://u@db/shop?sslmode=disable").unwrap();
        assert_eq!(url, "postgres://u@db/shop");
        let e = split_url("postgres://u@db/shop?sslmode=verify_full").unwrap_err();
        assert!(e.contains("verify-full"), "{e}");
        let e = split_url("postgres://u@db/shop?sslcert=/c.pem").unwrap_err();
        assert!(e.contains("sslkey"), "{e}");
    }

    #[test]
    fn a_missing_root_certificate_file_is_named() {
        let (_, s) =
            split_url("postgres://u@db/x?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem")
                .unwrap();
        let e = s.client_config().unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let (_, s) = split_url("postgres://u@db/x?sslmode=require").unwrap();
        assert!(s.client_config().is_ok());
    }
}
