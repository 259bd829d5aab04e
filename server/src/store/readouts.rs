//! PIV PUK read-outs waiting for a second operator ("four eyes"), kept in the store so every
//! instance sees them. Both backends implement [`ReadoutTx`] (`sqlite/readouts.rs`,
//! `pg/readouts.rs`); every [`super::Tx`] is one.
//!
//! Locking: [`ReadoutTx::read_puk_readout`] locks its row (PostgreSQL `FOR UPDATE`; SQLite's
//! `BEGIN IMMEDIATE` locks everything), so two approvals or two collections of one request
//! serialise and the second sees the first's state.

use super::stmt::{sql, Arg, Exec};
use crate::ServerError;
use Arg::{Int, OptText, Text as T};

/// A read-out request as stored.
#[derive(Clone, Debug)]
pub(crate) struct PukReadoutRow {
    /// 32 hex digits.
    pub id: String,
    pub profile: String,
    pub identity: String,
    /// The operator who asked (and alone may collect).
    pub requester: String,
    /// How the requester identified the caller.
    pub identity_checked: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    /// The second operator, once approved.
    pub approver: Option<String>,
    /// `pending`, `approved` or `collected`.
    pub state: String,
}

/// The read-out requests' primitive operations of one open transaction.
pub(crate) trait ReadoutTx: Exec {
    /// Stores a new request.
    fn insert_puk_readout(&mut self, p: &PukReadoutRow) -> Result<(), ServerError> {
        let stmt = sql!(
            "INSERT INTO puk_readouts (id, profile, identity, requester, identity_checked,
                 created_ms, expires_ms, approver, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        let args = [
            T(&p.id),
            T(&p.profile),
            T(&p.identity),
            T(&p.requester),
            T(&p.identity_checked),
            Int(p.created_ms),
            Int(p.expires_ms),
            OptText(p.approver.as_deref()),
            T(&p.state),
        ];
        self.exec(stmt, &args).map(drop)
    }
    /// The request, row-locked; `None` if unknown.
    fn read_puk_readout(&mut self, id: &str) -> Result<Option<PukReadoutRow>, ServerError>;
    /// Sets the request's state and approver.
    fn set_puk_readout_state(
        &mut self,
        id: &str,
        state: &str,
        approver: Option<&str>,
    ) -> Result<(), ServerError> {
        let stmt = sql!("UPDATE puk_readouts SET state = $2, approver = $3 WHERE id = $1");
        self.exec(stmt, &[T(id), T(state), OptText(approver)])
            .map(drop)
    }
    /// The requests `pending` or `approved` that lapse after `now`, oldest first.
    fn open_puk_readouts(&mut self, now: i64) -> Result<Vec<PukReadoutRow>, ServerError>;
}
