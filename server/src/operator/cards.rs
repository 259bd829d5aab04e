//! The help desk's card functions: search, detail, lift-lock, offline response, PUK read-out.

use cardunlock_core::crypto::Algorithm;
use cardunlock_protocol::operator::{
    group_for_reading, CardDetail, CardSummary, LiftLockRequest, OfflineReply, OfflineRequest,
    PukReadoutReply, PukReadoutRequest, SearchReply,
};
use cardunlock_protocol::{AlgorithmName, CardRef, ErrorBody, ErrorCode, Role, Secret, User};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::audit::{audit_card, record};
use super::{check_note, day_of, Actor, AppState, OpError};
use crate::kdf;
use crate::store::ops::AuditFilter;
use crate::store::tx::Tx;
use crate::store::{now_ms, parse_identity, CardRecord, Profile};

/// Longest search text, in bytes.
const MAX_QUERY: usize = 128;
/// Most cards a search returns.
const MAX_RESULTS: u32 = 100;
/// Audit rows on a card's page.
const TIMELINE: u32 = 50;

/// Every role may look cards up.
const LOOKERS: [Role; 4] = [Role::Helpdesk, Role::Enroller, Role::Auditor, Role::Admin];

fn card_ref(c: &CardRecord) -> Result<CardRef, crate::ServerError> {
    let profile = Profile::parse(&c.profile)
        .ok_or_else(|| crate::ServerError::InvalidInput("stored profile".into()))?;
    super::card_ref(profile, &c.identity_hex)
}

fn user(c: &CardRecord) -> User {
    User {
        name: c.user_name.clone(),
        email: c.user_email.clone(),
    }
}

/// A card named by a URL path, checked: its profile, identity (hex) and identity bytes.
pub(super) type Parsed = (Profile, String, Vec<u8>);

/// Profile and identity from a URL path, checked.
fn parse(profile: &str, identity: &str) -> Result<Parsed, OpError> {
    let profile = Profile::parse(profile)
        .ok_or_else(|| OpError::bad("Bad request: the profile must be piv, gids or iso."))?;
    let (identity, bytes) = parse_identity(identity)?;
    Ok((profile, identity, bytes))
}

pub(super) fn unknown_card() -> OpError {
    OpError::refused(
        ErrorCode::UnknownCard,
        "No card is enrolled with this profile and identity.",
    )
}

/// A help-desk read-out's checks, in order: the role `helpdesk`, the note of how the caller was
/// identified, the card's profile and identity. The role, the note, and the card as [`parse`]
/// gives it.
fn read_out_checks(
    actor: &Actor,
    profile: &str,
    identity: &str,
    identity_checked: &str,
) -> Result<(Role, String, Parsed), OpError> {
    let role = actor.require(&[Role::Helpdesk])?;
    let checked = check_note(
        "identity_checked (how the caller was identified)",
        identity_checked,
    )?;
    Ok((role, checked, parse(profile, identity)?))
}

/// Cards whose holder's name or e-mail, or whose identity, contains `q` (case-insensitive).
pub fn search(state: &AppState, actor: &Actor, q: &str) -> Result<SearchReply, OpError> {
    actor.require(&LOOKERS)?;
    let needle = q.trim().to_lowercase();
    if needle.is_empty() || needle.len() > MAX_QUERY {
        return Err(OpError::bad(format!(
            "Bad request: search for 1 to {MAX_QUERY} bytes of text."
        )));
    }
    let cards = state
        .store
        .transact(|tx| tx.search_cards(&needle, MAX_RESULTS))?;
    Ok(SearchReply {
        cards: cards
            .iter()
            .map(|c| {
                Ok(CardSummary {
                    card: card_ref(c)?,
                    user: user(c),
                    locked: c.locked,
                    enrolled_ms: c.enrolled_ms,
                })
            })
            .collect::<Result<_, crate::ServerError>>()?,
    })
}

/// A card's state, questions (never answers) and latest audit rows.
pub fn card_detail(
    state: &AppState,
    actor: &Actor,
    profile: &str,
    identity: &str,
) -> Result<CardDetail, OpError> {
    actor.require(&LOOKERS)?;
    let (profile, identity, _) = parse(profile, identity)?;
    let card = (profile, identity.as_str());
    let found = state.store.transact(|tx| {
        let Some(record) = tx.read_card(card)? else {
            return Ok(None);
        };
        let questions = tx.questions(card)?.into_iter().map(|(q, _)| q).collect();
        let timeline = tx.audit_query(&AuditFilter {
            profile: Some(profile.as_str()),
            identity: Some(card.1),
            user: None,
            operator: None,
            event: None,
            since_ms: None,
            until_ms: None,
            limit: TIMELINE,
        })?;
        let diverged = tx.card_diverged(card)?;
        Ok(Some((record, questions, timeline, diverged)))
    })?;
    let (c, questions, timeline, diverged) = found.ok_or_else(unknown_card)?;
    Ok(CardDetail {
        card: card_ref(&c)?,
        user: user(&c),
        algorithm: AlgorithmName::of(c.algorithm).unwrap_or(AlgorithmName::TripleDes),
        locked: c.locked,
        attempts_left: state.max_attempts.saturating_sub(c.failed_attempts),
        key_generation: c.key_gen,
        pending_key_generation: c.pending_key_gen,
        puk_generation: c.puk_gen,
        pending_puk_generation: c.pending_puk_gen,
        puk_read_out: c.puk_read_out,
        diverged,
        questions,
        enrolled_ms: c.enrolled_ms,
        timeline: timeline.into_iter().map(record).collect(),
    })
}

/// Clears a card's online-unlock lock and wrong-answer counter (role `helpdesk`), with the
/// reason in the audit.
pub fn lift_lock(
    state: &AppState,
    actor: &Actor,
    profile: &str,
    identity: &str,
    req: &LiftLockRequest,
) -> Result<cardunlock_protocol::operator::Done, OpError> {
    let role = actor.require(&[Role::Helpdesk])?;
    let reason = check_note("a reason", &req.reason)?;
    let (profile, identity, _) = parse(profile, identity)?;
    let card = (profile, identity.as_str());
    let found = state.store.transact(|tx| {
        let Some(record) = tx.read_card(card)? else {
            return Ok(false);
        };
        tx.set_attempts(card, 0, false)?;
        let detail = format!(
            "was {}, {} failed attempt(s); reason: {reason}",
            if record.locked {
                "locked"
            } else {
                "not locked"
            },
            record.failed_attempts
        );
        audit_card(tx, actor, role, card, ("lift_lock", "lifted"), &detail)?;
        Ok(true)
    })?;
    if found {
        Ok(cardunlock_protocol::operator::Done {})
    } else {
        Err(unknown_card())
    }
}

/// What a capped, once-per-challenge operator action decided inside its transaction.
enum Gate<T> {
    Unknown,
    Refused(OpError),
    Answer(T),
}

impl<T> Gate<T> {
    /// The answer, or the refusal (an unknown card's when the card was not found).
    fn answer(self) -> Result<T, OpError> {
        match self {
            Gate::Unknown => Err(unknown_card()),
            Gate::Refused(e) => Err(e),
            Gate::Answer(answer) => Ok(answer),
        }
    }
}

fn cap_reached(what: &str, cap: u32, retry_after: u64) -> OpError {
    OpError::Refused(ErrorBody {
        retry_after: Some(retry_after),
        ..ErrorBody::new(
            ErrorCode::CapReached,
            format!("You reached today's limit of {cap} {what}. Ask another operator or wait."),
        )
    })
}

/// The response to an ISO card's admin challenge (role `helpdesk`): 8 bytes with 3DES-ECB, 16
/// with AES-ECB, under the card's admin key at its confirmed generation. Each challenge is
/// answered once per card, ever (its SHA-256 is recorded); GIDS and PIV cards are refused
/// (`offline_unsupported`); a daily cap per operator (refusal audited as an alert).
pub fn offline_response(
    state: &AppState,
    actor: &Actor,
    profile: &str,
    identity: &str,
    req: &OfflineRequest,
) -> Result<OfflineReply, OpError> {
    let (role, checked, (profile, identity, id_bytes)) =
        read_out_checks(actor, profile, identity, &req.identity_checked)?;
    let challenge = req.challenge.as_bytes();
    let challenge_hash = hex::encode(Sha256::digest(challenge));
    let card = (profile, identity.as_str());
    let now = now_ms();
    let (day, day_left) = day_of(now);
    let cap = state.operators.daily_offline_responses;
    let gate =
        state.store.transact(|tx| {
            let Some(record) = tx.read_card(card)? else {
                return Ok(Gate::Unknown);
            };
            let refuse = |tx: &mut dyn crate::store::Tx, outcome: &str, e: OpError| {
                let detail = format!("identity checked: {checked}");
                audit_card(
                    tx,
                    actor,
                    role,
                    card,
                    ("offline_response", outcome),
                    &detail,
                )?;
                Ok(Gate::Refused(e))
            };
            match profile {
                Profile::Gids => {
                    return refuse(
                        tx,
                        "refused",
                        OpError::refused(
                            ErrorCode::OfflineUnsupported,
                            "GIDS authenticates mutually: use the online unlock.",
                        ),
                    )
                }
                Profile::Piv => {
                    return refuse(
                        tx,
                        "refused",
                        OpError::refused(
                            ErrorCode::OfflineUnsupported,
                            "A PIV PIN is unblocked with the PUK: read the PUK out instead.",
                        ),
                    )
                }
                Profile::Iso => {}
            }
            let block = if record.algorithm == Algorithm::TripleDes {
                8
            } else {
                16
            };
            if challenge.len() != block {
                return Ok(Gate::Refused(OpError::bad(format!(
                    "Bad request: this card's admin key ({}) takes a {block}-byte challenge.",
                    AlgorithmName::name_of(record.algorithm)
                ))));
            }
            if tx.daily_count(actor.name(), day, "offline_response")? >= cap {
                return refuse(tx, "alert", cap_reached("offline responses", cap, day_left));
            }
            if !tx.use_challenge(card, "offline", &challenge_hash, now)? {
                return refuse(tx, "challenge_used", OpError::refused(
                ErrorCode::ChallengeUsed,
                "This challenge was answered before: have the user start again for a new one.",
            ));
            }
            tx.bump_daily(actor.name(), day, "offline_response")?;
            let key = kdf::admin_key(
                &state.master,
                "iso",
                &id_bytes,
                record.algorithm,
                record.key_gen,
            );
            let mut response = Zeroizing::new(challenge.to_vec());
            key.encrypt_ecb(&mut response[..])
                .map_err(|_| crate::ServerError::InvalidInput("challenge length".into()))?;
            let detail = format!(
                "identity checked: {checked}; key generation {}",
                record.key_gen
            );
            audit_card(
                tx,
                actor,
                role,
                card,
                ("offline_response", "answered"),
                &detail,
            )?;
            Ok(Gate::Answer(Zeroizing::new(hex::encode_upper(
                &response[..],
            ))))
        })?;
    let hex = gate.answer()?;
    Ok(OfflineReply {
        grouped: group_for_reading(&hex),
        response: Secret::new(hex.as_str()),
    })
}

/// The PUK of a PIV card's confirmed generation, to read out to its holder (role `helpdesk`);
/// marks the card `puk_read_out` until the next rotation. A daily cap per operator (refusal
/// audited as an alert). With four eyes on, refused: the read-out is a request
/// ([`super::puk_readout_request`]) another operator approves.
pub fn puk_readout(
    state: &AppState,
    actor: &Actor,
    profile: &str,
    identity: &str,
    req: &PukReadoutRequest,
) -> Result<PukReadoutReply, OpError> {
    let (role, checked, (profile, identity, id_bytes)) =
        piv_read_out_checks(actor, profile, identity, &req.identity_checked)?;
    if state.operators.four_eyes_puk_readout {
        return Err(OpError::refused(
            ErrorCode::Conflict,
            "This server wants a second operator: request the read-out, have it approved, then collect it.",
        ));
    }
    let detail = format!("identity checked: {checked}");
    release_puk(
        state,
        actor,
        role,
        (profile, &identity),
        &id_bytes,
        &detail,
        |_| Ok(Ok(String::new())),
    )
}

/// [`read_out_checks`] for a PUK read-out: the card must be a PIV card.
pub(super) fn piv_read_out_checks(
    actor: &Actor,
    profile: &str,
    identity: &str,
    identity_checked: &str,
) -> Result<(Role, String, Parsed), OpError> {
    let (role, checked, parsed) = read_out_checks(actor, profile, identity, identity_checked)?;
    if parsed.0 != Profile::Piv {
        return Err(OpError::refused(
            ErrorCode::OfflineUnsupported,
            "Only PIV cards have a PUK: answer the card's challenge instead.",
        ));
    }
    Ok((role, checked, parsed))
}

/// Releases a PIV card's PUK to `actor` in one transaction: `first` may refuse (its refusal is
/// committed with whatever it wrote, e.g. an audit row) or give more detail for the audit row
/// (e.g. a request's approver), then the daily cap, the card's `puk_read_out` mark and the
/// audit row with `detail`.
pub(super) fn release_puk(
    state: &AppState,
    actor: &Actor,
    role: Role,
    card: (Profile, &str),
    id_bytes: &[u8],
    detail: &str,
    mut first: impl FnMut(&mut dyn Tx) -> Result<Result<String, OpError>, crate::ServerError>,
) -> Result<PukReadoutReply, OpError> {
    let (day, day_left) = day_of(now_ms());
    let cap = state.operators.daily_puk_readouts;
    let gate = state.store.transact(|tx| {
        let Some(record) = tx.read_card(card)? else {
            return Ok(Gate::Unknown);
        };
        let more = match first(tx)? {
            Ok(more) => more,
            Err(e) => return Ok(Gate::Refused(e)),
        };
        if tx.daily_count(actor.name(), day, "puk_readout")? >= cap {
            audit_card(tx, actor, role, card, ("puk_readout", "alert"), detail)?;
            return Ok(Gate::Refused(cap_reached("PUK read-outs", cap, day_left)));
        }
        tx.bump_daily(actor.name(), day, "puk_readout")?;
        tx.set_puk_read_out(card)?;
        let detail = format!(
            "{detail}{more}; PUK generation {}{}",
            record.puk_gen,
            record
                .pending_puk_gen
                .map_or(String::new(), |p| format!(" (pending {p})"))
        );
        audit_card(tx, actor, role, card, ("puk_readout", "read_out"), &detail)?;
        Ok(Gate::Answer((record.puk_gen, record.pending_puk_gen)))
    })?;
    let (generation, pending) = gate.answer()?;
    let puk = kdf::piv_puk(&state.master, id_bytes, generation);
    let alternative = pending
        .filter(|p| *p != generation)
        .map(|p| Secret::new(kdf::piv_puk(&state.master, id_bytes, p).as_str()));
    Ok(PukReadoutReply {
        puk: Secret::new(puk.as_str()),
        generation,
        alternative,
    })
}
