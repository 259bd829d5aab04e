//! The SQLite backend (the embedded default): one connection behind a mutex, WAL mode, every
//! transaction `BEGIN IMMEDIATE`, which takes the database's write lock at once. Writers are
//! therefore serialized (within a process by the mutex, across processes on one file by
//! SQLite's lock), and a read-modify-write can never lose an update.

use rusqlite::{params, Connection, OptionalExtension};

mod audit;
mod conn;
mod mac;
mod ops;
mod readouts;
mod rows;

use super::chain::{self};
use super::mac::{Kind, Val};
use super::stmt::{Arg, Dialect, Exec, Param, Stmt};
use super::tx::{CardKey, Tx};
use super::{AuditNote, CardRecord, Profile, Session};
use crate::ServerError;
pub(super) use conn::SqliteDb;
pub(super) use rows::CardRow;
use rows::{audit_row, card_row};

/// A transaction on the connection, with the chain its audit rows append to.
pub(super) struct SqliteTx<'a>(&'a Connection, Option<&'a mut super::chain::lanes::Current>);

impl Exec for SqliteTx<'_> {
    fn exec(&mut self, stmt: &'static Stmt, args: &[Arg<'_>]) -> Result<u64, ServerError> {
        Ok(self
            .0
            .execute(stmt.sqlite(), rusqlite::params_from_iter(args))? as u64)
    }

    fn query_one(
        &mut self,
        stmt: &'static Stmt,
        args: &[Arg<'_>],
        kind: Kind,
    ) -> Result<Option<Val>, ServerError> {
        let params = rusqlite::params_from_iter(args);
        let value = self
            .0
            .query_row(stmt.sqlite(), params, |r| mac::read(r, 0, kind));
        Ok(rusqlite::OptionalExtension::optional(value)?)
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn run(&mut self, sql: &'static str, params: &[Param]) -> Result<u64, ServerError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(params.iter().map(mac::bind)))? as u64)
    }

    fn fetch(
        &mut self,
        sql: &'static str,
        params: &[Param],
        columns: &[Kind],
    ) -> Result<Vec<Vec<Val>>, ServerError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let params = rusqlite::params_from_iter(params.iter().map(mac::bind));
        let rows = stmt.query_map(params, |r| {
            columns
                .iter()
                .enumerate()
                .map(|(i, kind)| mac::read(r, i, *kind))
                .collect::<rusqlite::Result<Vec<Val>>>()
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl Tx for SqliteTx<'_> {
    fn read_card(
        &mut self,
        (profile, identity): CardKey<'_>,
    ) -> Result<Option<CardRecord>, ServerError> {
        let row = self
            .0
            .query_row(
                "SELECT algorithm, key_gen, puk_gen, pending_puk_gen, locked, failed_attempts,
                        user_name, user_email, pending_key_gen, puk_read_out, enrolled_ms,
                        card_auth_key, backoff_until_ms, iso_profile
                 FROM cards WHERE profile = ?1 AND identity = ?2",
                params![profile.as_str(), identity],
                card_row,
            )
            .optional()?;
        row.map(|r| r.into_record(profile, identity)).transpose()
    }

    fn delete_expired_sessions(&mut self, now: i64) -> Result<(), ServerError> {
        self.0
            .execute("DELETE FROM sessions WHERE expires_ms <= ?1", params![now])?;
        Ok(())
    }

    fn live_session(
        &mut self,
        token_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<Session>, ServerError> {
        let row = self
            .0
            .query_row(
                "SELECT profile, identity, verified, puk_next_gen, admin_answers, gids_randoms,
                        nonce, proven
                 FROM sessions WHERE token_hash = ?1 AND closed = 0 AND expires_ms > ?2",
                params![&token_hash[..], now],
                |r| {
                    let Some(profile) = Profile::parse(&r.get::<_, String>(0)?) else {
                        return Ok(None);
                    };
                    Ok(Some(Session {
                        profile,
                        identity: r.get(1)?,
                        verified: r.get(2)?,
                        puk_next_gen: r.get(3)?,
                        admin_answers: r.get(4)?,
                        gids_randoms: r.get(5)?,
                        nonce: r.get(6)?,
                        proven: r.get(7)?,
                    }))
                },
            )
            .optional()?;
        Ok(row.flatten())
    }

    fn insert_audit(&mut self, note: &AuditNote<'_>, now: i64) -> Result<(), ServerError> {
        chain::append(self, note, now)
    }
}

/// Every rule primitive is [`super::rules::RulesTx`]'s own, over [`Exec`].
impl super::rules::RulesTx for SqliteTx<'_> {}
