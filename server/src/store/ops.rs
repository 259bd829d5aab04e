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

use super::tx::CardKey;
use super::{AuditEntry, CardRecord};
use crate::ServerError;

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
pub(crate) trait OpTx {
    /// Adds an operator; `false` (nothing changed) if the name is taken.
    fn insert_operator(&mut self, row: &OperatorRow) -> Result<bool, ServerError>;
    /// The operator, row-locked; `None` if unknown.
    fn read_operator(&mut self, name: &str) -> Result<Option<OperatorRow>, ServerError>;
    /// Every operator, by name.
    fn list_operators(&mut self) -> Result<Vec<OperatorRow>, ServerError>;
    /// Replaces the password hash.
    fn set_operator_password(&mut self, name: &str, hash: &str) -> Result<(), ServerError>;
    /// Replaces the sealed TOTP seed and forgets the last accepted step.
    fn set_operator_totp(&mut self, name: &str, sealed: &[u8]) -> Result<(), ServerError>;
    /// Records the TOTP step just accepted.
    fn set_operator_totp_step(&mut self, name: &str, step: i64) -> Result<(), ServerError>;
    /// Disables (or enables) the operator.
    fn set_operator_disabled(&mut self, name: &str, disabled: bool) -> Result<(), ServerError>;

    /// Stores a new operator session.
    fn insert_op_session(
        &mut self,
        token_hash: &[u8; 32],
        operator: &str,
        now: i64,
        address: Option<&str>,
    ) -> Result<(), ServerError>;
    /// The session, row-locked; `None` if unknown.
    fn read_op_session(
        &mut self,
        token_hash: &[u8; 32],
    ) -> Result<Option<OpSessionRow>, ServerError>;
    /// Records a call at `now`.
    fn touch_op_session(&mut self, token_hash: &[u8; 32], now: i64) -> Result<(), ServerError>;
    /// Ends one session.
    fn end_op_session(&mut self, token_hash: &[u8; 32]) -> Result<(), ServerError>;
    /// Deletes sessions that ended or began before `created_before` (housekeeping).
    fn delete_old_op_sessions(&mut self, created_before: i64) -> Result<(), ServerError>;
    /// Ends every session of an operator.
    fn end_operator_sessions(&mut self, operator: &str) -> Result<(), ServerError>;

    /// Counts a failed sign-in for `key` (`operator:NAME` or `address:IP`), starting again from
    /// one when the previous failure is older than `forget_before`; returns the count and the
    /// lock-out end it had.
    fn count_sign_in_failure(
        &mut self,
        key: &str,
        now: i64,
        forget_before: i64,
    ) -> Result<u32, ServerError>;
    /// Sets the end of the key's lock-out.
    fn set_sign_in_lockout(&mut self, key: &str, until_ms: i64) -> Result<(), ServerError>;
    /// The end of the key's lock-out (0 if none).
    fn sign_in_lockout(&mut self, key: &str) -> Result<i64, ServerError>;
    /// Forgets the key's failures.
    fn clear_sign_in_failures(&mut self, key: &str) -> Result<(), ServerError>;

    /// The operator's counter of `kind` for `day` (0 if none).
    fn daily_count(&mut self, operator: &str, day: i64, kind: &str) -> Result<u32, ServerError>;
    /// Adds one to the operator's counter of `kind` for `day` and returns the new value.
    fn bump_daily(&mut self, operator: &str, day: i64, kind: &str) -> Result<u32, ServerError>;

    /// Stores an enrollment.
    fn insert_enrollment(&mut self, row: &EnrollmentRow) -> Result<(), ServerError>;
    /// The enrollment, row-locked.
    fn read_enrollment(&mut self, id: &str) -> Result<Option<EnrollmentRow>, ServerError>;
    /// The card's enrollments in state `open` or `failed`, newest first.
    fn unconfirmed_enrollments(
        &mut self,
        card: CardKey<'_>,
    ) -> Result<Vec<EnrollmentRow>, ServerError>;
    /// Sets one enrollment's state.
    fn set_enrollment_state(&mut self, id: &str, state: &str) -> Result<(), ServerError>;
    /// Marks every other `open` / `failed` enrollment of the card `superseded`.
    fn supersede_enrollments(&mut self, card: CardKey<'_>, except: &str)
        -> Result<(), ServerError>;
    /// Enrollments `operator` began since `since_ms`.
    fn enrollments_since(&mut self, operator: &str, since_ms: i64) -> Result<u32, ServerError>;

    /// Sets the confirmed and the pending admin-key generation.
    fn set_key_gens(
        &mut self,
        card: CardKey<'_>,
        key_gen: u32,
        pending: Option<u32>,
    ) -> Result<(), ServerError>;
    /// Marks the current PUK as read out (cleared when the PUK generation moves).
    fn set_puk_read_out(&mut self, card: CardKey<'_>) -> Result<(), ServerError>;
    /// Cards whose holder's name or e-mail or whose identity contains `needle` (lowercase),
    /// by name, at most `limit`.
    fn search_cards(&mut self, needle: &str, limit: u32) -> Result<Vec<CardRecord>, ServerError>;
    /// Audit rows matching the filter, newest first.
    fn audit_query(&mut self, filter: &AuditFilter<'_>) -> Result<Vec<AuditEntry>, ServerError>;
}
