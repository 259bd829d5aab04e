//! The request and reply bodies of the five endpoints.

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::bytes::{Block, CardIdentity, GidsCryptogram, GidsRandom, Nonce, Signature};
use crate::names::{AlgorithmName, Profile};
use crate::policy::PinPolicy;

/// A secret string on the wire (an answer, a PUK, an admin answer): `Debug` prints `***`, the
/// memory is zeroized on drop.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("***")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A session token: 64 lowercase hex digits (32 random bytes). The bearer continues the
/// session, so it is a secret: `Debug` prints `***`, zeroized on drop.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionToken(Secret);

impl SessionToken {
    /// Wraps a token.
    pub fn new(text: impl Into<String>) -> Self {
        Self(Secret::new(text))
    }

    /// The token text.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl core::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SessionToken(***)")
    }
}

/// A card as the server keys it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRef {
    /// The card profile.
    pub profile: Profile,
    /// CHUID GUID, FASC-N or serial, hex on the wire (as `cardunlock status` prints it).
    pub identity: CardIdentity,
}

/// `POST /v1/unlock/start`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRequest {
    /// The card to unlock.
    pub card: CardRef,
}

/// 200 reply of `start`. Nothing about the user: the name and e-mail come with verified
/// answers ([`AnswersReply`]).
///
/// PIV: the same for every card whatever the server knows about it: `questions` empty,
/// `attempts_left` 0 and a `nonce` the card signs with its Card Authentication key
/// ([`crate::presence::digest`]); the questions come with the verified signature
/// ([`ProveReply`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StartReply {
    /// The session token.
    pub session: SessionToken,
    /// The security questions, in order (PIV: empty until the card proved itself).
    pub questions: Vec<String>,
    /// Answer sets left before online unlock is locked for the card (PIV: 0 until the card
    /// proved itself).
    pub attempts_left: u32,
    /// The policy the new PIN must meet.
    pub pin_policy: PinPolicy,
    /// PIV: 32 random bytes, hex, for the card to sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<Nonce>,
    /// ISO admin cards: the name of the workstation ISO profile the card was enrolled with
    /// ([`crate::operator::EnrollDone::iso_profile`]); absent for PIV and GIDS and for cards
    /// enrolled without one. The workstation unlocks with that profile's command set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iso_profile: Option<String>,
}

/// `POST /v1/unlock/prove` (PIV): the card's signature of the session's nonce.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProveRequest {
    /// The session.
    pub session: SessionToken,
    /// The DER ECDSA signature the card's Card Authentication key (9E) made over
    /// [`crate::presence::digest`], hex.
    pub signature: Signature,
}

/// 200 reply of `prove`: the card proved itself; its questions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProveReply {
    /// The security questions, in order.
    pub questions: Vec<String>,
    /// Answer sets left before online unlock is locked for the card.
    pub attempts_left: u32,
}

/// `POST /v1/unlock/answers`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AnswersRequest {
    /// The session.
    pub session: SessionToken,
    /// One answer per question, in order.
    pub answers: Vec<Secret>,
}

/// The card holder, shown once the answers are verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Name ("Michael Benson").
    pub name: String,
    /// E-mail address.
    pub email: String,
}

/// 200 reply of `answers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswersReply {
    /// Always `true` (wrong answers are a refusal).
    pub verified: bool,
    /// The card holder.
    pub user: User,
}

/// What the admin key must compute (GIDS and ISO cards).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AdminRequest {
    /// ISO cards only: `E_K(block)` (ECB, one block, hex), the card's challenge.
    Encrypt {
        /// Must be the card's admin-key algorithm.
        algorithm: AlgorithmName,
        /// The card challenge, one block, hex.
        block: Block,
    },
    /// GIDS: `3DES-CBC_K(IV 0, R2 || R1 || Z1)`; the server remembers R1 and R2 for the
    /// session.
    GidsCryptogram {
        /// Host random, 16 bytes hex.
        r1: GidsRandom,
        /// Card random, 16 bytes hex.
        r2: GidsRandom,
    },
    /// GIDS: the card's 40-byte cryptogram. The server checks that it decrypts to
    /// `R1 || R2 || Z2` of this session's last `gids_cryptogram`, and answers
    /// `R1 || R2 || 00.. 80` (never the card's Z2): it is no decryption service.
    GidsCardCryptogram {
        /// The card's cryptogram, 40 bytes hex.
        cryptogram: GidsCryptogram,
    },
}

/// `POST /v1/unlock/admin`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdminBody {
    /// The session.
    pub session: SessionToken,
    /// What to compute.
    pub request: AdminRequest,
}

/// 200 reply of `admin`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdminAnswer {
    /// The answer, hex.
    pub answer: Secret,
}

/// `POST /v1/unlock/puk` (PIV).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PukRequest {
    /// The session.
    pub session: SessionToken,
    /// The card's PUK tries left, when the client could read them without spending one
    /// (YubiKey metadata); the server counts on the smaller of this and its configured PUK
    /// try limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub puk_tries_left: Option<u32>,
}

/// 200 reply of `puk`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PukReply {
    /// The PUKs the card may hold, most likely first; always fewer than `tries_left`.
    pub puk_candidates: Vec<Secret>,
    /// The next generation's PUK, to rotate to after the unblock.
    pub next_puk: Secret,
    /// The PUK tries the server counted on. A client stops before the last one.
    pub tries_left: u32,
}

/// How the unlock ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The card is unlocked.
    Unlocked,
    /// It is not.
    Failed,
}

/// `POST /v1/unlock/complete`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CompleteRequest {
    /// The session.
    pub session: SessionToken,
    /// How the unlock ended.
    pub outcome: Outcome,
    /// Whether the PUK was changed to `next_puk`.
    #[serde(default)]
    pub puk_rotated: bool,
    /// A short note for the audit log (no secrets).
    #[serde(default)]
    pub detail: String,
    /// PIV: how many of the released `puk_candidates`, tried in the order given, the card
    /// refused as a wrong PUK (`63 CX`). All of them: the card holds none of the PUKs the
    /// server has on record, and the server stops online unlock for it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub puk_rejected: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// 200 reply of `complete`: `{}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteReply {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug() {
        let req = AnswersRequest {
            session: SessionToken::new("ab".repeat(32)),
            answers: vec![Secret::new("Rex the dog")],
        };
        let shown = format!("{req:?}");
        assert!(!shown.contains("Rex") && !shown.contains("abab"), "{shown}");
        let json = serde_json::to_string(&req).unwrap();
        assert!(json.contains("\"answers\":[\"Rex the dog\"]"), "{json}");
    }

    #[test]
    fn admin_requests_use_the_kind_tag() {
        let r: AdminRequest = serde_json::from_str(
            r#"{"kind":"encrypt","algorithm":"aes192","block":"00112233445566778899aabbccddeeff"}"#,
        )
        .unwrap();
        assert!(matches!(
            r,
            AdminRequest::Encrypt {
                algorithm: AlgorithmName::Aes192,
                ..
            }
        ));
        assert!(
            serde_json::from_str::<AdminRequest>(r#"{"kind":"decrypt","block":"00"}"#).is_err()
        );
        assert_eq!(serde_json::to_string(&CompleteReply {}).unwrap(), "{}");
    }

    #[test]
    fn start_reply_carries_no_user() {
        let reply = StartReply {
            session: SessionToken::new("00".repeat(32)),
            questions: vec!["q".into()],
            attempts_left: 3,
            pin_policy: PinPolicy::from(&cardunlock_core::policy::PinPolicy::PIV),
            nonce: None,
            iso_profile: None,
        };
        let json = serde_json::to_value(&reply).unwrap();
        assert!(json.get("user").is_none());
        assert_eq!(json["pin_policy"]["charset"], "digits");
    }
}
