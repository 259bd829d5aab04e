//! The operators' part of the storage interface: accounts, their sessions, sign-in throttles,
//! daily counters, enrollments in progress, card search and the audit query. Both backends
//! implement [`OpTx`] (`sqlite/ops.rs`, `pg/ops.rs`); every [`super::Tx`] is one, so an
//! operator action and its audit row share one transaction.
//!
//! Locking: [`OpTx::read_operator`], [`OpTx::read_op_session`] and [`OpTx::read_enrollment`]
//! lock their row (PostgreSQL `FOR UPDATE`; SQLite's `BEGIN IMMEDIATE` locks everything).
//! Counters (throttles, daily caps) are single upserts that return the new value, so two
//! instances counting at once never lose a count.

use cardunlock_protocol::Role;

use super::mac::{Kind, Val};
use super::stmt::{count, sql, Arg, Exec};
use super::tx::CardKey;
use super::{AuditEntry, CardRecord};
use crate::ServerError;
use Arg::{Bytes, Flag, Int, OptInt, OptText, Text as T};

/// An operator account as stored.
#[derive(Clone)]
pub(crate) struct OperatorRow {
    pub name: String,
    /// Argon2id PHC string of the password.
    pub password_hash: String,
    /// The TOTP seed sealed with AES-256-GCM (nonce || ciphertext || tag).
    pub totp_sealed: Vec<u8>,
    /// The last TOTP step accepted at sign-in.
    pub totp_last_step: Option<i64>,
    pub roles: Vec<Role>,
    pub disabled: bool,
    pub created_ms: i64,
}

/// The stored form of a role list: wire names, comma separated, sorted.
pub(crate) fn roles_to_text(roles: &[Role]) -> String {
    let mut sorted = roles.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads a stored role list; unknown names are dropped (a newer version's role grants nothing).
pub(crate) fn roles_from_text(text: &str) -> Vec<Role> {
    text.split(',').filter_map(|r| r.parse().ok()).collect()
}

/// An operator session as stored (the token only as its SHA-256).
pub(crate) struct OpSessionRow {
    pub operator: String,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    pub ended: bool,
}

/// An enrollment handed out to an enroller.
pub(crate) struct EnrollmentRow {
    pub id: String,
    pub profile: String,
    pub identity: String,
    pub operator: String,
    pub algorithm: String,
    pub user_name: String,
    pub user_email: String,
    /// JSON `[[question, answer PHC], ...]`.
    pub questions: String,
    pub key_gen: u32,
    pub puk_gen: u32,
    pub created_ms: i64,
    /// `open`, `done`, `failed` (reported not personalised) or `superseded`.
    pub state: String,
}

/// What an audit query keeps (all given filters must match).
pub(crate) struct AuditFilter<'a> {
    /// Card profile, exact.
    pub profile: Option<&'a str>,
    pub identity: Option<&'a str>,
    /// Lowercase substring of the card holder's name or e-mail.
    pub user: Option<&'a str>,
    pub operator: Option<&'a str>,
    pub event: Option<&'a str>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub limit: u32,
}

/// The operators' primitive operations of one open transaction.
pub(crate) trait OpTx: Exec {
    /// Adds an operator; `false` (nothing changed) if the name is taken.
    fn insert_operator(&mut self, o: &OperatorRow) -> Result<bool, ServerError> {
        let roles = roles_to_text(&o.roles);
        let args = [
            T(&o.name),
            T(&o.password_hash),
            Bytes(&o.totp_sealed),
            OptInt(o.totp_last_step),
            T(&roles),
            Flag(o.disabled),
            Int(o.created_ms),
        ];
        let stmt = sql!(
            "INSERT INTO operators (name, password_hash, totp_sealed, totp_last_step, roles,
                                    disabled, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
        );
        Ok(self.exec(stmt, &args)? == 1)
    }
    /// The operator, row-locked; `None` if unknown.
    fn read_operator(&mut self, name: &str) -> Result<Option<OperatorRow>, ServerError>;
    /// Every operator, by name.
    fn list_operators(&mut self) -> Result<Vec<OperatorRow>, ServerError>;
    /// Replaces the password hash.
    fn set_operator_password(&mut self, name: &str, hash: &str) -> Result<(), ServerError> {
        let stmt = sql!("UPDATE operators SET password_hash = $2 WHERE name = $1");
        self.exec(stmt, &[T(name), T(hash)]).map(drop)
    }
    /// Replaces the sealed TOTP seed and forgets the last accepted step.
    fn set_operator_totp(&mut self, name: &str, sealed: &[u8]) -> Result<(), ServerError> {
        let stmt =
            sql!("UPDATE operators SET totp_sealed = $2, totp_last_step = NULL WHERE name = $1");
        self.exec(stmt, &[T(name), Bytes(sealed)]).map(drop)
    }
    /// Records the TOTP step just accepted.
    fn set_operator_totp_step(&mut self, name: &str, step: i64) -> Result<(), ServerError> {
        let stmt = sql!("UPDATE operators SET totp_last_step = $2 WHERE name = $1");
        self.exec(stmt, &[T(name), Int(step)]).map(drop)
    }
    /// Disables (or enables) the operator.
    fn set_operator_disabled(&mut self, name: &str, disabled: bool) -> Result<(), ServerError> {
        let stmt = sql!("UPDATE operators SET disabled = $2 WHERE name = $1");
        self.exec(stmt, &[T(name), Flag(disabled)]).map(drop)
    }

    /// Stores a new operator session.
    fn insert_op_session(
        &mut self,
        token_hash: &[u8; 32],
        operator: &str,
        now: i64,
        address: Option<&str>,
    ) -> Result<(), ServerError> {
        let stmt = sql!(
            "INSERT INTO operator_sessions (token_hash, operator, created_ms, last_seen_ms, address)
             VALUES ($1, $2, $3, $3, $4)"
        );
        let args = [
            Bytes(&token_hash[..]),
            T(operator),
            Int(now),
            OptText(address),
        ];
        self.exec(stmt, &args).map(drop)
    }
    /// The session, row-locked; `None` if unknown.
    fn read_op_session(
        &mut self,
        token_hash: &[u8; 32],
    ) -> Result<Option<OpSessionRow>, ServerError>;
    /// Records a call at `now`.
    fn touch_op_session(&mut self, token_hash: &[u8; 32], now: i64) -> Result<(), ServerError> {
        let stmt = sql!("UPDATE operator_sessions SET last_seen_ms = $2 WHERE token_hash = $1");
        self.exec(stmt, &[Bytes(&token_hash[..]), Int(now)])
            .map(drop)
    }
    /// Ends one session.
    fn end_op_session(&mut self, token_hash: &[u8; 32]) -> Result<(), ServerError> {
        let stmt = sql!("UPDATE operator_sessions SET ended = TRUE WHERE token_hash = $1");
        self.exec(stmt, &[Bytes(&token_hash[..])]).map(drop)
    }
    /// Deletes sessions that ended or began before `created_before` (housekeeping).
    fn delete_old_op_sessions(&mut self, created_before: i64) -> Result<(), ServerError> {
        // PostgreSQL: SKIP LOCKED, never wait for a session another request is using.
        let stmt = sql!(
            pg: "DELETE FROM operator_sessions WHERE token_hash IN
                 (SELECT token_hash FROM operator_sessions WHERE ended OR created_ms < $1
                  FOR UPDATE SKIP LOCKED)",
            sqlite: "DELETE FROM operator_sessions WHERE ended = 1 OR created_ms < ?1"
        );
        self.exec(stmt, &[Int(created_before)]).map(drop)
    }
    /// Ends every session of an operator.
    fn end_operator_sessions(&mut self, operator: &str) -> Result<(), ServerError> {
        let stmt =
            sql!("UPDATE operator_sessions SET ended = TRUE WHERE operator = $1 AND NOT ended");
        self.exec(stmt, &[T(operator)]).map(drop)
    }

    /// Counts a failed sign-in for `key` (`operator:NAME` or `address:IP`), starting again from
    /// one when the previous failure is older than `forget_before`; returns the count and the
    /// lock-out end it had.
    fn count_sign_in_failure(
        &mut self,
        key: &str,
        now: i64,
        forget_before: i64,
    ) -> Result<u32, ServerError> {
        let stmt = sql!(
            "INSERT INTO sign_in_failures AS s (key, failures, last_failure_ms) VALUES ($1, 1, $2)
             ON CONFLICT (key) DO UPDATE SET
                 failures = CASE WHEN s.last_failure_ms < $3 THEN 1 ELSE s.failures + 1 END,
                 last_failure_ms = $2
             RETURNING failures"
        );
        let args = [T(key), Int(now), Int(forget_before)];
        count(self.query_one(stmt, &args, Kind::Int)?, 1)
    }
    /// Sets the end of the key's lock-out.
    fn set_sign_in_lockout(&mut self, key: &str, until_ms: i64) -> Result<(), ServerError> {
        let stmt = sql!("UPDATE sign_in_failures SET locked_until_ms = $2 WHERE key = $1");
        self.exec(stmt, &[T(key), Int(until_ms)]).map(drop)
    }
    /// The end of the key's lock-out (0 if none).
    fn sign_in_lockout(&mut self, key: &str) -> Result<i64, ServerError> {
        let stmt = sql!("SELECT locked_until_ms FROM sign_in_failures WHERE key = $1");
        match self.query_one(stmt, &[T(key)], Kind::Int)? {
            Some(Val::Int(until)) => Ok(until),
            _ => Ok(0),
        }
    }
    /// Forgets the key's failures.
    fn clear_sign_in_failures(&mut self, key: &str) -> Result<(), ServerError> {
        let stmt = sql!("DELETE FROM sign_in_failures WHERE key = $1");
        self.exec(stmt, &[T(key)]).map(drop)
    }

    /// The operator's counter of `kind` for `day` (0 if none).
    fn daily_count(&mut self, operator: &str, day: i64, kind: &str) -> Result<u32, ServerError> {
        let stmt =
            sql!("SELECT count FROM operator_daily WHERE operator = $1 AND day = $2 AND kind = $3");
        count(
            self.query_one(stmt, &[T(operator), Int(day), T(kind)], Kind::Int)?,
            0,
        )
    }
    /// Adds one to the operator's counter of `kind` for `day` and returns the new value.
    fn bump_daily(&mut self, operator: &str, day: i64, kind: &str) -> Result<u32, ServerError> {
        let stmt = sql!(
            "INSERT INTO operator_daily AS d (operator, day, kind, count) VALUES ($1, $2, $3, 1)
             ON CONFLICT (operator, day, kind) DO UPDATE SET count = d.count + 1
             RETURNING count"
        );
        count(
            self.query_one(stmt, &[T(operator), Int(day), T(kind)], Kind::Int)?,
            1,
        )
    }

    /// Stores an enrollment.
    fn insert_enrollment(&mut self, e: &EnrollmentRow) -> Result<(), ServerError> {
        let stmt = sql!(
            "INSERT INTO enrollments (id, profile, identity, operator, algorithm, user_name,
                 user_email, questions, key_gen, puk_gen, created_ms, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        let args = [
            T(&e.id),
            T(&e.profile),
            T(&e.identity),
            T(&e.operator),
            T(&e.algorithm),
            T(&e.user_name),
            T(&e.user_email),
            T(&e.questions),
            Int(i64::from(e.key_gen)),
            Int(i64::from(e.puk_gen)),
            Int(e.created_ms),
            T(&e.state),
        ];
        self.exec(stmt, &args).map(drop)
    }
    /// The enrollment, row-locked.
    fn read_enrollment(&mut self, id: &str) -> Result<Option<EnrollmentRow>, ServerError>;
    /// The card's enrollments in state `open` or `failed`, newest first.
    fn unconfirmed_enrollments(
        &mut self,
        card: CardKey<'_>,
    ) -> Result<Vec<EnrollmentRow>, ServerError>;
    /// Sets one enrollment's state.
    fn set_enrollment_state(&mut self, id: &str, state: &str) -> Result<(), ServerError> {
        let stmt = sql!("UPDATE enrollments SET state = $2 WHERE id = $1");
        self.exec(stmt, &[T(id), T(state)]).map(drop)
    }
    /// Marks every other `open` / `failed` enrollment of the card `superseded`.
    fn supersede_enrollments(
        &mut self,
        (profile, identity): CardKey<'_>,
        except: &str,
    ) -> Result<(), ServerError> {
        let stmt = sql!(
            "UPDATE enrollments SET state = 'superseded'
             WHERE profile = $1 AND identity = $2 AND id <> $3 AND state IN ('open', 'failed')"
        );
        self.exec(stmt, &[T(profile.as_str()), T(identity), T(except)])
            .map(drop)
    }
    /// Enrollments `operator` began since `since_ms`.
    fn enrollments_since(&mut self, operator: &str, since_ms: i64) -> Result<u32, ServerError> {
        let stmt =
            sql!("SELECT COUNT(*) FROM enrollments WHERE operator = $1 AND created_ms >= $2");
        count(
            self.query_one(stmt, &[T(operator), Int(since_ms)], Kind::Int)?,
            0,
        )
    }

    /// Sets the confirmed and the pending admin-key generation.
    fn set_key_gens(
        &mut self,
        (profile, identity): CardKey<'_>,
        key_gen: u32,
        pending: Option<u32>,
    ) -> Result<(), ServerError> {
        let stmt = sql!(
            "UPDATE cards SET key_gen = $3, pending_key_gen = $4 WHERE profile = $1 AND identity = $2"
        );
        let (key_gen, pending) = (Int(i64::from(key_gen)), OptInt(pending.map(i64::from)));
        let args = [T(profile.as_str()), T(identity), key_gen, pending];
        self.exec(stmt, &args).map(drop)
    }
    /// Marks the current PUK as read out (cleared when the PUK generation moves).
    fn set_puk_read_out(&mut self, (profile, identity): CardKey<'_>) -> Result<(), ServerError> {
        let stmt =
            sql!("UPDATE cards SET puk_read_out = TRUE WHERE profile = $1 AND identity = $2");
        self.exec(stmt, &[T(profile.as_str()), T(identity)])
            .map(drop)
    }
    /// Cards whose holder's name or e-mail or whose identity contains `needle` (lowercase),
    /// by name, at most `limit`.
    fn search_cards(&mut self, needle: &str, limit: u32) -> Result<Vec<CardRecord>, ServerError>;
    /// Audit rows matching the filter, newest first.
    fn audit_query(&mut self, filter: &AuditFilter<'_>) -> Result<Vec<AuditEntry>, ServerError>;
}
