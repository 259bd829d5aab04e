//! PIV card presence: `start` for a PIV card and `prove`.
//!
//! Before its card proved itself, a PIV session learns nothing about what the server knows:
//! `start` opens a session and hands out a nonce for every PIV identity alike (unknown,
//! locked, without questions, enrolled without a Card Authentication key), and every failed
//! proof gets the one `card_not_verified` reply. Only a card whose signature verifies under
//! the public key recorded at enrollment hears its questions, its lock or "no questions".

use cardunlock_protocol::presence::digest;
use cardunlock_protocol::{
    CardAuthKey, ErrorBody, ErrorCode, Nonce, PinPolicy, ProveReply, ProveRequest, SessionToken,
    Signature as WireSignature, StartReply,
};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use rand::RngCore;
use zeroize::Zeroizing;

use super::{
    audit, audit_in, live_session, locked, ok, refusal, refuse_with, AppState, Endpoint, Reply,
    Token,
};
use crate::store::presence::{self as logic, ProveOutcome};
use crate::store::{now_ms, Profile};
use crate::ServerError;

/// The one reply of every PIV card that has not proved itself.
const NOT_VERIFIED: &str = "This card could not be verified for online unlock. Use offline mode \
                            (`cardunlock unlock --offline`) and call your operator.";

/// The `card_not_verified` refusal.
pub(super) fn not_verified() -> Reply {
    refusal(ErrorCode::CardNotVerified, NOT_VERIFIED)
}

/// Milliseconds as whole seconds, rounded up.
pub(super) fn ms_to_secs(ms: i64) -> u64 {
    u64::try_from(ms.max(0)).map_or(0, |ms| ms.div_ceil(1000))
}

/// The refusal during a back-off after wrong answers without card proof (429, `retry_after`).
pub(super) fn backed_off(wait_ms: i64) -> Reply {
    let secs = ms_to_secs(wait_ms);
    refuse_with(ErrorBody {
        retry_after: Some(secs),
        ..ErrorBody::new(
            ErrorCode::TooManyRequests,
            format!(
                "Wrong answers were given for this card without proof that the card is present. \
                 Try again in {secs} s."
            ),
        )
    })
}

/// `start` for a PIV card: a session and a nonce, the same reply whatever the identity's state.
pub(super) fn start(state: &AppState, identity: &str) -> Result<Reply, ServerError> {
    let card = (Profile::Piv, identity);
    let mut secret = Zeroizing::new([0u8; 32]);
    let mut nonce = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut secret[..])
        .and_then(|()| rand::rngs::OsRng.try_fill_bytes(&mut nonce))
        .map_err(|_| ServerError::Random)?;
    let token = Token::from_bytes(&secret[..]);
    let nonce = Nonce::from(nonce);
    let nonce_hex = nonce.to_hex();
    let ttl = state.session_ttl_ms;
    state.store.transact(|tx| {
        logic::start_piv_session(tx, card, &token.hash, &nonce_hex, now_ms(), ttl)?;
        audit_in(tx, Some(card), Some(&token), "start", "awaiting_proof", "")
    })?;
    Ok(ok(&StartReply {
        session: SessionToken::new(hex::encode(&secret[..])),
        questions: Vec::new(),
        attempts_left: 0,
        pin_policy: PinPolicy::from(&Profile::Piv.pin_policy()),
        nonce: Some(nonce),
        iso_profile: None,
    }))
}

/// Whether `signature` is the card's signature of this session's nonce under `key` (both as
/// the store keeps them: hex).
fn verifies(key: &str, nonce: &str, token_hash: &[u8; 32], signature: &WireSignature) -> bool {
    let (Ok(key), Ok(nonce), Some(der)) = (
        key.parse::<CardAuthKey>(),
        nonce.parse::<Nonce>(),
        signature.as_der(),
    ) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_sec1_bytes(key.as_bytes()) else {
        return false;
    };
    let Ok(signature) = Signature::from_der(der) else {
        return false;
    };
    key.verify_prehash(&digest(token_hash, &nonce.to_array()), &signature)
        .is_ok()
}

/// `prove`: the card's signature of the session's nonce.
pub(super) fn prove(state: &AppState, req: ProveRequest) -> Result<Reply, ServerError> {
    let (token, session) = session_or_refuse!(state, Endpoint::Prove, &req.session);
    let card = Some((session.profile, session.identity.as_str()));
    if session.profile != Profile::Piv {
        audit(
            state,
            card,
            Some(&token),
            "prove",
            "bad_request",
            "not a PIV card",
        )?;
        return Ok(refusal(
            ErrorCode::BadRequest,
            "Bad request: only PIV cards prove their presence with a signature.",
        ));
    }
    if req.signature.is_too_long() {
        audit(
            state,
            card,
            Some(&token),
            "prove",
            "bad_signature",
            "too long",
        )?;
        return Ok(not_verified());
    }
    let max_attempts = state.max_attempts;
    state.store.transact(|tx| {
        let outcome = logic::prove(tx, &token.hash, now_ms(), max_attempts, |key, nonce| {
            verifies(key, nonce, &token.hash, &req.signature)
        })?;
        let a = |tx: &mut dyn crate::store::Tx, outcome: &str, detail: &str| {
            audit_in(tx, card, Some(&token), "prove", outcome, detail)
        };
        Ok(match outcome {
            ProveOutcome::SessionGone => {
                a(tx, "invalid_session", "session ended during the check")?;
                refusal(ErrorCode::InvalidSession, super::INVALID_SESSION)
            }
            ProveOutcome::NotPiv => {
                a(tx, "bad_request", "no nonce in this session")?;
                not_verified()
            }
            ProveOutcome::NotProven(why) => {
                a(tx, why.outcome(), "refused: card not verified")?;
                not_verified()
            }
            ProveOutcome::Locked => {
                a(tx, "locked", "card proved; online unlock locked")?;
                locked()
            }
            ProveOutcome::NoQuestions => {
                a(tx, "no_questions", "card proved; no questions enrolled")?;
                refusal(
                    ErrorCode::NoQuestions,
                    "Online unlock is not available for this card: no security questions are defined. Use offline mode.",
                )
            }
            ProveOutcome::Proven {
                questions,
                attempts_left,
            } => {
                let detail = format!(
                    "card proved; {} question(s), {attempts_left} attempt(s) left",
                    questions.len()
                );
                a(tx, "proven", &detail)?;
                ok(&ProveReply {
                    questions,
                    attempts_left,
                })
            }
        })
    })
}
