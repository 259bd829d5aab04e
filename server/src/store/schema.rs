//! The database schema and its migrations (`PRAGMA user_version`).

use rusqlite::{Connection, TransactionBehavior};

use crate::ServerError;

/// The schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA_V1: &str = "
CREATE TABLE cards (
    profile TEXT NOT NULL,
    identity TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    user_name TEXT NOT NULL,
    user_email TEXT NOT NULL,
    key_gen INTEGER NOT NULL DEFAULT 0,
    puk_gen INTEGER NOT NULL DEFAULT 0,
    pending_puk_gen INTEGER,
    locked INTEGER NOT NULL DEFAULT 0,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    enrolled_ms INTEGER NOT NULL,
    PRIMARY KEY (profile, identity)
);
CREATE TABLE questions (
    profile TEXT NOT NULL,
    identity TEXT NOT NULL,
    position INTEGER NOT NULL,
    question TEXT NOT NULL,
    answer_hash TEXT NOT NULL,
    PRIMARY KEY (profile, identity, position)
);
CREATE TABLE puk_denied (
    profile TEXT NOT NULL,
    identity TEXT NOT NULL,
    gen INTEGER NOT NULL,
    PRIMARY KEY (profile, identity, gen)
);
CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    profile TEXT NOT NULL,
    identity TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    verified INTEGER NOT NULL DEFAULT 0,
    puk_next_gen INTEGER,
    admin_answers INTEGER NOT NULL DEFAULT 0,
    closed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE used_challenges (
    profile TEXT NOT NULL,
    identity TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    used_ms INTEGER NOT NULL,
    PRIMARY KEY (profile, identity, kind, value)
);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms INTEGER NOT NULL,
    profile TEXT,
    identity TEXT,
    session TEXT,
    event TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
";

/// Creates or upgrades the schema in one transaction; refuses a newer database.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), ServerError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    match version {
        0 => {
            tx.execute_batch(SCHEMA_V1)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        SCHEMA_VERSION => {}
        newer => return Err(ServerError::SchemaVersion(newer)),
    }
    tx.commit()?;
    Ok(())
}
