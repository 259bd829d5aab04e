//! [`MacTx`] for the operators' and the read-outs' primitives ([`OpTx`], [`ReadoutTx`]).

use super::guard::{card_f, text_f, token_f, Filter, MacTx};
use super::SIGN_IN_FAILURES;
use super::{Val, CARDS, ENROLLMENTS, OPERATORS, OPERATOR_DAILY, OPERATOR_SESSIONS, PUK_READOUTS};
use crate::store::ops::{AuditFilter, EnrollmentRow, OpSessionRow, OpTx, OperatorRow};
use crate::store::readouts::{PukReadoutRow, ReadoutTx};
use crate::store::tx::CardKey;
use crate::store::{AuditEntry, CardRecord};
use crate::ServerError;

fn daily_f(operator: &str, day: i64, kind: &str) -> Filter {
    vec![
        ("operator", Val::text(operator)),
        ("day", Val::Int(day)),
        ("kind", Val::text(kind)),
    ]
}

impl OpTx for MacTx<'_> {
    fn insert_operator(&mut self, row: &OperatorRow) -> Result<bool, ServerError> {
        let inserted = self.inner.insert_operator(row)?;
        if inserted {
            self.stamp(&OPERATORS, &text_f("name", &row.name))?;
        }
        Ok(inserted)
    }

    fn read_operator(&mut self, name: &str) -> Result<Option<OperatorRow>, ServerError> {
        let row = self.inner.read_operator(name)?;
        if row.is_some() {
            self.verify(&OPERATORS, &text_f("name", name))?;
        }
        Ok(row)
    }

    fn list_operators(&mut self) -> Result<Vec<OperatorRow>, ServerError> {
        let rows = self.inner.list_operators()?;
        self.check(&OPERATORS, &[])?;
        Ok(rows)
    }

    fn set_operator_password(&mut self, name: &str, hash: &str) -> Result<(), ServerError> {
        self.write(&OPERATORS, &text_f("name", name), |tx| {
            tx.set_operator_password(name, hash)
        })
    }

    fn set_operator_totp(&mut self, name: &str, sealed: &[u8]) -> Result<(), ServerError> {
        self.write(&OPERATORS, &text_f("name", name), |tx| {
            tx.set_operator_totp(name, sealed)
        })
    }

    fn set_operator_totp_step(&mut self, name: &str, step: i64) -> Result<(), ServerError> {
        self.write(&OPERATORS, &text_f("name", name), |tx| {
            tx.set_operator_totp_step(name, step)
        })
    }

    fn set_operator_disabled(&mut self, name: &str, disabled: bool) -> Result<(), ServerError> {
        self.write(&OPERATORS, &text_f("name", name), |tx| {
            tx.set_operator_disabled(name, disabled)
        })
    }

    fn insert_op_session(
        &mut self,
        token_hash: &[u8; 32],
        operator: &str,
        now: i64,
        address: Option<&str>,
    ) -> Result<(), ServerError> {
        self.inner
            .insert_op_session(token_hash, operator, now, address)?;
        self.stamp(&OPERATOR_SESSIONS, &token_f(token_hash))
    }

    fn read_op_session(
        &mut self,
        token_hash: &[u8; 32],
    ) -> Result<Option<OpSessionRow>, ServerError> {
        let row = self.inner.read_op_session(token_hash)?;
        if row.is_some() {
            self.verify(&OPERATOR_SESSIONS, &token_f(token_hash))?;
        }
        Ok(row)
    }

    fn touch_op_session(&mut self, token_hash: &[u8; 32], now: i64) -> Result<(), ServerError> {
        self.write(&OPERATOR_SESSIONS, &token_f(token_hash), |tx| {
            tx.touch_op_session(token_hash, now)
        })
    }

    fn end_op_session(&mut self, token_hash: &[u8; 32]) -> Result<(), ServerError> {
        self.write(&OPERATOR_SESSIONS, &token_f(token_hash), |tx| {
            tx.end_op_session(token_hash)
        })
    }

    fn delete_old_op_sessions(&mut self, created_before: i64) -> Result<(), ServerError> {
        self.inner.delete_old_op_sessions(created_before)
    }

    fn end_operator_sessions(&mut self, operator: &str) -> Result<(), ServerError> {
        self.write(&OPERATOR_SESSIONS, &text_f("operator", operator), |tx| {
            tx.end_operator_sessions(operator)
        })
    }

    fn count_sign_in_failure(
        &mut self,
        key: &str,
        now: i64,
        forget_before: i64,
    ) -> Result<u32, ServerError> {
        self.write(&SIGN_IN_FAILURES, &text_f("key", key), |tx| {
            tx.count_sign_in_failure(key, now, forget_before)
        })
    }

    fn set_sign_in_lockout(&mut self, key: &str, until_ms: i64) -> Result<(), ServerError> {
        self.write(&SIGN_IN_FAILURES, &text_f("key", key), |tx| {
            tx.set_sign_in_lockout(key, until_ms)
        })
    }

    fn sign_in_lockout(&mut self, key: &str) -> Result<i64, ServerError> {
        let until = self.inner.sign_in_lockout(key)?;
        self.verify(&SIGN_IN_FAILURES, &text_f("key", key))?;
        Ok(until)
    }

    fn clear_sign_in_failures(&mut self, key: &str) -> Result<(), ServerError> {
        self.inner.clear_sign_in_failures(key)
    }

    fn daily_count(&mut self, operator: &str, day: i64, kind: &str) -> Result<u32, ServerError> {
        let count = self.inner.daily_count(operator, day, kind)?;
        self.verify(&OPERATOR_DAILY, &daily_f(operator, day, kind))?;
        Ok(count)
    }

    fn bump_daily(&mut self, operator: &str, day: i64, kind: &str) -> Result<u32, ServerError> {
        self.write(&OPERATOR_DAILY, &daily_f(operator, day, kind), |tx| {
            tx.bump_daily(operator, day, kind)
        })
    }

    fn insert_enrollment(&mut self, row: &EnrollmentRow) -> Result<(), ServerError> {
        self.inner.insert_enrollment(row)?;
        self.stamp(&ENROLLMENTS, &text_f("id", &row.id))
    }

    fn read_enrollment(&mut self, id: &str) -> Result<Option<EnrollmentRow>, ServerError> {
        let row = self.inner.read_enrollment(id)?;
        if row.is_some() {
            self.verify(&ENROLLMENTS, &text_f("id", id))?;
        }
        Ok(row)
    }

    fn unconfirmed_enrollments(
        &mut self,
        card: CardKey<'_>,
    ) -> Result<Vec<EnrollmentRow>, ServerError> {
        let rows = self.inner.unconfirmed_enrollments(card)?;
        self.check(&ENROLLMENTS, &card_f(card))?;
        Ok(rows)
    }

    fn set_enrollment_state(&mut self, id: &str, state: &str) -> Result<(), ServerError> {
        self.write(&ENROLLMENTS, &text_f("id", id), |tx| {
            tx.set_enrollment_state(id, state)
        })
    }

    fn supersede_enrollments(
        &mut self,
        card: CardKey<'_>,
        except: &str,
    ) -> Result<(), ServerError> {
        self.write(&ENROLLMENTS, &card_f(card), |tx| {
            tx.supersede_enrollments(card, except)
        })
    }

    fn enrollments_since(&mut self, operator: &str, since_ms: i64) -> Result<u32, ServerError> {
        let n = self.inner.enrollments_since(operator, since_ms)?;
        self.check(&ENROLLMENTS, &text_f("operator", operator))?;
        Ok(n)
    }

    fn set_key_gens(
        &mut self,
        card: CardKey<'_>,
        key_gen: u32,
        pending: Option<u32>,
    ) -> Result<(), ServerError> {
        self.write(&CARDS, &card_f(card), |tx| {
            tx.set_key_gens(card, key_gen, pending)
        })
    }

    fn set_puk_read_out(&mut self, card: CardKey<'_>) -> Result<(), ServerError> {
        self.write(&CARDS, &card_f(card), |tx| tx.set_puk_read_out(card))
    }

    fn search_cards(&mut self, needle: &str, limit: u32) -> Result<Vec<CardRecord>, ServerError> {
        let cards = self.inner.search_cards(needle, limit)?;
        for c in &cards {
            self.verify(
                &CARDS,
                &[
                    ("profile", Val::text(&c.profile)),
                    ("identity", Val::text(&c.identity_hex)),
                ],
            )?;
        }
        Ok(cards)
    }

    fn audit_query(&mut self, filter: &AuditFilter<'_>) -> Result<Vec<AuditEntry>, ServerError> {
        self.inner.audit_query(filter)
    }
}

impl ReadoutTx for MacTx<'_> {
    fn insert_puk_readout(&mut self, row: &PukReadoutRow) -> Result<(), ServerError> {
        self.inner.insert_puk_readout(row)?;
        self.stamp(&PUK_READOUTS, &text_f("id", &row.id))
    }

    fn read_puk_readout(&mut self, id: &str) -> Result<Option<PukReadoutRow>, ServerError> {
        let row = self.inner.read_puk_readout(id)?;
        if row.is_some() {
            self.verify(&PUK_READOUTS, &text_f("id", id))?;
        }
        Ok(row)
    }

    fn set_puk_readout_state(
        &mut self,
        id: &str,
        state: &str,
        approver: Option<&str>,
    ) -> Result<(), ServerError> {
        self.write(&PUK_READOUTS, &text_f("id", id), |tx| {
            tx.set_puk_readout_state(id, state, approver)
        })
    }

    fn open_puk_readouts(&mut self, now: i64) -> Result<Vec<PukReadoutRow>, ServerError> {
        let rows = self.inner.open_puk_readouts(now)?;
        for r in &rows {
            self.verify(&PUK_READOUTS, &text_f("id", &r.id))?;
        }
        Ok(rows)
    }
}
