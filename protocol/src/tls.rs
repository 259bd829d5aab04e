//! The client's TLS set-up: trust exactly the server's certificate, or the private CA that
//! issues it (pinned), *ring* provider.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Why no client configuration could be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfigError(String);

impl core::fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsConfigError {}

/// A rustls client configuration that trusts exactly the pinned certificate `cert_pem` (the
/// first certificate of the PEM text).
///
/// - A server certificate (not a CA, as the server's `server.crt` holds it or several instances
///   share it): pinned byte for byte. The server name is not checked (nothing else is
///   accepted); the handshake signature is, so only the holder of the matching private key
///   passes.
/// - A CA certificate (basic constraints `CA:TRUE`, a private CA that issues the servers'
///   certificates): the only trust anchor; the server's chain must lead to it (validity dates
///   and key usage checked) and its certificate must name the host of the URL (DNS name or IP
///   address), as a browser checks it.
///
/// *ring* provider, TLS 1.2 and 1.3, ALPN `http/1.1`. Errors if `cert_pem` holds no
/// certificate.
pub fn pinned_client_config(cert_pem: &str) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let pinned = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|e| TlsConfigError(format!("pinned certificate: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = if is_ca(&pinned)? {
        let mut roots = RootCertStore::empty();
        roots
            .add(pinned)
            .map_err(|e| TlsConfigError(format!("pinned CA certificate: {e}")))?;
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| TlsConfigError(format!("pinned CA certificate: {e}")))?
    } else {
        Arc::new(PinnedCert {
            pinned,
            algorithms: provider.signature_verification_algorithms,
        })
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError(format!("protocol versions: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Whether `cert` is a CA certificate (basic constraints with `CA:TRUE`).
fn is_ca(cert: &CertificateDer<'_>) -> Result<bool, TlsConfigError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| TlsConfigError(format!("pinned certificate: not X.509 ({e})")))?;
    let constraints = parsed
        .basic_constraints()
        .map_err(|e| TlsConfigError(format!("pinned certificate: basic constraints: {e}")))?;
    Ok(constraints.is_some_and(|c| c.value.ca))
}

/// Accepts the one pinned end-entity certificate, nothing else.
#[derive(Debug)]
struct PinnedCert {
    pinned: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.pinned.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves CA detection: a CA certificate is recognised as one, a server certificate is
    /// not (it is pinned byte for byte), and text without a certificate is an error.
    #[test]
    fn a_ca_is_told_from_a_server_certificate() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        assert!(is_ca(ca.der()).unwrap());
        let leaf = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        assert!(!is_ca(leaf.cert.der()).unwrap());
        assert!(pinned_client_config(&ca.pem()).is_ok());
        assert!(pinned_client_config(&leaf.cert.pem()).is_ok());
        assert!(pinned_client_config("no certificate").is_err());
    }
}
