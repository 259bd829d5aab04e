//! The database schema of both backends, as numbered migrations. Version `n` is the state after
//! the first `n` steps; a database records its version (SQLite: `PRAGMA user_version`;
//! PostgreSQL: the one row of `cardunlock_schema`) and a server refuses a database whose version
//! is newer than the steps it knows ([`crate::ServerError::SchemaVersion`]).
//!
//! The steps are written once ([`steps::STEPS`], in PostgreSQL's types); SQLite runs them with
//! its own type names ([`SQLITE_TYPES`]). Add a migration by appending one step.

use std::sync::OnceLock;

mod steps;

use steps::STEPS;

/// PostgreSQL's type names and SQLite's for them, longest first (the identity column before
/// `BIGINT`).
const SQLITE_TYPES: &[(&str, &str)] = &[
    (
        "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "INTEGER PRIMARY KEY AUTOINCREMENT",
    ),
    (
        "BOOLEAN NOT NULL DEFAULT FALSE",
        "INTEGER NOT NULL DEFAULT 0",
    ),
    ("DOUBLE PRECISION", "REAL"),
    ("BIGINT", "INTEGER"),
    ("BYTEA", "BLOB"),
];

/// Marks a line only PostgreSQL runs.
const PG_ONLY: &str = " -- postgres";
/// Marks a line only SQLite runs.
const SQLITE_ONLY: &str = " -- sqlite";

/// One step for one backend: its lines, the other backend's dropped, SQLite's types swapped in.
fn render(step: &str, sqlite: bool) -> String {
    let mut out: Vec<String> = Vec::new();
    for line in step.split('\n') {
        if let Some(line) = line.strip_suffix(PG_ONLY) {
            if !sqlite {
                out.push(line.to_owned());
            }
        } else if let Some(line) = line.strip_suffix(SQLITE_ONLY) {
            if sqlite {
                out.push(line.to_owned());
            }
        } else if sqlite {
            let swapped = SQLITE_TYPES
                .iter()
                .fold(line.to_owned(), |l, (pg, lite)| l.replace(pg, lite));
            out.push(swapped);
        } else {
            out.push(line.to_owned());
        }
    }
    out.join("\n")
}

/// PostgreSQL migrations.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(super) fn postgres() -> &'static [String] {
    static RENDERED: OnceLock<Vec<String>> = OnceLock::new();
    RENDERED.get_or_init(|| STEPS.iter().map(|s| render(s, false)).collect())
}

/// SQLite migrations.
pub(super) fn sqlite() -> &'static [String] {
    static RENDERED: OnceLock<Vec<String>> = OnceLock::new();
    RENDERED.get_or_init(|| STEPS.iter().map(|s| render(s, true)).collect())
}

/// The schema version this code writes.
pub(super) fn version() -> i64 {
    STEPS.len() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's steps hold none of PostgreSQL's types or lines, and PostgreSQL's none of
    /// SQLite's: fails if a type is left out of [`SQLITE_TYPES`] or a marker is not honoured.
    #[test]
    fn each_backend_gets_its_own_dialect() {
        assert_eq!(postgres().len(), sqlite().len());
        let lite = sqlite().join("\n");
        for pg in [
            "BIGINT",
            "BYTEA",
            "BOOLEAN",
            "DOUBLE PRECISION",
            "GENERATED",
            "FALSE",
        ] {
            assert!(!lite.contains(pg), "{pg} left in SQLite's schema");
        }
        assert!(!lite.contains("sessions_expiry") && lite.contains("x''"));
        let pg = postgres().join("\n");
        assert!(pg.contains("CREATE INDEX sessions_expiry ON sessions (expires_ms);\n"));
        assert!(!pg.contains("x''") && !pg.contains(PG_ONLY) && !lite.contains(SQLITE_ONLY));
        assert!(pg.contains("id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"));
        assert!(lite.contains("id INTEGER PRIMARY KEY AUTOINCREMENT"));
    }
}
