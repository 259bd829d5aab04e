//! The SQLite connection: opened, migrated and traced (its statements counted), and its
//! `BEGIN IMMEDIATE` transactions.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::trace::{TraceEvent, TraceEventCodes};
use rusqlite::{Connection, TransactionBehavior};

use super::SqliteTx;
use crate::store::chain::lanes::Current;
use crate::store::schema;
use crate::store::tx::Tx;
use crate::ServerError;

/// An open SQLite database.
pub(in crate::store) struct SqliteDb {
    conn: Mutex<Connection>,
    /// Statements the connection ran since it was opened, the migration's excepted (SQLite's
    /// statement trace: `BEGIN`, each statement, `COMMIT`; a trigger's inner statements not).
    round_trips: Arc<AtomicU64>,
}

impl SqliteDb {
    /// Opens (creating if needed) and migrates the database at `path`, in WAL mode.
    pub(in crate::store) fn open(path: &Path) -> Result<Self, ServerError> {
        crate::files::sqlite_file(path)?;
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut conn)?;
        let round_trips = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&round_trips);
        conn.trace_v2(
            TraceEventCodes::SQLITE_TRACE_STMT,
            Some(move |event: TraceEvent<'_>| {
                // A trigger's statements are traced as `-- TRIGGER name`: part of their statement.
                if let TraceEvent::Stmt(_, sql) = event {
                    if !sql.starts_with("--") {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }),
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
            round_trips,
        })
    }

    /// Statements run so far by this store's transactions.
    pub(in crate::store) fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock rolled its transaction back; the connection is fine.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` in one `IMMEDIATE` transaction: committed if it returns `Ok`, rolled back if not.
    /// Its audit rows are written unchained ([`SqliteDb::transact_in`] chains them).
    #[cfg(test)]
    pub(in crate::store) fn transact<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, ServerError>,
    ) -> Result<R, ServerError> {
        self.transact_in(None, f)
    }

    /// [`SqliteDb::transact`], appending its audit rows to `lane`'s chain.
    pub(in crate::store) fn transact_in<R>(
        &self,
        lane: Option<&mut Current>,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, ServerError>,
    ) -> Result<R, ServerError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let result = f(&mut SqliteTx(&tx, lane))?;
        tx.commit()?;
        Ok(result)
    }
}

/// Creates or upgrades the schema in one transaction; refuses a newer database.
fn migrate(conn: &mut Connection) -> Result<(), ServerError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = schema::version();
    if version > known || version < 0 {
        return Err(ServerError::SchemaVersion(version));
    }
    for step in &schema::sqlite()[version as usize..] {
        tx.execute_batch(step)?;
    }
    if version != known {
        tx.pragma_update(None, "user_version", known)?;
    }
    tx.commit()?;
    Ok(())
}
