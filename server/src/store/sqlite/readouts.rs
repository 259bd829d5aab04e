//! [`ReadoutTx`] on SQLite.

use rusqlite::{params, OptionalExtension};

use super::SqliteTx;
use crate::store::readouts::{PukReadoutRow, ReadoutTx};
use crate::ServerError;

const COLUMNS: &str = "id, profile, identity, requester, identity_checked, created_ms, \
     expires_ms, approver, state";

fn readout_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PukReadoutRow> {
    Ok(PukReadoutRow {
        id: r.get(0)?,
        profile: r.get(1)?,
        identity: r.get(2)?,
        requester: r.get(3)?,
        identity_checked: r.get(4)?,
        created_ms: r.get(5)?,
        expires_ms: r.get(6)?,
        approver: r.get(7)?,
        state: r.get(8)?,
    })
}

impl ReadoutTx for SqliteTx<'_> {
    fn read_puk_readout(&mut self, id: &str) -> Result<Option<PukReadoutRow>, ServerError> {
        let sql = format!("SELECT {COLUMNS} FROM puk_readouts WHERE id = ?1");
        Ok(self
            .0
            .query_row(&sql, params![id], readout_row)
            .optional()?)
    }

    fn open_puk_readouts(&mut self, now: i64) -> Result<Vec<PukReadoutRow>, ServerError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM puk_readouts
             WHERE state IN ('pending', 'approved') AND expires_ms > ?1
             ORDER BY created_ms, id"
        );
        let mut stmt = self.0.prepare(&sql)?;
        let rows = stmt.query_map(params![now], readout_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
