//! Typed rows as the SQLite backend reads them (the card row's type is both backends').

use rusqlite::types::ToSqlOutput;
use rusqlite::ToSql;

use crate::store::stmt::Arg;
use crate::store::{parse_algorithm, AuditEntry, CardRecord, Profile};
use crate::ServerError;

/// A `cards` row from the columns `algorithm, key_gen, puk_gen, pending_puk_gen, locked,
/// failed_attempts, user_name, user_email, pending_key_gen, puk_read_out, enrolled_ms, card_auth_key, backoff_until_ms, iso_profile`.
pub(super) fn card_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CardRow> {
    Ok(CardRow {
        algorithm: r.get(0)?,
        key_gen: r.get(1)?,
        puk_gen: r.get(2)?,
        pending_puk_gen: r.get(3)?,
        locked: r.get(4)?,
        failed_attempts: r.get(5)?,
        user_name: r.get(6)?,
        user_email: r.get(7)?,
        pending_key_gen: r.get(8)?,
        puk_read_out: r.get(9)?,
        enrolled_ms: r.get(10)?,
        card_auth_key: r.get(11)?,
        backoff_until_ms: r.get(12)?,
        iso_profile: r.get(13)?,
    })
}

/// An audit row from the columns `time_ms, profile, identity, session, event, outcome, detail,
/// operator, role, address`.
pub(super) fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        time_ms: r.get(0)?,
        profile: r.get(1)?,
        identity_hex: r.get(2)?,
        session: r.get(3)?,
        event: r.get(4)?,
        outcome: r.get(5)?,
        detail: r.get(6)?,
        operator: r.get(7)?,
        role: r.get(8)?,
        address: r.get(9)?,
    })
}

/// A `cards` row as both backends read it.
pub(in crate::store) struct CardRow {
    pub algorithm: String,
    pub key_gen: u32,
    pub puk_gen: u32,
    pub pending_puk_gen: Option<u32>,
    pub locked: bool,
    pub failed_attempts: u32,
    pub user_name: String,
    pub user_email: String,
    pub pending_key_gen: Option<u32>,
    pub puk_read_out: bool,
    pub enrolled_ms: i64,
    pub card_auth_key: Option<String>,
    pub backoff_until_ms: i64,
    pub iso_profile: Option<String>,
}

impl CardRow {
    pub(in crate::store) fn into_record(
        self,
        profile: Profile,
        identity: &str,
    ) -> Result<CardRecord, ServerError> {
        let algorithm = parse_algorithm(&self.algorithm).ok_or_else(|| {
            ServerError::InvalidInput(format!("stored algorithm {:?} unknown", self.algorithm))
        })?;
        Ok(CardRecord {
            profile: profile.as_str().to_owned(),
            identity_hex: identity.to_owned(),
            algorithm,
            key_gen: self.key_gen,
            puk_gen: self.puk_gen,
            pending_puk_gen: self.pending_puk_gen,
            pending_key_gen: self.pending_key_gen,
            puk_read_out: self.puk_read_out,
            enrolled_ms: self.enrolled_ms,
            locked: self.locked,
            failed_attempts: self.failed_attempts,
            user_name: self.user_name,
            user_email: self.user_email,
            card_auth_key: self.card_auth_key,
            backoff_until_ms: self.backoff_until_ms,
            iso_profile: self.iso_profile,
        })
    }
}

/// The joined reads, one statement per table: a SQLite statement is no network round trip.
impl crate::store::joined::JoinTx for super::SqliteTx<'_> {
    fn session_rows(
        &mut self,
        token_hash: &[u8; 32],
    ) -> Result<Option<crate::store::joined::SessionRows>, ServerError> {
        crate::store::joined::apart::session_rows(self, token_hash)
    }

    fn card_rows_with(
        &mut self,
        card: crate::store::tx::CardKey<'_>,
        with: &'static crate::store::mac::Table,
    ) -> Result<Option<(crate::store::mac::MacRow, Vec<crate::store::mac::MacRow>)>, ServerError>
    {
        crate::store::joined::apart::card_rows_with(self, card, with)
    }
}

/// A statement's argument as SQLite binds it (a flag as 0 or 1).
impl ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Arg::Int(i) => i.to_sql(),
            Arg::Flag(b) => b.to_sql(),
            Arg::Text(t) => t.to_sql(),
            Arg::Bytes(b) => b.to_sql(),
            Arg::OptText(t) => t.to_sql(),
            Arg::OptInt(i) => i.to_sql(),
            Arg::Real(f) => f.to_sql(),
        }
    }
}
