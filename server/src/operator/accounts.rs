//! Operator accounts: added from the command line or by an admin, listed, disabled, given a
//! new TOTP seed or password.

use cardunlock_protocol::operator::{
    check_operator_name, AddOperatorRequest, Done, OperatorList, SetPasswordRequest,
    TotpEnrollment, MAX_PASSWORD, MIN_PASSWORD_CHARS,
};
use cardunlock_protocol::{ErrorCode, Role, Secret};

use super::auth::info;
use super::{audit_in, seal, Actor, AppState, Event, OpError};
use crate::answers::hash_password;
use crate::store::ops::OperatorRow;
use crate::store::{now_ms, AuditNote, Store, Tx};
use crate::{totp, Argon2Params, MasterSecret, ServerError};

fn check_password(name: &str, password: &Secret) -> Result<(), OpError> {
    let p = password.expose();
    if p.chars().count() < MIN_PASSWORD_CHARS || p.len() > MAX_PASSWORD || p == name {
        return Err(OpError::bad(format!(
            "Bad request: a password is {MIN_PASSWORD_CHARS} characters to {MAX_PASSWORD} \
             bytes, and not the operator's name."
        )));
    }
    Ok(())
}

/// A new operator's row and its `otpauth://` URI (checks name, roles and password; hashes).
fn new_operator(
    master: &MasterSecret,
    argon2: &Argon2Params,
    name: &str,
    roles: &[Role],
    password: &Secret,
) -> Result<(OperatorRow, Secret), OpError> {
    check_operator_name(name).map_err(|e| OpError::bad(format!("Bad request: {e}.")))?;
    if roles.is_empty() {
        return Err(OpError::bad(
            "Bad request: give the operator at least one role.",
        ));
    }
    check_password(name, password)?;
    let seed = totp::new_seed();
    let row = OperatorRow {
        name: name.to_owned(),
        password_hash: hash_password(password.expose(), argon2)?,
        totp_sealed: seal::seal(master, name, &seed)?,
        totp_last_step: None,
        roles: roles.to_vec(),
        disabled: false,
        created_ms: now_ms(),
    };
    let uri = totp::uri(name, &seed);
    Ok((row, Secret::new(uri.as_str())))
}

fn roles_text(roles: &[Role]) -> String {
    crate::store::ops::roles_to_text(roles).replace(',', ", ")
}

/// Adds an operator from the command line (`cardunlock-server add-admin` / `add-operator`),
/// with no operator signed in: audited as done from the command line. Returns the
/// `otpauth://` URI to show once.
pub fn create_operator(
    store: &Store,
    master: &MasterSecret,
    argon2: &Argon2Params,
    name: &str,
    roles: &[Role],
    password: &Secret,
) -> Result<Secret, OpError> {
    let (row, uri) = new_operator(master, argon2, name, roles, password)?;
    let detail = format!(
        "{name} added from the command line, roles {}",
        roles_text(roles)
    );
    let added = store.transact(|tx| {
        if !tx.insert_operator(&row)? {
            return Ok(false);
        }
        tx.insert_audit(
            &AuditNote::server(None, "add_operator", "ok", &detail),
            now_ms(),
        )?;
        Ok(true)
    })?;
    if !added {
        return Err(OpError::refused(
            ErrorCode::Conflict,
            format!("An operator named {name} exists."),
        ));
    }
    Ok(uri)
}

/// Every operator (role `admin`).
pub fn list_operators(state: &AppState, actor: &Actor) -> Result<OperatorList, OpError> {
    actor.require(&[Role::Admin])?;
    let rows = state.store.transact(|tx| tx.list_operators())?;
    Ok(OperatorList {
        operators: rows.iter().map(info).collect(),
    })
}

/// Adds an operator (role `admin`); returns the authenticator enrolment to show once.
pub fn add_operator(
    state: &AppState,
    actor: &Actor,
    req: &AddOperatorRequest,
) -> Result<TotpEnrollment, OpError> {
    let role = actor.require(&[Role::Admin])?;
    let (row, uri) = new_operator(
        &state.master,
        &state.argon2,
        &req.name,
        &req.roles,
        &req.password,
    )?;
    let detail = format!("{} added, roles {}", req.name, roles_text(&req.roles));
    let added = state.store.transact(|tx| {
        let added = tx.insert_operator(&row)?;
        let ev = Event {
            card: None,
            event: "add_operator",
            outcome: if added { "ok" } else { "conflict" },
            detail: &detail,
        };
        audit_in(tx, actor, Some(role), &ev)?;
        Ok(added)
    })?;
    if !added {
        return Err(OpError::refused(
            ErrorCode::Conflict,
            format!("An operator named {} exists.", req.name),
        ));
    }
    Ok(TotpEnrollment { totp_uri: uri })
}

/// Runs `change` on an existing operator (404 otherwise) in one transaction with its audit row.
fn change_operator(
    state: &AppState,
    actor: &Actor,
    name: &str,
    event: &str,
    mut change: impl FnMut(&mut dyn Tx) -> Result<(), ServerError>,
) -> Result<(), OpError> {
    let role = actor.require(&[Role::Admin])?;
    let found = state.store.transact(|tx| {
        if tx.read_operator(name)?.is_none() {
            return Ok(false);
        }
        change(tx)?;
        let detail = name.to_owned();
        let ev = Event {
            card: None,
            event,
            outcome: "ok",
            detail: &detail,
        };
        audit_in(tx, actor, Some(role), &ev)?;
        Ok(true)
    })?;
    if found {
        Ok(())
    } else {
        Err(OpError::refused(
            ErrorCode::NotFound,
            format!("No operator is named {name}."),
        ))
    }
}

/// Disables an operator and ends its sessions (role `admin`; not oneself).
pub fn disable_operator(state: &AppState, actor: &Actor, name: &str) -> Result<Done, OpError> {
    actor.require(&[Role::Admin])?;
    if name == actor.name() {
        return Err(OpError::refused(
            ErrorCode::Conflict,
            "An operator cannot disable itself: ask another admin.",
        ));
    }
    change_operator(state, actor, name, "disable_operator", |tx| {
        tx.set_operator_disabled(name, true)?;
        tx.end_operator_sessions(name)
    })?;
    Ok(Done {})
}

/// Gives an operator a new TOTP seed (its old codes stop working, its sessions end; role
/// `admin`); returns the enrolment to show once.
pub fn reset_totp(state: &AppState, actor: &Actor, name: &str) -> Result<TotpEnrollment, OpError> {
    actor.require(&[Role::Admin])?;
    let seed = totp::new_seed();
    let sealed = seal::seal(&state.master, name, &seed)?;
    change_operator(state, actor, name, "reset_totp", |tx| {
        tx.set_operator_totp(name, &sealed)?;
        tx.end_operator_sessions(name)
    })?;
    let uri = totp::uri(name, &seed);
    Ok(TotpEnrollment {
        totp_uri: Secret::new(uri.as_str()),
    })
}

/// Sets an operator's password (role `admin`); the operator's other sessions end.
pub fn set_password(
    state: &AppState,
    actor: &Actor,
    name: &str,
    req: &SetPasswordRequest,
) -> Result<Done, OpError> {
    actor.require(&[Role::Admin])?;
    check_password(name, &req.password)?;
    let hash = hash_password(req.password.expose(), &state.argon2)?;
    change_operator(state, actor, name, "set_password", |tx| {
        tx.set_operator_password(name, &hash)?;
        if name != actor.name() {
            tx.end_operator_sessions(name)?;
        }
        Ok(())
    })?;
    Ok(Done {})
}
