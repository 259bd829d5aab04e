//! The PostgreSQL side of the audit chain ([`crate::store::chain`]): its rows and its head.

use postgres::types::ToSql;

use super::defer::{held_params, held_sql, AUDIT_PARAMS};
use super::{audit_row, PgTx};
use crate::store::chain::{head_of, AuditHead, ChainRow, Link};
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

    /// The chain's head, row-locked until the transaction ends.
    fn audit_head(&mut self) -> Result<Option<AuditHead>, ServerError> {
        // The row lock makes concurrent appends (from any instance) wait for this one.
        let row = self.query_opt(
            "SELECT seq, mac FROM audit_head WHERE only_row = 1 FOR UPDATE",
            &[],
        )?;
        Ok(row
            .map(|r| head_of(r.get(0), &r.get::<_, Vec<u8>>(1)))
            .transpose()?
            .flatten())
    }

    /// Sets the chain's head.
    fn set_audit_head(&mut self, head: &AuditHead) -> Result<(), ServerError> {
        self.execute(
            "INSERT INTO audit_head (only_row, seq, mac) VALUES (1, $1, $2)
             ON CONFLICT (only_row) DO UPDATE SET seq = EXCLUDED.seq, mac = EXCLUDED.mac",
            &[&head.seq, &head.mac.as_slice()],
        )?;
        Ok(())
    }

    /// Every instance chain's stored head.
    fn lane_heads(&mut self) -> Result<Vec<(String, AuditHead)>, ServerError> {
        let rows = self.query(
            "SELECT chain, seq, mac FROM audit_heads ORDER BY chain",
            &[],
        )?;
        let mut heads = Vec::new();
        for r in &rows {
            if let Some(head) = head_of(r.get(1), &r.get::<_, Vec<u8>>(2))? {
                heads.push((r.get(0), head));
            }
        }
        Ok(heads)
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

    /// Gives the row `id` its place in the chain.
    fn set_audit_row_chain(
        &mut self,
        id: i64,
        seq: i64,
        mac: &[u8; 32],
    ) -> Result<(), ServerError> {
        self.execute(
            "UPDATE audit SET seq = $1, mac = $2 WHERE id = $3",
            &[&seq, &mac.as_slice(), &id],
        )?;
        Ok(())
    }

    /// Where each chain starts after archiving.
    fn audit_starts(&mut self) -> Result<Vec<(Option<String>, AuditHead)>, ServerError> {
        let rows = self.query(
            "SELECT chain, seq, mac FROM audit_starts ORDER BY chain",
            &[],
        )?;
        let mut starts = Vec::new();
        for r in &rows {
            if let Some(head) = head_of(r.get(1), &r.get::<_, Vec<u8>>(2))? {
                let chain: String = r.get(0);
                starts.push((Some(chain).filter(|c| !c.is_empty()), head));
            }
        }
        Ok(starts)
    }

    /// Sets where `chain` starts.
    fn set_audit_start(
        &mut self,
        chain: Option<&str>,
        head: &AuditHead,
    ) -> Result<(), ServerError> {
        self.execute(
            "INSERT INTO audit_starts (chain, seq, mac) VALUES ($1, $2, $3)
             ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, mac = EXCLUDED.mac",
            &[&chain.unwrap_or(""), &head.seq, &head.mac.as_slice()],
        )?;
        Ok(())
    }

    /// Deletes the rows `ids`.
    fn delete_audit_rows(&mut self, ids: &[i64]) -> Result<(), ServerError> {
        self.execute("DELETE FROM audit WHERE id = ANY($1)", &[&ids])?;
        Ok(())
    }
}
