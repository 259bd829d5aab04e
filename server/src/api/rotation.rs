//! `/v1/unlock/puk` and `/v1/unlock/complete`: the PIV PUK, released once per verified session,
//! and its rotation, committed when the client confirms it.

use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

use super::{
    audit, audit_in, clean, live_session, ok, refusal, AppState, Endpoint, Reply, INVALID_SESSION,
    NOT_VERIFIED,
};
use crate::store::{now_ms, session as logic, CompleteOutcome, Profile, PukOutcome, Tx};
use crate::{kdf, ServerError};

#[derive(Deserialize)]
pub(super) struct SessionOnly {
    session: String,
}

pub(super) fn puk(state: &AppState, req: SessionOnly) -> Result<Reply, ServerError> {
    let (token, session) = session_or_refuse!(state, Endpoint::Puk, &req.session);
    let card = Some((session.profile, session.identity.as_str()));
    let a = |outcome: &str, detail: &str| audit(state, card, Some(&token), "puk", outcome, detail);
    if session.profile != Profile::Piv {
        let message =
            "Bad request: PUKs are for PIV cards; GIDS and ISO cards use /v1/unlock/admin.";
        a("bad_request", message)?;
        return Ok(refusal(400, "bad_request", message));
    }
    let identity = hex::decode(&session.identity)
        .map_err(|_| ServerError::InvalidInput("stored identity".into()))?;
    let now = now_ms();
    // The release, the pending rotation and the audit row commit together, before the PUK
    // leaves the server.
    state.store.transact(|tx| {
        let a = |tx: &mut dyn Tx, outcome: &str, detail: &str| {
            audit_in(tx, card, Some(&token), "puk", outcome, detail)
        };
        Ok(match logic::release_puk(tx, &token.hash, now)? {
            PukOutcome::SessionGone => {
                a(tx, "invalid_session", "session ended")?;
                refusal(401, "invalid_session", INVALID_SESSION)
            }
            PukOutcome::NotVerified => {
                a(tx, "not_verified", "")?;
                refusal(403, "not_verified", NOT_VERIFIED)
            }
            PukOutcome::AlreadyReleased => {
                a(
                    tx,
                    "puk_released",
                    "refused: already released in this session",
                )?;
                refusal(
                    409,
                    "puk_released",
                    "The PUK was already released in this session. Start a new session.",
                )
            }
            PukOutcome::Released { candidates, next } => {
                let detail = format!(
                    "candidate generation(s) {candidates:?}, rotation pending to generation {next}"
                );
                a(tx, "released", &detail)?;
                let names: Vec<Zeroizing<String>> = candidates
                    .iter()
                    .map(|&g| kdf::piv_puk(&state.master, &identity, g))
                    .collect();
                let next_puk = kdf::piv_puk(&state.master, &identity, next);
                let list: Vec<&str> = names.iter().map(|p| p.as_str()).collect();
                ok(json!({ "puk_candidates": list, "next_puk": next_puk.as_str() }))
            }
        })
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Unlocked,
    Failed,
}

#[derive(Deserialize)]
pub(super) struct CompleteRequest {
    session: String,
    outcome: Outcome,
    #[serde(default)]
    puk_rotated: bool,
    #[serde(default)]
    detail: String,
}

pub(super) fn complete(state: &AppState, req: CompleteRequest) -> Result<Reply, ServerError> {
    let (token, session) = session_or_refuse!(state, Endpoint::Complete, &req.session);
    let card = Some((session.profile, session.identity.as_str()));
    let outcome = match req.outcome {
        Outcome::Unlocked => "unlocked",
        Outcome::Failed => "failed",
    };
    let now = now_ms();
    state.store.transact(|tx| {
        let a = |tx: &mut dyn Tx, outcome: &str, detail: &str| {
            audit_in(tx, card, Some(&token), "complete", outcome, detail)
        };
        Ok(
            match logic::complete(tx, &token.hash, now, req.puk_rotated)? {
                CompleteOutcome::SessionGone => {
                    a(tx, "invalid_session", "session ended")?;
                    refusal(401, "invalid_session", INVALID_SESSION)
                }
                CompleteOutcome::NothingReleased => {
                    let message =
                        "Bad request: puk_rotated is true but this session released no PUK.";
                    a(tx, "bad_request", message)?;
                    refusal(400, "bad_request", message)
                }
                CompleteOutcome::Closed { committed, pending } => {
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
                    ok(json!({}))
                }
            },
        )
    })
}
