//! The single-statement writes of [`super::tx::Tx`], written once for both backends: each is a
//! [`Stmt`] (its SQL text, PostgreSQL's `$N` placeholders; SQLite runs the same text with `?N`)
//! and its [`Arg`]s, run by the backend's [`Exec::exec`]. Both dialects read the texts
//! alike (`TRUE` / `FALSE` are 1 / 0 in SQLite, `NOT closed` tests its 0 / 1 flag).

use std::sync::OnceLock;

/// One statement's text, with its SQLite form made once.
pub(crate) struct Stmt {
    text: &'static str,
    sqlite: OnceLock<String>,
}

impl Stmt {
    /// A statement written with `$N` placeholders.
    pub(crate) const fn new(text: &'static str) -> Self {
        Self {
            text,
            sqlite: OnceLock::new(),
        }
    }

    /// The PostgreSQL text.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn pg(&self) -> &'static str {
        self.text
    }

    /// The SQLite text: the same with `?N` placeholders.
    pub(crate) fn sqlite(&'static self) -> &'static str {
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
    fn exec(&mut self, stmt: &'static Stmt, args: &[Arg<'_>]) -> Result<u64, crate::ServerError>;
}

/// A `&'static` [`Stmt`] of a literal SQL text (`$N` placeholders), made once where it stands.
macro_rules! sql {
    ($text:literal) => {{
        static STMT: $crate::store::stmt::Stmt = $crate::store::stmt::Stmt::new($text);
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
