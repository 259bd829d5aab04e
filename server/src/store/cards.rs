//! The operator's card functions of [`Store`]: enrolment, the Card Authentication key, a fresh
//! PUK generation, lifting a lock. Each runs in one transaction with its audit row.

use cardunlock_core::crypto::Algorithm;

use super::{
    algorithm_name, card_auth_key_hex, check_text, now_ms, parse_card, AuditNote, CardRecord,
    Enrollment, Profile, Store, MAX_QUESTIONS, MAX_TEXT,
};
use crate::answers::{hash_answer, normalise_answer, Argon2Params};
use crate::ServerError;

impl Store {
    /// Enrols a card (or re-enrols it: user, algorithm and questions are replaced, the card's
    /// open sessions are closed; generations, pending rotation and lock are kept). The answers are normalised and hashed with `argon2`
    /// before the database is touched. Returns the record: personalise the card with the
    /// secrets of its `key_gen` and `puk_gen` ([`crate::kdf`]).
    pub fn enroll(&self, e: &Enrollment, argon2: &Argon2Params) -> Result<CardRecord, ServerError> {
        let (profile, identity) = parse_card(&e.profile, &e.identity_hex)?;
        if profile == Profile::Piv && e.algorithm != Algorithm::TripleDes {
            return Err(ServerError::InvalidInput(
                "PIV management keys are 3DES (API.md: piv-mgmt-key)".into(),
            ));
        }
        check_text("name", &e.name, false)?;
        check_text("email", &e.email, true)?;
        if e.questions.len() > MAX_QUESTIONS {
            return Err(ServerError::InvalidInput(format!(
                "at most {MAX_QUESTIONS} questions"
            )));
        }
        let mut rows = Vec::with_capacity(e.questions.len());
        for (question, answer) in &e.questions {
            check_text("question", question, false)?;
            if answer.len() > MAX_TEXT || normalise_answer(answer).is_empty() {
                return Err(ServerError::InvalidInput(format!(
                    "the answer to \"{question}\" must be 1 to {MAX_TEXT} bytes, not only spaces"
                )));
            }
            rows.push((question.as_str(), hash_answer(answer, argon2)?));
        }
        let card_auth_key = match &e.card_auth_key {
            Some(_) if profile != Profile::Piv => {
                return Err(ServerError::InvalidInput(
                    "only PIV cards have a Card Authentication key".into(),
                ))
            }
            Some(key) => Some(card_auth_key_hex(key)?),
            None => None,
        };
        let card = (profile, identity.as_str());
        let algorithm = algorithm_name(e.algorithm);
        let detail = format!("{} question(s), admin algorithm {algorithm}", rows.len());
        self.transact(|tx| {
            let now = now_ms();
            let inserted = tx.insert_card(card, algorithm, &e.name, &e.email, now)?;
            if !inserted {
                // Lock the row, then replace what re-enrolment replaces.
                tx.read_card(card)?;
                tx.update_card_user(card, algorithm, &e.name, &e.email)?;
                tx.delete_questions(card)?;
                // Sessions opened under the old questions end here: none of them can be
                // verified against answers that no longer exist.
                tx.close_card_sessions(card)?;
                tx.clear_card_diverged(card)?;
            }
            for (position, (question, hash)) in rows.iter().enumerate() {
                let position = u32::try_from(position).unwrap_or(u32::MAX);
                tx.insert_question(card, position, question, hash)?;
            }
            if let Some(key) = &card_auth_key {
                tx.set_card_auth_key(card, Some(key))?;
            }
            tx.insert_audit(
                &AuditNote::server(
                    Some(card),
                    "enroll",
                    if inserted { "enrolled" } else { "re-enrolled" },
                    &detail,
                ),
                now,
            )?;
            tx.read_card(card)?.ok_or(ServerError::UnknownCard)
        })
    }

    /// Records a PIV card's Card Authentication public key (9E), an uncompressed P-256 point
    /// (audited). For cards enrolled with [`Store::enroll`], which does not read the card; the
    /// enrollment station's report records it for cards enrolled through the operator API.
    /// [`ServerError::UnknownCard`] if the card is not enrolled, [`ServerError::InvalidInput`]
    /// if the key is not a P-256 point.
    pub fn set_card_auth_key(
        &self,
        identity_hex: &str,
        public_key: &[u8],
    ) -> Result<(), ServerError> {
        let (profile, identity) = parse_card("piv", identity_hex)?;
        let key = card_auth_key_hex(public_key)?;
        let card = (profile, identity.as_str());
        self.transact(|tx| {
            tx.read_card(card)?.ok_or(ServerError::UnknownCard)?;
            tx.set_card_auth_key(card, Some(&key))?;
            tx.insert_audit(
                &AuditNote::server(Some(card), "card_auth_key", "recorded", ""),
                now_ms(),
            )
        })
    }

    /// Moves a PIV card to a fresh PUK generation, past every one a workstation has seen, and
    /// returns it (audited). For the operator after `/puk` answered `puk_at_risk`: find which
    /// PUK the card holds among generations `puk_gen..=pending_puk_gen` ([`crate::kdf::piv_puk`]),
    /// change the card's PUK to `kdf::piv_puk(returned generation)`, then call this; the next
    /// `/puk` releases that one PUK. [`ServerError::UnknownCard`] if the card is not enrolled.
    pub fn renew_puk_generation(
        &self,
        profile: &str,
        identity_hex: &str,
    ) -> Result<u32, ServerError> {
        let (profile, identity) = parse_card(profile, identity_hex)?;
        if profile != Profile::Piv {
            return Err(ServerError::InvalidInput(
                "PUK generations are for PIV cards".into(),
            ));
        }
        let card = (profile, identity.as_str());
        self.transact(|tx| {
            let record = tx.read_card(card)?.ok_or(ServerError::UnknownCard)?;
            let top = record.pending_puk_gen.unwrap_or(0).max(record.puk_gen);
            let fresh = top
                .checked_add(1)
                .ok_or_else(|| ServerError::InvalidInput("PUK generation exhausted".into()))?;
            tx.set_puk_gens(card, fresh, None)?;
            tx.clear_denied_upto(card, fresh)?;
            let detail = format!(
                "PUK generation renewed to {fresh} (was {}, pending {:?})",
                record.puk_gen, record.pending_puk_gen
            );
            tx.insert_audit(
                &AuditNote::server(Some(card), "puk", "operator_renewed", &detail),
                now_ms(),
            )?;
            Ok(fresh)
        })
    }

    /// Clears a card's lock and attempt counter (audited). [`ServerError::UnknownCard`] if it is
    /// not enrolled.
    pub fn lift_lock(&self, profile: &str, identity_hex: &str) -> Result<(), ServerError> {
        let (profile, identity) = parse_card(profile, identity_hex)?;
        let card = (profile, identity.as_str());
        self.transact(|tx| {
            let record = tx.read_card(card)?.ok_or(ServerError::UnknownCard)?;
            tx.set_attempts(card, 0, false)?;
            let detail = format!(
                "was {}, {} failed attempt(s)",
                if record.locked {
                    "locked"
                } else {
                    "not locked"
                },
                record.failed_attempts
            );
            tx.insert_audit(
                &AuditNote::server(Some(card), "lift_lock", "lifted", &detail),
                now_ms(),
            )
        })
    }
}
