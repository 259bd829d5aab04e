//! The joined reads ([`crate::store::joined`]) under row MACs: every row a joined statement
//! returns is checked as the separate reads check theirs (a session, a card, each question,
//! a diverged mark), before anything is decoded from it; and the decoders the joined reads
//! share with both backends.

use super::fused::{value, Fields};
use super::guard::{card_f, Filter, MacTx};
use super::{check_rows, MacRow, Table, Val, CARDS, QUESTIONS, SESSIONS};
use crate::store::joined::{JoinTx, SessionRows};
use crate::store::tx::CardKey;
use crate::store::{CardRecord, Profile, Session};
use crate::ServerError;

impl JoinTx for MacTx<'_> {
    fn session_rows(&mut self, token_hash: &[u8; 32]) -> Result<Option<SessionRows>, ServerError> {
        let Some(rows) = self.inner.session_rows(token_hash)? else {
            return Ok(None);
        };
        check_rows(self.key, &SESSIONS, std::slice::from_ref(&rows.session))?;
        if let Some((card, _)) = &rows.card {
            check_rows(self.key, &CARDS, std::slice::from_ref(card))?;
        }
        check_rows(self.key, &QUESTIONS, &rows.questions)?;
        // Read without their locks: a later change in this transaction reads them again.
        self.remember(&SESSIONS, &rows.session, false);
        if let Some((card, _)) = &rows.card {
            self.remember(&CARDS, card, false);
        }
        for q in &rows.questions {
            self.remember(&QUESTIONS, q, false);
        }
        Ok(Some(rows))
    }

    fn card_rows_with(
        &mut self,
        card: CardKey<'_>,
        with: &'static Table,
    ) -> Result<Option<(MacRow, Vec<MacRow>)>, ServerError> {
        let Some((row, rows)) = self.inner.card_rows_with(card, with)? else {
            return Ok(None);
        };
        check_rows(self.key, &CARDS, std::slice::from_ref(&row))?;
        check_rows(self.key, with, &rows)?;
        self.remember(&CARDS, &row, true);
        for r in &rows {
            self.remember(with, r, false);
        }
        Ok(Some((row, rows)))
    }
}

/// A card's rows: `profile = ? AND identity = ?`.
pub(crate) fn card_filter(card: CardKey<'_>) -> Filter {
    card_f(card)
}

/// The card a `sessions` row names (`None`: a profile this version does not know).
pub(crate) fn session_card(row: &MacRow) -> Option<(Profile, String)> {
    match (
        value(&SESSIONS, &row.values, "profile"),
        value(&SESSIONS, &row.values, "identity"),
    ) {
        (Val::Text(p), Val::Text(i)) => Profile::parse(p).map(|p| (p, i.clone())),
        _ => None,
    }
}

/// The rows sorted by their key (SQLite returns them in no set order).
pub(crate) fn in_key_order(table: &Table, mut rows: Vec<MacRow>) -> Vec<MacRow> {
    rows.sort_by(|a, b| cmp_key(table, a, b));
    rows
}

fn cmp_key(table: &Table, a: &MacRow, b: &MacRow) -> std::cmp::Ordering {
    let key = |r: &MacRow| -> Vec<(i64, String)> {
        r.values[..table.key.len().min(r.values.len())]
            .iter()
            .map(|v| match v {
                Val::Int(i) => (*i, String::new()),
                Val::Text(t) => (0, t.clone()),
                Val::Blob(b) => (0, hex::encode(b)),
                Val::Null => (i64::MIN, String::new()),
            })
            .collect()
    };
    key(a).cmp(&key(b))
}

/// A `sessions` row as the logic reads it, if it is live at `now`.
pub(crate) fn decode_session(row: &MacRow, now: i64) -> Result<Option<Session>, ServerError> {
    Fields {
        table: &SESSIONS,
        values: &row.values,
    }
    .live_session(now)
}

/// A `cards` row as the logic reads it.
pub(crate) fn decode_card(row: &MacRow, card: CardKey<'_>) -> Result<CardRecord, ServerError> {
    Fields {
        table: &CARDS,
        values: &row.values,
    }
    .card(card)
}

/// `questions` rows (in position order) as (question, answer hash) pairs.
pub(crate) fn decode_questions(rows: &[MacRow]) -> Result<Vec<(String, String)>, ServerError> {
    rows.iter()
        .map(|r| {
            let f = Fields {
                table: &QUESTIONS,
                values: &r.values,
            };
            Ok((f.text("question")?, f.text("answer_hash")?))
        })
        .collect()
}

/// The text column `name` of a row of `table`.
pub(crate) fn decode_text(table: &Table, row: &MacRow, name: &str) -> Result<String, ServerError> {
    Fields {
        table,
        values: &row.values,
    }
    .text(name)
}
