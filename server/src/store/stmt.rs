//! The single-statement writes of [`super::tx::Tx`], written once for both backends: each is a
//! [`Stmt`] (its SQL text, PostgreSQL's `$N` placeholders; SQLite runs the same text with `?N`)
//! and its [`Arg`]s, run by the backend's [`super::tx::Tx::exec`]. Both dialects read the texts
//! alike (`TRUE` / `FALSE` are 1 / 0 in SQLite, `NOT closed` tests its 0 / 1 flag).

use std::sync::OnceLock;

/// One statement's text, with its SQLite form made once.
pub(crate) struct Stmt {
    text: &'static str,
    sqlite: OnceLock<String>,
}

impl Stmt {
    /// A statement written with `$N` placeholders.
    const fn new(text: &'static str) -> Self {
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
}

/// Declares each statement as a `static` [`Stmt`].
macro_rules! stmts {
    ($($(#[$doc:meta])* $name:ident = $text:literal;)*) => {
        $($(#[$doc])* pub(crate) static $name: Stmt = Stmt::new($text);)*
    };
}

stmts! {
    /// [`super::tx::Tx::insert_card`].
    INSERT_CARD = "INSERT INTO cards (profile, identity, algorithm, user_name, user_email, enrolled_ms)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING";
    /// [`super::tx::Tx::update_card_user`].
    UPDATE_CARD_USER = "UPDATE cards SET algorithm = $3, user_name = $4, user_email = $5
             WHERE profile = $1 AND identity = $2";
    /// [`super::tx::Tx::set_attempts`].
    SET_ATTEMPTS = "UPDATE cards SET failed_attempts = $3, locked = $4,
                 backoff_until_ms = CASE WHEN $5 THEN 0 ELSE backoff_until_ms END
             WHERE profile = $1 AND identity = $2";
    /// [`super::tx::Tx::set_puk_gens`].
    SET_PUK_GENS = "UPDATE cards SET puk_gen = $3, pending_puk_gen = $4,
                 puk_read_out = CASE WHEN puk_gen = $3 THEN puk_read_out ELSE FALSE END
             WHERE profile = $1 AND identity = $2";
    /// [`super::tx::Tx::delete_questions`].
    DELETE_QUESTIONS = "DELETE FROM questions WHERE profile = $1 AND identity = $2";
    /// [`super::tx::Tx::insert_question`].
    INSERT_QUESTION = "INSERT INTO questions (profile, identity, position, question, answer_hash)
             VALUES ($1, $2, $3, $4, $5)";
    /// [`super::tx::Tx::deny_puk`].
    DENY_PUK = "INSERT INTO puk_denied (profile, identity, gen) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING";
    /// [`super::tx::Tx::clear_denied_upto`].
    CLEAR_DENIED_UPTO = "DELETE FROM puk_denied WHERE profile = $1 AND identity = $2 AND gen <= $3";
    /// [`super::tx::Tx::insert_session`].
    INSERT_SESSION = "INSERT INTO sessions (token_hash, profile, identity, created_ms, expires_ms)
             VALUES ($1, $2, $3, $4, $5)";
    /// [`super::tx::Tx::set_session_nonce`].
    SET_SESSION_NONCE = "UPDATE sessions SET nonce = $2 WHERE token_hash = $1";
    /// [`super::tx::Tx::set_session_proven`].
    SET_SESSION_PROVEN = "UPDATE sessions SET proven = TRUE WHERE token_hash = $1";
    /// [`super::tx::Tx::set_card_auth_key`].
    SET_CARD_AUTH_KEY = "UPDATE cards SET card_auth_key = $3 WHERE profile = $1 AND identity = $2";
    /// [`super::tx::Tx::set_iso_profile`].
    SET_ISO_PROFILE = "UPDATE cards SET iso_profile = $3 WHERE profile = $1 AND identity = $2";
    /// [`super::tx::Tx::set_backoff`].
    SET_BACKOFF = "UPDATE cards SET backoff_until_ms = $3 WHERE profile = $1 AND identity = $2";
    /// [`super::tx::Tx::set_session_verified`].
    SET_SESSION_VERIFIED = "UPDATE sessions SET verified = TRUE WHERE token_hash = $1";
    /// [`super::tx::Tx::set_session_puk_next`].
    SET_SESSION_PUK_NEXT = "UPDATE sessions SET puk_next_gen = $2 WHERE token_hash = $1";
    /// [`super::tx::Tx::set_session_gids`].
    SET_SESSION_GIDS = "UPDATE sessions SET gids_randoms = $2 WHERE token_hash = $1";
    /// [`super::tx::Tx::close_card_sessions`].
    CLOSE_CARD_SESSIONS = "UPDATE sessions SET closed = TRUE WHERE profile = $1 AND identity = $2 AND NOT closed";
    /// [`super::tx::Tx::count_admin_answer`].
    COUNT_ADMIN_ANSWER = "UPDATE sessions SET admin_answers = admin_answers + 1 WHERE token_hash = $1";
    /// [`super::tx::Tx::close_session`].
    CLOSE_SESSION = "UPDATE sessions SET closed = TRUE WHERE token_hash = $1";
    /// [`super::tx::Tx::use_challenge`].
    USE_CHALLENGE = "INSERT INTO used_challenges (profile, identity, kind, value, used_ms)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SQLite text is the PostgreSQL one with `?N` for `$N`, and nothing else changed.
    #[test]
    fn sqlite_text_swaps_only_placeholders() {
        assert_eq!(
            SET_CARD_AUTH_KEY.sqlite(),
            "UPDATE cards SET card_auth_key = ?3 WHERE profile = ?1 AND identity = ?2"
        );
        assert_eq!(SET_CARD_AUTH_KEY.pg(), SET_CARD_AUTH_KEY.text);
    }
}
