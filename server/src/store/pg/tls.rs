//! TLS to PostgreSQL (`--db-ca-file`).

use std::path::Path;

use postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::ServerError;

/// TLS to PostgreSQL with `sslmode=verify-full` semantics: the server's certificate must chain
/// to a CA in `ca_file` (PEM; only those CAs are trusted) and be issued for the host name of
/// the URL; the connection is TLS or nothing (the URL's `sslmode` is raised to `require`, and
/// `sslmode=disable` is refused).
pub(super) fn config(
    config: &mut postgres::Config,
    ca_file: &Path,
) -> Result<MakeRustlsConnect, ServerError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let what = format!("database CA file {}", ca_file.display());
    let bad = |why: String| ServerError::Tls(crate::TlsError::new(format!("{what}: {why}")));
    if config.get_ssl_mode() == SslMode::Disable {
        return Err(ServerError::InvalidInput(
            "a database CA file needs TLS: remove sslmode=disable from the URL".into(),
        ));
    }
    config.ssl_mode(SslMode::Require);
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| bad(e.to_string()))? {
        roots
            .add(cert.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| crate::TlsError::caused_by("database TLS", e))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(tls))
}
