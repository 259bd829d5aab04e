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
mod rules;

use super::chain::{self, AuditHead, ChainRow};
use super::mac::{MacRow, Table, Val};
use super::tx::{CardKey, Counted, Tx};
use super::{AuditEntry, AuditNote, CardRecord, Profile, Session};
use crate::ServerError;
pub(super) use conn::SqliteDb;
pub(super) use rows::CardRow;
use rows::{audit_row, card_row};

/// A transaction on the connection, with the chain its audit rows append to.
pub(super) struct SqliteTx<'a>(&'a Connection, Option<&'a mut super::chain::lanes::Current>);

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

    fn insert_card(
        &mut self,
        (profile, identity): CardKey<'_>,
        algorithm: &str,
        name: &str,
        email: &str,
        now: i64,
    ) -> Result<bool, ServerError> {
        let n = self.0.execute(
            "INSERT INTO cards (profile, identity, algorithm, user_name, user_email, enrolled_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            params![profile.as_str(), identity, algorithm, name, email, now],
        )?;
        Ok(n == 1)
    }

    fn update_card_user(
        &mut self,
        (profile, identity): CardKey<'_>,
        algorithm: &str,
        name: &str,
        email: &str,
    ) -> Result<(), ServerError> {
        self.0.execute(
            "UPDATE cards SET algorithm = ?3, user_name = ?4, user_email = ?5
             WHERE profile = ?1 AND identity = ?2",
            params![profile.as_str(), identity, algorithm, name, email],
        )?;
        Ok(())
    }

    fn set_attempts(
        &mut self,
        (profile, identity): CardKey<'_>,
        failed: u32,
        locked: bool,
    ) -> Result<(), ServerError> {
        self.0.execute(
            "UPDATE cards SET failed_attempts = ?3, locked = ?4,
                 backoff_until_ms = CASE WHEN ?5 THEN 0 ELSE backoff_until_ms END
             WHERE profile = ?1 AND identity = ?2",
            params![
                profile.as_str(),
                identity,
                failed,
                locked,
                failed == 0 && !locked
            ],
        )?;
        Ok(())
    }

    fn set_puk_gens(
        &mut self,
        (profile, identity): CardKey<'_>,
        puk_gen: u32,
        pending: Option<u32>,
    ) -> Result<(), ServerError> {
        self.0.execute(
            "UPDATE cards SET puk_gen = ?3, pending_puk_gen = ?4,
                 puk_read_out = CASE WHEN puk_gen = ?3 THEN puk_read_out ELSE 0 END
             WHERE profile = ?1 AND identity = ?2",
            params![profile.as_str(), identity, puk_gen, pending],
        )?;
        Ok(())
    }

    fn delete_questions(&mut self, (profile, identity): CardKey<'_>) -> Result<(), ServerError> {
        self.0.execute(
            "DELETE FROM questions WHERE profile = ?1 AND identity = ?2",
            params![profile.as_str(), identity],
        )?;
        Ok(())
    }

    fn insert_question(
        &mut self,
        (profile, identity): CardKey<'_>,
        position: u32,
        question: &str,
        answer_hash: &str,
    ) -> Result<(), ServerError> {
        self.0.execute(
            "INSERT INTO questions (profile, identity, position, question, answer_hash)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![profile.as_str(), identity, position, question, answer_hash],
        )?;
        Ok(())
    }

    fn questions(
        &mut self,
        (profile, identity): CardKey<'_>,
    ) -> Result<Vec<(String, String)>, ServerError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT question, answer_hash FROM questions WHERE profile = ?1 AND identity = ?2
             ORDER BY position",
        )?;
        let rows = stmt.query_map(params![profile.as_str(), identity], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn puk_denied(&mut self, (profile, identity): CardKey<'_>) -> Result<Vec<u32>, ServerError> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT gen FROM puk_denied WHERE profile = ?1 AND identity = ?2")?;
        let rows = stmt.query_map(params![profile.as_str(), identity], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn deny_puk(
        &mut self,
        (profile, identity): CardKey<'_>,
        generation: u32,
    ) -> Result<(), ServerError> {
        self.0.execute(
            "INSERT INTO puk_denied (profile, identity, gen) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
            params![profile.as_str(), identity, generation],
        )?;
        Ok(())
    }

    fn clear_denied_upto(
        &mut self,
        (profile, identity): CardKey<'_>,
        generation: u32,
    ) -> Result<(), ServerError> {
        self.0.execute(
            "DELETE FROM puk_denied WHERE profile = ?1 AND identity = ?2 AND gen <= ?3",
            params![profile.as_str(), identity, generation],
        )?;
        Ok(())
    }

    fn delete_expired_sessions(&mut self, now: i64) -> Result<(), ServerError> {
        self.0
            .execute("DELETE FROM sessions WHERE expires_ms <= ?1", params![now])?;
        Ok(())
    }

    fn insert_session(
        &mut self,
        token_hash: &[u8; 32],
        (profile, identity): CardKey<'_>,
        now: i64,
        expires: i64,
    ) -> Result<(), ServerError> {
        self.0.execute(
            "INSERT INTO sessions (token_hash, profile, identity, created_ms, expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![&token_hash[..], profile.as_str(), identity, now, expires],
        )?;
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

    fn set_session_nonce(&mut self, token_hash: &[u8; 32], nonce: &str) -> Result<(), ServerError> {
        self.0.execute(
            "UPDATE sessions SET nonce = ?2 WHERE token_hash = ?1",
            params![&token_hash[..], nonce],
        )?;
        Ok(())
    }

    fn set_session_proven(&mut self, token_hash: &[u8; 32]) -> Result<(), ServerError> {
        self.0.execute(
            "UPDATE sessions SET proven = 1 WHERE token_hash = ?1",
            params![&token_hash[..]],
        )?;
        Ok(())
    }

    fn set_card_auth_key(
        &mut self,
        (profile, identity): CardKey<'_>,
        key: Option<&str>,
    ) -> Result<(), ServerError> {
        self.0.execute(
            "UPDATE cards SET card_auth_key = ?3 WHERE profile = ?1 AND identity = ?2",
            params![profile.as_str(), identity, key],
        )?;
        Ok(())
    }

    fn set_iso_profile(
        &mut self,
        (profile, identity): CardKey<'_>,
        name: Option<&str>,
    ) -> Result<(), ServerError> {
        self.0.execute(
            "UPDATE cards SET iso_profile = ?3 WHERE profile = ?1 AND identity = ?2",
            params![profile.as_str(), identity, name],
        )?;
        Ok(())
    }

    fn set_backoff(
        &mut self,
        (profile, identity): CardKey<'_>,
        backoff_until_ms: i64,
    ) -> Result<(), ServerError> {
        self.0.execute(
            "UPDATE cards SET backoff_until_ms = ?3
             WHERE profile = ?1 AND identity = ?2",
            params![profile.as_str(), identity, backoff_until_ms],
        )?;
        Ok(())
    }

    fn set_session_verified(&mut self, token_hash: &[u8; 32]) -> Result<(), ServerError> {
        self.0.execute(
            "UPDATE sessions SET verified = 1 WHERE token_hash = ?1",
            params![&token_hash[..]],
        )?;
        Ok(())
    }

    fn set_session_puk_next(
        &mut self,
        token_hash: &[u8; 32],
        generation: u32,
    ) -> Result<(), ServerError> {
        self.0.execute(
            "UPDATE sessions SET puk_next_gen = ?2 WHERE token_hash = ?1",
            params![&token_hash[..], generation],
        )?;
        Ok(())
    }

    fn set_session_gids(
        &mut self,
        token_hash: &[u8; 32],
        randoms: Option<&str>,
    ) -> Result<(), ServerError> {
        self.0.execute(
            "UPDATE sessions SET gids_randoms = ?2 WHERE token_hash = ?1",
            params![&token_hash[..], randoms],
        )?;
        Ok(())
    }

    fn close_card_sessions(&mut self, (profile, identity): CardKey<'_>) -> Result<(), ServerError> {
        self.0.execute(
            "UPDATE sessions SET closed = 1 WHERE profile = ?1 AND identity = ?2 AND closed = 0",
            params![profile.as_str(), identity],
        )?;
        Ok(())
    }

    fn count_admin_answer(&mut self, token_hash: &[u8; 32]) -> Result<(), ServerError> {
        self.0.execute(
            "UPDATE sessions SET admin_answers = admin_answers + 1 WHERE token_hash = ?1",
            params![&token_hash[..]],
        )?;
        Ok(())
    }

    fn close_session(&mut self, token_hash: &[u8; 32]) -> Result<(), ServerError> {
        self.0.execute(
            "UPDATE sessions SET closed = 1 WHERE token_hash = ?1",
            params![&token_hash[..]],
        )?;
        Ok(())
    }

    fn use_challenge(
        &mut self,
        (profile, identity): CardKey<'_>,
        kind: &str,
        value: &str,
        now: i64,
    ) -> Result<bool, ServerError> {
        let n = self.0.execute(
            "INSERT INTO used_challenges (profile, identity, kind, value, used_ms)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            params![profile.as_str(), identity, kind, value, now],
        )?;
        Ok(n == 1)
    }

    fn insert_audit(&mut self, note: &AuditNote<'_>, now: i64) -> Result<(), ServerError> {
        chain::append(self, note, now)
    }

    fn insert_audit_row(
        &mut self,
        note: &AuditNote<'_>,
        now: i64,
        link: Option<super::chain::Link<'_>>,
    ) -> Result<(), ServerError> {
        audit::insert_row(self.0, note, now, link)
    }

    fn audit_head(&mut self) -> Result<Option<AuditHead>, ServerError> {
        audit::head(self.0)
    }

    fn set_audit_head(&mut self, head: &AuditHead) -> Result<(), ServerError> {
        audit::set_head(self.0, head)
    }

    fn lane_heads(&mut self) -> Result<Vec<(String, AuditHead)>, ServerError> {
        audit::lane_heads(self.0)
    }

    fn audit_starts(&mut self) -> Result<Vec<(Option<String>, AuditHead)>, ServerError> {
        audit::starts(self.0)
    }

    fn set_audit_start(
        &mut self,
        chain: Option<&str>,
        head: &AuditHead,
    ) -> Result<(), ServerError> {
        audit::set_start(self.0, chain, head)
    }

    fn delete_audit_rows(&mut self, ids: &[i64]) -> Result<(), ServerError> {
        audit::delete_rows(self.0, ids)
    }

    fn audit_chain_rows(&mut self, unchained_only: bool) -> Result<Vec<ChainRow>, ServerError> {
        audit::chain_rows(self.0, unchained_only)
    }

    fn set_audit_row_chain(
        &mut self,
        id: i64,
        seq: i64,
        mac: &[u8; 32],
    ) -> Result<(), ServerError> {
        audit::set_row_chain(self.0, id, seq, mac)
    }

    fn audit_log(&mut self) -> Result<Vec<AuditEntry>, ServerError> {
        audit::audit_log(self.0)
    }

    fn card_audit_counts(&mut self, card: CardKey<'_>) -> Result<(u32, u32), ServerError> {
        mac::card_audit_counts(self.0, card)
    }

    fn card_mac_row_counted(&mut self, card: CardKey<'_>) -> Result<Counted<MacRow>, ServerError> {
        mac::card_mac_row_counted(self.0, card)
    }

    fn last_card_audit_detail(
        &mut self,
        (profile, identity): CardKey<'_>,
        event: &str,
        outcome: &str,
    ) -> Result<Option<String>, ServerError> {
        mac::last_card_audit_detail(self.0, (profile, identity), event, outcome)
    }

    fn mac_rows(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        mac::mac_rows(self.0, table, filter)
    }

    fn mac_rows_locked(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        // `BEGIN IMMEDIATE` holds the whole database.
        mac::mac_rows(self.0, table, filter)
    }

    fn delete_mac_rows(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        mac::delete_mac_rows(self.0, table, filter)
    }

    fn insert_mac_row(
        &mut self,
        table: &'static Table,
        values: &[Val],
        mac: &[u8; 32],
        or_nothing: bool,
    ) -> Result<u64, ServerError> {
        mac::insert_mac_row(self.0, table, values, mac, or_nothing)
    }

    fn update_mac_row(
        &mut self,
        table: &'static Table,
        key: &[Val],
        sets: &[(&'static str, Val)],
        mac: &[u8; 32],
        old_mac: &[u8],
    ) -> Result<u64, ServerError> {
        mac::update_mac_row(self.0, table, key, sets, (mac, old_mac))
    }

    fn set_row_mac(
        &mut self,
        table: &'static Table,
        key: &[Val],
        mac: &[u8; 32],
    ) -> Result<(), ServerError> {
        mac::set_row_mac(self.0, table, key, mac)
    }

    fn row_mac_state(&mut self) -> Result<(bool, bool), ServerError> {
        mac::row_mac_state(self.0)
    }

    fn set_row_mac_done(&mut self) -> Result<(), ServerError> {
        mac::set_row_mac_done(self.0)
    }
}
