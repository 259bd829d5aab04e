//! A write held back to travel with the next statement: the change of a row this transaction
//! holds locked ([`Tx::update_locked_mac_row`]) or a new row ([`Tx::insert_new_mac_row`]) is
//! sent in the statement of the audit row that records it (one round trip, not two), or on
//! its own before any other statement and before `COMMIT`. Its row count is checked either
//! way.

use postgres::types::ToSql;

use super::conn::Conn;
use super::mac::{insert_parts, update_parts};
use super::PgTx;
use crate::store::mac::{self, Table, Val};
use crate::store::tx::{changed_under_lock, inserted_once, Tx};
use crate::ServerError;

/// How many parameters the audit row's statement takes before the held-back write's.
pub(super) const AUDIT_PARAMS: usize = 13;

/// An `UPDATE` of one locked row or an `INSERT` of a new one, not sent yet.
pub(super) struct Deferred {
    table: &'static Table,
    /// Checks its row count.
    check: fn(&Table, u64) -> Result<(), ServerError>,
    /// The statement alone, its parameters from `$1`.
    alone: &'static str,
    /// The statement after the audit row's parameters (from `$14`), for a `WITH` clause.
    after_audit: &'static str,
    params: Vec<Box<dyn ToSql + Sync>>,
}

impl Deferred {
    /// The statement for a `WITH` clause before the audit row's (its parameters after the
    /// audit row's).
    pub(super) fn after_audit(&self) -> &'static str {
        self.after_audit
    }

    /// Checks the row count the statement returned.
    pub(super) fn check(&self, rows: u64) -> Result<(), ServerError> {
        (self.check)(self.table, rows)
    }

    /// Its parameters.
    pub(super) fn params(&self) -> impl Iterator<Item = &(dyn ToSql + Sync)> {
        self.params.iter().map(AsRef::as_ref)
    }
}

fn p(i: usize) -> String {
    format!("${i}")
}

fn p_after_audit(i: usize) -> String {
    format!("${}", i + AUDIT_PARAMS)
}

impl PgTx<'_> {
    /// [`Tx::update_locked_mac_row`]: held back in a transaction, sent at once without one.
    pub(super) fn defer_update(
        &mut self,
        table: &'static Table,
        key: &[Val],
        sets: &[(&'static str, Val)],
        new_mac: &[u8; 32],
        old_mac: &[u8],
    ) -> Result<(), ServerError> {
        if matches!(self.tx, Conn::Auto(_)) {
            let changed = self.update_mac_row(table, key, sets, new_mac, old_mac)?;
            return changed_under_lock(table, changed);
        }
        self.flush()?;
        let (names, params) = update_parts(table, key, sets, new_mac, old_mac);
        self.pending = Some(Deferred {
            table,
            check: changed_under_lock,
            alone: mac::update_cols_sql(table, &names, p),
            after_audit: mac::update_cols_sql(table, &names, p_after_audit),
            params,
        });
        Ok(())
    }

    /// [`Tx::insert_new_mac_row`]: held back in a transaction, sent at once without one.
    pub(super) fn defer_insert(
        &mut self,
        table: &'static Table,
        values: &[Val],
        mac_: &[u8; 32],
    ) -> Result<(), ServerError> {
        if matches!(self.tx, Conn::Auto(_)) {
            let inserted = self.insert_mac_row(table, values, mac_, false)?;
            return inserted_once(table, inserted);
        }
        self.flush()?;
        self.pending = Some(Deferred {
            table,
            check: inserted_once,
            alone: mac::insert_sql(table, false, p),
            after_audit: mac::insert_sql(table, false, p_after_audit),
            params: insert_parts(table, values, mac_),
        });
        Ok(())
    }

    /// Sends the held-back write, if any, on its own and checks its row count.
    pub(super) fn flush(&mut self) -> Result<(), ServerError> {
        let Some(d) = self.pending.take() else {
            return Ok(());
        };
        let params: Vec<&(dyn ToSql + Sync)> = d.params().collect();
        let rows = self.execute(d.alone, &params)?;
        d.check(rows)
    }
}

#[cfg(test)]
mod tests {
    use postgres::NoTls;

    use super::super::PgDb;
    use crate::store::mac::guard::MacTx;
    use crate::store::mac::{Val, CARDS};
    use crate::store::tx::Tx;
    use crate::store::{AuditNote, Profile};
    use crate::ServerError;

    const KEY: [u8; 32] = [7; 32];
    const CARD: (Profile, &str) = (Profile::Iso, "0c0d");

    /// A fresh database on the test cluster (`CARDUNLOCK_TEST_POSTGRES`), `None` without one.
    fn database() -> Option<PgDb> {
        let admin = std::env::var("CARDUNLOCK_TEST_POSTGRES").ok()?;
        let name = format!("cu_defer_{}", std::process::id());
        let mut client = postgres::Client::connect(&admin, NoTls).unwrap();
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .unwrap();
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let (base, _) = admin.rsplit_once('/').unwrap();
        // One connection: the second use of a statement finds it prepared.
        Some(PgDb::open(&format!("{base}/{name}"), None, 1, None).unwrap())
    }

    fn note() -> AuditNote<'static> {
        AuditNote {
            card: Some(CARD),
            session: None,
            event: "test",
            outcome: "written",
            detail: "",
            operator: None,
            role: None,
            address: None,
        }
    }

    /// Proves a held-back write's row count is checked, both when it travels in the audit
    /// row's statement and when it goes alone before the commit: an update over a row whose
    /// stored MAC is not the one checked (changed outside the server) changes nothing and
    /// fails its transaction (nothing of it, not even the audit row, is kept). Without the
    /// check both transactions would commit. A write over the right MAC commits with its
    /// audit row, in one statement (one round trip) for both.
    #[test]
    fn a_held_back_write_that_changes_no_row_fails_its_transaction() {
        let Some(db) = database() else {
            eprintln!("CARDUNLOCK_TEST_POSTGRES not set: skipped");
            return;
        };
        db.transact(&mut |tx| {
            assert!(MacTx::new(tx, &KEY).insert_card(CARD, "3des", "N", "n@x", 1)?);
            Ok(())
        })
        .unwrap();
        let key = [Val::text("iso"), Val::text("0c0d")];
        let sets = [("failed_attempts", Val::Int(3))];
        let with_audit = db.transact(&mut |tx| {
            tx.update_locked_mac_row(&CARDS, &key, &sets, &[1; 32], &[0; 32])?;
            tx.insert_audit_row(&note(), 5, None)
        });
        assert!(
            matches!(&with_audit, Err(ServerError::Tampered(w)) if w.contains("cards")),
            "{with_audit:?}"
        );
        let alone = db
            .transact(&mut |tx| tx.update_locked_mac_row(&CARDS, &key, &sets, &[1; 32], &[0; 32]));
        assert!(matches!(&alone, Err(ServerError::Tampered(_))), "{alone:?}");
        assert!(db.transact(&mut |tx| tx.audit_log()).unwrap().is_empty());
        let mut trips = Vec::new();
        for n in 1..=2u8 {
            let before = db.round_trips();
            db.transact(&mut |tx| {
                let stored = tx.mac_rows_locked(&CARDS, &[])?.remove(0).mac.unwrap();
                let sets = [("failed_attempts", Val::Int(n.into()))];
                tx.update_locked_mac_row(&CARDS, &key, &sets, &[n; 32], &stored)?;
                tx.insert_audit_row(&note(), 5, None)
            })
            .unwrap();
            trips.push(db.round_trips() - before);
        }
        // The second time, every statement prepared: BEGIN, the locked read, the write with
        // its audit row, COMMIT.
        assert_eq!(trips[1], 4, "{trips:?}");
        assert_eq!(db.transact(&mut |tx| tx.audit_log()).unwrap().len(), 2);
        let row = db
            .transact(&mut |tx| tx.mac_rows(&CARDS, &[]))
            .unwrap()
            .remove(0);
        assert_eq!(row.mac.as_deref(), Some(&[2u8; 32][..]));
    }
}
