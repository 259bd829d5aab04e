//! [`MacTx`]'s own steps: check the rows a primitive reads, stamp the rows it writes, and
//! remember which rows this transaction checked.

use std::collections::HashMap;

use super::MacTx;
use crate::store::mac::fused::Checked;
use crate::store::mac::{check_rows, row_mac, MacRow, Table, Val};
use crate::store::tx::Tx;
use crate::ServerError;

impl<'a> MacTx<'a> {
    /// Wraps `inner`, checking and stamping with `key`.
    pub(crate) fn new(inner: &'a mut dyn Tx, key: &'a [u8; 32]) -> Self {
        Self {
            inner,
            key,
            rows: HashMap::new(),
        }
    }

    /// Notes a row as checked (`locked`: under its row lock, or written here).
    pub(in crate::store::mac) fn remember(
        &mut self,
        table: &'static Table,
        row: &MacRow,
        locked: bool,
    ) {
        let Some(mac) = row.mac.clone() else {
            return;
        };
        let checked = Checked {
            values: row.values.clone(),
            mac,
            locked,
        };
        self.rows.insert((table.name, row.key(table)), checked);
    }

    /// Forgets a row (deleted, or changed by a statement that did not return it).
    pub(in crate::store::mac) fn forget(&mut self, table: &'static Table, key: &[Val]) {
        self.rows.remove(&(table.name, key.to_vec()));
    }

    /// The row as this transaction checked or wrote it last.
    pub(in crate::store::mac) fn checked(
        &self,
        table: &'static Table,
        key: &[Val],
    ) -> Option<&Checked> {
        self.rows.get(&(table.name, key.to_vec()))
    }

    /// The whole key of `table` if `filter` is exactly it.
    pub(in crate::store::mac) fn whole_key(
        table: &Table,
        filter: &[(&'static str, Val)],
    ) -> Option<Vec<Val>> {
        (filter.len() == table.key.len()
            && table.key.iter().zip(filter).all(|(c, (n, _))| c.name == *n))
        .then(|| filter.iter().map(|(_, v)| v.clone()).collect())
    }

    /// Checks every row matching `filter` (refusing the transaction if one fails).
    pub(in crate::store::mac) fn check(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        let rows = self.inner.mac_rows(table, filter)?;
        check_rows(self.key, table, &rows)?;
        for r in &rows {
            self.remember(table, r, false);
        }
        Ok(rows)
    }

    /// [`Self::check`], skipped for one row already checked in this transaction.
    pub(in crate::store::mac) fn verify(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<(), ServerError> {
        if let Some(key) = Self::whole_key(table, filter) {
            if self.rows.contains_key(&(table.name, key)) {
                return Ok(());
            }
        }
        self.check(table, filter).map(drop)
    }

    /// Gives every row matching `filter` its MAC (after a write).
    pub(in crate::store::mac) fn stamp(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<(), ServerError> {
        for r in self.inner.mac_rows(table, filter)? {
            let mac = row_mac(self.key, table, &r.values);
            if r.mac.as_deref() != Some(&mac[..]) {
                self.inner.set_row_mac(table, &r.key(table), &mac)?;
            }
            let row = MacRow {
                values: r.values,
                mac: Some(mac.to_vec()),
            };
            self.remember(table, &row, true);
        }
        Ok(())
    }

    /// Checks the rows, runs the write, stamps the rows.
    pub(in crate::store::mac) fn write<R>(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
        f: impl FnOnce(&mut dyn Tx) -> Result<R, ServerError>,
    ) -> Result<R, ServerError> {
        self.verify(table, filter)?;
        let result = f(self.inner)?;
        self.stamp(table, filter)?;
        Ok(result)
    }
}

impl crate::store::chain::lanes::LaneTx for MacTx<'_> {
    fn lane(&mut self) -> Option<&mut crate::store::chain::lanes::Current> {
        self.inner.lane()
    }
}
