//! The TLS client for an https Prometheus: the platform's roots, plus the CAs of `--prometheus-ca`.

use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use super::PromError;

/// A client configuration that speaks HTTP/1.1 over TLS 1.2 or 1.3.
pub fn client_config(ca_file: Option<&Path>) -> Result<ClientConfig, PromError> {
    let tls_error = |reason: String| PromError::Tls { reason };
    let extra_roots: Vec<CertificateDer<'static>> = match ca_file {
        Some(path) => CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| tls_error(format!("--prometheus-ca {}: {e}", path.display())))?,
        None => Vec::new(),
    };
    // ring, named explicitly: kube's client pulls rustls too, and two providers would be ambiguous.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider.clone())
            .map_err(|e| tls_error(e.to_string()))?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
