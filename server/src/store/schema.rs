//! The database schema of both backends, as numbered migrations. Version `n` is the state after
//! the first `n` steps; a database records its version (SQLite: `PRAGMA user_version`;
//! PostgreSQL: the one row of `cardunlock_schema`) and a server refuses a database whose version
//! is newer than the steps it knows ([`crate::ServerError::SchemaVersion`]).
//!
//! Add a migration by appending a step to *both* lists, keeping them the same length.

mod postgres;
mod sqlite;

pub(super) use postgres::POSTGRES;
pub(super) use sqlite::SQLITE;

/// The schema version this code writes.
pub(super) fn version() -> i64 {
    debug_assert_eq!(SQLITE.len(), POSTGRES.len());
    SQLITE.len() as i64
}
