//! Four eyes on PIV PUK read-outs (`OperatorPolicy::four_eyes_puk_readout`): a `helpdesk`
//! operator requests the read-out, a *different* `helpdesk` operator approves it, then the
//! requester collects the PUK once, before the request lapses. The requests live in the store
//! (every instance sees them); every step is audited with its operator.

use cardunlock_protocol::operator::{
    Done, PukReadoutList, PukReadoutPending, PukReadoutReply, PukReadoutRequest, PukReadoutSummary,
};
use cardunlock_protocol::{CardRef, ErrorCode, Role, User};
use rand::RngCore;

use super::audit::audit_card;
use super::cards::{piv_read_out_checks, release_puk, unknown_card};
use super::{Actor, AppState, OpError};
use crate::store::readouts::PukReadoutRow;
use crate::store::tx::Tx;
use crate::store::{now_ms, parse_identity, Profile};
use crate::ServerError;

/// Why a request cannot be approved or collected (no side effect beyond the audit row).
fn not_found() -> OpError {
    OpError::refused(
        ErrorCode::NotFound,
        "No open PUK read-out request has this id (unknown, or it lapsed).",
    )
}

fn four_eyes_off() -> OpError {
    OpError::refused(
        ErrorCode::Conflict,
        "This server does not ask for a second operator: read the PUK out directly.",
    )
}

fn check_id(id: &str) -> Result<(), OpError> {
    if id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// The request's card, as stored.
fn card_of(row: &PukReadoutRow) -> Result<(Profile, String, Vec<u8>), ServerError> {
    let profile = Profile::parse(&row.profile)
        .ok_or_else(|| ServerError::InvalidInput("stored profile".into()))?;
    let (identity, bytes) = parse_identity(&row.identity)
        .map_err(|_| ServerError::InvalidInput("stored identity".into()))?;
    Ok((profile, identity, bytes))
}

/// Asks for a PIV card's PUK (role `helpdesk`, four eyes on): stores a request that lapses
/// after the policy's window, audited (`puk_readout` / `requested`). No PUK yet.
pub fn puk_readout_request(
    state: &AppState,
    actor: &Actor,
    profile: &str,
    identity: &str,
    req: &PukReadoutRequest,
) -> Result<PukReadoutPending, OpError> {
    let (role, checked, (profile, identity, _)) =
        piv_read_out_checks(actor, profile, identity, &req.identity_checked)?;
    if !state.operators.four_eyes_puk_readout {
        return Err(four_eyes_off());
    }
    let mut id = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut id)
        .map_err(|e| ServerError::InvalidInput(format!("random source failed: {e}")))?;
    let id = hex::encode(id);
    let now = now_ms();
    let window = i64::try_from(state.operators.puk_readout_window.as_millis()).unwrap_or(i64::MAX);
    let expires_ms = now.saturating_add(window);
    let card = (profile, identity.as_str());
    let row = PukReadoutRow {
        id: id.clone(),
        profile: profile.as_str().into(),
        identity: identity.clone(),
        requester: actor.name().into(),
        identity_checked: checked.clone(),
        created_ms: now,
        expires_ms,
        approver: None,
        state: "pending".into(),
    };
    let found = state.store.transact(|tx| {
        if tx.read_card(card)?.is_none() {
            return Ok(false);
        }
        tx.insert_puk_readout(&row)?;
        let detail = format!("request {id}; identity checked: {checked}");
        audit_card(tx, actor, role, card, ("puk_readout", "requested"), &detail)?;
        Ok(true)
    })?;
    if !found {
        return Err(unknown_card());
    }
    Ok(PukReadoutPending {
        request: id,
        card: super::card_ref(profile, &identity)?,
        expires_ms,
    })
}

/// The read-out requests not yet collected nor lapsed (role `helpdesk`), oldest first.
pub fn puk_readouts(state: &AppState, actor: &Actor) -> Result<PukReadoutList, OpError> {
    actor.require(&[Role::Helpdesk])?;
    let now = now_ms();
    let requests = state.store.transact(|tx| {
        let mut out = Vec::new();
        for row in tx.open_puk_readouts(now)? {
            let (profile, identity, _) = card_of(&row)?;
            let Some(card) = tx.read_card((profile, &identity))? else {
                continue;
            };
            out.push(PukReadoutSummary {
                request: row.id,
                card: super::card_ref(profile, &identity)?,
                user: User {
                    name: card.user_name,
                    email: card.user_email,
                },
                requester: row.requester,
                identity_checked: row.identity_checked,
                created_ms: row.created_ms,
                expires_ms: row.expires_ms,
                approved_by: row.approver,
            });
        }
        Ok(out)
    })?;
    Ok(PukReadoutList { requests })
}

/// What an approval decided inside its transaction.
enum Approval {
    Unknown,
    Refused(OpError),
    Approved,
}

/// Approves another operator's read-out request (role `helpdesk`; the requester is refused
/// 403). Audited with the approver (`puk_readout` / `approved`, or a refusal as an `alert`).
pub fn approve_puk_readout(state: &AppState, actor: &Actor, id: &str) -> Result<Done, OpError> {
    let role = actor.require(&[Role::Helpdesk])?;
    if !state.operators.four_eyes_puk_readout {
        return Err(four_eyes_off());
    }
    check_id(id)?;
    let now = now_ms();
    let outcome = state.store.transact(|tx| {
        let Some(row) = tx.read_puk_readout(id)? else {
            return Ok(Approval::Unknown);
        };
        let (profile, identity, _) = card_of(&row)?;
        let card = (profile, identity.as_str());
        let refuse = |tx: &mut dyn Tx, why: &str, e: OpError| {
            let detail = format!("request {id} of {}: approval refused, {why}", row.requester);
            audit_card(tx, actor, role, card, ("puk_readout", "alert"), &detail)?;
            Ok(Approval::Refused(e))
        };
        if row.expires_ms <= now {
            return refuse(tx, "lapsed", not_found());
        }
        if row.requester == actor.name() {
            let e = OpError::refused(
                ErrorCode::Forbidden,
                "You asked for this read-out: another helpdesk operator must approve it.",
            );
            return refuse(tx, "own request", e);
        }
        if row.state != "pending" {
            let e = OpError::refused(ErrorCode::Conflict, "This request was already approved.");
            return refuse(tx, "already approved", e);
        }
        tx.set_puk_readout_state(id, "approved", Some(actor.name()))?;
        let detail = format!(
            "request {id} of {}; identity checked: {}",
            row.requester, row.identity_checked
        );
        audit_card(tx, actor, role, card, ("puk_readout", "approved"), &detail)?;
        Ok(Approval::Approved)
    })?;
    match outcome {
        Approval::Unknown => Err(not_found()),
        Approval::Refused(e) => Err(e),
        Approval::Approved => Ok(Done {}),
    }
}

/// The requester collects an approved read-out's PUK, once (role `helpdesk`): counted against
/// the daily cap, the card marked `puk_read_out`, audited (`puk_readout` / `read_out`, naming
/// the approver). The card and its PUK.
pub fn collect_puk_readout(
    state: &AppState,
    actor: &Actor,
    id: &str,
) -> Result<(CardRef, PukReadoutReply), OpError> {
    let role = actor.require(&[Role::Helpdesk])?;
    if !state.operators.four_eyes_puk_readout {
        return Err(four_eyes_off());
    }
    check_id(id)?;
    let now = now_ms();
    // The request is read first only to name its card; it is checked again, locked, inside
    // the release's transaction.
    let row = state
        .store
        .transact(|tx| tx.read_puk_readout(id))?
        .ok_or_else(not_found)?;
    let (profile, identity, id_bytes) = card_of(&row)?;
    let card = (profile, identity.as_str());
    let detail = format!("request {id}");
    let reply = release_puk(state, actor, role, card, &id_bytes, &detail, |tx| {
        let Some(row) = tx.read_puk_readout(id)? else {
            return Ok(Err(not_found()));
        };
        let refusal = if row.expires_ms <= now {
            Some(("lapsed", not_found()))
        } else if row.requester != actor.name() {
            Some((
                "not the requester",
                OpError::refused(
                    ErrorCode::Forbidden,
                    "Only the operator who asked for this read-out may collect it.",
                ),
            ))
        } else if row.state == "pending" {
            Some((
                "not approved",
                OpError::refused(
                    ErrorCode::Conflict,
                    "This read-out waits for a second operator's approval.",
                ),
            ))
        } else if row.state != "approved" {
            Some((
                "already collected",
                OpError::refused(ErrorCode::Conflict, "This read-out was already collected."),
            ))
        } else {
            None
        };
        if let Some((why, e)) = refusal {
            let detail = format!("request {id}: collection refused, {why}");
            audit_card(tx, actor, role, card, ("puk_readout", "alert"), &detail)?;
            return Ok(Err(e));
        }
        tx.set_puk_readout_state(id, "collected", row.approver.as_deref())?;
        Ok(Ok(format!(
            " approved by {}; identity checked: {}",
            row.approver.as_deref().unwrap_or("nobody"),
            row.identity_checked
        )))
    })?;
    let card = super::card_ref(profile, &identity)?;
    Ok((card, reply))
}
