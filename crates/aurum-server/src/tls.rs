//! TLS on the REST and gRPC listeners (rustls, ring provider), with optional mutual TLS.
//!
//! One [`rustls::ServerConfig`] is built per listener from the configured PEM files
//! (`server.tls_cert_file`, `server.tls_key_file`, and `server.tls_client_ca_file` for mutual
//! TLS); the two listeners differ only in ALPN (`http/1.1` for REST, `h2` for gRPC). Handshakes
//! run in their own tasks under a deadline, so a client that opens a socket and never finishes
//! the handshake holds nothing but that task. A plain-HTTP request to a TLS listener fails the
//! handshake and the connection is closed; under mutual TLS a client without a certificate
//! chaining to the configured authorities is refused during the handshake.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aurum_service::config::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS configuration that cannot be used; the message names the file and the problem.
#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(String);

/// The acceptor for a listener speaking `alpn`, or `None` when TLS is not configured.
pub fn acceptor(cfg: &ServerConfig, alpn: &[&[u8]]) -> Result<Option<TlsAcceptor>, TlsError> {
    let (Some(cert_file), Some(key_file)) = (&cfg.tls_cert_file, &cfg.tls_key_file) else {
        return Ok(None);
    };
    let certs = read_certs(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
        TlsError(format!(
            "{}: no usable private key: {e}",
            key_file.display()
        ))
    })?;
    // ring rather than aws-lc-rs: no CMake/NASM build in CI. rustls deprecates ring's provider
    // for lacking post-quantum key exchange; the classical suites it offers are rustls's
    // defaults otherwise.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?;
    let builder = match &cfg.tls_client_ca_file {
        Some(ca_file) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(ca_file)? {
                roots.add(cert).map_err(|e| {
                    TlsError(format!(
                        "{}: not a usable CA certificate: {e}",
                        ca_file.display()
                    ))
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| TlsError(format!("{}: {e}", ca_file.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError(format!("{}: {e}", cert_file.display())))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            TlsError(format!(
                "{}: cannot read PEM certificates: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "{}: no certificate in the file",
            path.display()
        )));
    }
    Ok(certs)
}

/// Completes the handshake on `tcp` within [`HANDSHAKE_TIMEOUT`]; `None` (logged) when the
/// client fails it or takes too long.
pub async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: std::net::SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            metrics::counter!("aurum_tls_handshake_failures_total").increment(1);
            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            metrics::counter!("aurum_tls_handshake_failures_total").increment(1);
            tracing::debug!(peer = %peer, "TLS handshake timed out");
            None
        }
    }
}
