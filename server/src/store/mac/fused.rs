//! The unlock path's rows read, checked and written in one statement each: a MACed row is read
//! with its MAC (and locked) in the one `SELECT` that reads it, decoded from those values, and
//! written with its new MAC computed before the write, in an `UPDATE` that only matches while
//! the row still carries the MAC that was checked. The check and the write are one statement;
//! nothing is read back to be stamped.

use super::guard::MacTx;
use super::{check_rows, row_mac, MacRow, Omit, Table, Val};
use crate::store::sqlite::CardRow;
use crate::store::tx::CardKey;
use crate::store::{CardRecord, Profile, Session};
use crate::ServerError;

/// A row this transaction checked (or wrote) with its MAC; `locked` when it was read under
/// its row lock or written by this transaction.
#[derive(Clone, Debug)]
pub(super) struct Checked {
    pub values: Vec<Val>,
    pub mac: Vec<u8>,
    pub locked: bool,
}

impl MacTx<'_> {
    /// The rows matching `filter`, locked and checked.
    pub(super) fn locked_rows(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        let rows = self.inner.mac_rows_locked(table, filter)?;
        check_rows(self.key, table, &rows)?;
        for r in &rows {
            self.remember(table, r, true);
        }
        Ok(rows)
    }

    /// Changes the one row whose key is `filter` as `change` says, with its new MAC, in one
    /// statement over the row as it was checked. Nothing happens when there is no such row or
    /// the change changes nothing.
    pub(super) fn set(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
        change: &dyn Fn(&mut [Val]),
    ) -> Result<(), ServerError> {
        let key = Self::whole_key(table, filter)
            .ok_or_else(|| ServerError::InvalidInput(format!("not a key of {}", table.name)))?;
        let known = match self.checked(table, &key) {
            Some(c) if c.locked => c.clone(),
            _ => match self.locked_rows(table, filter)?.into_iter().next() {
                None => return Ok(()),
                Some(_) => match self.checked(table, &key) {
                    Some(c) => c.clone(),
                    None => return Ok(()),
                },
            },
        };
        let mut values = known.values.clone();
        change(&mut values);
        if values == known.values {
            return Ok(());
        }
        let sets: Vec<(&'static str, Val)> = table
            .all()
            .zip(values.iter().zip(&known.values))
            .filter(|(_, (new, old))| new != old)
            .map(|(c, (new, _))| (c.name, new.clone()))
            .collect();
        let mac = row_mac(self.key, table, &values);
        // The row is locked by this transaction (read `FOR UPDATE` or written by it): nothing
        // else can change it before the commit, so the write may travel with the next
        // statement; a row that does not match then was changed outside the server.
        self.inner
            .update_locked_mac_row(table, &key, &sets, &mac, &known.mac)?;
        self.remember(
            table,
            &MacRow {
                values,
                mac: Some(mac.to_vec()),
            },
            true,
        );
        Ok(())
    }

    /// Inserts a row of `given` columns (the others at their defaults: `NULL` or 0) with its
    /// MAC; with `or_nothing`, nothing (and `false`) when its key exists.
    pub(super) fn insert(
        &mut self,
        table: &'static Table,
        given: &[(&'static str, Val)],
        or_nothing: bool,
    ) -> Result<bool, ServerError> {
        let values = whole_row(table, given)?;
        let mac = row_mac(self.key, table, &values);
        // A new row (not `or_nothing`) is inserted or the statement fails: it may travel with
        // the next statement ([`Tx::insert_new_mac_row`]).
        let inserted = if or_nothing {
            self.inner.insert_mac_row(table, &values, &mac, true)? == 1
        } else {
            self.inner.insert_new_mac_row(table, &values, &mac)?;
            true
        };
        if inserted {
            let row = MacRow {
                values,
                mac: Some(mac.to_vec()),
            };
            self.remember(table, &row, true);
        }
        Ok(inserted)
    }

    /// Claims a "once ever" row of `given` columns with its MAC
    /// ([`crate::store::tx::Tx::claim_mac_row`]):
    /// `false` when its key exists.
    pub(super) fn claim(
        &mut self,
        table: &'static Table,
        given: &[(&'static str, Val)],
    ) -> Result<bool, ServerError> {
        let values = whole_row(table, given)?;
        let mac = row_mac(self.key, table, &values);
        let claimed = self.inner.claim_mac_row(table, &values, &mac)?;
        if claimed {
            let row = MacRow {
                values,
                mac: Some(mac.to_vec()),
            };
            self.remember(table, &row, true);
        }
        Ok(claimed)
    }

    /// Deletes the rows matching `filter` and returns them, refusing the transaction (so
    /// nothing is deleted) if one fails its MAC.
    pub(super) fn take(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        let rows = self.inner.delete_mac_rows(table, filter)?;
        check_rows(self.key, table, &rows)?;
        for r in &rows {
            self.forget(table, &r.key(table));
        }
        Ok(rows)
    }
}

/// Every column of `table` in order: the `given` values, the others at their default.
fn whole_row(table: &Table, given: &[(&'static str, Val)]) -> Result<Vec<Val>, ServerError> {
    table
        .all()
        .map(|c| match given.iter().find(|(n, _)| *n == c.name) {
            Some((_, v)) => Ok(v.clone()),
            None => match c.omit {
                Omit::Null => Ok(Val::Null),
                Omit::Zero => Ok(Val::Int(0)),
                Omit::Never => Err(ServerError::InvalidInput(format!(
                    "{}.{} needs a value",
                    table.name, c.name
                ))),
            },
        })
        .collect()
}

/// The value of column `name` in a row of `table`.
pub(super) fn value<'v>(table: &Table, values: &'v [Val], name: &str) -> &'v Val {
    table
        .all()
        .position(|c| c.name == name)
        .and_then(|i| values.get(i))
        .unwrap_or(&Val::Null)
}

/// Sets column `name` in a row of `table`.
pub(super) fn put(table: &Table, values: &mut [Val], name: &str, v: Val) {
    if let Some(slot) = table
        .all()
        .position(|c| c.name == name)
        .and_then(|i| values.get_mut(i))
    {
        *slot = v;
    }
}

fn bad(table: &Table, name: &str) -> ServerError {
    ServerError::InvalidInput(format!("stored {}.{name} out of range", table.name))
}

/// A typed reader of one row's values.
pub(super) struct Fields<'a> {
    pub table: &'a Table,
    pub values: &'a [Val],
}

impl Fields<'_> {
    fn int(&self, name: &str) -> Result<i64, ServerError> {
        match value(self.table, self.values, name) {
            Val::Int(i) => Ok(*i),
            _ => Err(bad(self.table, name)),
        }
    }
    fn small(&self, name: &str) -> Result<u32, ServerError> {
        u32::try_from(self.int(name)?).map_err(|_| bad(self.table, name))
    }
    fn opt_small(&self, name: &str) -> Result<Option<u32>, ServerError> {
        match value(self.table, self.values, name) {
            Val::Null => Ok(None),
            _ => self.small(name).map(Some),
        }
    }
    fn flag(&self, name: &str) -> Result<bool, ServerError> {
        Ok(self.int(name)? != 0)
    }
    pub(super) fn text(&self, name: &str) -> Result<String, ServerError> {
        match value(self.table, self.values, name) {
            Val::Text(t) => Ok(t.clone()),
            _ => Err(bad(self.table, name)),
        }
    }
    fn opt_text(&self, name: &str) -> Result<Option<String>, ServerError> {
        match value(self.table, self.values, name) {
            Val::Null => Ok(None),
            _ => self.text(name).map(Some),
        }
    }

    /// A `cards` row as the logic reads it.
    pub(super) fn card(&self, (profile, identity): CardKey<'_>) -> Result<CardRecord, ServerError> {
        CardRow {
            algorithm: self.text("algorithm")?,
            key_gen: self.small("key_gen")?,
            puk_gen: self.small("puk_gen")?,
            pending_puk_gen: self.opt_small("pending_puk_gen")?,
            locked: self.flag("locked")?,
            failed_attempts: self.small("failed_attempts")?,
            user_name: self.text("user_name")?,
            user_email: self.text("user_email")?,
            pending_key_gen: self.opt_small("pending_key_gen")?,
            puk_read_out: self.flag("puk_read_out")?,
            enrolled_ms: self.int("enrolled_ms")?,
            card_auth_key: self.opt_text("card_auth_key")?,
            backoff_until_ms: self.int("backoff_until_ms")?,
            iso_profile: self.opt_text("iso_profile")?,
        }
        .into_record(profile, identity)
    }

    /// A `sessions` row if it is live at `now` (not closed, not expired) and of a known
    /// profile.
    pub(super) fn live_session(&self, now: i64) -> Result<Option<Session>, ServerError> {
        if self.flag("closed")? || self.int("expires_ms")? <= now {
            return Ok(None);
        }
        let Some(profile) = Profile::parse(&self.text("profile")?) else {
            return Ok(None);
        };
        Ok(Some(Session {
            profile,
            identity: self.text("identity")?,
            verified: self.flag("verified")?,
            puk_next_gen: self.opt_small("puk_next_gen")?,
            admin_answers: self.small("admin_answers")?,
            gids_randoms: self.opt_text("gids_randoms")?,
            nonce: self.opt_text("nonce")?,
            proven: self.flag("proven")?,
        }))
    }
}

#[cfg(test)]
mod tests;
