//! TLS: the server's self-signed certificate (made once, kept in the state directory), the
//! rustls server configuration, and the pinning client configuration the `cardunlock` client
//! uses. Only the *ring* provider is used.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, ServerConfig};

use cardunlock_protocol::files::{read_checked, read_checked_text, FileKind};

use crate::{ServerError, TlsError};

/// File name of the server certificate (PEM) in the state directory.
pub const CERT_FILE: &str = "server.crt";
/// File name of the server's private key (PEM, owner-only) in the state directory.
pub const KEY_FILE: &str = "server.key";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(what: &str) -> impl Fn(rustls::Error) -> ServerError + '_ {
    move |e| TlsError::caused_by(what, e).into()
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

/// The server's certificate chain and key: from the files the operator gave ([`TlsFiles`]), or
/// loaded from `state_dir`, or made (ECDSA P-256, self-signed for `localhost`, `127.0.0.1` and
/// `::1`) and saved there on the first start.
pub(crate) struct Identity {
    pub cert_pem: String,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// The server's certificate and key from files of the operator's choosing (`serve --tls-cert
/// --tls-key`): shared by several instances, or issued by a private CA the workstations pin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (PEM): the server's certificate first, then any intermediate CA
    /// certificates. Owned by this user or root, not writable by group or others.
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, SEC1 or PKCS#1) of the first certificate. Owned by this
    /// user or root, owner-only.
    pub key: PathBuf,
}

impl Identity {
    /// The identity from `files` when given, else from (or made in) `state_dir`.
    pub(crate) fn load(state_dir: &Path, files: Option<&TlsFiles>) -> Result<Self, ServerError> {
        match files {
            Some(files) => Self::from_files(&files.cert, &files.key),
            None => Self::load_or_create(state_dir),
        }
    }

    pub(crate) fn load_or_create(state_dir: &Path) -> Result<Self, ServerError> {
        crate::files::state_dir(state_dir)?;
        let cert_path = state_dir.join(CERT_FILE);
        let key_path = state_dir.join(KEY_FILE);
        if cert_path.exists() != key_path.exists() {
            return Err(TlsError::new(format!(
                "{} needs both {CERT_FILE} and {KEY_FILE}, or neither (to make new ones)",
                state_dir.display()
            ))
            .into());
        }
        if !cert_path.exists() {
            let names = vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ];
            let made = rcgen::generate_simple_self_signed(names)
                .map_err(|e| TlsError::caused_by("making the certificate", e))?;
            let key_pem = zeroize::Zeroizing::new(made.signing_key.serialize_pem());
            write_private_file(&key_path, key_pem.as_bytes())?;
            write_private_file(&cert_path, made.cert.pem().as_bytes())?;
        }
        Self::from_files(&cert_path, &key_path)
    }

    /// Reads a certificate chain and its key, each checked on the descriptor read
    /// ([`cardunlock_protocol::files`]); the key must match the first certificate.
    fn from_files(cert_path: &Path, key_path: &Path) -> Result<Self, ServerError> {
        let cert_pem = read_checked_text(cert_path, "TLS certificate", FileKind::Trusted)?;
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::caused_by(cert_path.display().to_string(), e))?;
        if chain.is_empty() {
            return Err(
                TlsError::new(format!("{}: no PEM certificate", cert_path.display())).into(),
            );
        }
        let key_pem = read_checked(key_path, "TLS private key", FileKind::Secret)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|_| TlsError::new(format!("{}: not a PEM private key", key_path.display())))?;
        let identity = Self {
            cert_pem: cert_pem.as_str().to_owned(),
            chain,
            key,
        };
        // Refuses a key that is not the certificate's, before the first client finds out.
        identity.server_config().map_err(|e| {
            let what = format!(
                "{} and {} do not go together",
                cert_path.display(),
                key_path.display()
            );
            // `e` is already this crate's: its TLS cause is kept under the new description.
            match e {
                ServerError::Tls(inner) => ServerError::Tls(TlsError::caused_by(what, inner)),
                other => other,
            }
        })?;
        Ok(identity)
    }

    /// The rustls server configuration: TLS 1.2 and 1.3, HTTP/1.1 by ALPN.
    pub(crate) fn server_config(&self) -> Result<Arc<ServerConfig>, ServerError> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_err("protocol versions"))?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(tls_err("server certificate"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// A rustls client configuration that trusts exactly one certificate: the server's
/// (`cert_pem`, as [`crate::RunningServer::cert_pem`] returns it or `server.crt` holds it).
/// [`cardunlock_protocol::pinned_client_config`], with this crate's error type.
pub fn pinned_client_config(cert_pem: &str) -> Result<Arc<ClientConfig>, ServerError> {
    cardunlock_protocol::pinned_client_config(cert_pem)
        .map_err(|e| TlsError::caused_by("pinned certificate", e).into())
}
