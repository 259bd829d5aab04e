//! The SQLite side of the audit chain ([`crate::store::chain`]): its rows and its head.

use rusqlite::{params, Connection, OptionalExtension};

use super::audit_row;
use crate::store::chain::{head_of, AuditHead, ChainRow, Link};
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

    /// The chain's head (`BEGIN IMMEDIATE` already holds the write lock).
    fn audit_head(&mut self) -> Result<Option<AuditHead>, ServerError> {
        let conn = self.0;
        let row: Option<(i64, Vec<u8>)> = conn
            .query_row(
                "SELECT seq, mac FROM audit_head WHERE only_row = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row
            .map(|(seq, mac)| head_of(seq, &mac))
            .transpose()?
            .flatten())
    }

    /// Sets the chain's head.
    fn set_audit_head(&mut self, head: &AuditHead) -> Result<(), ServerError> {
        let conn = self.0;
        conn.execute(
            "INSERT INTO audit_head (only_row, seq, mac) VALUES (1, ?1, ?2)
             ON CONFLICT (only_row) DO UPDATE SET seq = excluded.seq, mac = excluded.mac",
            params![head.seq, head.mac.as_slice()],
        )?;
        Ok(())
    }

    /// Every instance chain's stored head.
    fn lane_heads(&mut self) -> Result<Vec<(String, AuditHead)>, ServerError> {
        let conn = self.0;
        let mut stmt = conn.prepare("SELECT chain, seq, mac FROM audit_heads ORDER BY chain")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        let mut heads = Vec::new();
        for row in rows {
            let (chain, seq, mac) = row?;
            if let Some(head) = head_of(seq, &mac)? {
                heads.push((chain, head));
            }
        }
        Ok(heads)
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

    /// Gives the row `id` its place in the chain.
    fn set_audit_row_chain(
        &mut self,
        id: i64,
        seq: i64,
        mac: &[u8; 32],
    ) -> Result<(), ServerError> {
        let conn = self.0;
        conn.execute(
            "UPDATE audit SET seq = ?1, mac = ?2 WHERE id = ?3",
            params![seq, mac.as_slice(), id],
        )?;
        Ok(())
    }

    /// Where each chain starts after archiving.
    fn audit_starts(&mut self) -> Result<Vec<(Option<String>, AuditHead)>, ServerError> {
        let conn = self.0;
        let mut stmt = conn.prepare("SELECT chain, seq, mac FROM audit_starts ORDER BY chain")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        let mut starts = Vec::new();
        for row in rows {
            let (chain, seq, mac) = row?;
            if let Some(head) = head_of(seq, &mac)? {
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
        let conn = self.0;
        conn.execute(
            "INSERT INTO audit_starts (chain, seq, mac) VALUES (?1, ?2, ?3)
             ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, mac = excluded.mac",
            params![chain.unwrap_or(""), head.seq, head.mac.as_slice()],
        )?;
        Ok(())
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
