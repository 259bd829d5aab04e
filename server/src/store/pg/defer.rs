//! Writes held back to travel with the next statement: the change of a row this transaction
//! holds locked ([`Tx::update_locked_mac_row`]), a new row ([`Tx::insert_new_mac_row`]) or a
//! claim ([`Tx::claim_mac_row`]). Up to [`MAX_HELD`] of them are sent in the statement of the
//! audit row that records them (one round trip for all), or together in one statement of their
//! own before any other statement and before `COMMIT`. Each is a `WITH` clause whose row count
//! is checked: a write that changed no row fails the whole transaction.
//!
//! The writes of one statement see the same snapshot, not each other's rows: two held writes
//! never touch the same row (the first is sent before the second is held).

use postgres::types::ToSql;

use super::conn::Conn;
use super::mac::{insert_parts, update_parts};
use super::PgTx;
use crate::store::mac::{self, Table, Val};
use crate::store::tx::{changed_under_lock, inserted_once, MacStoreTx};
use crate::ServerError;

/// How many parameters the audit row's statement takes before the held-back writes'.
pub(super) const AUDIT_PARAMS: usize = 13;
/// Most writes held back at once.
pub(super) const MAX_HELD: usize = 2;

/// What a held write is.
enum Write {
    /// `UPDATE` of these columns (and the MAC) over the MAC checked.
    Update(Vec<&'static str>),
    /// `INSERT` of a whole row; a claim (`ON CONFLICT DO NOTHING`) when `or_nothing`.
    Insert { or_nothing: bool },
}

/// An `UPDATE` of one locked row, an `INSERT` of a new one, or a claim, not sent yet.
pub(super) struct Deferred {
    table: &'static Table,
    /// The primary key of its row (two held writes never share one).
    key: Vec<Val>,
    write: Write,
    params: Vec<Box<dyn ToSql + Sync>>,
}

impl Deferred {
    /// The statement, its parameters numbered from `$first`.
    fn sql(&self, first: usize) -> &'static str {
        let p = move |i: usize| format!("${}", i + first - 1);
        match &self.write {
            Write::Update(names) => mac::update_cols_sql(self.table, names, p),
            Write::Insert { or_nothing } => mac::insert_sql(self.table, *or_nothing, p),
        }
    }

    /// Checks the row count the statement returned.
    fn check(&self, rows: u64) -> Result<(), ServerError> {
        match self.write {
            Write::Update(_) => changed_under_lock(self.table, rows),
            Write::Insert { or_nothing: false } => inserted_once(self.table, rows),
            Write::Insert { or_nothing: true } if rows == 1 => Ok(()),
            // Never seen by a caller: the transaction runs again ([`PgTx::claim_lost`]).
            Write::Insert { or_nothing: true } => Err(ServerError::InvalidInput(format!(
                "a claimed row of table {} was there already",
                self.table.name
            ))),
        }
    }
}

/// Held writes as `WITH` clauses (`w0 AS (... RETURNING 1), ...`), their parameters numbered
/// from `$first`, and the expressions that count their rows.
pub(super) struct HeldSql {
    pub ctes: String,
    pub counts: String,
}

/// [`HeldSql`] of `held`.
pub(super) fn held_sql(held: &[Deferred], first: usize) -> HeldSql {
    let mut next = first;
    let mut ctes = Vec::new();
    let mut counts = Vec::new();
    for (i, d) in held.iter().enumerate() {
        ctes.push(format!("w{i} AS ({} RETURNING 1)", d.sql(next)));
        counts.push(format!("(SELECT COUNT(*) FROM w{i})"));
        next += d.params.len();
    }
    HeldSql {
        ctes: ctes.join(", "),
        counts: counts.join(", "),
    }
}

/// The parameters of `held`, in order.
pub(super) fn held_params(held: &[Deferred]) -> impl Iterator<Item = &(dyn ToSql + Sync)> {
    held.iter().flat_map(|d| d.params.iter().map(AsRef::as_ref))
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
        let (names, params) = update_parts(table, key, sets, new_mac, old_mac);
        self.hold(Deferred {
            table,
            key: key.to_vec(),
            write: Write::Update(names),
            params,
        })
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
        self.hold(Deferred {
            table,
            key: values[..table.key.len().min(values.len())].to_vec(),
            write: Write::Insert { or_nothing: false },
            params: insert_parts(table, values, mac_),
        })
    }

    /// [`Tx::claim_mac_row`]: in a transaction that may hold claims, held back and answered
    /// `true`; if the held insert then finds the key taken, the transaction fails and runs
    /// again with claims sent at once ([`super::PgDb::transact`]). Else sent at once.
    pub(super) fn claim(
        &mut self,
        table: &'static Table,
        values: &[Val],
        mac_: &[u8; 32],
    ) -> Result<bool, ServerError> {
        if matches!(self.tx, Conn::Auto(_)) || !self.hold_claims {
            return Ok(self.insert_mac_row(table, values, mac_, true)? == 1);
        }
        self.hold(Deferred {
            table,
            key: values[..table.key.len().min(values.len())].to_vec(),
            write: Write::Insert { or_nothing: true },
            params: insert_parts(table, values, mac_),
        })?;
        Ok(true)
    }

    /// Holds `d` back: first sends what is held when the queue is full or holds a write of
    /// the same row.
    fn hold(&mut self, d: Deferred) -> Result<(), ServerError> {
        let same_row = self
            .pending
            .iter()
            .any(|h| h.table.name == d.table.name && h.key == d.key);
        if same_row || self.pending.len() >= MAX_HELD {
            self.flush()?;
        }
        self.pending.push(d);
        Ok(())
    }

    /// Checks the row counts of the held writes just sent (`counts` in their order).
    pub(super) fn check_held(
        &mut self,
        held: &[Deferred],
        counts: &[i64],
    ) -> Result<(), ServerError> {
        for (i, d) in held.iter().enumerate() {
            // A count that did not come back is no row.
            let rows = counts.get(i).map_or(0, |&n| u64::try_from(n).unwrap_or(0));
            if matches!(d.write, Write::Insert { or_nothing: true }) && rows != 1 {
                self.claim_lost = true;
            }
            d.check(rows)?;
        }
        Ok(())
    }

    /// Sends the held-back writes, if any, in one statement and checks their row counts.
    pub(super) fn flush(&mut self) -> Result<(), ServerError> {
        let held = std::mem::take(&mut self.pending);
        match held.as_slice() {
            [] => Ok(()),
            [d] => {
                let params: Vec<&(dyn ToSql + Sync)> = held_params(&held).collect();
                let rows = self.execute(d.sql(1), &params)?;
                self.check_held(&held, &[i64::try_from(rows).unwrap_or(0)])
            }
            _ => {
                let sql = held_sql(&held, 1);
                let text = mac::intern(format!("WITH {} SELECT {}", sql.ctes, sql.counts));
                let params: Vec<&(dyn ToSql + Sync)> = held_params(&held).collect();
                let counts = match self.query_opt(text, &params)? {
                    Some(r) => (0..held.len())
                        .map(|i| r.try_get::<_, i64>(i))
                        .collect::<Result<Vec<_>, _>>()?,
                    None => Vec::new(),
                };
                self.check_held(&held, &counts)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use postgres::NoTls;

    use super::super::PgDb;
    use crate::store::mac::guard::MacTx;
    use crate::store::mac::{Val, CARDS, SESSIONS, USED_CHALLENGES};
    use crate::store::tx::Tx;
    use crate::store::{AuditNote, Profile};
    use crate::ServerError;

    const KEY: [u8; 32] = [7; 32];
    const CARD: (Profile, &str) = (Profile::Iso, "0c0d");

    /// A fresh database on the test cluster (`CARDUNLOCK_TEST_POSTGRES`), `None` without one.
    /// [`database`] with [`CARD`] enrolled (its row MACed).
    fn enrolled(tag: &str) -> Option<PgDb> {
        let db = database(tag)?;
        db.transact(&mut |tx| {
            assert!(MacTx::new(tx, &KEY).insert_card(CARD, "3des", "N", "n@x", 1)?);
            Ok(())
        })
        .unwrap();
        Some(db)
    }

    fn database(tag: &str) -> Option<PgDb> {
        let admin = std::env::var("CARDUNLOCK_TEST_POSTGRES").ok()?;
        let name = format!("cu_defer_{tag}_{}", std::process::id());
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
        AuditNote::server(Some(CARD), "test", "written", "")
    }

    /// Proves a held-back write's row count is checked, both when it travels in the audit
    /// row's statement and when it goes alone before the commit: an update over a row whose
    /// stored MAC is not the one checked (changed outside the server) changes nothing and
    /// fails its transaction (nothing of it, not even the audit row, is kept). Without the
    /// check both transactions would commit. A write over the right MAC commits with its
    /// audit row, in one statement (one round trip) for both.
    #[test]
    fn a_held_back_write_that_changes_no_row_fails_its_transaction() {
        let Some(db) = enrolled("one") else {
            eprintln!("CARDUNLOCK_TEST_POSTGRES not set: skipped");
            return;
        };
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

    /// Proves two held writes travel with the audit row in one statement and that the row
    /// count of each is checked: with the second over a MAC that is not the stored one, the
    /// transaction fails and keeps nothing (neither write, nor the audit row). With both right,
    /// BEGIN, the locked read, one statement for both writes and the audit row, COMMIT.
    #[test]
    fn two_held_writes_ride_with_the_audit_row_and_each_is_checked() {
        let Some(db) = enrolled("two") else {
            eprintln!("CARDUNLOCK_TEST_POSTGRES not set: skipped");
            return;
        };
        let key = [Val::text("iso"), Val::text("0c0d")];
        let session = |n: u8| {
            [
                Val::Blob(vec![n; 32]),
                Val::text("iso"),
                Val::text("0c0d"),
                Val::Int(1),
                Val::Int(2),
                Val::Int(0),
                Val::Null,
                Val::Int(0),
                Val::Int(0),
                Val::Null,
                Val::Null,
                Val::Int(0),
            ]
        };
        // The insert is right, the update's checked MAC is wrong: the second count fails.
        let wrong = db.transact(&mut |tx| {
            tx.insert_new_mac_row(&SESSIONS, &session(1), &[3; 32])?;
            let sets = [("failed_attempts", Val::Int(3))];
            tx.update_locked_mac_row(&CARDS, &key, &sets, &[1; 32], &[0; 32])?;
            tx.insert_audit_row(&note(), 5, None)
        });
        assert!(
            matches!(&wrong, Err(ServerError::Tampered(w)) if w.contains("cards")),
            "{wrong:?}"
        );
        let kept = db.transact(&mut |tx| tx.mac_rows(&SESSIONS, &[])).unwrap();
        assert!(kept.is_empty(), "the first write was kept");
        assert!(db.transact(&mut |tx| tx.audit_log()).unwrap().is_empty());
        let mut trips = Vec::new();
        for n in 1..=2u8 {
            let before = db.round_trips();
            db.transact(&mut |tx| {
                let stored = tx.mac_rows_locked(&CARDS, &[])?.remove(0).mac.unwrap();
                tx.insert_new_mac_row(&SESSIONS, &session(n), &[3; 32])?;
                let sets = [("failed_attempts", Val::Int(n.into()))];
                tx.update_locked_mac_row(&CARDS, &key, &sets, &[n; 32], &stored)?;
                tx.insert_audit_row(&note(), 5, None)
            })
            .unwrap();
            trips.push(db.round_trips() - before);
        }
        assert_eq!(trips[1], 4, "{trips:?}");
        assert_eq!(
            db.transact(&mut |tx| tx.mac_rows(&SESSIONS, &[]))
                .unwrap()
                .len(),
            2
        );
        assert_eq!(db.transact(&mut |tx| tx.audit_log()).unwrap().len(), 2);
    }

    /// Proves a held claim that finds its row there never commits: the transaction is rolled
    /// back (even when the caller swallows the failure and returns `Ok`) and runs again with
    /// the claim sent at once, which then answers "taken". Without the rollback the first
    /// run's audit row ("claimed") would be committed over a claim that inserted nothing.
    #[test]
    fn a_held_claim_on_a_taken_row_rolls_back_and_runs_again() {
        let Some(db) = database("claim") else {
            eprintln!("CARDUNLOCK_TEST_POSTGRES not set: skipped");
            return;
        };
        let row = [
            Val::text("iso"),
            Val::text("0c0d"),
            Val::text("encrypt"),
            Val::text("0102"),
            Val::Int(1),
        ];
        let first = db
            .transact(&mut |tx| tx.claim_mac_row(&USED_CHALLENGES, &row, &[4; 32]))
            .unwrap();
        assert!(first);
        let mut seen = Vec::new();
        let again = db
            .transact(&mut |tx| {
                let claimed = tx.claim_mac_row(&USED_CHALLENGES, &row, &[4; 32])?;
                seen.push(claimed);
                let mut n = note();
                n.outcome = if claimed { "claimed" } else { "taken" };
                // Swallowed: the rollback must not depend on the caller passing it on.
                let _ = tx.insert_audit_row(&n, 5, None);
                Ok(claimed)
            })
            .unwrap();
        assert!(!again);
        assert_eq!(
            seen,
            [true, false],
            "held first, sent at once on the second run"
        );
        let outcomes: Vec<String> = db
            .transact(&mut |tx| tx.audit_log())
            .unwrap()
            .into_iter()
            .map(|e| e.outcome)
            .collect();
        assert_eq!(outcomes, ["taken"]);
    }

    /// Proves two writes of the same row never share a statement (one statement sees one
    /// snapshot, so the second, written over the MAC the first sets, would change no row and
    /// fail the transaction as tampered): the first is sent before the second is held, and
    /// both land.
    #[test]
    fn two_writes_of_one_row_are_sent_one_after_the_other() {
        let Some(db) = enrolled("same") else {
            eprintln!("CARDUNLOCK_TEST_POSTGRES not set: skipped");
            return;
        };
        let key = [Val::text("iso"), Val::text("0c0d")];
        db.transact(&mut |tx| {
            let stored = tx.mac_rows_locked(&CARDS, &[])?.remove(0).mac.unwrap();
            let first = [("failed_attempts", Val::Int(1))];
            tx.update_locked_mac_row(&CARDS, &key, &first, &[5; 32], &stored)?;
            let second = [("failed_attempts", Val::Int(2))];
            tx.update_locked_mac_row(&CARDS, &key, &second, &[6; 32], &[5; 32])?;
            tx.insert_audit_row(&note(), 5, None)
        })
        .unwrap();
        let row = db
            .transact(&mut |tx| tx.mac_rows(&CARDS, &[]))
            .unwrap()
            .remove(0);
        assert_eq!(row.mac.as_deref(), Some(&[6u8; 32][..]));
    }
}
