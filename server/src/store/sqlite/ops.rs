//! [`OpTx`] on SQLite.

use rusqlite::{params, OptionalExtension};

use super::{audit_row, card_row, SqliteTx};
use crate::store::ops::{
    roles_from_text, AuditFilter, EnrollmentRow, OpSessionRow, OpTx, OperatorRow,
};
use crate::store::tx::CardKey;
use crate::store::{AuditEntry, CardRecord, Profile};
use crate::ServerError;

const OPERATOR_COLUMNS: &str =
    "name, password_hash, totp_sealed, totp_last_step, roles, disabled, created_ms";

fn operator_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OperatorRow> {
    Ok(OperatorRow {
        name: r.get(0)?,
        password_hash: r.get(1)?,
        totp_sealed: r.get(2)?,
        totp_last_step: r.get(3)?,
        roles: roles_from_text(&r.get::<_, String>(4)?),
        disabled: r.get(5)?,
        created_ms: r.get(6)?,
    })
}

fn enrollment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EnrollmentRow> {
    Ok(EnrollmentRow {
        id: r.get(0)?,
        profile: r.get(1)?,
        identity: r.get(2)?,
        operator: r.get(3)?,
        algorithm: r.get(4)?,
        user_name: r.get(5)?,
        user_email: r.get(6)?,
        questions: r.get(7)?,
        key_gen: r.get(8)?,
        puk_gen: r.get(9)?,
        created_ms: r.get(10)?,
        state: r.get(11)?,
    })
}

const ENROLLMENT_COLUMNS: &str = "id, profile, identity, operator, algorithm, user_name, \
     user_email, questions, key_gen, puk_gen, created_ms, state";

impl OpTx for SqliteTx<'_> {
    fn read_operator(&mut self, name: &str) -> Result<Option<OperatorRow>, ServerError> {
        let sql = format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE name = ?1");
        Ok(self
            .0
            .query_row(&sql, params![name], operator_row)
            .optional()?)
    }

    fn list_operators(&mut self) -> Result<Vec<OperatorRow>, ServerError> {
        let sql = format!("SELECT {OPERATOR_COLUMNS} FROM operators ORDER BY name");
        let mut stmt = self.0.prepare(&sql)?;
        let rows = stmt.query_map([], operator_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn read_op_session(
        &mut self,
        token_hash: &[u8; 32],
    ) -> Result<Option<OpSessionRow>, ServerError> {
        Ok(self
            .0
            .query_row(
                "SELECT operator, created_ms, last_seen_ms, ended FROM operator_sessions
                 WHERE token_hash = ?1",
                params![&token_hash[..]],
                |r| {
                    Ok(OpSessionRow {
                        operator: r.get(0)?,
                        created_ms: r.get(1)?,
                        last_seen_ms: r.get(2)?,
                        ended: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    fn read_enrollment(&mut self, id: &str) -> Result<Option<EnrollmentRow>, ServerError> {
        let sql = format!("SELECT {ENROLLMENT_COLUMNS} FROM enrollments WHERE id = ?1");
        Ok(self
            .0
            .query_row(&sql, params![id], enrollment_row)
            .optional()?)
    }

    fn unconfirmed_enrollments(
        &mut self,
        (profile, identity): CardKey<'_>,
    ) -> Result<Vec<EnrollmentRow>, ServerError> {
        let sql = format!(
            "SELECT {ENROLLMENT_COLUMNS} FROM enrollments
             WHERE profile = ?1 AND identity = ?2 AND state IN ('open', 'failed')
             ORDER BY created_ms DESC, key_gen DESC"
        );
        let mut stmt = self.0.prepare(&sql)?;
        let rows = stmt.query_map(params![profile.as_str(), identity], enrollment_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn search_cards(&mut self, needle: &str, limit: u32) -> Result<Vec<CardRecord>, ServerError> {
        let mut stmt = self.0.prepare(
            "SELECT algorithm, key_gen, puk_gen, pending_puk_gen, locked, failed_attempts,
                    user_name, user_email, pending_key_gen, puk_read_out, enrolled_ms,
                    card_auth_key, backoff_until_ms, iso_profile, profile, identity
             FROM cards
             WHERE instr(lower(user_name), ?1) > 0 OR instr(lower(user_email), ?1) > 0
                OR instr(identity, ?1) > 0
             ORDER BY user_name, profile, identity LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![needle, limit], |r| {
            Ok((
                card_row(r)?,
                r.get::<_, String>(14)?,
                r.get::<_, String>(15)?,
            ))
        })?;
        let mut cards = Vec::new();
        for row in rows {
            let (card, profile, identity) = row?;
            if let Some(profile) = Profile::parse(&profile) {
                cards.push(card.into_record(profile, &identity)?);
            }
        }
        Ok(cards)
    }

    fn audit_query(&mut self, f: &AuditFilter<'_>) -> Result<Vec<AuditEntry>, ServerError> {
        let mut stmt = self.0.prepare(
            "SELECT time_ms, profile, identity, session, event, outcome, detail,
                    operator, role, address
             FROM audit a
             WHERE (?1 IS NULL OR a.identity = ?1)
               AND (?2 IS NULL OR EXISTS (SELECT 1 FROM cards c
                      WHERE c.profile = a.profile AND c.identity = a.identity
                        AND (instr(lower(c.user_name), ?2) > 0
                             OR instr(lower(c.user_email), ?2) > 0)))
               AND (?3 IS NULL OR a.operator = ?3)
               AND (?4 IS NULL OR a.event = ?4)
               AND (?5 IS NULL OR a.time_ms >= ?5)
               AND (?6 IS NULL OR a.time_ms < ?6)
               AND (?8 IS NULL OR a.profile = ?8)
             ORDER BY a.id DESC LIMIT ?7",
        )?;
        let rows = stmt.query_map(
            params![
                f.identity, f.user, f.operator, f.event, f.since_ms, f.until_ms, f.limit, f.profile
            ],
            audit_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
