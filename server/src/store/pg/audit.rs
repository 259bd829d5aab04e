//! The PostgreSQL side of the audit chain ([`crate::store::chain`]): its rows and its head.

use postgres::types::ToSql;

use super::defer::{held_params, held_sql, AUDIT_PARAMS};
use super::{audit_row, PgTx};
use crate::store::chain::{ChainRow, Link};
use crate::store::mac;
use crate::store::tx::AuditTx;
use crate::store::AuditNote;
use crate::ServerError;

impl AuditTx for PgTx<'_> {
    /// Writes one audit row as is, with its place in the chain (`None`: unchained), and for an
    /// instance chain its new head, in one statement (one round trip).
    fn insert_audit_row(
        &mut self,
        note: &AuditNote<'_>,
        now: i64,
        link: Option<Link<'_>>,
    ) -> Result<(), ServerError> {
        let params: [&(dyn ToSql + Sync); AUDIT_PARAMS] = [
            &now,
            &note.card.map(|(p, _)| p.as_str()),
            &note.card.map(|(_, i)| i),
            &note.session,
            &note.event,
            &note.outcome,
            &note.detail,
            &note.operator,
            &note.role.map(|r| r.as_str()),
            &note.address,
            &link.as_ref().map(|l| l.seq),
            &link.as_ref().map(|l| l.mac.as_slice()),
            &link.as_ref().and_then(|l| l.chain),
        ];
        // The changes this row records, held back ([`super::defer`]), go in the same
        // statement: one round trip for all, each row count checked.
        let held = std::mem::take(&mut self.pending);
        if !held.is_empty() {
            let writes = held_sql(&held, AUDIT_PARAMS + 1);
            let sql = mac::intern(format!(
                "WITH {},
                 appended AS (
                     INSERT INTO audit (time_ms, profile, identity, session, event, outcome,
                                        detail, operator, role, address, seq, mac, chain)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)),
                 head AS (
                     INSERT INTO audit_heads (chain, seq, mac)
                     SELECT $13, $11, $12 WHERE $13::TEXT IS NOT NULL
                     ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, mac = EXCLUDED.mac)
                 SELECT {}",
                writes.ctes, writes.counts
            ));
            let all: Vec<&(dyn ToSql + Sync)> =
                params.into_iter().chain(held_params(&held)).collect();
            let counts = match self.query_opt(sql, &all)? {
                Some(r) => (0..held.len())
                    .map(|i| r.try_get::<_, i64>(i))
                    .collect::<Result<Vec<_>, _>>()?,
                None => Vec::new(),
            };
            return self.check_held(&held, &counts);
        }
        self.execute(
            "WITH appended AS (
                 INSERT INTO audit (time_ms, profile, identity, session, event, outcome,
                                    detail, operator, role, address, seq, mac, chain)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13))
             INSERT INTO audit_heads (chain, seq, mac)
             SELECT $13, $11, $12 WHERE $13::TEXT IS NOT NULL
             ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, mac = EXCLUDED.mac",
            &params,
        )?;
        Ok(())
    }

    /// The whole audit log, oldest first.
    fn audit_log(&mut self) -> Result<Vec<crate::store::AuditEntry>, ServerError> {
        let rows = self.query(
            "SELECT time_ms, profile, identity, session, event, outcome, detail,
                    operator, role, address
             FROM audit ORDER BY id",
            &[],
        )?;
        Ok(rows.iter().map(audit_row).collect())
    }

    /// The audit rows in id order with their chain columns.
    fn audit_chain_rows(&mut self, unchained_only: bool) -> Result<Vec<ChainRow>, ServerError> {
        let sql = if unchained_only {
            "SELECT time_ms, profile, identity, session, event, outcome, detail,
                    operator, role, address, id, seq, mac, chain
             FROM audit WHERE seq IS NULL ORDER BY id"
        } else {
            "SELECT time_ms, profile, identity, session, event, outcome, detail,
                    operator, role, address, id, seq, mac, chain
             FROM audit ORDER BY id"
        };
        let rows = self.query(sql, &[])?;
        Ok(rows
            .iter()
            .map(|r| ChainRow {
                entry: audit_row(r),
                id: r.get(10),
                seq: r.get(11),
                mac: r.get(12),
                chain: r.get(13),
            })
            .collect())
    }

    /// Deletes the rows `ids`.
    fn delete_audit_rows(&mut self, ids: &[i64]) -> Result<(), ServerError> {
        self.execute("DELETE FROM audit WHERE id = ANY($1)", &[&ids])?;
        Ok(())
    }
}
