//! `/v1/unlock/start`: a session for a GIDS or ISO card (its questions, attempts left and the
//! PIN policy); PIV cards go to [`super::presence::start`].

use cardunlock_protocol::{ErrorCode, PinPolicy, SessionToken, StartReply, StartRequest};
use rand::RngCore;
use zeroize::Zeroizing;

use super::{audit_in, card_rate, ok, presence, refusal, too_many, AppState, Reply, Token, LOCKED};
use crate::store::{now_ms, session as logic, Profile, StartOutcome};
use crate::ServerError;

pub(super) fn start(state: &AppState, req: StartRequest) -> Result<Reply, ServerError> {
    // Both were checked when the body was parsed.
    let (profile, identity) = (req.card.profile, req.card.identity.to_hex());
    if let Err(wait) = card_rate(state, (profile, &identity), "start", state.rates.start_card)? {
        return Ok(too_many("for this card", wait));
    }
    if profile == Profile::Piv {
        return presence::start(state, &identity);
    }
    let card = Some((profile, identity.as_str()));
    let mut secret = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng
        .try_fill_bytes(&mut secret[..])
        .map_err(|_| ServerError::Random)?;
    let token = Token::from_bytes(&secret[..]);
    let ttl = state.session_ttl_ms;
    let pin_policy = PinPolicy::from(&profile.pin_policy());
    state.store.transact(|tx| {
        let outcome = logic::start_session(
            tx,
            (profile, &identity),
            &token.hash,
            now_ms(),
            ttl,
            state.blind,
        )?;
        Ok(match outcome {
            StartOutcome::UnknownCard => {
                audit_in(tx, card, None, "start", "unknown_card", "")?;
                refusal(
                    ErrorCode::UnknownCard,
                    "This card is not enrolled for online unlock. Use offline mode or contact your administrator.",
                )
            }
            StartOutcome::Locked => {
                audit_in(tx, card, None, "start", "locked", "")?;
                refusal(ErrorCode::Locked, LOCKED)
            }
            StartOutcome::NoQuestions => {
                audit_in(tx, card, None, "start", "no_questions", "")?;
                refusal(
                    ErrorCode::NoQuestions,
                    "Online unlock is not available for this card: no security questions are defined. Use offline mode.",
                )
            }
            StartOutcome::Started {
                questions,
                attempts_left,
                iso_profile,
            } => {
                let detail = format!(
                    "{} question(s), {attempts_left} attempt(s) left",
                    questions.len()
                );
                audit_in(tx, card, Some(&token), "start", "started", &detail)?;
                ok(&StartReply {
                    session: SessionToken::new(hex::encode(&secret[..])),
                    questions,
                    attempts_left,
                    pin_policy: pin_policy.clone(),
                    nonce: None,
                    iso_profile,
                })
            }
        })
    })
}
