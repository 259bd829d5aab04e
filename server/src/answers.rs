//! Security-question answers: normalised, then stored only as Argon2id PHC strings.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::ServerError;

/// Argon2id cost parameters for new answer hashes.
///
/// The default is the contract's: m = 19456 KiB, t = 2, p = 1 (OWASP's Argon2id minimum).
/// Tests may lower them; verification always uses the parameters stored in each hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes over the memory.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self {
            m_cost_kib: 19_456,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

impl Argon2Params {
    /// Whether Argon2 accepts these parameters.
    pub(crate) fn check(&self) -> Result<(), ServerError> {
        self.hasher().map(|_| ())
    }

    fn hasher(&self) -> Result<Argon2<'static>, ServerError> {
        let params = Params::new(self.m_cost_kib, self.t_cost, self.p_cost, None)
            .map_err(|e| ServerError::Hash(format!("parameters out of range: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Length of the random salt of each answer hash, in bytes.
pub const SALT_LEN: usize = 16;

/// Normalises an answer before hashing or checking it: Unicode NFKC, lowercase, runs of
/// whitespace collapsed to one space, trimmed. `"  Ｍaria\tDE  la Cruz "` becomes
/// `"maria de la cruz"`.
pub fn normalise_answer(answer: &str) -> String {
    let folded: Zeroizing<String> =
        Zeroizing::new(answer.nfkc().collect::<String>().to_lowercase());
    let mut out = String::with_capacity(folded.len());
    for word in folded.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Hashes a (plain) answer: normalised, then Argon2id with a fresh 16-byte salt, as a PHC
/// string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
pub fn hash_answer(answer: &str, params: &Argon2Params) -> Result<String, ServerError> {
    let normalised = Zeroizing::new(normalise_answer(answer));
    let mut salt = [0u8; SALT_LEN];
    rand::rngs::OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|_| ServerError::Random)?;
    let hash = params
        .hasher()?
        .hash_password_with_salt(normalised.as_bytes(), &salt)
        .map_err(|e| ServerError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether a (plain) answer matches a stored PHC string, with the parameters stored in it.
/// A malformed or non-Argon2 hash never matches.
pub fn verify_answer(answer: &str, phc: &str) -> bool {
    let normalised = Zeroizing::new(normalise_answer(answer));
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(normalised.as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Argon2Params = Argon2Params {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    #[test]
    fn normalisation_folds_case_width_and_spaces() {
        assert_eq!(
            normalise_answer("  Ｍaria\tDE \n la Cruz "),
            "maria de la cruz"
        );
        assert_eq!(normalise_answer("ÉCOLE"), normalise_answer("e\u{301}cole"));
        assert_eq!(normalise_answer("ﬁsh"), "fish");
        assert_eq!(normalise_answer(" \t "), "");
    }

    #[test]
    fn hashes_are_salted_argon2id_and_verify_normalised() {
        let a = hash_answer("Blue  Whale", &FAST).unwrap();
        let b = hash_answer("Blue  Whale", &FAST).unwrap();
        assert_ne!(a, b, "fresh salt each time");
        assert!(a.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(verify_answer("blue whale", &a));
        assert!(verify_answer(" BLUE WHALE ", &b));
        assert!(!verify_answer("blue whales", &a));
        assert!(!verify_answer("blue whale", "not a hash"));
    }

    #[test]
    fn default_parameters_are_the_contract() {
        let p = Argon2Params::default();
        assert_eq!((p.m_cost_kib, p.t_cost, p.p_cost), (19_456, 2, 1));
        let h = hash_answer("x", &p).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    }
}
