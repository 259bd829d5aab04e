//! Typed rows as the PostgreSQL backend reads them.

use postgres::types::ToSql;

use crate::store::sqlite::CardRow;
use crate::store::stmt::Arg;
use crate::store::AuditEntry;
use crate::ServerError;

/// A stored generation or count (BIGINT) as the `u32` the logic uses.
pub(super) fn small(v: i64) -> Result<u32, ServerError> {
    u32::try_from(v)
        .map_err(|_| ServerError::InvalidInput(format!("stored value {v} out of range")))
}

/// A `cards` row from the columns `algorithm, key_gen, puk_gen, pending_puk_gen, locked,
/// failed_attempts, user_name, user_email, pending_key_gen, puk_read_out, enrolled_ms, card_auth_key, backoff_until_ms, iso_profile`.
pub(super) fn card_row(r: &postgres::Row) -> Result<CardRow, ServerError> {
    Ok(CardRow {
        algorithm: r.get(0),
        key_gen: small(r.get(1))?,
        puk_gen: small(r.get(2))?,
        pending_puk_gen: r.get::<_, Option<i64>>(3).map(small).transpose()?,
        locked: r.get(4),
        failed_attempts: small(r.get(5))?,
        user_name: r.get(6),
        user_email: r.get(7),
        pending_key_gen: r.get::<_, Option<i64>>(8).map(small).transpose()?,
        puk_read_out: r.get(9),
        enrolled_ms: r.get(10),
        card_auth_key: r.get(11),
        backoff_until_ms: r.get(12),
        iso_profile: r.get(13),
    })
}

/// An audit row from the columns `time_ms, profile, identity, session, event, outcome, detail,
/// operator, role, address`.
pub(super) fn audit_row(r: &postgres::Row) -> AuditEntry {
    AuditEntry {
        time_ms: r.get(0),
        profile: r.get(1),
        identity_hex: r.get(2),
        session: r.get(3),
        event: r.get(4),
        outcome: r.get(5),
        detail: r.get(6),
        operator: r.get(7),
        role: r.get(8),
        address: r.get(9),
    }
}

/// A statement's argument as PostgreSQL binds it.
pub(super) fn pg_arg<'a>(arg: &'a Arg<'_>) -> &'a (dyn ToSql + Sync) {
    match arg {
        Arg::Int(i) => i,
        Arg::Flag(b) => b,
        Arg::Text(t) => t,
        Arg::Bytes(b) => b,
        Arg::OptText(t) => t,
        Arg::OptInt(i) => i,
        Arg::Real(f) => f,
    }
}
