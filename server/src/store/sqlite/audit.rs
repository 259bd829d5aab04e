//! The SQLite side of the audit chain ([`crate::store::chain`]): its rows and its head.

use rusqlite::{params, Connection};

use super::audit_row;
use crate::store::chain::{AuditHead, ChainRow, Link};
use crate::store::tx::AuditTx;
use crate::store::{AuditEntry, AuditNote};
use crate::ServerError;

/// Sets the head of the instance chain `chain`.
fn set_lane_head(conn: &Connection, chain: &str, head: &AuditHead) -> Result<(), ServerError> {
    conn.execute(
        "INSERT INTO audit_heads (chain, seq, mac) VALUES (?1, ?2, ?3)
             ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, mac = excluded.mac",
        params![chain, head.seq, head.mac.as_slice()],
    )?;
    Ok(())
}

impl crate::store::chain::lanes::LaneTx for super::SqliteTx<'_> {
    fn lane(&mut self) -> Option<&mut crate::store::chain::lanes::Current> {
        self.1.as_deref_mut()
    }
}

impl AuditTx for super::SqliteTx<'_> {
    /// Writes one audit row as is, with its place in the chain (`None`: unchained).
    fn insert_audit_row(
        &mut self,
        note: &AuditNote<'_>,
        now: i64,
        link: Option<Link<'_>>,
    ) -> Result<(), ServerError> {
        let conn = self.0;
        conn.execute(
            "INSERT INTO audit (time_ms, profile, identity, session, event, outcome, detail,
                                operator, role, address, seq, mac, chain)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                now,
                note.card.map(|(p, _)| p.as_str()),
                note.card.map(|(_, i)| i),
                note.session,
                note.event,
                note.outcome,
                note.detail,
                note.operator,
                note.role.map(|r| r.as_str()),
                note.address,
                link.as_ref().map(|l| l.seq),
                link.as_ref().map(|l| l.mac.as_slice()),
                link.as_ref().and_then(|l| l.chain),
            ],
        )?;
        if let Some(Link {
            chain: Some(chain),
            seq,
            mac,
        }) = link
        {
            set_lane_head(conn, chain, &AuditHead { seq, mac: *mac })?;
        }
        Ok(())
    }

    /// The audit rows in id order with their chain columns.
    fn audit_chain_rows(&mut self, unchained_only: bool) -> Result<Vec<ChainRow>, ServerError> {
        let conn = self.0;
        let sql = if unchained_only {
            "SELECT time_ms, profile, identity, session, event, outcome, detail,
                    operator, role, address, id, seq, mac, chain
             FROM audit WHERE seq IS NULL ORDER BY id"
        } else {
            "SELECT time_ms, profile, identity, session, event, outcome, detail,
                    operator, role, address, id, seq, mac, chain
             FROM audit ORDER BY id"
        };
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([], |r| {
            Ok(ChainRow {
                entry: audit_row(r)?,
                id: r.get(10)?,
                seq: r.get(11)?,
                mac: r.get(12)?,
                chain: r.get(13)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes the rows `ids`.
    fn delete_audit_rows(&mut self, ids: &[i64]) -> Result<(), ServerError> {
        let conn = self.0;
        let mut stmt = conn.prepare("DELETE FROM audit WHERE id = ?1")?;
        for id in ids {
            stmt.execute([id])?;
        }
        Ok(())
    }

    /// The whole audit log, oldest first.
    fn audit_log(&mut self) -> Result<Vec<AuditEntry>, ServerError> {
        let conn = self.0;
        let mut stmt = conn.prepare(
            "SELECT time_ms, profile, identity, session, event, outcome, detail,
                operator, role, address
         FROM audit ORDER BY id",
        )?;
        let rows = stmt.query_map([], audit_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
