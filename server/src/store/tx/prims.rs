//! The primitives of [`super::Tx`] that the shared logic builds on and the row-MAC guard
//! passes through: the audit chain's rows and heads ([`AuditTx`]) and the generic row-MAC
//! reads and writes ([`MacStoreTx`]). Each backend implements them directly.

use std::iter::once;

use super::{changed_under_lock, inserted_once, CardKey, Counted};
use crate::store::chain::{head_of, AuditHead, ChainRow, Link};
use crate::store::mac::{self, Kind, MacRow, Table, Val, CARDS};
use crate::store::stmt::Arg::{Bytes, Int, Text};
use crate::store::stmt::{count, sql, text, Exec, Param};
use crate::store::{AuditEntry, AuditNote};
use crate::ServerError;

/// The audit chain's rows and heads, as stored.
pub(crate) trait AuditTx: Exec {
    /// Writes one audit row as is, with its place in the chain (`None`: unchained); for an
    /// instance chain, the row becomes the chain's head in `audit_heads`.
    fn insert_audit_row(
        &mut self,
        note: &AuditNote<'_>,
        now: i64,
        link: Option<Link<'_>>,
    ) -> Result<(), ServerError>;
    /// The chain's head, locked until the transaction ends; `None` before the chain exists.
    fn audit_head(&mut self) -> Result<Option<AuditHead>, ServerError> {
        // PostgreSQL: the row lock makes concurrent appends (from any instance) wait for this
        // one; SQLite's `BEGIN IMMEDIATE` already holds the write lock.
        let stmt = sql!(
            pg: "SELECT seq, mac FROM audit_head WHERE only_row = 1 FOR UPDATE",
            sqlite: "SELECT seq, mac FROM audit_head WHERE only_row = 1"
        );
        let sql = stmt.text_for(self.dialect());
        let Some(row) = self.fetch(sql, &[], &[Kind::Int, Kind::Blob])?.pop() else {
            return Ok(None);
        };
        head_row(row).map(|head| head.map(|(_, head)| head))
    }
    /// Sets the chain's head.
    fn set_audit_head(&mut self, head: &AuditHead) -> Result<(), ServerError> {
        let stmt = sql!(
            "INSERT INTO audit_head (only_row, seq, mac) VALUES (1, $1, $2)
             ON CONFLICT (only_row) DO UPDATE SET seq = EXCLUDED.seq, mac = EXCLUDED.mac"
        );
        self.exec(stmt, &[Int(head.seq), Bytes(&head.mac)])
            .map(drop)
    }
    /// Every instance chain's stored head (`audit_heads`), by chain name.
    fn lane_heads(&mut self) -> Result<Vec<(String, AuditHead)>, ServerError> {
        let stmt = sql!("SELECT chain, seq, mac FROM audit_heads ORDER BY chain");
        let sql = stmt.text_for(self.dialect());
        let rows = self.fetch(sql, &[], &[Kind::Text, Kind::Int, Kind::Blob])?;
        let heads = rows.into_iter().map(head_row);
        let heads = heads.filter_map(Result::transpose);
        heads
            .map(|h| h.map(|(chain, head)| (chain.unwrap_or_default(), head)))
            .collect()
    }
    /// Where each chain starts after archiving (`None`: the global chain).
    fn audit_starts(&mut self) -> Result<Vec<(Option<String>, AuditHead)>, ServerError> {
        let stmt = sql!("SELECT chain, seq, mac FROM audit_starts ORDER BY chain");
        let sql = stmt.text_for(self.dialect());
        let rows = self.fetch(sql, &[], &[Kind::Text, Kind::Int, Kind::Blob])?;
        let starts = rows.into_iter().map(head_row);
        let starts = starts.filter_map(Result::transpose);
        starts
            .map(|s| s.map(|(chain, head)| (chain.filter(|c| !c.is_empty()), head)))
            .collect()
    }
    /// Sets where `chain` starts (its rows up to `head` archived and deleted).
    fn set_audit_start(
        &mut self,
        chain: Option<&str>,
        head: &AuditHead,
    ) -> Result<(), ServerError> {
        let stmt = sql!(
            "INSERT INTO audit_starts (chain, seq, mac) VALUES ($1, $2, $3)
             ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, mac = EXCLUDED.mac"
        );
        let args = [Text(chain.unwrap_or("")), Int(head.seq), Bytes(&head.mac)];
        self.exec(stmt, &args).map(drop)
    }
    /// Deletes the audit rows `ids` (archived).
    fn delete_audit_rows(&mut self, ids: &[i64]) -> Result<(), ServerError>;
    /// The audit rows in id order with their chain columns (only the unchained ones if
    /// `unchained_only`).
    fn audit_chain_rows(&mut self, unchained_only: bool) -> Result<Vec<ChainRow>, ServerError>;
    /// Gives the row `id` its place in the chain.
    fn set_audit_row_chain(
        &mut self,
        id: i64,
        seq: i64,
        mac: &[u8; 32],
    ) -> Result<(), ServerError> {
        let stmt = sql!("UPDATE audit SET seq = $1, mac = $2 WHERE id = $3");
        self.exec(stmt, &[Int(seq), Bytes(mac), Int(id)]).map(drop)
    }
    /// The whole audit log, oldest first.
    fn audit_log(&mut self) -> Result<Vec<AuditEntry>, ServerError>;
}

/// The generic reads and writes of MACed rows, and the card's audit counts read with them.
pub(crate) trait MacStoreTx: Exec {
    /// Audit rows of the card since its counter was last reset: wrong answer sets (since the
    /// last success or lift) and locks (since the last lift).
    fn card_audit_counts(&mut self, card: CardKey<'_>) -> Result<(u32, u32), ServerError> {
        let sql = mac::intern(format!(
            "SELECT {}",
            mac::audit_counts_sql(self.dialect().p())
        ));
        let rows = self.fetch(sql, &card_params(card), &[Kind::Int, Kind::Int])?;
        match rows.into_iter().next().as_deref() {
            Some([wrong, locks]) => Ok((
                count(Some(wrong.clone()), 0)?,
                count(Some(locks.clone()), 0)?,
            )),
            _ => Ok((0, 0)),
        }
    }
    /// The card's row with its MAC, row-locked, and its audit counts, in one statement.
    fn card_mac_row_counted(&mut self, card: CardKey<'_>) -> Result<Counted<MacRow>, ServerError> {
        let dialect = self.dialect();
        let sql = mac::card_counted_sql(dialect.p(), dialect.locks_rows());
        let mut columns = mac_columns(&CARDS);
        columns.extend([Kind::Int, Kind::Int]);
        let Some(mut row) = self.fetch(sql, &card_params(card), &columns)?.pop() else {
            return Ok(None);
        };
        let locks = count(row.pop(), 0)?;
        let wrong = count(row.pop(), 0)?;
        Ok(Some((mac_row(row), (wrong, locks))))
    }
    /// The detail of the card's newest audit row with this event and outcome.
    fn last_card_audit_detail(
        &mut self,
        (profile, identity): CardKey<'_>,
        event: &str,
        outcome: &str,
    ) -> Result<Option<String>, ServerError> {
        let stmt = sql!(
            "SELECT detail FROM audit WHERE profile = $1 AND identity = $2 AND event = $3
                 AND outcome = $4 ORDER BY id DESC LIMIT 1"
        );
        let args = [
            Text(profile.as_str()),
            Text(identity),
            Text(event),
            Text(outcome),
        ];
        Ok(text(self.query_one(stmt, &args, Kind::Text)?))
    }

    /// The rows of a MACed table whose columns equal `filter` (all rows if empty), with their
    /// values in [`Table::all`] order and their stored MAC. Not locked.
    fn mac_rows(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        let sql = mac::select_sql(table, filter, self.dialect().p());
        fetch_mac_rows(self, sql, table, filter)
    }
    /// [`Self::mac_rows`], the rows locked until the transaction ends.
    fn mac_rows_locked(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        let dialect = self.dialect();
        let sql = if dialect.locks_rows() {
            mac::select_locked_sql(table, filter, dialect.p())
        } else {
            mac::select_sql(table, filter, dialect.p())
        };
        fetch_mac_rows(self, sql, table, filter)
    }
    /// Deletes the rows of a MACed table whose columns equal `filter` and returns them as they
    /// were, with their stored MAC (one statement: `DELETE ... RETURNING`).
    fn delete_mac_rows(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        let sql = mac::delete_returning_sql(table, filter, self.dialect().p());
        fetch_mac_rows(self, sql, table, filter)
    }
    /// Inserts a whole row (`values` in [`Table::all`] order) with its MAC; with `or_nothing`,
    /// nothing if its key exists. Returns the rows inserted.
    fn insert_mac_row(
        &mut self,
        table: &'static Table,
        values: &[Val],
        mac: &[u8; 32],
        or_nothing: bool,
    ) -> Result<u64, ServerError> {
        let params: Vec<Param> = table
            .all()
            .zip(values)
            .map(|(c, v)| (v.clone(), Some(c.kind)))
            .chain(once((Val::Blob(mac.to_vec()), None)))
            .collect();
        self.run(
            mac::insert_sql(table, or_nothing, self.dialect().p()),
            &params,
        )
    }
    /// [`Self::insert_mac_row`] with `or_nothing`, for a "once ever" row the transaction goes on
    /// from: `true` when inserted, `false` when its key was there. A backend may hold the
    /// insert back as [`Self::insert_new_mac_row`] does and answer `true` at once (PostgreSQL):
    /// if the held insert then finds its key taken, the transaction is rolled back, whatever
    /// it returns, and runs again from the start with this insert sent at once.
    fn claim_mac_row(
        &mut self,
        table: &'static Table,
        values: &[Val],
        mac: &[u8; 32],
    ) -> Result<bool, ServerError> {
        Ok(self.insert_mac_row(table, values, mac, true)? == 1)
    }
    /// [`Self::insert_mac_row`] of a new row (not `or_nothing`): exactly one row must be
    /// inserted. A backend may hold the statement back as [`Self::update_locked_mac_row`] does
    /// (an insert that fails, a duplicate key, then fails that later statement).
    fn insert_new_mac_row(
        &mut self,
        table: &'static Table,
        values: &[Val],
        mac: &[u8; 32],
    ) -> Result<(), ServerError> {
        let inserted = self.insert_mac_row(table, values, mac, false)?;
        inserted_once(table, inserted)
    }
    /// Sets the columns `sets` of the row with primary key `key` and its MAC to `mac`, only
    /// while its stored MAC is `old_mac` (the one checked). Returns the rows changed.
    fn update_mac_row(
        &mut self,
        table: &'static Table,
        key: &[Val],
        sets: &[(&'static str, Val)],
        mac: &[u8; 32],
        old_mac: &[u8],
    ) -> Result<u64, ServerError> {
        let names: Vec<&'static str> = sets.iter().map(|(n, _)| *n).collect();
        let params: Vec<Param> = sets
            .iter()
            .map(|(n, v)| (v.clone(), Some(table.kind_of(n))))
            .chain(once((Val::Blob(mac.to_vec()), None)))
            .chain(key.iter().map(|v| (v.clone(), None)))
            .chain(once((Val::Blob(old_mac.to_vec()), None)))
            .collect();
        self.run(
            mac::update_cols_sql(table, &names, self.dialect().p()),
            &params,
        )
    }
    /// [`Self::update_mac_row`] of a row this transaction holds locked (read `FOR UPDATE` or
    /// written by it): exactly one row must change, or the row was changed under its lock
    /// ([`ServerError::Tampered`]). A backend may hold the statement back and send it with
    /// the next one (PostgreSQL: in the statement of the next audit row); its row count is
    /// checked when it is sent, always before the transaction commits.
    fn update_locked_mac_row(
        &mut self,
        table: &'static Table,
        key: &[Val],
        sets: &[(&'static str, Val)],
        mac: &[u8; 32],
        old_mac: &[u8],
    ) -> Result<(), ServerError> {
        let changed = self.update_mac_row(table, key, sets, mac, old_mac)?;
        changed_under_lock(table, changed)
    }
    /// Sets the MAC of the row with primary key `key`.
    fn set_row_mac(
        &mut self,
        table: &'static Table,
        key: &[Val],
        mac: &[u8; 32],
    ) -> Result<(), ServerError> {
        let params: Vec<Param> = once((Val::Blob(mac.to_vec()), None))
            .chain(key.iter().map(|v| (v.clone(), None)))
            .collect();
        self.run(mac::update_sql(table, self.dialect().p()), &params)
            .map(drop)
    }
    /// Whether the one-time row-MAC migration is marked done, and whether the audit log
    /// records it (locked until the transaction ends).
    fn row_mac_state(&mut self) -> Result<(bool, bool), ServerError>;
    /// Marks the one-time row-MAC migration done.
    fn set_row_mac_done(&mut self) -> Result<(), ServerError> {
        let stmt = sql!("UPDATE row_mac_state SET done = TRUE WHERE only_row = 1");
        self.exec(stmt, &[]).map(drop)
    }
}

/// Runs `sql`, a statement returning `table`'s rows that match `filter` (with its values as the
/// parameters), and reads each row with its stored MAC.
fn fetch_mac_rows<E: Exec + ?Sized>(
    tx: &mut E,
    sql: &'static str,
    table: &Table,
    filter: &[(&'static str, Val)],
) -> Result<Vec<MacRow>, ServerError> {
    let rows = tx.fetch(sql, &filter_params(filter), &mac_columns(table))?;
    Ok(rows.into_iter().map(mac_row).collect())
}

/// A filter's values, bound as they are.
fn filter_params(filter: &[(&'static str, Val)]) -> Vec<Param> {
    filter.iter().map(|(_, v)| (v.clone(), None)).collect()
}

/// A card's key, bound as it is.
fn card_params((profile, identity): CardKey<'_>) -> Vec<Param> {
    vec![
        (Val::text(profile.as_str()), None),
        (Val::text(identity), None),
    ]
}

/// The columns of `SELECT <all columns>, mac` (or `RETURNING` them).
fn mac_columns(table: &Table) -> Vec<Kind> {
    table
        .all()
        .map(|c| c.kind)
        .chain(once(Kind::Blob))
        .collect()
}

/// A row read with [`mac_columns`]: its values, then its MAC (`None` if `NULL`).
fn mac_row(mut values: Vec<Val>) -> MacRow {
    let mac = match values.pop() {
        Some(Val::Blob(mac)) => Some(mac),
        _ => None,
    };
    MacRow { values, mac }
}

/// A row `[chain,] seq, mac` as its chain's name (if read) and head; `None` for a chain not
/// started (a negative `seq`).
fn head_row(mut row: Vec<Val>) -> Result<Option<(Option<String>, AuditHead)>, ServerError> {
    let mac = match row.pop() {
        Some(Val::Blob(mac)) => mac,
        _ => Vec::new(),
    };
    let seq = match row.pop() {
        Some(Val::Int(seq)) => seq,
        _ => {
            return Err(ServerError::InvalidInput(
                "the stored audit head is malformed".into(),
            ))
        }
    };
    let chain = text(row.pop());
    Ok(head_of(seq, &mac)?.map(|head| (chain, head)))
}
