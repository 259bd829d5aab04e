//! The PostgreSQL backend, for several server instances sharing one store.
//!
//! Client: the synchronous `postgres` crate. The endpoints are synchronous functions that the
//! HTTP layer already runs on tokio's blocking threads (Argon2 and SQLite are synchronous too),
//! so a blocking client fits without making the store async; at most `2 × cores` requests run
//! at once, and the pool ([`r2d2`]) holds about that many connections. Each pooled connection
//! keeps its own prepared statements, so a statement costs one round trip after its first use.
//!
//! Isolation: every transaction runs at READ COMMITTED and takes row locks: the session row
//! (`SELECT ... FOR UPDATE`), then the card row (`FOR UPDATE`), before reading what it changes.
//! A concurrent transaction on the same card waits for the lock and then reads the committed
//! row, so no update is lost (the wrong-answer counter counts every attempt exactly once, the
//! lock is set at exactly N, a PUK is released once per session, generations only move as the
//! logic says). One-answer-per-challenge is the `used_challenges` primary key with
//! `INSERT ... ON CONFLICT DO NOTHING`: of two racing inserts, one inserts and the other waits
//! for it, then inserts nothing. A deadlock or serialization failure (not expected with this
//! lock order) is retried a few times.

mod audit;
mod conn;
mod defer;
mod joined;
mod mac;
mod ops;
mod pgpass;
mod readouts;
mod rows;
mod tls;

use super::chain::{self};
use super::mac::{Kind, Val};
use super::stmt::{Arg, Dialect, Exec, Param, Stmt};
use super::tx::{CardKey, Tx};
use super::{AuditNote, CardRecord, Profile, Session};
use crate::ServerError;
pub(super) use conn::PgDb;
use conn::PgTx;
use rows::{audit_row, card_row, pg_arg, small};

impl Exec for PgTx<'_> {
    fn exec(&mut self, stmt: &'static Stmt, args: &[Arg<'_>]) -> Result<u64, ServerError> {
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> = args.iter().map(pg_arg).collect();
        self.execute(stmt.pg(), &params)
    }

    fn query_one(
        &mut self,
        stmt: &'static Stmt,
        args: &[Arg<'_>],
        kind: Kind,
    ) -> Result<Option<Val>, ServerError> {
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> = args.iter().map(pg_arg).collect();
        let row = self.query_opt(stmt.pg(), &params)?;
        Ok(row.map(|r| mac::read(&r, 0, kind)).transpose()?)
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn run(&mut self, sql: &'static str, params: &[Param]) -> Result<u64, ServerError> {
        let boxes = mac::bind(params);
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            boxes.iter().map(AsRef::as_ref).collect();
        self.execute(sql, &refs)
    }

    fn fetch(
        &mut self,
        sql: &'static str,
        params: &[Param],
        columns: &[Kind],
    ) -> Result<Vec<Vec<Val>>, ServerError> {
        let boxes = mac::bind(params);
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            boxes.iter().map(AsRef::as_ref).collect();
        let rows = self.query(sql, &refs)?;
        let read = |r: &postgres::Row| {
            columns
                .iter()
                .enumerate()
                .map(|(i, kind)| mac::read(r, i, *kind))
                .collect::<Result<Vec<Val>, _>>()
        };
        Ok(rows.iter().map(read).collect::<Result<_, _>>()?)
    }
}

impl Tx for PgTx<'_> {
    fn read_card(
        &mut self,
        (profile, identity): CardKey<'_>,
    ) -> Result<Option<CardRecord>, ServerError> {
        let row = self.query_opt(
            "SELECT algorithm, key_gen, puk_gen, pending_puk_gen, locked, failed_attempts,
                    user_name, user_email, pending_key_gen, puk_read_out, enrolled_ms,
                    card_auth_key, backoff_until_ms, iso_profile
             FROM cards WHERE profile = $1 AND identity = $2 FOR UPDATE",
            &[&profile.as_str(), &identity],
        )?;
        let Some(r) = row else {
            return Ok(None);
        };
        card_row(&r)?.into_record(profile, identity).map(Some)
    }

    fn delete_expired_sessions(&mut self, now: i64) -> Result<(), ServerError> {
        self.sweep_expired(now)
    }

    fn live_session(
        &mut self,
        token_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<Session>, ServerError> {
        let row = self.query_opt(
            "SELECT profile, identity, verified, puk_next_gen, admin_answers, gids_randoms,
                    nonce, proven
             FROM sessions WHERE token_hash = $1 AND NOT closed AND expires_ms > $2 FOR UPDATE",
            &[&&token_hash[..], &now],
        )?;
        let Some(r) = row else {
            return Ok(None);
        };
        let Some(profile) = Profile::parse(r.get(0)) else {
            return Ok(None);
        };
        Ok(Some(Session {
            profile,
            identity: r.get(1),
            verified: r.get(2),
            puk_next_gen: r.get::<_, Option<i64>>(3).map(small).transpose()?,
            admin_answers: small(r.get(4))?,
            gids_randoms: r.get(5),
            nonce: r.get(6),
            proven: r.get(7),
        }))
    }

    fn insert_audit(&mut self, note: &AuditNote<'_>, now: i64) -> Result<(), ServerError> {
        chain::append(self, note, now)
    }
}

/// Every rule primitive is [`super::rules::RulesTx`]'s own, over [`Exec`].
impl super::rules::RulesTx for PgTx<'_> {}
