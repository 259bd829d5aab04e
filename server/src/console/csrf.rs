//! Form tokens against cross-site request forgery: the token of a session is
//! HMAC-SHA256(server key, session token), so it is bound to that session, needs no storage,
//! and a form carrying another session's token (or none) is refused. Compared in constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The console's form-token key, derived from the master secret
/// ([`crate::kdf::console_form_key`]): every instance sharing a store accepts the others' forms.
pub(crate) struct CsrfKey(Zeroizing<[u8; 32]>);

impl CsrfKey {
    /// The key of the server whose master secret is `master`.
    pub(crate) fn derived(master: &crate::MasterSecret) -> Self {
        Self(crate::kdf::console_form_key(master))
    }

    /// A fresh random key (tests).
    #[cfg(test)]
    pub(crate) fn random() -> Self {
        use rand::RngCore;
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        Self(key)
    }

    /// The form token of the session whose bearer token is `session`.
    pub(crate) fn token(&self, session: &str) -> Csrf {
        Csrf(hex::encode(self.mac(session)))
    }

    /// Whether `presented` is the form token of `session` (constant time).
    pub(crate) fn check(&self, session: &str, presented: &str) -> bool {
        let expected = Zeroizing::new(hex::encode(self.mac(session)));
        expected.as_bytes().ct_eq(presented.as_bytes()).into()
    }

    fn mac(&self, session: &str) -> [u8; 32] {
        // HMAC takes keys of any length: this cannot fail.
        let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.as_ref()) {
            Ok(mac) => mac,
            Err(_) => return [0u8; 32],
        };
        mac.update(b"cardunlock console form\0");
        mac.update(session.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// A form token, put in every form of a page as the hidden field `csrf`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Csrf(pub(crate) String);

impl core::fmt::Debug for Csrf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Csrf(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_bound_to_its_session_and_its_key() {
        let key = CsrfKey::random();
        let a = key.token("session-a");
        assert_eq!(a.0.len(), 64);
        assert!(key.check("session-a", &a.0));
        assert!(!key.check("session-b", &a.0));
        assert!(!key.check("session-a", ""));
        assert!(!key.check("session-a", &a.0[..63]));
        let other = CsrfKey::random();
        assert!(!other.check("session-a", &a.0));
        assert_ne!(a, key.token("session-b"));
    }

    #[test]
    fn instances_with_one_master_secret_share_the_key() {
        let master = crate::MasterSecret::from_bytes(&[7; 32]).unwrap();
        let (one, two) = (CsrfKey::derived(&master), CsrfKey::derived(&master));
        assert!(two.check("s", &one.token("s").0));
        let other = crate::MasterSecret::from_bytes(&[8; 32]).unwrap();
        assert!(!CsrfKey::derived(&other).check("s", &one.token("s").0));
    }
}
