//! PEM files for rustls (certificate chains, private keys, trusted roots) and the crypto
//! provider every TLS client and server of Sluice uses. Errors name the setting and the file.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// ring: the one provider Sluice uses (rustls is built with two).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file (`setting` names it in errors).
pub fn certs(path: &Path, setting: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{setting} {}: {e}", path.display()))
}

/// The private key of a PEM file.
pub fn key(path: &Path, setting: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{setting} {}: {e}", path.display()))
}

/// The CAs to trust: those of `ca`, or the Mozilla roots when there is none.
pub fn roots(ca: Option<&Path>, setting: &str) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let (added, _) = roots.add_parsable_certificates(certs(path, setting)?);
            if added == 0 {
                return Err(format!(
                    "{setting} {} holds no usable CA certificate",
                    path.display()
                ));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(roots)
}
