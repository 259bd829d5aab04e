//! The five endpoints of API.md, as synchronous functions from a request body to a status and
//! a JSON reply. The HTTP layer ([`crate::http`]) runs them on blocking threads.
//!
//! Every outcome, refusals included, writes an audit row; no row, log line or error message
//! carries an answer, a PUK, a key or a session token (sessions are named by a prefix of the
//! token's SHA-256).

use crate::reply_body::JsonBody;
use cardunlock_protocol::{AnswersReply, AnswersRequest, ErrorBody, ErrorCode, SessionToken, User};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use std::net::{IpAddr, Ipv6Addr};
use std::time::Instant;

use crate::answers::verify_answer;
use crate::limiter::{retry_after_secs, Limiter};
pub(crate) use crate::store::Blind;
use crate::store::{
    now_ms, session as logic, AnswerCheck, AnswerOutcome, AuditNote, Profile, Session, Store, Tx,
};
use crate::{Limits, MasterSecret, Rate, ServerError};

/// Admin answers one session may get: what an unlock needs (ISO: one `encrypt`; GIDS: one
/// host cryptogram, whose card check does not count).
pub(crate) const MAX_ADMIN_ANSWERS_PER_SESSION: u32 = 1;
/// Longest client `detail` kept in the audit log, in characters.
const MAX_DETAIL_CHARS: usize = 200;

/// What the endpoints and the operator functions share: the store, the master secret and the
/// configuration's limits (made by [`crate::Server::start`]).
pub struct AppState {
    pub(crate) store: std::sync::Arc<Store>,
    pub(crate) master: MasterSecret,
    pub(crate) max_attempts: u32,
    /// How wrong answers from sessions without card proof count.
    pub(crate) blind: Blind,
    pub(crate) session_ttl_ms: i64,
    /// The PIV PUK tries a card is assumed to have ([`crate::Limits::piv_puk_tries`]).
    pub(crate) puk_tries: u32,
    /// Admin answers a card may get per UTC day ([`crate::Limits::admin_answers_per_card_per_day`]).
    pub(crate) admin_answers_per_day: u32,
    /// Rate limits of `start` and `answers`.
    pub(crate) rates: Rates,
    /// Argon2id cost of new hashes (enrollment answers, operator passwords).
    pub(crate) argon2: crate::Argon2Params,
    /// Operator sessions, throttles and caps.
    pub(crate) operators: crate::OperatorPolicy,
}

/// The rate limits of `start` and `answers`: per client address in memory, per card in the
/// store (shared by every instance on the same database, [`crate::store::rules`]).
pub(crate) struct Rates {
    /// Every request, per address (checked by the router before anything else).
    pub(crate) requests_address: Limiter<IpAddr>,
    start_address: Limiter<IpAddr>,
    start_card: Rate,
    answers_address: Limiter<IpAddr>,
    answers_card: Rate,
}

impl Rates {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            requests_address: Limiter::new(limits.requests_per_address),
            start_address: Limiter::new(limits.start_per_address),
            start_card: limits.start_per_card,
            answers_address: Limiter::new(limits.answers_per_address),
            answers_card: limits.answers_per_card,
        }
    }
}

/// The 429 refusal (not audited one by one: the router counts it, [`crate::refusals`];
/// logged at debug level).
pub(crate) fn too_many(what: &str, wait: std::time::Duration) -> Reply {
    let secs = retry_after_secs(wait);
    log::debug!("rate limited: {what}");
    refuse_with(ErrorBody {
        retry_after: Some(secs),
        ..ErrorBody::new(
            ErrorCode::TooManyRequests,
            format!("Too many requests {what}. Try again in {secs} s."),
        )
    })
}

/// Client addresses as rate-limited: IPv4 as is, IPv6 by its /64 (one host's share).
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(Ipv6Addr::from(seg))
            }
        },
        v4 => v4,
    }
}

/// An endpoint of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Start,
    Prove,
    Answers,
    Admin,
    Puk,
    Complete,
}

impl Endpoint {
    /// Every endpoint, in the contract's order.
    pub(crate) const ALL: [Self; 6] = [
        Self::Start,
        Self::Prove,
        Self::Answers,
        Self::Admin,
        Self::Puk,
        Self::Complete,
    ];

    /// Its path: `/v1/unlock/` and its event name.
    pub(crate) fn path(self) -> String {
        format!("/v1/unlock/{}", self.event())
    }

    pub(crate) fn event(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Prove => "prove",
            Self::Answers => "answers",
            Self::Admin => "admin",
            Self::Puk => "puk",
            Self::Complete => "complete",
        }
    }
}

/// A status code and a JSON body (a `cardunlock_protocol` type, serialised into memory wiped
/// on drop: replies carry PUKs and admin answers).
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: JsonBody,
    /// Seconds for the `Retry-After` header (429 only).
    pub retry_after: Option<u64>,
}

fn to_json<T: Serialize>(body: &T) -> JsonBody {
    JsonBody::of(body)
}

/// 200 with a reply of the contract.
fn ok<T: Serialize>(body: &T) -> Reply {
    Reply {
        status: 200,
        body: to_json(body),
        retry_after: None,
    }
}

/// A refusal with the contract's error body.
pub(crate) fn refuse_with(body: ErrorBody) -> Reply {
    Reply {
        status: body.error.status(),
        retry_after: body.retry_after,
        body: to_json(&body),
    }
}

/// The contract's error shape: `{"error": code, "message": text}`, with the code's status.
pub(crate) fn refusal(code: ErrorCode, message: &str) -> Reply {
    refuse_with(ErrorBody::new(code, message))
}

const INVALID_SESSION: &str = "The session is unknown, expired or already completed. Start again.";
const LOCKED: &str = "Online unlock is locked for this card after too many wrong answers. \
                      An operator must lift the lock.";
const NOT_VERIFIED: &str = "Answer the security questions first.";

/// Runs one endpoint on a request body. Never panics on any input; database failures become
/// 500 `internal_error` (logged without secrets).
pub(crate) fn dispatch(state: &AppState, endpoint: Endpoint, peer: IpAddr, body: &[u8]) -> Reply {
    // The audit row names the full address; the limits count an IPv6 client by its /64.
    let _address = RequestAddress::set(peer);
    let peer = address_key(peer);
    let limited = match endpoint {
        Endpoint::Start => state.rates.start_address.check(&peer, Instant::now()),
        Endpoint::Answers | Endpoint::Prove => {
            state.rates.answers_address.check(&peer, Instant::now())
        }
        _ => Ok(()),
    };
    if let Err(wait) = limited {
        return too_many("from this address", wait);
    }
    let result = match endpoint {
        Endpoint::Start => run(state, endpoint, body, start),
        Endpoint::Prove => run(state, endpoint, body, presence::prove),
        Endpoint::Answers => run(state, endpoint, body, answers),
        Endpoint::Admin => run(state, endpoint, body, admin),
        Endpoint::Puk => run(state, endpoint, body, puk),
        Endpoint::Complete => run(state, endpoint, body, complete),
    };
    result.unwrap_or_else(|e| {
        log::error!("{}: {e}", endpoint.event());
        refusal(
            ErrorCode::InternalError,
            "The server failed; try again later.",
        )
    })
}

thread_local! {
    /// The client address of the request this (blocking) thread is running, for audit rows.
    static ADDRESS: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Sets the audit address of the request running on this thread until dropped (an endpoint
/// runs start to end on one blocking thread).
struct RequestAddress;

impl RequestAddress {
    fn set(peer: IpAddr) -> Self {
        ADDRESS.with(|a| *a.borrow_mut() = Some(peer.to_string()));
        Self
    }

    fn get() -> Option<String> {
        ADDRESS.with(|a| a.borrow().clone())
    }
}

impl Drop for RequestAddress {
    fn drop(&mut self) {
        ADDRESS.with(|a| *a.borrow_mut() = None);
    }
}

fn run<R: DeserializeOwned>(
    state: &AppState,
    endpoint: Endpoint,
    body: &[u8],
    handler: fn(&AppState, R) -> Result<Reply, ServerError>,
) -> Result<Reply, ServerError> {
    match serde_json::from_slice::<R>(body) {
        Ok(request) => handler(state, request),
        Err(e) => {
            // serde's message can quote the offending value (an answer): keep only its class
            // and position.
            let what = match e.classify() {
                serde_json::error::Category::Data => {
                    "a field is missing or has the wrong type or value"
                }
                _ => "the body is not valid JSON",
            };
            let message = format!(
                "Bad request: {what} (line {}, column {}).",
                e.line(),
                e.column()
            );
            // Counted by the router, not written here ([`crate::refusals`]).
            log::debug!("{}: bad request", endpoint.event());
            Ok(refusal(ErrorCode::BadRequest, &message))
        }
    }
}

fn audit(
    state: &AppState,
    card: Option<(Profile, &str)>,
    session: Option<&Token>,
    event: &str,
    outcome: &str,
    detail: &str,
) -> Result<(), ServerError> {
    let address = RequestAddress::get();
    state.store.record(&AuditNote {
        card,
        session: session.map(|t| t.reference.as_str()),
        event,
        outcome,
        detail,
        operator: None,
        role: None,
        address: address.as_deref(),
    })
}

/// Writes an audit row inside the transaction that makes the change it records.
fn audit_in(
    tx: &mut dyn Tx,
    card: Option<(Profile, &str)>,
    session: Option<&Token>,
    event: &str,
    outcome: &str,
    detail: &str,
) -> Result<(), ServerError> {
    let address = RequestAddress::get();
    tx.insert_audit(
        &AuditNote {
            card,
            session: session.map(|t| t.reference.as_str()),
            event,
            outcome,
            detail,
            operator: None,
            role: None,
            address: address.as_deref(),
        },
        now_ms(),
    )
}

/// Keeps printable characters only, at most [`MAX_DETAIL_CHARS`].
fn clean(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_DETAIL_CHARS)
        .collect()
}

/// A session token as the client holds it: 32 random bytes, 64 hex digits. The store only
/// ever sees its SHA-256.
struct Token {
    hash: [u8; 32],
    /// The first 8 bytes of the hash in hex: names the session in the audit log.
    reference: String,
}

impl Token {
    fn parse(text: &str) -> Option<Self> {
        if text.len() != 64 {
            return None;
        }
        let bytes = Zeroizing::new(hex::decode(text).ok()?);
        Some(Self::from_bytes(&bytes))
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        let hash: [u8; 32] = Sha256::digest(bytes).into();
        let reference = hex::encode(&hash[..8]);
        Self { hash, reference }
    }
}

/// The live session named by `text`, or the 401 reply (audited).
fn live_session(
    state: &AppState,
    endpoint: Endpoint,
    text: &SessionToken,
) -> Result<Result<(Token, Session), Reply>, ServerError> {
    let token = Token::parse(text.expose());
    let session = match &token {
        Some(t) => state.store.session(&t.hash, now_ms())?,
        None => None,
    };
    match (token, session) {
        (Some(token), Some(session)) => Ok(Ok((token, session))),
        _ => Ok(Err(invalid_session(endpoint))),
    }
}

/// The 401 reply to a token that names no live session. A guessed or stale token writes
/// nothing: the router counts the 401 ([`crate::refusals`]).
fn invalid_session(endpoint: Endpoint) -> Reply {
    log::debug!("{}: invalid session", endpoint.event());
    refusal(ErrorCode::InvalidSession, INVALID_SESSION)
}

/// Unwraps a live session or returns its refusal.
macro_rules! session_or_refuse {
    ($state:expr, $endpoint:expr, $text:expr) => {
        match live_session($state, $endpoint, $text)? {
            Ok(pair) => pair,
            Err(reply) => return Ok(reply),
        }
    };
}

mod admin;
mod answers;
mod presence;
mod rotation;
mod rules;
mod start;

use admin::admin;
use answers::answers;
use rotation::{complete, puk};
use rules::{card_rate, diverged};
use start::start;

/// The locked refusal, with `attempts_left: 0`.
fn locked() -> Reply {
    refuse_with(ErrorBody {
        attempts_left: Some(0),
        ..ErrorBody::new(ErrorCode::Locked, LOCKED)
    })
}
