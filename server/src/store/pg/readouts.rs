//! [`ReadoutTx`] on PostgreSQL.

use super::PgTx;
use crate::store::readouts::{PukReadoutRow, ReadoutTx};
use crate::ServerError;

fn readout_row(r: &postgres::Row) -> PukReadoutRow {
    PukReadoutRow {
        id: r.get(0),
        profile: r.get(1),
        identity: r.get(2),
        requester: r.get(3),
        identity_checked: r.get(4),
        created_ms: r.get(5),
        expires_ms: r.get(6),
        approver: r.get(7),
        state: r.get(8),
    }
}

impl ReadoutTx for PgTx<'_> {
    fn read_puk_readout(&mut self, id: &str) -> Result<Option<PukReadoutRow>, ServerError> {
        let row = self.query_opt(
            "SELECT id, profile, identity, requester, identity_checked, created_ms, expires_ms,
                    approver, state
             FROM puk_readouts WHERE id = $1 FOR UPDATE",
            &[&id],
        )?;
        Ok(row.as_ref().map(readout_row))
    }

    fn open_puk_readouts(&mut self, now: i64) -> Result<Vec<PukReadoutRow>, ServerError> {
        let rows = self.query(
            "SELECT id, profile, identity, requester, identity_checked, created_ms, expires_ms,
                    approver, state
             FROM puk_readouts
             WHERE state IN ('pending', 'approved') AND expires_ms > $1
             ORDER BY created_ms, id",
            &[&now],
        )?;
        Ok(rows.iter().map(readout_row).collect())
    }
}
