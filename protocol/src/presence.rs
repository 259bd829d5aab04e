//! What a PIV card signs to prove it is present: SHA-256 over a domain-separated message that
//! binds the signature to one session and its nonce, so it is useless anywhere else (another
//! session, another protocol that has the card sign a digest).

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::SessionToken;

/// The domain separator at the start of the signed message.
pub const DOMAIN: &[u8] = b"cardunlock presence v1\0";
/// Length of the nonce, in bytes.
pub const NONCE_LEN: usize = 32;

/// The digest the card signs: `SHA-256(DOMAIN || SHA-256(token bytes) || nonce)`.
pub fn digest(token_hash: &[u8; 32], nonce: &[u8; NONCE_LEN]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(token_hash);
    h.update(nonce);
    h.finalize().into()
}

/// The SHA-256 of a session token's 32 bytes (as the server keeps it); `None` when the token
/// is not 64 hex digits.
pub fn token_hash(token: &SessionToken) -> Option<[u8; 32]> {
    // The token's bytes are a bearer secret: wiped when this returns.
    let mut bytes = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(token.expose(), bytes.as_mut()).ok()?;
    Some(Sha256::digest(bytes.as_ref()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_binds_token_and_nonce() {
        let token = SessionToken::new("01".repeat(32));
        let hash = token_hash(&token).unwrap();
        let nonce = [7u8; 32];
        let d = digest(&hash, &nonce);
        assert_ne!(d, digest(&hash, &[8u8; 32]));
        assert_ne!(d, digest(&[0u8; 32], &nonce));
        assert_eq!(hash, <[u8; 32]>::from(Sha256::digest([1u8; 32])));
        assert!(token_hash(&SessionToken::new("0g".repeat(32))).is_none());
    }
}
