//! The labels of the per-card key derivation (HKDF-SHA256, RFC 5869):
//! `ikm` = master secret, `salt` = [`SALT`],
//! `info` = `purpose || 0x00 || profile || 0x00 || identity bytes || generation (u32 BE)`.

/// HKDF salt of every derivation.
pub const SALT: &[u8] = b"cardunlock/v1";
/// Purpose of the GIDS / ISO admin key.
pub const PURPOSE_ADMIN_KEY: &str = "admin-key";
/// Purpose of the PIV management key (3DES, 24 bytes).
pub const PURPOSE_PIV_MGMT_KEY: &str = "piv-mgmt-key";
/// Purpose of the PIV PUK (8 bytes -> u64 BE mod 10^8, 8 ASCII digits).
pub const PURPOSE_PIV_PUK: &str = "piv-puk";

/// Writes the HKDF `info` of a derivation into `out` (cleared first).
pub fn info(purpose: &str, profile: &str, identity: &[u8], generation: u32, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(purpose.as_bytes());
    out.push(0);
    out.extend_from_slice(profile.as_bytes());
    out.push(0);
    out.extend_from_slice(identity);
    out.extend_from_slice(&generation.to_be_bytes());
}

#[cfg(test)]
mod tests {
    #[test]
    fn info_layout() {
        let mut out = Vec::new();
        super::info(super::PURPOSE_ADMIN_KEY, "gids", &[1, 2], 7, &mut out);
        assert_eq!(out, b"admin-key\0gids\0\x01\x02\x00\x00\x00\x07");
    }
}
