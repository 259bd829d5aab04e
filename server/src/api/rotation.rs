//! `/v1/unlock/puk` and `/v1/unlock/complete`: the PIV PUK, released once per verified session,
//! and its rotation, committed when the client confirms it.

use cardunlock_protocol::{
    CompleteReply, CompleteRequest, ErrorBody, ErrorCode, Outcome, PukReply, PukRequest, Secret,
};

use super::{
    audit, audit_in, clean, diverged, invalid_session, live_session, ok, refusal, refuse_with,
    AppState, Endpoint, Reply, Token, INVALID_SESSION, NOT_VERIFIED,
};
use crate::store::{now_ms, session as logic, CompleteOutcome, Profile, PukOutcome, Tx};
use crate::{kdf, ServerError};

pub(super) fn puk(state: &AppState, req: PukRequest) -> Result<Reply, ServerError> {
    let (token, session) = session_or_refuse!(state, Endpoint::Puk, &req.session);
    let card = Some((session.profile, session.identity.as_str()));
    let a = |outcome: &str, detail: &str| audit(state, card, Some(&token), "puk", outcome, detail);
    if session.profile != Profile::Piv {
        let message =
            "Bad request: PUKs are for PIV cards; GIDS and ISO cards use /v1/unlock/admin.";
        a("bad_request", message)?;
        return Ok(refusal(ErrorCode::BadRequest, message));
    }
    let identity = hex::decode(&session.identity)
        .map_err(|_| ServerError::InvalidInput("stored identity".into()))?;
    // The tries the card can take: the configured PIV PUK limit, or fewer when the client read
    // a smaller count from the card. Unknown tries allow one unconfirmed candidate at most.
    let tries = req
        .puk_tries_left
        .map_or(state.puk_tries, |t| t.min(state.puk_tries));
    let tries_known = req.puk_tries_left.is_some();
    let now = now_ms();
    // The release, the pending rotation and the audit row commit together, before the PUK
    // leaves the server.
    state.store.transact(|tx| {
        let a = |tx: &mut dyn Tx, outcome: &str, detail: &str| {
            audit_in(tx, card, Some(&token), "puk", outcome, detail)
        };
        Ok(match logic::release_puk(tx, &token.hash, now, (tries, tries_known))? {
            PukOutcome::Diverged(reason) => {
                a(tx, "card_diverged", &format!("refused: {reason}"))?;
                diverged()
            }
            PukOutcome::SessionGone => {
                a(tx, "invalid_session", "session ended")?;
                refusal(ErrorCode::InvalidSession, INVALID_SESSION)
            }
            PukOutcome::NotVerified => {
                a(tx, "not_verified", "")?;
                refusal(ErrorCode::NotVerified, NOT_VERIFIED)
            }
            PukOutcome::AlreadyReleased => {
                a(
                    tx,
                    "puk_released",
                    "refused: already released in this session",
                )?;
                refusal(
                    ErrorCode::PukReleased,
                    "The PUK was already released in this session. Start a new session.",
                )
            }
            PukOutcome::AtRisk { candidates } if !tries_known => {
                let detail = format!(
                    "refused: {candidates} candidate PUK(s), the card's PUK tries unknown"
                );
                a(tx, "puk_at_risk", &detail)?;
                refuse_with(ErrorBody {
                    tries_left: Some(tries),
                    ..ErrorBody::new(
                        ErrorCode::PukAtRisk,
                        format!(
                            "The card may hold any of {candidates} PUKs (earlier unlocks were cut off) and did not say how many PUK tries it has left: trying them could block the PUK. Nothing was released; ask an operator to unlock the card."
                        ),
                    )
                })
            }
            PukOutcome::AtRisk { candidates } => {
                let detail = format!(
                    "refused: {candidates} candidate PUK(s) for {tries} PUK tries left"
                );
                a(tx, "puk_at_risk", &detail)?;
                refuse_with(ErrorBody {
                    tries_left: Some(tries),
                    ..ErrorBody::new(
                        ErrorCode::PukAtRisk,
                        format!(
                            "The card may hold any of {candidates} PUKs (earlier unlocks were cut off) but has only {tries} PUK tries left: trying them could block the PUK. Nothing was released; ask an operator to unlock the card."
                        ),
                    )
                })
            }
            PukOutcome::Released { candidates, next } => {
                let detail = format!(
                    "candidate generation(s) {}, {}{next}",
                    generations(&candidates),
                    logic::RELEASED_TO
                );
                a(tx, "released", &detail)?;
                let puk = |g| Secret::new(kdf::piv_puk(&state.master, &identity, g).as_str());
                ok(&PukReply {
                    puk_candidates: candidates.iter().map(|&g| puk(g)).collect(),
                    next_puk: puk(next),
                    tries_left: tries,
                })
            }
        })
    })
}

pub(super) fn complete(state: &AppState, req: CompleteRequest) -> Result<Reply, ServerError> {
    let Some(token) = Token::parse(req.session.expose()) else {
        return Ok(invalid_session(Endpoint::Complete));
    };
    let outcome = match req.outcome {
        Outcome::Unlocked => "unlocked",
        Outcome::Failed => "failed",
    };
    let now = now_ms();
    // The session is read once, row-locked, in the transaction that closes it.
    state.store.transact(|tx| {
        let Some(session) = tx.live_session(&token.hash, now)? else {
            return Ok(invalid_session(Endpoint::Complete));
        };
        let card = Some((session.profile, session.identity.as_str()));
        let a = |tx: &mut dyn Tx, outcome: &str, detail: &str| {
            audit_in(tx, card, Some(&token), "complete", outcome, detail)
        };
        Ok(
            match logic::complete(
                tx,
                (&token.hash, &session),
                now,
                req.puk_rotated,
                req.puk_rejected,
            )? {
                CompleteOutcome::SessionGone => {
                    a(tx, "invalid_session", "session ended")?;
                    refusal(ErrorCode::InvalidSession, INVALID_SESSION)
                }
                CompleteOutcome::NothingReleased => {
                    let message = "Bad request: puk_rotated is true but this session released no \
                         PUK the card accepted.";
                    a(tx, "bad_request", message)?;
                    refusal(ErrorCode::BadRequest, message)
                }
                CompleteOutcome::Closed {
                    committed,
                    pending,
                    diverged,
                } => {
                    if let Some(refused) = &diverged {
                        let reason = format!(
                            "PUK diverged: the card refused every PUK on record (generations \
                             {}); online unlock stopped until re-enrollment",
                            generations(refused)
                        );
                        audit_in(tx, card, Some(&token), "diverged", "alert", &reason)?;
                    }
                    let mut detail = match committed {
                        Some(g) => format!("PUK rotated, generation {g} committed"),
                        None => "PUK not rotated".to_owned(),
                    };
                    if let Some(p) = pending {
                        detail.push_str(&format!(", rotation to generation {p} still unconfirmed"));
                    }
                    if !req.detail.is_empty() {
                        detail.push_str("; client: ");
                        detail.push_str(&clean(&req.detail));
                    }
                    a(tx, outcome, &detail)?;
                    ok(&CompleteReply {})
                }
            },
        )
    })
}

/// Generations for an audit record: `3, 2`.
fn generations(list: &[u32]) -> String {
    let shown: Vec<String> = list.iter().map(u32::to_string).collect();
    shown.join(", ")
}
