//! The master secret every card secret is derived from.

use std::fmt;
use std::path::Path;

use rand::RngCore;
use zeroize::Zeroizing;

use crate::ServerError;

/// The server's master secret: at least 32 bytes, zeroized on drop, never printed, never stored
/// in the database.
///
/// The per-card admin keys, PIV management keys and PUKs are derived from it ([`crate::kdf`]):
/// lose it and the server can no longer unlock any card; leak it and every card's secrets leak.
#[derive(Clone)]
pub struct MasterSecret(Zeroizing<Vec<u8>>);

impl fmt::Debug for MasterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterSecret({} bytes, redacted)", self.0.len())
    }
}

impl MasterSecret {
    /// The shortest accepted secret, in bytes.
    pub const MIN_LEN: usize = 32;
    /// The environment variable [`MasterSecret::from_env`] reads (hex).
    pub const ENV_VAR: &'static str = "CARDUNLOCK_MASTER_SECRET";

    /// A secret from raw bytes (at least [`MasterSecret::MIN_LEN`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ServerError> {
        if bytes.len() < Self::MIN_LEN {
            return Err(ServerError::MasterSecret("shorter than 32 bytes"));
        }
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    /// A secret from hex digits (either case; surrounding whitespace ignored).
    pub fn from_hex(hex_text: &str) -> Result<Self, ServerError> {
        let bytes = Zeroizing::new(
            hex::decode(hex_text.trim())
                .map_err(|_| ServerError::MasterSecret("not valid hexadecimal"))?,
        );
        Self::from_bytes(&bytes)
    }

    /// A secret from the `CARDUNLOCK_MASTER_SECRET` environment variable (hex), which is then
    /// removed from this process's environment (read or not), so child processes and later
    /// readers of the environment do not see it, and (Linux) overwritten in the environment
    /// block the process started with, which `/proc/PID/environ` shows ([`crate::environ`]).
    /// Call it at startup, before other threads read the environment.
    pub fn from_env() -> Result<Self, ServerError> {
        let value = crate::environ::take(Self::ENV_VAR)?.ok_or(ServerError::MasterSecret(
            "CARDUNLOCK_MASTER_SECRET is not set",
        ))?;
        Self::from_hex(&value)
    }

    /// A secret from a file readable by its owner only (Unix: refused with
    /// [`ServerError::Permissions`] when group or others may read it or another user than this
    /// one or root owns it; a symbolic link is refused; checked on the descriptor read), holding the secret either
    /// as hex digits (whitespace around them ignored, what [`MasterSecret::save_hex`] writes) or
    /// as raw bytes. A file of printable text is hex: malformed hex is an error, never a raw
    /// secret. Raw secrets are binary (32 random bytes are all printable with probability
    /// about 10^-14).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ServerError> {
        let path = path.as_ref();
        let content = cardunlock_protocol::files::read_checked(
            path,
            "master secret file",
            cardunlock_protocol::files::FileKind::Secret,
        )?;
        let text = content
            .iter()
            .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
        if text {
            let trimmed = content.trim_ascii();
            if !trimmed.iter().all(u8::is_ascii_hexdigit) || trimmed.len() % 2 != 0 {
                return Err(ServerError::MasterSecret(
                    "the file is text but not valid hexadecimal (an even number of 0-9, a-f digits)",
                ));
            }
            let text = std::str::from_utf8(trimmed)
                .map_err(|_| ServerError::MasterSecret("not valid hexadecimal"))?;
            Self::from_hex(text)
        } else {
            Self::from_bytes(&content)
        }
    }

    /// 32 fresh random bytes from the operating system's random source.
    ///
    /// Panics only if that source fails (see [`MasterSecret::try_generate`] to handle it).
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; Self::MIN_LEN]);
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// [`MasterSecret::generate`], with the failure of the random source as an error.
    pub fn try_generate() -> Result<Self, ServerError> {
        let mut bytes = Zeroizing::new(vec![0u8; Self::MIN_LEN]);
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|_| ServerError::Random)?;
        Ok(Self(bytes))
    }

    /// Writes the secret as hex to a *new* file (refuses to overwrite one), readable by its
    /// owner only on Unix.
    pub fn save_hex(&self, path: impl AsRef<Path>) -> Result<(), ServerError> {
        let text = Zeroizing::new(format!("{}\n", hex::encode(&*self.0)));
        crate::tls::write_private_file(path.as_ref(), text.as_bytes())
    }

    /// The secret bytes, for the key derivation only.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_short_secrets_are_refused() {
        let m = MasterSecret::from_hex(&"ab".repeat(32)).unwrap();
        assert_eq!(format!("{m:?}"), "MasterSecret(32 bytes, redacted)");
        assert!(MasterSecret::from_hex(&"ab".repeat(31)).is_err());
        assert!(MasterSecret::from_hex("zz").is_err());
        assert_eq!(MasterSecret::generate().expose().len(), 32);
        assert_ne!(
            MasterSecret::try_generate().unwrap().expose(),
            MasterSecret::generate().expose()
        );
    }

    #[test]
    fn file_holds_hex_or_raw_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let m = MasterSecret::generate();
        let hex_path = dir.path().join("m.hex");
        m.save_hex(&hex_path).unwrap();
        assert!(m.save_hex(&hex_path).is_err(), "never overwrites");
        assert_eq!(
            MasterSecret::from_file(&hex_path).unwrap().expose(),
            m.expose()
        );
        let raw_path = dir.path().join("m.bin");
        std::fs::write(&raw_path, [0xFFu8; 40]).unwrap();
        private(&raw_path);
        assert_eq!(
            MasterSecret::from_file(&raw_path).unwrap().expose(),
            &[0xFF; 40]
        );
    }

    fn private(path: &Path) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }

    /// Malformed hex is an error, never a raw secret.
    #[test]
    fn malformed_hex_in_a_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            format!("{}g\n", "ab".repeat(32)),
            format!("{}a\n", "ab".repeat(32)),
            format!("0x{}\n", "ab".repeat(32)),
            "correct horse battery staple, a passphrase of 40 chars".to_owned(),
        ] {
            let path = dir.path().join("bad");
            std::fs::write(&path, &bad).unwrap();
            private(&path);
            let e = MasterSecret::from_file(&path).unwrap_err();
            assert!(matches!(e, ServerError::MasterSecret(_)), "{bad}: {e}");
        }
    }

    /// A master-secret file others can read is refused, with the fix in the message.
    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.hex");
        MasterSecret::generate().save_hex(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = MasterSecret::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600") && e.contains("644"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(MasterSecret::from_file(&path).is_ok());
    }

    /// The environment variable is gone after reading, even when it was malformed.
    #[test]
    fn the_environment_variable_is_removed_after_reading() {
        std::env::set_var(MasterSecret::ENV_VAR, "ab".repeat(32));
        assert!(MasterSecret::from_env().is_ok());
        assert!(std::env::var_os(MasterSecret::ENV_VAR).is_none());
        std::env::set_var(MasterSecret::ENV_VAR, "not hex");
        assert!(MasterSecret::from_env().is_err());
        assert!(std::env::var_os(MasterSecret::ENV_VAR).is_none());
        assert!(MasterSecret::from_env().is_err(), "unset now");
    }
}
