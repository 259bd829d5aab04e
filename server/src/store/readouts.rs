//! PIV PUK read-outs waiting for a second operator ("four eyes"), kept in the store so every
//! instance sees them. Both backends implement [`ReadoutTx`] (`sqlite/readouts.rs`,
//! `pg/readouts.rs`); every [`super::Tx`] is one.
//!
//! Locking: [`ReadoutTx::read_puk_readout`] locks its row (PostgreSQL `FOR UPDATE`; SQLite's
//! `BEGIN IMMEDIATE` locks everything), so two approvals or two collections of one request
//! serialise and the second sees the first's state.

use crate::ServerError;

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
pub(crate) trait ReadoutTx {
    /// Stores a new request.
    fn insert_puk_readout(&mut self, row: &PukReadoutRow) -> Result<(), ServerError>;
    /// The request, row-locked; `None` if unknown.
    fn read_puk_readout(&mut self, id: &str) -> Result<Option<PukReadoutRow>, ServerError>;
    /// Sets the request's state and approver.
    fn set_puk_readout_state(
        &mut self,
        id: &str,
        state: &str,
        approver: Option<&str>,
    ) -> Result<(), ServerError>;
    /// The requests `pending` or `approved` that lapse after `now`, oldest first.
    fn open_puk_readouts(&mut self, now: i64) -> Result<Vec<PukReadoutRow>, ServerError>;
}
