//! Sign-in (password + TOTP), throttles and sessions.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use cardunlock_protocol::operator::{
    check_operator_name, Done, OperatorInfo, SignInReply, SignInRequest,
};
use cardunlock_protocol::{ErrorBody, ErrorCode, SessionToken};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{address_text, audit_in, seal, Actor, AppState, Event, OpError};
use crate::answers::{hash_password, verify_password};
use crate::store::ops::OperatorRow;
use crate::store::{duration_ms, now_ms, AuditNote, Tx};
use crate::{totp, Argon2Params, ServerError};

const REFUSED: &str = "Sign-in refused: wrong name, password or code, or the account is disabled.";
const NO_SESSION: &str = "Sign in first: the session is unknown, signed out or expired.";
/// Failures older than this are forgotten; also the longest lock-out.
const FAILURE_MEMORY_MS: i64 = 3_600_000;

/// Why a sign-in failed (the audit's outcome; the caller only ever hears [`REFUSED`]).
#[derive(Clone, Copy)]
enum Failure {
    UnknownOperator,
    WrongPassword,
    WrongCode,
    Disabled,
}

impl Failure {
    fn outcome(self) -> &'static str {
        match self {
            Self::UnknownOperator => "unknown_operator",
            Self::WrongPassword => "wrong_password",
            Self::WrongCode => "wrong_code",
            Self::Disabled => "disabled",
        }
    }
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A hash to check unknown names' passwords against, so an unknown name costs the same time.
fn dummy_hash(params: &Argon2Params) -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("no such operator", params).unwrap_or_default())
}

/// A new session token (32 random bytes, 64 hex digits) and its SHA-256.
fn new_token() -> Result<(SessionToken, [u8; 32]), ServerError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes[..])
        .map_err(|_| ServerError::Random)?;
    let hash: [u8; 32] = Sha256::digest(&bytes[..]).into();
    Ok((SessionToken::new(hex::encode(&bytes[..])), hash))
}

/// The SHA-256 of a token's 32 bytes; `None` if it is not 64 hex digits.
fn token_hash(token: &str) -> Option<[u8; 32]> {
    if token.len() != 64 {
        return None;
    }
    let bytes = Zeroizing::new(hex::decode(token).ok()?);
    Some(Sha256::digest(&bytes[..]).into())
}

pub(super) fn info(row: &OperatorRow) -> OperatorInfo {
    OperatorInfo {
        name: row.name.clone(),
        roles: row.roles.clone(),
        disabled: row.disabled,
        created_ms: row.created_ms,
    }
}

/// Signs an operator in with password and TOTP code. Refused (401, one message for every
/// reason, each audited with its own outcome) when the name is unknown, the password or the
/// code is wrong, the code was used before, or the operator is disabled; 429 while the name or
/// the client address is locked out after repeated failures (kept in the store, so every
/// server instance sees them). The password is checked outside any transaction (Argon2).
pub fn sign_in(
    state: &AppState,
    req: &SignInRequest,
    client_addr: Option<IpAddr>,
) -> Result<(SessionToken, SignInReply), OpError> {
    let now = now_ms();
    let policy = &state.operators;
    let address = address_text(client_addr);
    let name_ok = check_operator_name(&req.name).is_ok();
    let shown = if name_ok {
        req.name.as_str()
    } else {
        "(malformed name)"
    };
    let keys: Vec<(String, u32)> = [
        name_ok.then(|| {
            (
                format!("operator:{}", req.name),
                policy.failures_per_operator,
            )
        }),
        address
            .as_ref()
            .map(|a| (format!("address:{a}"), policy.failures_per_address)),
    ]
    .into_iter()
    .flatten()
    .collect();
    // The operator column names only accounts that exist; a name typed for none is in the detail.
    let note = |tx: &mut dyn Tx, known: bool, outcome: &str, detail: &str| {
        tx.insert_audit(
            &AuditNote {
                card: None,
                session: None,
                event: "sign_in",
                outcome,
                detail,
                operator: (name_ok && known).then_some(req.name.as_str()),
                role: None,
                address: address.as_deref(),
            },
            now,
        )
    };

    let until = state.store.transact(|tx| {
        let mut until = 0;
        for (key, _) in &keys {
            until = until.max(tx.sign_in_lockout(key)?);
        }
        if until > now {
            note(
                tx,
                false,
                "throttled",
                &format!("{shown}: locked out after failed sign-ins"),
            )?;
        }
        Ok(until)
    })?;
    if until > now {
        let secs = u64::try_from((until - now + 999) / 1000).unwrap_or(1);
        return Err(OpError::Refused(ErrorBody {
            retry_after: Some(secs),
            ..ErrorBody::new(
                ErrorCode::TooManyRequests,
                format!("Too many failed sign-ins. Try again in {secs} s."),
            )
        }));
    }

    let stored = if name_ok {
        state.store.transact(|tx| tx.read_operator(&req.name))?
    } else {
        None
    };
    let password_ok = match &stored {
        Some(row) => verify_password(req.password.expose(), &row.password_hash),
        None => {
            let _ = verify_password(req.password.expose(), dummy_hash(&state.argon2));
            false
        }
    };
    let (token, hash) = new_token()?;
    let unix = unix_secs();
    let verdict = state.store.transact(|tx| {
        let row = if name_ok {
            tx.read_operator(&req.name)?
        } else {
            None
        };
        let verdict = match &row {
            None => Err(Failure::UnknownOperator),
            Some(_) if !password_ok => Err(Failure::WrongPassword),
            Some(row) => {
                let last = row.totp_last_step.and_then(|s| u64::try_from(s).ok());
                let step = seal::open(&state.master, &row.name, &row.totp_sealed)
                    .and_then(|seed| totp::verify(&seed, req.totp.expose(), unix, last));
                match step {
                    None => Err(Failure::WrongCode),
                    Some(_) if row.disabled => Err(Failure::Disabled),
                    Some(step) => Ok((row.clone(), step)),
                }
            }
        };
        match &verdict {
            Ok((row, step)) => {
                tx.set_operator_totp_step(&row.name, i64::try_from(*step).unwrap_or(i64::MAX))?;
                if let Some((key, _)) = keys.first().filter(|_| name_ok) {
                    tx.clear_sign_in_failures(key)?;
                }
                tx.delete_old_op_sessions(now - duration_ms(policy.session_lifetime))?;
                tx.insert_op_session(&hash, &row.name, now, address.as_deref())?;
                note(tx, true, "ok", &format!("{shown} signed in"))?;
            }
            Err(failure) => {
                if !matches!(failure, Failure::Disabled) {
                    for (key, threshold) in &keys {
                        let n = tx.count_sign_in_failure(key, now, now - FAILURE_MEMORY_MS)?;
                        if n >= *threshold {
                            let doublings = (n - threshold).min(16);
                            let lockout = duration_ms(policy.lockout)
                                .saturating_mul(1 << doublings)
                                .min(FAILURE_MEMORY_MS);
                            tx.set_sign_in_lockout(key, now + lockout)?;
                        }
                    }
                }
                let known = !matches!(failure, Failure::UnknownOperator);
                note(
                    tx,
                    known,
                    failure.outcome(),
                    &format!("{shown}: sign-in refused"),
                )?;
            }
        }
        Ok(verdict.map(|(row, _)| row))
    })?;
    match verdict {
        Ok(row) => {
            let reply = SignInReply {
                token: token.clone(),
                operator: info(&row),
                idle_timeout_s: policy.idle_timeout.as_secs(),
                expires_in_s: policy.session_lifetime.as_secs(),
            };
            Ok((token, reply))
        }
        Err(_) => Err(OpError::refused(ErrorCode::Unauthorized, REFUSED)),
    }
}

/// The operator of a bearer token: refused (401) when the token is unknown, signed out, idle
/// longer than the idle limit, older than the absolute limit, or its operator is disabled.
/// Records the call as the session's last activity.
pub fn authenticate(
    state: &AppState,
    token: &str,
    client_addr: Option<IpAddr>,
) -> Result<Actor, OpError> {
    let unauthorized = || OpError::refused(ErrorCode::Unauthorized, NO_SESSION);
    let hash = token_hash(token.trim()).ok_or_else(unauthorized)?;
    let now = now_ms();
    let idle = duration_ms(state.operators.idle_timeout);
    let lifetime = duration_ms(state.operators.session_lifetime);
    let found = state.store.transact(|tx| {
        let Some(session) = tx.read_op_session(&hash)? else {
            return Ok(None);
        };
        if session.ended {
            return Ok(None);
        }
        let operator = tx.read_operator(&session.operator)?;
        let expired = now - session.created_ms >= lifetime || now - session.last_seen_ms >= idle;
        match operator {
            Some(op) if !expired && !op.disabled => {
                tx.touch_op_session(&hash, now)?;
                Ok(Some(op))
            }
            _ => {
                tx.end_op_session(&hash)?;
                Ok(None)
            }
        }
    })?;
    let op = found.ok_or_else(unauthorized)?;
    Ok(Actor {
        name: op.name,
        roles: op.roles,
        address: address_text(client_addr),
        token_hash: hash,
    })
}

/// Ends the actor's session.
pub fn sign_out(state: &AppState, actor: &Actor) -> Result<Done, OpError> {
    state.store.transact(|tx| {
        tx.end_op_session(&actor.token_hash)?;
        let ev = Event {
            card: None,
            event: "sign_out",
            outcome: "ok",
            detail: "",
        };
        audit_in(tx, actor, None, &ev)
    })?;
    Ok(Done {})
}
