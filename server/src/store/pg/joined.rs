//! The joined reads ([`JoinTx`]) on PostgreSQL: one statement each, so one round trip where
//! separate reads cost two or three. Each row comes back whole with its MAC, for the guard to
//! check ([`crate::store::mac::guard`]).

use super::mac::decode_at;
use super::{small, PgTx};
use crate::store::joined::{JoinTx, SessionRows};
use crate::store::mac::{self, MacRow, Table, CARDS, QUESTIONS, SESSIONS};
use crate::store::tx::CardKey;
use crate::ServerError;

/// `a.c1, a.c2, ..., a.mac`: every column of `table` under the alias `a`, then its MAC.
fn columns(table: &Table, alias: &str) -> String {
    table
        .all()
        .map(|c| format!("{alias}.{}", c.name))
        .chain(std::iter::once(format!("{alias}.mac")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The card key of the session row `s`, where [`mac::audit_counts_sql`] puts parameters.
fn session_card_key(i: usize) -> String {
    if i == 1 { "s.profile" } else { "s.identity" }.to_owned()
}

/// The session, its card with the card's audit counts, and the card's questions: one row per
/// question (one without a question), in position order.
fn session_rows_sql() -> &'static str {
    mac::intern(format!(
        "SELECT {}, {}, {}, {}
         FROM sessions s
         LEFT JOIN cards c ON c.profile = s.profile AND c.identity = s.identity
         LEFT JOIN questions q ON q.profile = c.profile AND q.identity = c.identity
         WHERE s.token_hash = $1
         ORDER BY q.position",
        columns(&SESSIONS, "s"),
        columns(&CARDS, "c"),
        mac::audit_counts_sql(session_card_key),
        columns(&QUESTIONS, "q"),
    ))
}

/// The card (locked) with the rows of `with` that share its key, in key order.
fn card_rows_with_sql(with: &Table) -> Result<&'static str, ServerError> {
    let keyed_by_card =
        with.key.len() >= 2 && with.key[0].name == "profile" && with.key[1].name == "identity";
    if !keyed_by_card {
        return Err(ServerError::InvalidInput(format!(
            "table {} is not keyed by a card",
            with.name
        )));
    }
    let order: Vec<String> = with.key.iter().map(|c| format!("x.{}", c.name)).collect();
    Ok(mac::intern(format!(
        "SELECT {}, {}
         FROM cards c
         LEFT JOIN {} x ON x.profile = c.profile AND x.identity = c.identity
         WHERE c.profile = $1 AND c.identity = $2
         ORDER BY {}
         FOR UPDATE OF c",
        columns(&CARDS, "c"),
        columns(with, "x"),
        with.name,
        order.join(", "),
    )))
}

/// Whether the row of a left-joined table starting at column `first` is there (its first key
/// column, never `NULL` in a stored row, is not).
fn joined(r: &postgres::Row, first: usize) -> Result<bool, ServerError> {
    Ok(r.try_get::<_, Option<String>>(first)?.is_some())
}

impl JoinTx for PgTx<'_> {
    fn session_rows(&mut self, token_hash: &[u8; 32]) -> Result<Option<SessionRows>, ServerError> {
        let rows = self.query(session_rows_sql(), &[&&token_hash[..]])?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let card_at = SESSIONS.all().count() + 1;
        let counts_at = card_at + CARDS.all().count() + 1;
        let questions_at = counts_at + 2;
        let session = decode_at(&SESSIONS, first, 0)?;
        let card = if joined(first, card_at)? {
            let counts = (
                small(first.try_get(counts_at)?)?,
                small(first.try_get(counts_at + 1)?)?,
            );
            Some((decode_at(&CARDS, first, card_at)?, counts))
        } else {
            None
        };
        let mut questions = Vec::new();
        for r in &rows {
            if joined(r, questions_at)? {
                questions.push(decode_at(&QUESTIONS, r, questions_at)?);
            }
        }
        Ok(Some(SessionRows {
            session,
            card,
            questions,
        }))
    }

    fn card_rows_with(
        &mut self,
        (profile, identity): CardKey<'_>,
        with: &'static Table,
    ) -> Result<Option<(MacRow, Vec<MacRow>)>, ServerError> {
        let rows = self.query(card_rows_with_sql(with)?, &[&profile.as_str(), &identity])?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let with_at = CARDS.all().count() + 1;
        let card = decode_at(&CARDS, first, 0)?;
        let mut joined_rows = Vec::new();
        for r in &rows {
            if joined(r, with_at)? {
                joined_rows.push(decode_at(with, r, with_at)?);
            }
        }
        Ok(Some((card, joined_rows)))
    }
}
