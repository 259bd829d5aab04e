//! TOTP seeds at rest: AES-256-GCM under a key derived from the master secret
//! ([`crate::kdf::operator_totp_key`]), a random 96-bit nonce per seal, the operator's name as
//! associated data (a sealed seed copied to another operator's row does not open).

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::{kdf, MasterSecret, ServerError};

const NONCE_LEN: usize = 12;

fn cipher(master: &MasterSecret) -> Result<Aes256Gcm, ServerError> {
    let key = kdf::operator_totp_key(master);
    Aes256Gcm::new_from_slice(&key[..])
        .map_err(|_| ServerError::InvalidInput("TOTP sealing key length".into()))
}

/// `nonce || ciphertext || tag` of `seed`, bound to `operator`.
pub(crate) fn seal(
    master: &MasterSecret,
    operator: &str,
    seed: &[u8],
) -> Result<Vec<u8>, ServerError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng
        .try_fill_bytes(&mut nonce)
        .map_err(|_| ServerError::Random)?;
    let sealed = cipher(master)?
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: seed,
                aad: operator.as_bytes(),
            },
        )
        .map_err(|_| ServerError::InvalidInput("sealing a TOTP seed failed".into()))?;
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The seed sealed for `operator`; `None` if it does not open (another master secret, another
/// operator's row, tampering).
pub(crate) fn open(
    master: &MasterSecret,
    operator: &str,
    sealed: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    cipher(master)
        .ok()?
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: body,
                aad: operator.as_bytes(),
            },
        )
        .ok()
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_open_only_for_their_operator_and_master() {
        let m = MasterSecret::from_bytes(&[7; 32]).unwrap();
        let sealed = seal(&m, "alice", b"0123456789abcdefghij").unwrap();
        assert!(!sealed.windows(5).any(|w| w == b"01234"));
        assert_eq!(
            open(&m, "alice", &sealed).as_deref().map(Vec::as_slice),
            Some(&b"0123456789abcdefghij"[..])
        );
        assert!(open(&m, "bob", &sealed).is_none());
        let other = MasterSecret::from_bytes(&[8; 32]).unwrap();
        assert!(open(&other, "alice", &sealed).is_none());
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert!(open(&m, "alice", &tampered).is_none());
        assert_ne!(
            seal(&m, "alice", b"x").unwrap(),
            seal(&m, "alice", b"x").unwrap()
        );
    }
}
