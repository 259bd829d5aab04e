//! Per-card secrets diversified from the master secret (API.md, "Identities and secrets").
//!
//! HKDF-SHA256 (RFC 5869) with `ikm` = the master secret, `salt` = `"cardunlock/v1"` and
//! `info` = `purpose || 0x00 || profile || 0x00 || identity bytes || generation (u32 BE)`.
//! Every card gets its own keys (FIPS 201-3), and a new generation gives new values, so a PUK a
//! workstation has seen is never valid again once the card rotated to the next generation.

use cardunlock_core::crypto::{AdminKey, Algorithm};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::MasterSecret;

pub use cardunlock_protocol::derivation::{
    PURPOSE_ADMIN_KEY, PURPOSE_PIV_MGMT_KEY, PURPOSE_PIV_PUK, SALT,
};

/// The longest output this module asks for (an AES-256 key). HKDF-SHA256 can give up to
/// 255 × 32 bytes, so expanding never fails.
const MAX_OUT: usize = 32;

/// Fills `out` (at most 32 bytes) with HKDF-SHA256 output for this purpose, profile, identity
/// and generation.
fn derive(
    master: &MasterSecret,
    purpose: &str,
    profile: &str,
    identity: &[u8],
    generation: u32,
    out: &mut [u8],
) {
    let mut info = Vec::with_capacity(purpose.len() + profile.len() + identity.len() + 2 + 4);
    cardunlock_protocol::derivation::info(purpose, profile, identity, generation, &mut info);
    let hkdf = Hkdf::<Sha256>::new(Some(SALT), master.expose());
    if out.len() > MAX_OUT || hkdf.expand(&info, out).is_err() {
        // Callers ask for at most 32 bytes, far below HKDF's limit.
        unreachable!(
            "HKDF-SHA256 expands up to 8160 bytes; asked for {}",
            out.len()
        );
    }
}

/// A key of `algorithm` derived for `purpose`.
fn derive_key(
    master: &MasterSecret,
    purpose: &str,
    profile: &str,
    identity: &[u8],
    algorithm: Algorithm,
    generation: u32,
) -> AdminKey {
    let mut okm = Zeroizing::new([0u8; MAX_OUT]);
    let len = algorithm.key_len();
    derive(
        master,
        purpose,
        profile,
        identity,
        generation,
        &mut okm[..len],
    );
    match AdminKey::new(algorithm, &okm[..len]) {
        Ok(key) => key,
        Err(_) => unreachable!("the slice has the algorithm's key length"),
    }
}

/// The GIDS / ISO admin key of a card: `purpose = "admin-key"`, `algorithm.key_len()` bytes
/// (24 for 3DES, or the AES length). `profile` is `"gids"` or `"iso"`; `identity` the raw
/// identity bytes.
pub fn admin_key(
    master: &MasterSecret,
    profile: &str,
    identity: &[u8],
    algorithm: Algorithm,
    generation: u32,
) -> AdminKey {
    derive_key(
        master,
        PURPOSE_ADMIN_KEY,
        profile,
        identity,
        algorithm,
        generation,
    )
}

/// The PIV management key (9B) of a card: `purpose = "piv-mgmt-key"`, profile `"piv"`, 24 bytes
/// 3DES.
pub fn piv_mgmt_key(master: &MasterSecret, identity: &[u8], generation: u32) -> AdminKey {
    derive_key(
        master,
        PURPOSE_PIV_MGMT_KEY,
        "piv",
        identity,
        Algorithm::TripleDes,
        generation,
    )
}

/// The PIV PUK of a card at a generation: `purpose = "piv-puk"`, profile `"piv"`, 8 bytes read
/// as a big-endian u64, modulo 10^8, as 8 ASCII digits (leading zeros kept).
pub fn piv_puk(master: &MasterSecret, identity: &[u8], generation: u32) -> Zeroizing<String> {
    let mut okm = Zeroizing::new([0u8; 8]);
    derive(
        master,
        PURPOSE_PIV_PUK,
        "piv",
        identity,
        generation,
        &mut okm[..],
    );
    let value = Zeroizing::new(u64::from_be_bytes(*okm) % 100_000_000);
    Zeroizing::new(format!("{:08}", *value))
}

/// Purpose of the key that seals operators' TOTP seeds in the store (server-only: no card
/// secret, so it is not in the protocol's labels). `info` = purpose || 0x00, no profile, no
/// identity, generation 0.
pub const PURPOSE_OPERATOR_TOTP: &str = "operator-totp-seal";

/// The AES-256-GCM key that seals operators' TOTP seeds: the store alone does not give them.
pub fn operator_totp_key(master: &MasterSecret) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    derive(master, PURPOSE_OPERATOR_TOTP, "", &[], 0, &mut key[..]);
    key
}

/// Purpose of the audit chain's HMAC key (server-internal, like [`PURPOSE_OPERATOR_TOTP`]).
pub const PURPOSE_AUDIT_CHAIN: &str = "audit-chain";

/// The HMAC-SHA256 key of the audit log's hash chain: whoever can write the database but has
/// not the master secret cannot rewrite the log unnoticed.
pub fn audit_key(master: &MasterSecret) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    derive(master, PURPOSE_AUDIT_CHAIN, "", &[], 0, &mut key[..]);
    key
}

/// Purpose of the store's row-MAC key (server-internal, like [`PURPOSE_OPERATOR_TOTP`]).
pub const PURPOSE_STORE_ROWS: &str = "store-row-mac";

/// The HMAC-SHA256 key of the store's row MACs: whoever can write the database but has not
/// the master secret cannot forge, change or copy a row that grants or limits something.
pub fn store_row_key(master: &MasterSecret) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    derive(master, PURPOSE_STORE_ROWS, "", &[], 0, &mut key[..]);
    key
}

/// Purpose of the console's form-token key (server-internal, like [`PURPOSE_OPERATOR_TOTP`]).
pub const PURPOSE_CONSOLE_FORMS: &str = "console-form-token";

/// The HMAC key of the console's form tokens: the same on every server instance sharing the
/// master secret, so a form rendered by one is accepted by another.
pub fn console_form_key(master: &MasterSecret) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    derive(master, PURPOSE_CONSOLE_FORMS, "", &[], 0, &mut key[..]);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> MasterSecret {
        MasterSecret::from_bytes(&[0x42; 32]).unwrap()
    }

    #[test]
    fn info_layout_matches_the_contract() {
        // Recompute by hand with the same HKDF: purpose 0 profile 0 identity gen.
        let m = master();
        let mut expect = [0u8; 24];
        let info = b"admin-key\0gids\0\x01\x02\x00\x00\x00\x07";
        Hkdf::<Sha256>::new(Some(b"cardunlock/v1"), &[0x42; 32])
            .expand(info, &mut expect)
            .unwrap();
        let key = admin_key(&m, "gids", &[1, 2], Algorithm::TripleDes, 7);
        assert_eq!(key.expose_bytes(), &expect);
    }

    #[test]
    fn keys_differ_by_card_purpose_profile_and_generation() {
        let m = master();
        let a = admin_key(&m, "gids", &[1], Algorithm::Aes256, 0);
        assert_eq!(a.expose_bytes().len(), 32);
        assert!(!a.ct_eq(&admin_key(&m, "gids", &[2], Algorithm::Aes256, 0)));
        assert!(!a.ct_eq(&admin_key(&m, "iso", &[1], Algorithm::Aes256, 0)));
        assert!(!a.ct_eq(&admin_key(&m, "gids", &[1], Algorithm::Aes256, 1)));
        let mgmt = piv_mgmt_key(&m, &[1], 0);
        assert_eq!(mgmt.algorithm(), Algorithm::TripleDes);
        assert_eq!(mgmt.expose_bytes().len(), 24);
    }

    #[test]
    fn totp_key_is_its_own_derivation() {
        let m = master();
        let key = operator_totp_key(&m);
        let mut expect = [0u8; 32];
        Hkdf::<Sha256>::new(Some(SALT), &[0x42; 32])
            .expand(b"operator-totp-seal\0\0\x00\x00\x00\x00", &mut expect)
            .unwrap();
        assert_eq!(*key, expect);
        assert_ne!(
            &key[..24],
            admin_key(&m, "", &[], Algorithm::TripleDes, 0).expose_bytes()
        );
    }

    /// The row-MAC key is its own derivation: not the audit chain's, not the TOTP seal's.
    #[test]
    fn store_row_key_is_its_own_derivation() {
        let m = master();
        let key = store_row_key(&m);
        let mut expect = [0u8; 32];
        Hkdf::<Sha256>::new(Some(SALT), &[0x42; 32])
            .expand(b"store-row-mac\0\0\x00\x00\x00\x00", &mut expect)
            .unwrap();
        assert_eq!(*key, expect);
        assert_ne!(*key, *audit_key(&m));
        assert_ne!(*key, *operator_totp_key(&m));
    }

    #[test]
    fn puk_is_eight_digits_and_changes_with_generation() {
        let m = master();
        let p0 = piv_puk(&m, &[9, 9], 0);
        let p1 = piv_puk(&m, &[9, 9], 1);
        assert_eq!(p0.len(), 8);
        assert!(p0.bytes().all(|c| c.is_ascii_digit()));
        assert_ne!(*p0, *p1);
        let mut okm = [0u8; 8];
        Hkdf::<Sha256>::new(Some(SALT), &[0x42; 32])
            .expand(b"piv-puk\0piv\0\x09\x09\x00\x00\x00\x00", &mut okm)
            .unwrap();
        assert_eq!(*p0, format!("{:08}", u64::from_be_bytes(okm) % 100_000_000));
    }
}
