//! [`MacTx`]: the transaction every store call runs in once the store has its row key. It
//! wraps a backend's [`Tx`] and, around each primitive, checks the MAC of every MACed row the
//! primitive reads or changes and stamps the rows it writes. A row is checked before it is
//! changed (so a write never blesses a forged row) unless it was already checked in this
//! transaction, under its row lock.

use std::collections::HashMap;

use super::fused::{put, Checked, Fields};

mod checks;
mod pass;

use super::USED_CHALLENGES;
use super::{check_rows, Val, CARDS, PUK_DENIED, QUESTIONS, SESSIONS};
use crate::store::tx::{CardKey, Counted, Tx};
use crate::store::{AuditNote, CardRecord, Session};
use crate::ServerError;

/// A filter of equal columns.
pub(crate) type Filter = Vec<(&'static str, Val)>;

/// A card's rows: `profile = ? AND identity = ?`.
pub(super) fn card_f((profile, identity): CardKey<'_>) -> Filter {
    vec![
        ("profile", Val::text(profile.as_str())),
        ("identity", Val::text(identity)),
    ]
}

/// A token's row.
pub(super) fn token_f(token_hash: &[u8; 32]) -> Filter {
    vec![("token_hash", Val::Blob(token_hash.to_vec()))]
}

/// A row keyed by one text column.
pub(super) fn text_f(column: &'static str, value: &str) -> Filter {
    vec![(column, Val::text(value))]
}

/// A backend transaction with row MACs checked and stamped.
pub(crate) struct MacTx<'a> {
    pub(super) inner: &'a mut dyn Tx,
    pub(super) key: &'a [u8; 32],
    /// Rows (table, key) checked or stamped in this transaction, as they are now.
    rows: HashMap<(&'static str, Vec<Val>), Checked>,
}

fn question_f(card: CardKey<'_>, position: u32) -> Filter {
    let mut f = card_f(card);
    f.push(("position", Val::Int(i64::from(position))));
    f
}

fn denied_f(card: CardKey<'_>, generation: u32) -> Filter {
    let mut f = card_f(card);
    f.push(("gen", Val::Int(i64::from(generation))));
    f
}

impl Tx for MacTx<'_> {
    fn read_card(&mut self, card: CardKey<'_>) -> Result<Option<CardRecord>, ServerError> {
        match self.locked_rows(&CARDS, &card_f(card))?.first() {
            Some(row) => Fields {
                table: &CARDS,
                values: &row.values,
            }
            .card(card)
            .map(Some),
            None => Ok(None),
        }
    }

    fn insert_card(
        &mut self,
        card: CardKey<'_>,
        algorithm: &str,
        name: &str,
        email: &str,
        now: i64,
    ) -> Result<bool, ServerError> {
        let inserted = self.inner.insert_card(card, algorithm, name, email, now)?;
        if inserted {
            self.stamp(&CARDS, &card_f(card))?;
        }
        Ok(inserted)
    }

    fn update_card_user(
        &mut self,
        card: CardKey<'_>,
        algorithm: &str,
        name: &str,
        email: &str,
    ) -> Result<(), ServerError> {
        self.set(&CARDS, &card_f(card), &|row| {
            put(&CARDS, row, "algorithm", Val::text(algorithm));
            put(&CARDS, row, "user_name", Val::text(name));
            put(&CARDS, row, "user_email", Val::text(email));
        })
    }

    fn set_attempts(
        &mut self,
        card: CardKey<'_>,
        failed: u32,
        locked: bool,
    ) -> Result<(), ServerError> {
        self.set(&CARDS, &card_f(card), &|row| {
            put(&CARDS, row, "failed_attempts", Val::Int(i64::from(failed)));
            put(&CARDS, row, "locked", Val::Int(i64::from(locked)));
            if failed == 0 && !locked {
                put(&CARDS, row, "backoff_until_ms", Val::Int(0));
            }
        })
    }

    fn set_puk_gens(
        &mut self,
        card: CardKey<'_>,
        puk_gen: u32,
        pending: Option<u32>,
    ) -> Result<(), ServerError> {
        self.set(&CARDS, &card_f(card), &|row| {
            let new = Val::Int(i64::from(puk_gen));
            if super::fused::value(&CARDS, row, "puk_gen") != &new {
                put(&CARDS, row, "puk_read_out", Val::Int(0));
            }
            put(&CARDS, row, "puk_gen", new);
            let pending = pending.map_or(Val::Null, |p| Val::Int(i64::from(p)));
            put(&CARDS, row, "pending_puk_gen", pending);
        })
    }

    fn delete_questions(&mut self, card: CardKey<'_>) -> Result<(), ServerError> {
        self.inner.delete_questions(card)
    }

    fn insert_question(
        &mut self,
        card: CardKey<'_>,
        position: u32,
        question: &str,
        answer_hash: &str,
    ) -> Result<(), ServerError> {
        self.inner
            .insert_question(card, position, question, answer_hash)?;
        self.stamp(&QUESTIONS, &question_f(card, position))
    }

    fn questions(&mut self, card: CardKey<'_>) -> Result<Vec<(String, String)>, ServerError> {
        let mut rows = self.check(&QUESTIONS, &card_f(card))?;
        rows.sort_by_key(
            |r| match super::fused::value(&QUESTIONS, &r.values, "position") {
                Val::Int(i) => *i,
                _ => i64::MAX,
            },
        );
        rows.iter()
            .map(|r| {
                let f = Fields {
                    table: &QUESTIONS,
                    values: &r.values,
                };
                Ok((f.text("question")?, f.text("answer_hash")?))
            })
            .collect()
    }

    fn puk_denied(&mut self, card: CardKey<'_>) -> Result<Vec<u32>, ServerError> {
        let rows = self.inner.puk_denied(card)?;
        self.check(&PUK_DENIED, &card_f(card))?;
        Ok(rows)
    }

    fn deny_puk(&mut self, card: CardKey<'_>, generation: u32) -> Result<(), ServerError> {
        self.write(&PUK_DENIED, &denied_f(card, generation), |tx| {
            tx.deny_puk(card, generation)
        })
    }

    fn clear_denied_upto(&mut self, card: CardKey<'_>, generation: u32) -> Result<(), ServerError> {
        self.inner.clear_denied_upto(card, generation)
    }

    fn delete_expired_sessions(&mut self, now: i64) -> Result<(), ServerError> {
        self.inner.delete_expired_sessions(now)
    }

    fn insert_session(
        &mut self,
        token_hash: &[u8; 32],
        card: CardKey<'_>,
        now: i64,
        expires: i64,
    ) -> Result<(), ServerError> {
        let (profile, identity) = card;
        let given = [
            ("token_hash", Val::Blob(token_hash.to_vec())),
            ("profile", Val::text(profile.as_str())),
            ("identity", Val::text(identity)),
            ("created_ms", Val::Int(now)),
            ("expires_ms", Val::Int(expires)),
        ];
        self.insert(&SESSIONS, &given, false).map(drop)
    }

    fn live_session(
        &mut self,
        token_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<Session>, ServerError> {
        let rows = self
            .inner
            .mac_rows_locked(&SESSIONS, &token_f(token_hash))?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let fields = Fields {
            table: &SESSIONS,
            values: &row.values,
        };
        // A closed or expired session is not live, whatever its row holds.
        let Some(session) = fields.live_session(now)? else {
            return Ok(None);
        };
        check_rows(self.key, &SESSIONS, &rows)?;
        self.remember(&SESSIONS, row, true);
        Ok(Some(session))
    }

    fn set_session_verified(&mut self, token_hash: &[u8; 32]) -> Result<(), ServerError> {
        self.set(&SESSIONS, &token_f(token_hash), &|row| {
            put(&SESSIONS, row, "verified", Val::Int(1));
        })
    }

    fn set_session_puk_next(
        &mut self,
        token_hash: &[u8; 32],
        generation: u32,
    ) -> Result<(), ServerError> {
        self.set(&SESSIONS, &token_f(token_hash), &|row| {
            put(
                &SESSIONS,
                row,
                "puk_next_gen",
                Val::Int(i64::from(generation)),
            );
        })
    }

    fn set_session_gids(
        &mut self,
        token_hash: &[u8; 32],
        randoms: Option<&str>,
    ) -> Result<(), ServerError> {
        self.set(&SESSIONS, &token_f(token_hash), &|row| {
            let randoms = randoms.map_or(Val::Null, Val::text);
            put(&SESSIONS, row, "gids_randoms", randoms);
        })
    }

    fn set_session_nonce(&mut self, token_hash: &[u8; 32], nonce: &str) -> Result<(), ServerError> {
        self.set(&SESSIONS, &token_f(token_hash), &|row| {
            put(&SESSIONS, row, "nonce", Val::text(nonce));
        })
    }

    fn set_session_proven(&mut self, token_hash: &[u8; 32]) -> Result<(), ServerError> {
        self.set(&SESSIONS, &token_f(token_hash), &|row| {
            put(&SESSIONS, row, "proven", Val::Int(1));
        })
    }

    fn set_card_auth_key(
        &mut self,
        card: CardKey<'_>,
        key: Option<&str>,
    ) -> Result<(), ServerError> {
        self.set(&CARDS, &card_f(card), &|row| {
            put(
                &CARDS,
                row,
                "card_auth_key",
                key.map_or(Val::Null, Val::text),
            );
        })
    }

    fn set_iso_profile(
        &mut self,
        card: CardKey<'_>,
        name: Option<&str>,
    ) -> Result<(), ServerError> {
        self.write(&CARDS, &card_f(card), |tx| tx.set_iso_profile(card, name))
    }

    fn set_backoff(&mut self, card: CardKey<'_>, backoff_until_ms: i64) -> Result<(), ServerError> {
        self.set(&CARDS, &card_f(card), &|row| {
            put(&CARDS, row, "backoff_until_ms", Val::Int(backoff_until_ms));
        })
    }

    fn close_card_sessions(&mut self, card: CardKey<'_>) -> Result<(), ServerError> {
        self.write(&SESSIONS, &card_f(card), |tx| tx.close_card_sessions(card))
    }

    fn count_admin_answer(&mut self, token_hash: &[u8; 32]) -> Result<(), ServerError> {
        self.set(&SESSIONS, &token_f(token_hash), &|row| {
            if let Val::Int(n) = super::fused::value(&SESSIONS, row, "admin_answers") {
                let more = Val::Int(n.saturating_add(1));
                put(&SESSIONS, row, "admin_answers", more);
            }
        })
    }

    fn close_session(&mut self, token_hash: &[u8; 32]) -> Result<(), ServerError> {
        self.set(&SESSIONS, &token_f(token_hash), &|row| {
            put(&SESSIONS, row, "closed", Val::Int(1));
        })
    }

    fn use_challenge(
        &mut self,
        card: CardKey<'_>,
        kind: &str,
        value: &str,
        now: i64,
    ) -> Result<bool, ServerError> {
        let mut filter = card_f(card);
        filter.push(("kind", Val::text(kind)));
        filter.push(("value", Val::text(value)));
        let mut given = filter.clone();
        given.push(("used_ms", Val::Int(now)));
        // Held back with the audit row where the backend can ([`Tx::claim_mac_row`]).
        let inserted = self.claim(&USED_CHALLENGES, &given)?;
        if !inserted {
            // "Already used" must come from a row the server wrote.
            self.verify(&USED_CHALLENGES, &filter)?;
        }
        Ok(inserted)
    }

    fn insert_audit(&mut self, note: &AuditNote<'_>, now: i64) -> Result<(), ServerError> {
        self.inner.insert_audit(note, now)
    }

    fn read_card_audited(&mut self, card: CardKey<'_>) -> Result<Counted<CardRecord>, ServerError> {
        let Some((row, counts)) = self.inner.card_mac_row_counted(card)? else {
            return Ok(None);
        };
        check_rows(self.key, &CARDS, std::slice::from_ref(&row))?;
        self.remember(&CARDS, &row, true);
        let fields = Fields {
            table: &CARDS,
            values: &row.values,
        };
        Ok(Some((fields.card(card)?, counts)))
    }
}
