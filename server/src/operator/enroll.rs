//! Enrollment through the server: the enrollment station gets the card's current and next
//! secrets over the pinned TLS connection, personalises the card, and reports it. Nothing is
//! recorded as the card's state before the report; until then the new generation is a pending
//! candidate and the old one stays valid.

use cardunlock_core::crypto::{AdminKey, Algorithm};
use cardunlock_protocol::operator::{CardSecrets, Done, EnrollDone, EnrollReply, EnrollRequest};
use cardunlock_protocol::{AlgorithmName, ErrorBody, ErrorCode, Role, Secret};
use rand::RngCore;

use super::audit::audit_card;
use super::{Actor, AppState, OpError};
use crate::answers::{hash_answer, normalise_answer};
use crate::kdf;
use crate::store::ops::EnrollmentRow;
use crate::store::{now_ms, Profile};
use crate::{MasterSecret, ServerError};

const MAX_QUESTIONS: usize = 16;
const MAX_TEXT: usize = 512;

fn text(what: &str, t: &str, may_be_empty: bool) -> Result<(), OpError> {
    if t.len() > MAX_TEXT || (!may_be_empty && t.trim().is_empty()) {
        return Err(OpError::bad(format!(
            "Bad request: {what} must be {} to {MAX_TEXT} bytes.",
            u8::from(!may_be_empty)
        )));
    }
    Ok(())
}

/// The server-derived secrets of a card at a key and a PUK generation.
fn secrets(
    master: &MasterSecret,
    profile: Profile,
    identity: &[u8],
    algorithm: Algorithm,
    key_gen: u32,
    puk_gen: u32,
) -> CardSecrets {
    let key: AdminKey = match profile {
        Profile::Piv => kdf::piv_mgmt_key(master, identity, key_gen),
        _ => kdf::admin_key(master, profile.as_str(), identity, algorithm, key_gen),
    };
    let piv = profile == Profile::Piv;
    CardSecrets {
        algorithm: AlgorithmName::of(key.algorithm()).unwrap_or(AlgorithmName::TripleDes),
        key_generation: key_gen,
        admin_key: Secret::new(hex::encode_upper(key.expose_bytes())),
        puk_generation: piv.then_some(puk_gen),
        puk: piv.then(|| Secret::new(kdf::piv_puk(master, identity, puk_gen).as_str())),
    }
}

/// Begins an enrollment (role `enroller`): checks the request, hashes the answers, and hands
/// out the card's next-generation secrets (and the ones it may hold now). Re-enrolling an
/// enrolled card is audited as an alert; enrollments are limited per enroller and hour.
pub fn enroll_begin(
    state: &AppState,
    actor: &Actor,
    req: &EnrollRequest,
) -> Result<EnrollReply, OpError> {
    let role = actor.require(&[Role::Enroller])?;
    let profile = req.card.profile;
    let (identity, id_bytes) = (req.card.identity.to_hex(), req.card.identity.as_bytes());
    let algorithm = req.algorithm.algorithm();
    if profile == Profile::Piv && algorithm != Algorithm::TripleDes {
        return Err(OpError::bad(
            "Bad request: PIV management keys are 3DES (piv-mgmt-key).",
        ));
    }
    if profile == Profile::Gids && algorithm != Algorithm::TripleDes {
        return Err(OpError::bad("Bad request: GIDS admin keys are 3DES."));
    }
    text("the user's name", &req.user.name, false)?;
    text("the user's e-mail", &req.user.email, true)?;
    if req.questions.len() > MAX_QUESTIONS {
        return Err(OpError::bad(format!(
            "Bad request: at most {MAX_QUESTIONS} questions."
        )));
    }
    for qa in &req.questions {
        text("a question", &qa.question, false)?;
        let a = qa.answer.expose();
        if a.len() > MAX_TEXT || normalise_answer(a).is_empty() {
            return Err(OpError::bad(format!(
                "Bad request: the answer to \"{}\" must be 1 to {MAX_TEXT} bytes, not only spaces.",
                qa.question
            )));
        }
    }
    let now = now_ms();
    let per_hour = state.operators.enrollments_per_hour;
    let card = (profile, identity.as_str());
    let begun = state
        .store
        .transact(|tx| tx.enrollments_since(actor.name(), now - 3_600_000))?;
    if begun >= per_hour {
        state.store.transact(|tx| {
            let detail = format!("{begun} enrollments in the last hour");
            audit_card(tx, actor, role, card, ("enroll_begin", "alert"), &detail)
        })?;
        return Err(OpError::Refused(ErrorBody {
            retry_after: Some(3600),
            ..ErrorBody::new(
                ErrorCode::CapReached,
                format!("You began {per_hour} enrollments in the last hour: wait a little."),
            )
        }));
    }
    let mut hashed = Vec::with_capacity(req.questions.len());
    for qa in &req.questions {
        hashed.push((
            qa.question.clone(),
            hash_answer(qa.answer.expose(), &state.argon2)?,
        ));
    }
    let questions = serde_json::to_string(&hashed)
        .map_err(|e| ServerError::InvalidInput(format!("questions: {e}")))?;
    let mut id = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut id)
        .map_err(|_| ServerError::Random)?;
    let id = hex::encode(id);
    let algorithm_name = AlgorithmName::name_of(algorithm);
    let planned = state.store.transact(|tx| {
        let record = tx.read_card(card)?;
        let open = tx.unconfirmed_enrollments(card)?;
        // (key generation, PUK generation, algorithm) the card may hold, most likely first.
        let mut current: Vec<(u32, u32, Algorithm)> = Vec::new();
        if let Some(r) = &record {
            current.push((r.key_gen, r.puk_gen, r.algorithm));
            if let Some(p) = r.pending_puk_gen {
                current.push((r.key_gen, p, r.algorithm));
            }
        }
        for e in &open {
            let alg = crate::store::parse_algorithm(&e.algorithm).unwrap_or(Algorithm::TripleDes);
            current.push((e.key_gen, e.puk_gen, alg));
        }
        current.dedup();
        let top_key = current
            .iter()
            .map(|c| c.0)
            .chain(record.as_ref().and_then(|r| r.pending_key_gen))
            .max();
        let top_puk = current.iter().map(|c| c.1).max();
        let next_key = top_key.map_or(Ok(0), |g| g.checked_add(1).ok_or(()));
        let next_puk = top_puk.map_or(Ok(0), |g| g.checked_add(1).ok_or(()));
        let (Ok(next_key), Ok(next_puk)) = (next_key, next_puk) else {
            return Err(ServerError::InvalidInput("generation exhausted".into()));
        };
        tx.insert_enrollment(&EnrollmentRow {
            id: id.clone(),
            profile: profile.as_str().to_owned(),
            identity: identity.clone(),
            operator: actor.name().to_owned(),
            algorithm: algorithm_name.to_owned(),
            user_name: req.user.name.clone(),
            user_email: req.user.email.clone(),
            questions: questions.clone(),
            key_gen: next_key,
            puk_gen: next_puk,
            created_ms: now,
            state: "open".into(),
        })?;
        if let Some(r) = &record {
            tx.set_key_gens(card, r.key_gen, Some(next_key))?;
            if profile == Profile::Piv {
                // Until the report comes, the card may hold the new PUK: the next unlock offers
                // it with the others (a lost report must not cost PUK tries).
                tx.set_puk_gens(card, r.puk_gen, Some(next_puk))?;
            }
        }
        let detail = format!(
            "enrollment {id}: {} question(s), admin algorithm {algorithm_name}, next key \
             generation {next_key}{}",
            hashed.len(),
            if record.is_some() {
                "; the card is already enrolled"
            } else {
                ""
            }
        );
        let outcome = if record.is_some() { "alert" } else { "begun" };
        audit_card(tx, actor, role, card, ("enroll_begin", outcome), &detail)?;
        Ok((current, next_key, next_puk))
    })?;
    let (current, next_key, next_puk) = planned;
    let m = &state.master;
    Ok(EnrollReply {
        enrollment: id,
        current: current
            .iter()
            .map(|&(k, p, alg)| secrets(m, profile, id_bytes, alg, k, p))
            .collect(),
        next: secrets(m, profile, id_bytes, algorithm, next_key, next_puk),
    })
}

/// Records an enrollment's outcome (role `enroller`, the operator who began it). With
/// `personalised: true` the card, its user, its questions and the new generations are
/// committed (other unconfirmed enrollments of the card are superseded, open unlock sessions
/// closed); with `false` the enrollment is marked failed and its generation stays a candidate
/// the next enrollment offers.
pub fn enroll_done(
    state: &AppState,
    actor: &Actor,
    id: &str,
    done: &EnrollDone,
) -> Result<Done, OpError> {
    let role = actor.require(&[Role::Enroller])?;
    let not_found = || OpError::refused(ErrorCode::NotFound, "No such enrollment.");
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let card_auth_key = match &done.card_auth_key {
        None => None,
        Some(key) => Some(
            crate::store::card_auth_key_hex(key.as_bytes()).map_err(|e| {
                OpError::refused(ErrorCode::BadRequest, format!("Bad request: {e}."))
            })?,
        ),
    };
    if let Some(name) = done.iso_profile.as_deref() {
        if !cardunlock_protocol::operator::valid_iso_profile_name(name) {
            return Err(OpError::bad(
                "Bad request: iso_profile is 1 to 64 letters, digits, '.', '_' or '-'.",
            ));
        }
    }
    let result = state.store.transact(|tx| {
        let Some(e) = tx.read_enrollment(id)? else {
            return Ok(Err(not_found()));
        };
        if e.operator != actor.name() {
            return Ok(Err(OpError::refused(
                ErrorCode::Forbidden,
                "Only the operator who began an enrollment reports it.",
            )));
        }
        if e.state != "open" {
            return Ok(Err(OpError::refused(
                ErrorCode::Conflict,
                format!("This enrollment is already closed ({}).", e.state),
            )));
        }
        let Some(profile) = Profile::parse(&e.profile) else {
            return Ok(Err(not_found()));
        };
        let card = (profile, e.identity.as_str());
        if profile != Profile::Iso && done.iso_profile.is_some() {
            return Ok(Err(OpError::bad(
                "Bad request: only ISO admin cards name an ISO profile.",
            )));
        }
        if !done.personalised {
            tx.set_enrollment_state(id, "failed")?;
            if profile == Profile::Piv {
                // Reported not done: still possible (a step may have reached the card), but
                // offered last.
                tx.deny_puk(card, e.puk_gen)?;
            }
            let detail = format!("enrollment {id}: the card was not personalised");
            audit_card(
                tx,
                actor,
                role,
                card,
                ("enroll", "not_personalised"),
                &detail,
            )?;
            return Ok(Ok(()));
        }
        let questions: Vec<(String, String)> = serde_json::from_str(&e.questions)
            .map_err(|err| ServerError::InvalidInput(format!("stored questions: {err}")))?;
        let inserted = tx.insert_card(card, &e.algorithm, &e.user_name, &e.user_email, now_ms())?;
        if !inserted {
            tx.read_card(card)?;
            tx.update_card_user(card, &e.algorithm, &e.user_name, &e.user_email)?;
            tx.close_card_sessions(card)?;
        }
        tx.delete_questions(card)?;
        for (position, (question, hash)) in questions.iter().enumerate() {
            tx.insert_question(
                card,
                u32::try_from(position).unwrap_or(u32::MAX),
                question,
                hash,
            )?;
        }
        if profile == Profile::Iso {
            // Always written: a name recorded for an earlier card must not outlive this one.
            tx.set_iso_profile(card, done.iso_profile.as_deref())?;
        }
        if profile == Profile::Piv {
            // The card's key as read now, or none: a key recorded for an earlier card under
            // this identity must not outlive the re-enrollment.
            tx.set_card_auth_key(card, card_auth_key.as_deref())?;
        }
        tx.set_key_gens(card, e.key_gen, None)?;
        tx.set_puk_gens(card, e.puk_gen, None)?;
        tx.clear_denied_upto(card, e.puk_gen)?;
        tx.clear_card_diverged(card)?;
        tx.set_enrollment_state(id, "done")?;
        tx.supersede_enrollments(card, id)?;
        let detail = format!(
            "enrollment {id}: {} question(s), key generation {}, PUK generation {}",
            questions.len(),
            e.key_gen,
            e.puk_gen
        );
        let outcome = if inserted { "enrolled" } else { "re-enrolled" };
        audit_card(tx, actor, role, card, ("enroll", outcome), &detail)?;
        Ok(Ok(()))
    })?;
    result.map(|()| Done {})
}
