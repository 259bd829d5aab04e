//! Joined reads: rows an endpoint needs together, read in one statement where the backend can
//! (PostgreSQL: one round trip instead of two or three), each row with its MAC. With the row
//! key set, [`super::mac::guard::MacTx`] checks every row's MAC as it comes back, exactly as
//! the separate reads check theirs; the rows are then decoded here, for both backends.
//!
//! SQLite reads the same rows with one statement per table ([`apart`]): a statement there is
//! no network round trip.

use super::mac::{self, MacRow, Table, CARDS, CARD_DIVERGED, QUESTIONS, SESSIONS};
use super::tx::{CardKey, Counted, Tx};
use super::{CardRecord, Session};
use crate::ServerError;

/// A session's row, its card's row with the card's audit counts ([`Tx::card_audit_counts`]),
/// and the card's question rows, each with its stored MAC.
#[derive(Debug)]
pub(crate) struct SessionRows {
    pub session: MacRow,
    /// `None`: the card is no longer enrolled.
    pub card: Counted<MacRow>,
    /// In position order.
    pub questions: Vec<MacRow>,
}

/// The joined primitives of a transaction (both backends, and the MAC guard around them).
pub(crate) trait JoinTx {
    /// The session `token_hash` (whatever its state), its card with the card's audit counts and
    /// the card's questions, in one statement where the backend can; not locked (a read ahead
    /// of a transaction that reads the session and the card again under their locks).
    fn session_rows(&mut self, token_hash: &[u8; 32]) -> Result<Option<SessionRows>, ServerError>;
    /// The card's row, locked until the transaction ends (as [`Tx::read_card`]), with the rows
    /// of `with` (a table whose key starts with the card's) in key order, not locked.
    fn card_rows_with(
        &mut self,
        card: CardKey<'_>,
        with: &'static Table,
    ) -> Result<Option<(MacRow, Vec<MacRow>)>, ServerError>;
}

/// The joined primitives as separate statements, one per table (SQLite; and what the joined
/// statements must return).
pub(crate) mod apart {
    use super::*;

    /// [`JoinTx::session_rows`], one statement per table.
    pub(crate) fn session_rows(
        tx: &mut dyn Tx,
        token_hash: &[u8; 32],
    ) -> Result<Option<SessionRows>, ServerError> {
        let token = [("token_hash", mac::Val::Blob(token_hash.to_vec()))];
        let Some(session) = tx.mac_rows(&SESSIONS, &token)?.into_iter().next() else {
            return Ok(None);
        };
        let Some((profile, identity)) = mac::session_card(&session) else {
            return Ok(Some(SessionRows {
                session,
                card: None,
                questions: Vec::new(),
            }));
        };
        let card = (profile, identity.as_str());
        let card_row = tx.card_mac_row_counted(card)?;
        let questions = match card_row {
            Some(_) => tx.mac_rows(&QUESTIONS, &mac::card_filter(card))?,
            None => Vec::new(),
        };
        Ok(Some(SessionRows {
            session,
            card: card_row,
            questions: mac::in_key_order(&QUESTIONS, questions),
        }))
    }

    /// [`JoinTx::card_rows_with`], one statement per table.
    pub(crate) fn card_rows_with(
        tx: &mut dyn Tx,
        card: CardKey<'_>,
        with: &'static Table,
    ) -> Result<Option<(MacRow, Vec<MacRow>)>, ServerError> {
        let filter = mac::card_filter(card);
        let Some(row) = tx.mac_rows_locked(&CARDS, &filter)?.into_iter().next() else {
            return Ok(None);
        };
        let rows = tx.mac_rows(with, &filter)?;
        Ok(Some((row, mac::in_key_order(with, rows))))
    }
}

/// A card's (question, answer hash) pairs, in position order.
pub(crate) type Questions = Vec<(String, String)>;

/// What `answers` reads before it checks the answers: the live session, its card (with its
/// audit counts) and the card's (question, answer hash) pairs.
#[derive(Debug)]
pub(crate) struct AnswerView {
    pub session: Session,
    /// `None`: the card is no longer enrolled.
    pub card: Counted<CardRecord>,
    pub questions: Questions,
}

/// The live session `token_hash` with its card and questions ([`AnswerView`]), every row's MAC
/// checked and the card's attempt counter and lock cross-checked against its audit log
/// ([`super::session::cross_check`]); `None` when no such session is live at `now`.
pub(crate) fn answer_view(
    tx: &mut dyn Tx,
    token_hash: &[u8; 32],
    now: i64,
) -> Result<Option<AnswerView>, ServerError> {
    let Some(rows) = tx.session_rows(token_hash)? else {
        return Ok(None);
    };
    let Some(session) = mac::decode_session(&rows.session, now)? else {
        return Ok(None);
    };
    let card = match &rows.card {
        Some((row, counts)) => {
            let record = mac::decode_card(row, session.card())?;
            // In the store's call, so a rolled-back card raises the integrity alert.
            super::session::cross_check(&record, *counts)?;
            Some((record, *counts))
        }
        None => None,
    };
    Ok(Some(AnswerView {
        card,
        questions: mac::decode_questions(&rows.questions)?,
        session,
    }))
}

/// The card (row-locked, as [`Tx::read_card`]) with its (question, answer hash) pairs in
/// order; `None` if it is not enrolled.
pub(crate) fn card_and_questions(
    tx: &mut dyn Tx,
    card: CardKey<'_>,
) -> Result<Option<(CardRecord, Questions)>, ServerError> {
    let Some((row, questions)) = tx.card_rows_with(card, &QUESTIONS)? else {
        return Ok(None);
    };
    Ok(Some((
        mac::decode_card(&row, card)?,
        mac::decode_questions(&questions)?,
    )))
}

/// The card (row-locked, as [`Tx::read_card`]) with the reason it is marked diverged, if it
/// is ([`super::rules::RulesTx::card_diverged`]); `None` if it is not enrolled.
pub(crate) fn card_and_diverged(
    tx: &mut dyn Tx,
    card: CardKey<'_>,
) -> Result<Option<(CardRecord, Option<String>)>, ServerError> {
    let Some((row, marks)) = tx.card_rows_with(card, &CARD_DIVERGED)? else {
        return Ok(None);
    };
    let reason = match marks.first() {
        Some(mark) => Some(mac::decode_text(&CARD_DIVERGED, mark, "reason")?),
        None => None,
    };
    Ok(Some((mac::decode_card(&row, card)?, reason)))
}
