//! Security-question answers: normalised, then stored only as Argon2id PHC strings.

use std::sync::{Mutex, MutexGuard};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;
use subtle::ConstantTimeEq;
use unicode_normalization::UnicodeNormalization;
use zeroize::{Zeroize, Zeroizing};

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
    /// Cheap parameters (64 KiB, one pass) for tests that exercise the flows, not Argon2's cost.
    /// Never for real answers: an offline guess costs almost nothing with them.
    pub const TEST_ONLY_FAST: Self = Self {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    /// Whether Argon2 accepts these parameters.
    pub(crate) fn check(&self) -> Result<(), ServerError> {
        self.params().map(|_| ())
    }

    fn params(&self) -> Result<Params, ServerError> {
        Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(HASH_LEN))
            .map_err(|e| ServerError::Hash(format!("parameters out of range: {e}")))
    }
}

/// Length of the random salt of each answer hash, in bytes.
pub const SALT_LEN: usize = 16;
/// Length of each hash output, in bytes.
pub const HASH_LEN: usize = 32;

/// Argon2 working memory (19 MiB a hash with the default parameters), kept for reuse: allocating
/// it afresh for every hash makes the allocator keep freed blocks per thread, and the process grew
/// past 1 GiB under load. Wiped after every use, since it is derived from the answer.
static MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());
/// Buffers kept at most (about the number of hashes that run at once).
const MEMORY_KEPT: usize = 4;
/// Larger buffers (in 1 KiB blocks) are not kept.
const MEMORY_KEPT_MAX_BLOCKS: usize = 64 * 1024;

fn memory_pool() -> MutexGuard<'static, Vec<Vec<Block>>> {
    MEMORY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Argon2id of `password` into `out`, with pooled working memory.
fn argon2id(
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let blocks = params.block_count();
    let reused = {
        let mut pool = memory_pool();
        let found = pool.iter().position(|m| m.len() == blocks);
        found.map(|i| pool.swap_remove(i))
    };
    let mut memory = reused.unwrap_or_else(|| vec![Block::new(); blocks]);
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let result = argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..]);
    memory.iter_mut().zeroize();
    if blocks <= MEMORY_KEPT_MAX_BLOCKS {
        let mut pool = memory_pool();
        if pool.len() < MEMORY_KEPT {
            pool.push(memory);
        }
    }
    result
}

/// Marks an answer hash made from [`normalise_answer`]'s full case folding. Hashes without it
/// were enrolled before (NFKC + `to_lowercase`) and are still checked that way
/// ([`verify_answer`]); re-enrolling a card rewrites them.
pub const FOLDED_PREFIX: &str = "nfkc-cf:";

/// Normalises an answer before hashing or checking it: Unicode NFKC, full Unicode case folding
/// (`CaseFolding.txt` C + F, the `caseless` crate: `ß` = `ss`, final `ς` = `σ`), NFKC again
/// (folding can un-normalise), runs of whitespace collapsed to one space, trimmed.
/// `"  Ｍaria\tDE  la Cruz "` becomes `"maria de la cruz"`, `"Straße"` becomes `"strasse"`.
pub fn normalise_answer(answer: &str) -> String {
    let nfkc = Zeroizing::new(answer.nfkc().collect::<String>());
    let folded = Zeroizing::new(caseless::default_case_fold_str(&nfkc));
    let folded: Zeroizing<String> = Zeroizing::new(folded.nfkc().collect());
    collapse_whitespace(&folded)
}

/// The normalisation of hashes enrolled before full case folding: NFKC, `to_lowercase`.
fn normalise_answer_legacy(answer: &str) -> String {
    let folded: Zeroizing<String> =
        Zeroizing::new(answer.nfkc().collect::<String>().to_lowercase());
    collapse_whitespace(&folded)
}

fn collapse_whitespace(folded: &str) -> String {
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
/// string after [`FOLDED_PREFIX`] (`nfkc-cf:$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
pub fn hash_answer(answer: &str, params: &Argon2Params) -> Result<String, ServerError> {
    let normalised = Zeroizing::new(normalise_answer(answer));
    Ok(format!(
        "{FOLDED_PREFIX}{}",
        hash_phc(normalised.as_bytes(), params)?
    ))
}

/// Argon2id of `secret` with a fresh 16-byte salt, as a PHC string.
fn hash_phc(secret: &[u8], params: &Argon2Params) -> Result<String, ServerError> {
    let params = params.params()?;
    let mut salt = [0u8; SALT_LEN];
    rand::rngs::OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|_| ServerError::Random)?;
    let mut out = Zeroizing::new([0u8; HASH_LEN]);
    argon2id(&params, secret, &salt, &mut out[..]).map_err(|e| ServerError::Hash(e.to_string()))?;
    let phc = |e: argon2::password_hash::phc::Error| ServerError::Hash(e.to_string());
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| ServerError::Hash(e.to_string()))?,
        salt: Some(Salt::new(&salt).map_err(phc)?),
        hash: Some(Output::new(&out[..]).map_err(phc)?),
    };
    Ok(hash.to_string())
}

/// Whether a (plain) answer matches a stored hash (Argon2id v19 only), with the parameters
/// stored in it; the comparison is constant-time. A malformed hash never matches. A hash with
/// [`FOLDED_PREFIX`] is checked against [`normalise_answer`], one without (enrolled before
/// full case folding) against the old NFKC + lowercase form.
pub fn verify_answer(answer: &str, stored: &str) -> bool {
    let (normalised, phc) = match stored.strip_prefix(FOLDED_PREFIX) {
        Some(phc) => (Zeroizing::new(normalise_answer(answer)), phc),
        None => (Zeroizing::new(normalise_answer_legacy(answer)), stored),
    };
    verify_phc(normalised.as_bytes(), phc)
}

/// Whether `secret` matches the Argon2id v19 PHC string `phc` (constant-time comparison).
fn verify_phc(secret: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let argon2id_v19 = parsed.algorithm == Algorithm::Argon2id.ident()
        && parsed.version == Some(Version::V0x13.into());
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut out = Zeroizing::new(vec![0u8; expected.len()]);
    let computed = argon2id(&params, secret, salt.as_ref(), &mut out).is_ok();
    argon2id_v19 && computed && bool::from(out.ct_eq(expected.as_bytes()))
}

/// Hashes an operator password: Unicode NFKC (the same password typed on any system gives the
/// same bytes; NIST SP 800-63B 5.1.1.2), then Argon2id as answers are, as a PHC string.
pub fn hash_password(password: &str, params: &Argon2Params) -> Result<String, ServerError> {
    let normalised = Zeroizing::new(password.nfkc().collect::<String>());
    hash_phc(normalised.as_bytes(), params)
}

/// Whether an operator password matches its stored hash ([`hash_password`]).
pub fn verify_password(password: &str, stored: &str) -> bool {
    let normalised = Zeroizing::new(password.nfkc().collect::<String>());
    verify_phc(normalised.as_bytes(), stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Argon2Params = Argon2Params::TEST_ONLY_FAST;

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

    /// Full case folding, not `to_lowercase`.
    #[test]
    fn full_case_folding() {
        assert_eq!(normalise_answer("Straße"), normalise_answer("STRASSE"));
        assert_eq!(normalise_answer("ὈΔΥΣΣΕΎΣ"), normalise_answer("ὀδυσσεύς"));
        assert_eq!(normalise_answer("ǅemal"), normalise_answer("DŽEMAL"));
        assert_ne!(
            normalise_answer_legacy("Straße"),
            normalise_answer_legacy("STRASSE")
        );
        let h = hash_answer("Straße", &FAST).unwrap();
        assert!(verify_answer("STRASSE", &h) && verify_answer("strasse", &h));
    }

    /// Hashes enrolled before full folding (no prefix) still verify, the old way.
    #[test]
    fn passwords_hash_and_verify() {
        let stored = hash_password("correct horse battery", &FAST).unwrap();
        assert!(stored.starts_with("$argon2id$v=19$"), "{stored}");
        assert!(verify_password("correct horse battery", &stored));
        assert!(!verify_password("Correct horse battery", &stored));
        assert!(!verify_password("correct horse battery", "not a hash"));
    }

    #[test]
    fn legacy_hashes_still_verify() {
        let legacy = hash_answer("Blue Whale", &FAST).unwrap();
        let legacy = legacy.strip_prefix(FOLDED_PREFIX).unwrap();
        assert!(verify_answer(" BLUE whale", legacy));
        assert!(!verify_answer("blue whales", legacy));
        // "ß" folded into such a hash only matches what the old rule matched.
        let old = hash_answer("strasse", &FAST).unwrap();
        let old = old.strip_prefix(FOLDED_PREFIX).unwrap();
        assert!(verify_answer("STRASSE", old));
    }

    #[test]
    fn hashes_are_salted_argon2id_and_verify_normalised() {
        let a = hash_answer("Blue  Whale", &FAST).unwrap();
        let b = hash_answer("Blue  Whale", &FAST).unwrap();
        assert_ne!(a, b, "fresh salt each time");
        assert!(a.starts_with("nfkc-cf:$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(verify_answer("blue whale", &a));
        assert!(verify_answer(" BLUE WHALE ", &b));
        assert!(!verify_answer("blue whales", &a));
        assert!(!verify_answer("blue whale", "not a hash"));
    }

    #[test]
    fn memory_is_reused_and_other_variants_are_refused() {
        let a = hash_answer("x", &FAST).unwrap();
        let b = hash_answer("y", &FAST).unwrap();
        assert!(verify_answer("x", &a) && verify_answer("y", &b));
        assert!(memory_pool().len() <= MEMORY_KEPT);
        // The same hash, labelled argon2i, does not verify.
        assert!(!verify_answer("x", &a.replace("$argon2id$", "$argon2i$")));
        assert!(!verify_answer("x", &a.replace(FOLDED_PREFIX, "other:")));
        assert!(!verify_answer("x", &a.replace("$v=19$", "$v=16$")));
        // A hash made by the argon2 crate's own API verifies (interoperable PHC strings).
        use argon2::password_hash::PasswordHasher;
        let theirs = Argon2::default()
            .hash_password(b"blue")
            .unwrap()
            .to_string();
        assert!(verify_answer(" BLUE", &theirs));
    }

    #[test]
    fn default_parameters_are_the_contract() {
        let p = Argon2Params::default();
        assert_eq!((p.m_cost_kib, p.t_cost, p.p_cost), (19_456, 2, 1));
        let h = hash_answer("x", &p).unwrap();
        assert!(h.starts_with("nfkc-cf:$argon2id$v=19$m=19456,t=2,p=1$"));
    }
}
