//! The operators' service functions: what the operator JSON API and the console call, with no
//! HTTP in them. Each takes the server's state, an authenticated [`Actor`] (from
//! [`authenticate`]) and a request of the contract (`cardunlock_protocol::operator`), checks
//! the actor's roles (403 `forbidden` otherwise), does the work in one transaction with its
//! audit row (operator, role, client address), and returns the contract's reply or an
//! [`OpError`] that maps to the contract's error body and status.
//!
//! - `auth`: [`sign_in`] (password + TOTP, throttled per operator and per address in the
//!   store), [`authenticate`] (idle and absolute limits, disabled operators), [`sign_out`], and
//!   the accounts ([`list_operators`], [`add_operator`], [`disable_operator`], [`reset_totp`],
//!   [`set_password`], [`create_operator`] for the command line).
//! - `cards`: [`search`], [`card_detail`], [`lift_lock`], [`offline_response`],
//!   [`puk_readout`].
//! - `enroll`: [`enroll_begin`], [`enroll_done`].
//! - `readouts` (four eyes on PUK read-outs): [`puk_readout_request`], [`puk_readouts`],
//!   [`approve_puk_readout`], [`collect_puk_readout`].
//! - `audit`: [`audit_query`], [`audit_csv`].

mod accounts;
pub(crate) mod audit;
mod auth;
mod cards;
mod enroll;
mod readouts;
mod seal;

use std::fmt;
use std::net::IpAddr;

use cardunlock_protocol::{CardRef, ErrorBody, ErrorCode, Role};

use crate::api::address_key;
use crate::store::{now_ms, AuditNote, Profile, Tx};
use crate::ServerError;

pub use self::accounts::{
    add_operator, create_operator, disable_operator, list_operators, reset_totp, set_password,
};
pub use self::audit::{audit_csv, audit_query};
pub use self::auth::{authenticate, sign_in, sign_out};
pub use self::cards::{card_detail, lift_lock, offline_response, puk_readout, search};
pub use self::enroll::{enroll_begin, enroll_done};
pub use self::readouts::{
    approve_puk_readout, collect_puk_readout, puk_readout_request, puk_readouts,
};

/// The server state the service functions run on.
pub use crate::api::AppState;

/// A signed-in operator, as [`authenticate`] found it.
#[derive(Clone)]
pub struct Actor {
    name: String,
    roles: Vec<Role>,
    address: Option<String>,
    token_hash: [u8; 32],
}

impl fmt::Debug for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Actor")
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Actor {
    /// The operator's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The operator's roles.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// Whether the operator holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The client address the call came from.
    pub fn address(&self) -> Option<&str> {
        self.address.as_deref()
    }

    /// The first of `allowed` the operator holds (the role the audit names), or 403.
    pub(crate) fn require(&self, allowed: &[Role]) -> Result<Role, OpError> {
        allowed
            .iter()
            .copied()
            .find(|r| self.has(*r))
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
                OpError::refused(
                    ErrorCode::Forbidden,
                    format!("This needs the role {}.", names.join(" or ")),
                )
            })
    }
}

/// Why an operator call was refused, or that the server failed.
#[derive(Debug)]
pub enum OpError {
    /// Refused: the contract's error body (its code gives the status).
    Refused(ErrorBody),
    /// The server or its store failed (500 `internal_error`; the cause is logged, not sent).
    Server(ServerError),
}

impl OpError {
    pub(crate) fn refused(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Refused(ErrorBody::new(code, message))
    }

    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self::refused(ErrorCode::BadRequest, message)
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::Refused(body) => body.error.status(),
            Self::Server(_) => 500,
        }
    }

    /// The body to send (a server failure is logged here and answered without its cause).
    pub fn body(&self) -> ErrorBody {
        match self {
            Self::Refused(body) => body.clone(),
            Self::Server(e) => {
                log::error!("operator API: {e}");
                ErrorBody::new(
                    ErrorCode::InternalError,
                    "The server failed; try again later.",
                )
            }
        }
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(body) => body.fmt(f),
            Self::Server(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for OpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Refused(body) => Some(body),
            Self::Server(e) => Some(e),
        }
    }
}

impl From<ServerError> for OpError {
    fn from(e: ServerError) -> Self {
        match e {
            ServerError::UnknownCard => Self::refused(
                ErrorCode::UnknownCard,
                "No card is enrolled with this profile and identity.",
            ),
            ServerError::InvalidInput(why) => Self::bad(format!("Bad request: {why}.")),
            other => Self::Server(other),
        }
    }
}

/// The client address as the store records it (IPv6 by its /64, as rate limits count it).
/// The contract's reference to a card the store keeps (its identity as stored: hex).
pub(crate) fn card_ref(profile: Profile, identity_hex: &str) -> Result<CardRef, ServerError> {
    let identity = identity_hex
        .parse()
        .map_err(|_| ServerError::InvalidInput("stored identity".into()))?;
    Ok(CardRef { profile, identity })
}

pub(crate) fn address_text(addr: Option<IpAddr>) -> Option<String> {
    addr.map(|a| address_key(a).to_string())
}

/// One audit row of an operator action.
pub(crate) struct Event<'a> {
    pub card: Option<(Profile, &'a str)>,
    pub event: &'a str,
    pub outcome: &'a str,
    pub detail: &'a str,
}

/// Writes the audit row of `actor`'s action, allowed by `role`, inside `tx`.
pub(crate) fn audit_in(
    tx: &mut dyn Tx,
    actor: &Actor,
    role: Option<Role>,
    e: &Event<'_>,
) -> Result<(), ServerError> {
    let note = AuditNote {
        card: e.card,
        session: None,
        event: e.event,
        outcome: e.outcome,
        detail: e.detail,
        operator: Some(actor.name.as_str()),
        role,
        address: actor.address.as_deref(),
    };
    if e.outcome == crate::alerts::ALERT {
        return crate::alerts::raise(tx, &note);
    }
    tx.insert_audit(&note, now_ms())
}

/// Checks a free-text note (a reason, how the caller was identified): 1 to
/// [`cardunlock_protocol::operator::MAX_NOTE`] bytes, not only spaces, no control characters.
pub(crate) fn check_note(what: &str, text: &str) -> Result<String, OpError> {
    let max = cardunlock_protocol::operator::MAX_NOTE;
    let trimmed = text.trim();
    if trimmed.is_empty() || text.len() > max || trimmed.chars().any(char::is_control) {
        return Err(OpError::bad(format!(
            "Bad request: {what} is required: 1 to {max} bytes of text."
        )));
    }
    Ok(trimmed.to_owned())
}

/// The UTC day of a time in ms (for daily caps), and the seconds left in it.
pub(crate) fn day_of(now_ms: i64) -> (i64, u64) {
    const DAY_MS: i64 = 86_400_000;
    let day = now_ms.div_euclid(DAY_MS);
    let left = (day + 1) * DAY_MS - now_ms;
    (day, u64::try_from(left / 1000).unwrap_or(0).max(1))
}
