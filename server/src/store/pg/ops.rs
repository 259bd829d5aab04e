//! [`OpTx`] on PostgreSQL.

use super::{audit_row, card_row, small, PgTx};
use crate::store::ops::{
    roles_from_text, AuditFilter, EnrollmentRow, OpSessionRow, OpTx, OperatorRow,
};
use crate::store::tx::CardKey;
use crate::store::{AuditEntry, CardRecord, Profile};
use crate::ServerError;

fn operator_row(r: &postgres::Row) -> OperatorRow {
    OperatorRow {
        name: r.get(0),
        password_hash: r.get(1),
        totp_sealed: r.get(2),
        totp_last_step: r.get(3),
        roles: roles_from_text(r.get(4)),
        disabled: r.get(5),
        created_ms: r.get(6),
    }
}

fn enrollment_row(r: &postgres::Row) -> Result<EnrollmentRow, ServerError> {
    Ok(EnrollmentRow {
        id: r.get(0),
        profile: r.get(1),
        identity: r.get(2),
        operator: r.get(3),
        algorithm: r.get(4),
        user_name: r.get(5),
        user_email: r.get(6),
        questions: r.get(7),
        key_gen: small(r.get(8))?,
        puk_gen: small(r.get(9))?,
        created_ms: r.get(10),
        state: r.get(11),
    })
}

impl OpTx for PgTx<'_> {
    fn read_operator(&mut self, name: &str) -> Result<Option<OperatorRow>, ServerError> {
        let row = self.query_opt(
            "SELECT name, password_hash, totp_sealed, totp_last_step, roles, disabled, created_ms
             FROM operators WHERE name = $1 FOR UPDATE",
            &[&name],
        )?;
        Ok(row.as_ref().map(operator_row))
    }

    fn list_operators(&mut self) -> Result<Vec<OperatorRow>, ServerError> {
        let rows = self.query(
            "SELECT name, password_hash, totp_sealed, totp_last_step, roles, disabled, created_ms
             FROM operators ORDER BY name",
            &[],
        )?;
        Ok(rows.iter().map(operator_row).collect())
    }

    fn read_op_session(
        &mut self,
        token_hash: &[u8; 32],
    ) -> Result<Option<OpSessionRow>, ServerError> {
        let row = self.query_opt(
            "SELECT operator, created_ms, last_seen_ms, ended FROM operator_sessions
             WHERE token_hash = $1 FOR UPDATE",
            &[&&token_hash[..]],
        )?;
        Ok(row.map(|r| OpSessionRow {
            operator: r.get(0),
            created_ms: r.get(1),
            last_seen_ms: r.get(2),
            ended: r.get(3),
        }))
    }

    fn read_enrollment(&mut self, id: &str) -> Result<Option<EnrollmentRow>, ServerError> {
        let row = self.query_opt(
            "SELECT id, profile, identity, operator, algorithm, user_name, user_email, questions,
                    key_gen, puk_gen, created_ms, state
             FROM enrollments WHERE id = $1 FOR UPDATE",
            &[&id],
        )?;
        row.as_ref().map(enrollment_row).transpose()
    }

    fn unconfirmed_enrollments(
        &mut self,
        (profile, identity): CardKey<'_>,
    ) -> Result<Vec<EnrollmentRow>, ServerError> {
        let rows = self.query(
            "SELECT id, profile, identity, operator, algorithm, user_name, user_email, questions,
                    key_gen, puk_gen, created_ms, state
             FROM enrollments
             WHERE profile = $1 AND identity = $2 AND state IN ('open', 'failed')
             ORDER BY created_ms DESC, key_gen DESC",
            &[&profile.as_str(), &identity],
        )?;
        rows.iter().map(enrollment_row).collect()
    }

    fn search_cards(&mut self, needle: &str, limit: u32) -> Result<Vec<CardRecord>, ServerError> {
        let rows = self.query(
            "SELECT algorithm, key_gen, puk_gen, pending_puk_gen, locked, failed_attempts,
                    user_name, user_email, pending_key_gen, puk_read_out, enrolled_ms,
                    card_auth_key, backoff_until_ms, iso_profile, profile, identity
             FROM cards
             WHERE strpos(lower(user_name), $1) > 0 OR strpos(lower(user_email), $1) > 0
                OR strpos(identity, $1) > 0
             ORDER BY user_name, profile, identity LIMIT $2",
            &[&needle, &i64::from(limit)],
        )?;
        let mut cards = Vec::new();
        for r in &rows {
            if let Some(profile) = Profile::parse(r.get(14)) {
                let identity: String = r.get(15);
                cards.push(card_row(r)?.into_record(profile, &identity)?);
            }
        }
        Ok(cards)
    }

    fn audit_query(&mut self, f: &AuditFilter<'_>) -> Result<Vec<AuditEntry>, ServerError> {
        let rows = self.query(
            "SELECT time_ms, profile, identity, session, event, outcome, detail,
                    operator, role, address
             FROM audit a
             WHERE ($1::TEXT IS NULL OR a.identity = $1)
               AND ($2::TEXT IS NULL OR EXISTS (SELECT 1 FROM cards c
                      WHERE c.profile = a.profile AND c.identity = a.identity
                        AND (strpos(lower(c.user_name), $2) > 0
                             OR strpos(lower(c.user_email), $2) > 0)))
               AND ($3::TEXT IS NULL OR a.operator = $3)
               AND ($4::TEXT IS NULL OR a.event = $4)
               AND ($5::BIGINT IS NULL OR a.time_ms >= $5)
               AND ($6::BIGINT IS NULL OR a.time_ms < $6)
               AND ($8::TEXT IS NULL OR a.profile = $8)
             ORDER BY a.id DESC LIMIT $7",
            &[
                &f.identity,
                &f.user,
                &f.operator,
                &f.event,
                &f.since_ms,
                &f.until_ms,
                &i64::from(f.limit),
                &f.profile,
            ],
        )?;
        Ok(rows.iter().map(audit_row).collect())
    }
}
