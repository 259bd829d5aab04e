//! TLS: the server's self-signed certificate (made once, kept in the state directory), the
//! rustls server configuration, and the pinning client configuration the `cardunlock` client
//! uses. Only the *ring* provider is used.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, ServerConfig};

use crate::ServerError;

/// File name of the server certificate (PEM) in the state directory.
pub const CERT_FILE: &str = "server.crt";
/// File name of the server's private key (PEM, owner-only) in the state directory.
pub const KEY_FILE: &str = "server.key";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(what: &str) -> impl Fn(rustls::Error) -> ServerError + '_ {
    move |e| ServerError::Tls(format!("{what}: {e}"))
}

/// Writes a new file readable by its owner only (Unix); refuses to overwrite.
pub(crate) fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), ServerError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

/// The server's certificate and key: loaded from `state_dir`, or made (ECDSA P-256,
/// self-signed for `localhost`, `127.0.0.1` and `::1`) and saved there on the first start.
pub(crate) struct Identity {
    pub cert_pem: String,
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    pub(crate) fn load_or_create(state_dir: &Path) -> Result<Self, ServerError> {
        crate::files::state_dir(state_dir)?;
        let cert_path = state_dir.join(CERT_FILE);
        let key_path = state_dir.join(KEY_FILE);
        if cert_path.exists() != key_path.exists() {
            return Err(ServerError::Tls(format!(
                "{} needs both {CERT_FILE} and {KEY_FILE}, or neither (to make new ones)",
                state_dir.display()
            )));
        }
        if !cert_path.exists() {
            let names = vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ];
            let made = rcgen::generate_simple_self_signed(names)
                .map_err(|e| ServerError::Tls(format!("making the certificate: {e}")))?;
            let key_pem = zeroize::Zeroizing::new(made.signing_key.serialize_pem());
            write_private_file(&key_path, key_pem.as_bytes())?;
            write_private_file(&cert_path, made.cert.pem().as_bytes())?;
        }
        let cert_pem = std::fs::read_to_string(&cert_path)?;
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| ServerError::Tls(format!("{}: {e}", cert_path.display())))?;
        crate::files::check_private_file(&key_path, "TLS private key")?;
        let key_pem = zeroize::Zeroizing::new(std::fs::read(&key_path)?);
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
            ServerError::Tls(format!("{}: not a PEM private key", key_path.display()))
        })?;
        Ok(Self {
            cert_pem,
            cert,
            key,
        })
    }

    /// The rustls server configuration: TLS 1.2 and 1.3, HTTP/1.1 by ALPN.
    pub(crate) fn server_config(&self) -> Result<Arc<ServerConfig>, ServerError> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_err("protocol versions"))?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key())
            .map_err(tls_err("server certificate"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// A rustls client configuration that trusts exactly one certificate: the server's
/// (`cert_pem`, as [`crate::RunningServer::cert_pem`] returns it or `server.crt` holds it).
/// [`cardunlock_protocol::pinned_client_config`], with this crate's error type.
pub fn pinned_client_config(cert_pem: &str) -> Result<Arc<ClientConfig>, ServerError> {
    cardunlock_protocol::pinned_client_config(cert_pem).map_err(|e| ServerError::Tls(e.to_string()))
}
