//! PIV card presence, in the store: a PIV session is opened for any identity (the reply to
//! `start` must not depend on what the server knows), carries a nonce, and becomes `proven`
//! once the card signed it with the Card Authentication key recorded at enrollment. Only then
//! is the card's state (lock, questions) read out to the caller.

use super::tx::{CardKey, Tx};
use super::Profile;
use crate::ServerError;

/// The P-256 generator, uncompressed: a valid point to check a signature against when no key
/// is on record (the outcome is ignored), so that every refusal costs the same.
const NO_KEY: &str = "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";

/// Why a card's proof was refused (audited; the client hears one reply for all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NotProven {
    /// The card is not enrolled.
    UnknownCard,
    /// Enrolled without a Card Authentication key on record.
    NoKey,
    /// The signature does not verify under the recorded key.
    BadSignature,
}

impl NotProven {
    /// The audit outcome.
    pub(crate) fn outcome(self) -> &'static str {
        match self {
            Self::UnknownCard => "unknown_card",
            Self::NoKey => "no_card_auth_key",
            Self::BadSignature => "bad_signature",
        }
    }
}

pub(crate) enum ProveOutcome {
    SessionGone,
    /// Not a PIV session (GIDS / ISO cards do not prove presence this way).
    NotPiv,
    NotProven(NotProven),
    /// Proven, and the card is locked.
    Locked,
    /// Proven, and the card has no questions.
    NoQuestions,
    /// Proven: the questions and the answer sets left.
    Proven {
        questions: Vec<String>,
        attempts_left: u32,
    },
}

/// Opens a PIV session for `card`, whatever the store knows about it, with the nonce its card
/// must sign.
pub(crate) fn start_piv_session(
    tx: &mut dyn Tx,
    card: CardKey<'_>,
    token_hash: &[u8; 32],
    nonce_hex: &str,
    now: i64,
    ttl_ms: i64,
) -> Result<(), ServerError> {
    tx.delete_expired_sessions(now)?;
    tx.insert_session(token_hash, card, now, now.saturating_add(ttl_ms))?;
    tx.set_session_nonce(token_hash, nonce_hex)
}

/// Checks the card's proof with `verify(public key hex, nonce hex)` and, if it holds, marks
/// the session proven and returns what the card may now hear.
pub(crate) fn prove(
    tx: &mut dyn Tx,
    token_hash: &[u8; 32],
    now: i64,
    max_attempts: u32,
    verify: impl FnOnce(&str, &str) -> bool,
) -> Result<ProveOutcome, ServerError> {
    let Some(session) = tx.live_session(token_hash, now)? else {
        return Ok(ProveOutcome::SessionGone);
    };
    let (Profile::Piv, Some(nonce)) = (session.profile, session.nonce.as_deref()) else {
        return Ok(ProveOutcome::NotPiv);
    };
    let card = tx.read_card(session.card())?;
    let key = card.as_ref().and_then(|c| c.card_auth_key.clone());
    // A signature is checked in every case (against the curve's generator when there is no
    // key on record, the result then ignored), so the time of the refusal does not tell an
    // enrolled card from the others.
    let verified = verify(key.as_deref().unwrap_or(NO_KEY), nonce) && key.is_some();
    let Some(card) = card else {
        return Ok(ProveOutcome::NotProven(NotProven::UnknownCard));
    };
    if key.is_none() {
        return Ok(ProveOutcome::NotProven(NotProven::NoKey));
    }
    if !verified {
        return Ok(ProveOutcome::NotProven(NotProven::BadSignature));
    }
    tx.set_session_proven(token_hash)?;
    if card.locked {
        return Ok(ProveOutcome::Locked);
    }
    let questions: Vec<String> = tx
        .questions(session.card())?
        .into_iter()
        .map(|(q, _)| q)
        .collect();
    if questions.is_empty() {
        return Ok(ProveOutcome::NoQuestions);
    }
    Ok(ProveOutcome::Proven {
        questions,
        attempts_left: max_attempts.saturating_sub(card.failed_attempts),
    })
}
