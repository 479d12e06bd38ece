//! HTTPS on the main listener: the certificate chain and key named by `tls_cert_file` and
//! `tls_key_file`, served with rustls (ring provider, TLS 1.2 and 1.3, safe defaults).
//! Certificates are read once at start-up: restart (or reload the unit) after renewal.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A rustls server configuration from PEM files; every error names the file and the problem.
pub fn server_config(cert_file: &Path, key_file: &Path) -> anyhow::Result<rustls::ServerConfig> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot read certificates from {} (`tls_cert_file`): {e}",
                cert_file.display()
            )
        })?;
    if certs.is_empty() {
        anyhow::bail!(
            "{} (`tls_cert_file`) holds no PEM certificate",
            cert_file.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
        anyhow::anyhow!(
            "cannot read a private key from {} (`tls_key_file`): {e}",
            key_file.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            anyhow::anyhow!(
                "the key in {} does not fit the certificate in {}: {e}",
                key_file.display(),
                cert_file.display()
            )
        })?;
    Ok(config)
}
