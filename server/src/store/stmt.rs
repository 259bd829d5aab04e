//! The single-statement writes of [`super::tx::Tx`], written once for both backends: each is a
//! [`Stmt`] (its SQL text, PostgreSQL's `$N` placeholders; SQLite runs the same text with `?N`)
//! and its [`Arg`]s, run by the backend's [`Exec::exec`]. Both dialects read the texts
//! alike (`TRUE` / `FALSE` are 1 / 0 in SQLite, `NOT closed` tests its 0 / 1 flag).

use std::sync::OnceLock;

use super::mac::{Kind, Val};
use crate::ServerError;

/// One statement's text, with its SQLite form made once.
pub(crate) struct Stmt {
    text: &'static str,
    /// SQLite's own text, where the dialects differ by more than the placeholders.
    sqlite_text: Option<&'static str>,
    sqlite: OnceLock<String>,
}

impl Stmt {
    /// A statement written with `$N` placeholders.
    pub(crate) const fn new(text: &'static str) -> Self {
        Self {
            text,
            sqlite_text: None,
            sqlite: OnceLock::new(),
        }
    }

    /// A statement whose SQLite text differs (written with `?N` placeholders).
    pub(crate) const fn pair(pg: &'static str, sqlite: &'static str) -> Self {
        Self {
            text: pg,
            sqlite_text: Some(sqlite),
            sqlite: OnceLock::new(),
        }
    }

    /// The PostgreSQL text.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn pg(&self) -> &'static str {
        self.text
    }

    /// The text for `dialect`.
    pub(crate) fn text_for(&'static self, dialect: Dialect) -> &'static str {
        match dialect {
            Dialect::Postgres => self.pg(),
            Dialect::Sqlite => self.sqlite(),
        }
    }

    /// The SQLite text: the same with `?N` placeholders.
    pub(crate) fn sqlite(&'static self) -> &'static str {
        if let Some(text) = self.sqlite_text {
            return text;
        }
        self.sqlite.get_or_init(|| self.text.replace('$', "?"))
    }
}

/// A value bound to a statement's placeholder.
#[derive(Clone, Copy)]
pub(crate) enum Arg<'a> {
    /// An integer (BIGINT / INTEGER).
    Int(i64),
    /// A flag (BOOLEAN / 0 or 1).
    Flag(bool),
    /// Text.
    Text(&'a str),
    /// Bytes (BYTEA / BLOB).
    Bytes(&'a [u8]),
    /// Text or `NULL`.
    OptText(Option<&'a str>),
    /// An integer or `NULL`.
    OptInt(Option<i64>),
    /// A float (DOUBLE PRECISION / REAL).
    Real(f64),
}

/// Runs single statements: both backends' transactions (and the row-MAC guard, which passes
/// them to its backend). The primitive that the shared single-statement writes are written on.
pub(crate) trait Exec {
    /// Runs one statement with its arguments; returns the rows it changed.
    fn exec(&mut self, stmt: &'static Stmt, args: &[Arg<'_>]) -> Result<u64, ServerError>;
    /// Runs one statement that returns at most one row: its first column read as `kind`, or
    /// `None` without a row.
    fn query_one(
        &mut self,
        stmt: &'static Stmt,
        args: &[Arg<'_>],
        kind: Kind,
    ) -> Result<Option<Val>, ServerError>;
    /// The backend's dialect, for the statements generated from a [`super::mac::Table`].
    fn dialect(&self) -> Dialect;
    /// Runs a generated statement ([`super::mac::insert_sql`]...); returns the rows it changed.
    fn run(&mut self, sql: &'static str, params: &[Param]) -> Result<u64, ServerError>;
    /// Runs a generated query; each row's columns read as `columns`.
    fn fetch(
        &mut self,
        sql: &'static str,
        params: &[Param],
        columns: &[Kind],
    ) -> Result<Vec<Vec<Val>>, ServerError>;
}

/// A value bound to a generated statement, with the kind of the column it is written to
/// (`None`: bound as it is, as in a filter).
pub(crate) type Param = (Val, Option<Kind>);

/// A backend's SQL dialect, where generated statements differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// PostgreSQL: `$N`, rows locked with `FOR UPDATE`.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres,
    /// SQLite: `?N`; `BEGIN IMMEDIATE` already holds the whole database.
    Sqlite,
}

impl Dialect {
    /// The placeholder of parameter `i` (1-based).
    pub(crate) fn p(self) -> fn(usize) -> String {
        fn dollar(i: usize) -> String {
            format!("${i}")
        }
        fn question(i: usize) -> String {
            format!("?{i}")
        }
        match self {
            Self::Postgres => dollar,
            Self::Sqlite => question,
        }
    }

    /// Whether a read takes row locks (`FOR UPDATE`).
    pub(crate) fn locks_rows(self) -> bool {
        self == Self::Postgres
    }
}

/// A stored count (or generation) as the `u32` the logic uses; `none` without a row.
pub(crate) fn count(value: Option<Val>, none: u32) -> Result<u32, ServerError> {
    match value {
        None | Some(Val::Null) => Ok(none),
        Some(Val::Int(v)) => u32::try_from(v)
            .map_err(|_| ServerError::InvalidInput(format!("stored value {v} out of range"))),
        Some(_) => Err(ServerError::InvalidInput(
            "stored count is not a number".into(),
        )),
    }
}

/// A stored text, if there is a row and it is not `NULL`.
pub(crate) fn text(value: Option<Val>) -> Option<String> {
    match value {
        Some(Val::Text(t)) => Some(t),
        _ => None,
    }
}

/// A `&'static` [`Stmt`] of a literal SQL text (`$N` placeholders), made once where it stands.
macro_rules! sql {
    ($text:literal) => {{
        static STMT: $crate::store::stmt::Stmt = $crate::store::stmt::Stmt::new($text);
        &STMT
    }};
    (pg: $pg:literal, sqlite: $sqlite:literal) => {{
        static STMT: $crate::store::stmt::Stmt = $crate::store::stmt::Stmt::pair($pg, $sqlite);
        &STMT
    }};
}
pub(crate) use sql;

#[cfg(test)]
mod tests {
    /// The SQLite text is the PostgreSQL one with `?N` for `$N`, and nothing else changed.
    #[test]
    fn sqlite_text_swaps_only_placeholders() {
        let stmt = sql!("UPDATE cards SET card_auth_key = $3 WHERE profile = $1 AND identity = $2");
        assert_eq!(
            stmt.sqlite(),
            "UPDATE cards SET card_auth_key = ?3 WHERE profile = ?1 AND identity = ?2"
        );
        assert_eq!(stmt.pg(), stmt.text);
    }
}
