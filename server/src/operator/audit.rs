//! The audit log: the rows of operators' card actions, and the log for auditors and admins
//! (filtered JSON and CSV).

use cardunlock_protocol::operator::{AuditQuery, AuditRecord, AuditReply, MAX_AUDIT_ROWS};
use cardunlock_protocol::Role;

use super::{audit_in, Actor, AppState, Event, OpError};
use crate::store::ops::AuditFilter;
use crate::store::{AuditEntry, Profile};

/// Longest text filter, in bytes.
const MAX_FILTER: usize = 128;

/// Writes the audit row of `actor`'s action on `card`, allowed by `role`, inside `tx`.
pub(super) fn audit_card(
    tx: &mut dyn crate::store::Tx,
    actor: &Actor,
    role: Role,
    card: (Profile, &str),
    (event, outcome): (&str, &str),
    detail: &str,
) -> Result<(), crate::ServerError> {
    let ev = Event {
        card: Some(card),
        event,
        outcome,
        detail,
    };
    audit_in(tx, actor, Some(role), &ev)
}

/// The contract's form of a stored row.
pub(crate) fn record(e: AuditEntry) -> AuditRecord {
    let card = match (
        e.profile.as_deref().and_then(Profile::parse),
        e.identity_hex,
    ) {
        (Some(p), Some(identity)) => super::card_ref(p, &identity).ok(),
        _ => None,
    };
    AuditRecord {
        time_ms: e.time_ms,
        operator: e.operator,
        role: e.role.and_then(|r| r.parse().ok()),
        address: e.address,
        card,
        session: e.session,
        event: e.event,
        outcome: e.outcome,
        detail: e.detail,
    }
}

fn rows(
    state: &AppState,
    actor: &Actor,
    q: &AuditQuery,
    csv: bool,
) -> Result<Vec<AuditEntry>, OpError> {
    let role = actor.require(&[Role::Auditor, Role::Admin])?;
    let text = |what: &str, v: &Option<String>| -> Result<Option<String>, OpError> {
        match v.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(t) if t.len() > MAX_FILTER => Err(OpError::bad(format!(
                "Bad request: the {what} filter is longer than {MAX_FILTER} bytes."
            ))),
            Some(t) => Ok(Some(t.to_owned())),
        }
    };
    let identity = text("card", &q.card)?.map(|c| c.to_ascii_lowercase());
    let user = text("user", &q.user)?.map(|u| u.to_lowercase());
    let operator = text("operator", &q.operator)?;
    let event = text("event", &q.event)?;
    let limit = q.limit.unwrap_or(MAX_AUDIT_ROWS).clamp(1, MAX_AUDIT_ROWS);
    let filter = AuditFilter {
        profile: None,
        identity: identity.as_deref(),
        user: user.as_deref(),
        operator: operator.as_deref(),
        event: event.as_deref(),
        since_ms: q.since_ms,
        until_ms: q.until_ms,
        limit,
    };
    Ok(state.store.transact(|tx| {
        let found = tx.audit_query(&filter)?;
        let detail = format!("{} row(s){}", found.len(), if csv { " as CSV" } else { "" });
        let ev = Event {
            card: None,
            event: "audit_query",
            outcome: "ok",
            detail: &detail,
        };
        audit_in(tx, actor, Some(role), &ev)?;
        Ok(found)
    })?)
}

/// Audit rows matching the query, newest first (roles `auditor`, `admin`; the query itself is
/// audited).
pub fn audit_query(state: &AppState, actor: &Actor, q: &AuditQuery) -> Result<AuditReply, OpError> {
    Ok(AuditReply {
        entries: rows(state, actor, q, false)?
            .into_iter()
            .map(record)
            .collect(),
    })
}

/// One CSV cell (RFC 4180): quoted, quotes doubled, and a cell a spreadsheet would read as a
/// formula (starting with `=`, `+`, `-`, `@`, tab or carriage return) prefixed with `'`.
pub(crate) fn csv_cell(text: &str) -> String {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let mut out = String::with_capacity(text.len() + 3);
    out.push('"');
    if formula {
        out.push('\'');
    }
    for c in text.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The same rows as [`audit_query`], as CSV with a header line (`text/csv`).
pub fn audit_csv(state: &AppState, actor: &Actor, q: &AuditQuery) -> Result<String, OpError> {
    let mut out = String::from(
        "time_ms,operator,role,address,profile,identity,session,event,outcome,detail\r\n",
    );
    for e in rows(state, actor, q, true)? {
        let cells = [
            e.time_ms.to_string(),
            e.operator.unwrap_or_default(),
            e.role.unwrap_or_default(),
            e.address.unwrap_or_default(),
            e.profile.unwrap_or_default(),
            e.identity_hex.unwrap_or_default(),
            e.session.unwrap_or_default(),
            e.event,
            e.outcome,
            e.detail,
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn formulas_are_defused_and_quotes_doubled() {
        assert_eq!(csv_cell("=1+1"), "\"'=1+1\"");
        assert_eq!(csv_cell("+cmd"), "\"'+cmd\"");
        assert_eq!(csv_cell("-2"), "\"'-2\"");
        assert_eq!(csv_cell("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(csv_cell("\tx"), "\"'\tx\"");
        assert_eq!(csv_cell("\rx"), "\"'\rx\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("plain, text"), "\"plain, text\"");
        assert_eq!(csv_cell(""), "\"\"");
    }
}
