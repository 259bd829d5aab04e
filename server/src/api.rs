//! The five endpoints of API.md, as synchronous functions from a request body to a status and
//! a JSON reply. The HTTP layer ([`crate::http`]) runs them on blocking threads.
//!
//! Every outcome, refusals included, writes an audit row; no row, log line or error message
//! carries an answer, a PUK, a key or a session token (sessions are named by a prefix of the
//! token's SHA-256).

use cardunlock_protocol::{
    AnswersReply, AnswersRequest, ErrorBody, ErrorCode, PinPolicyWire, SessionToken, StartReply,
    StartRequest, User,
};
use rand::RngCore;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use std::net::{IpAddr, Ipv6Addr};
use std::time::Instant;

use crate::answers::verify_answer;
use crate::limiter::{retry_after_secs, Limiter};
use crate::store::{
    now_ms, parse_card, session as logic, AnswerCheck, AnswerOutcome, AuditNote, Profile, Session,
    StartOutcome, Store, Tx,
};
use crate::{Limits, MasterSecret, ServerError};

/// Admin answers one session may get (an unlock needs one for ISO, two for GIDS).
pub(crate) const MAX_ADMIN_ANSWERS_PER_SESSION: u32 = 16;
/// Longest client `detail` kept in the audit log, in characters.
const MAX_DETAIL_CHARS: usize = 200;

/// What the endpoints and the operator functions share: the store, the master secret and the
/// configuration's limits (made by [`crate::Server::start`]).
pub struct AppState {
    pub(crate) store: std::sync::Arc<Store>,
    pub(crate) master: MasterSecret,
    pub(crate) max_attempts: u32,
    pub(crate) session_ttl_ms: i64,
    /// The PIV PUK tries a card is assumed to have ([`crate::Limits::piv_puk_tries`]).
    pub(crate) puk_tries: u32,
    /// Rate limits of `start` and `answers`.
    pub(crate) rates: Rates,
    /// Argon2id cost of new hashes (enrollment answers, operator passwords).
    pub(crate) argon2: crate::Argon2Params,
    /// Operator sessions, throttles and caps.
    pub(crate) operators: crate::OperatorPolicy,
}

/// The rate limits of `start` and `answers`, per client address and per card.
pub(crate) struct Rates {
    /// Every request, per address (checked by the router before anything else).
    pub(crate) requests_address: Limiter<IpAddr>,
    start_address: Limiter<IpAddr>,
    start_card: Limiter<(Profile, String)>,
    answers_address: Limiter<IpAddr>,
    answers_card: Limiter<(Profile, String)>,
}

impl Rates {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            requests_address: Limiter::new(limits.requests_per_address),
            start_address: Limiter::new(limits.start_per_address),
            start_card: Limiter::new(limits.start_per_card),
            answers_address: Limiter::new(limits.answers_per_address),
            answers_card: Limiter::new(limits.answers_per_card),
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
    Answers,
    Admin,
    Puk,
    Complete,
}

impl Endpoint {
    /// Every endpoint, in the contract's order.
    pub(crate) const ALL: [Self; 5] = [
        Self::Start,
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
            Self::Answers => "answers",
            Self::Admin => "admin",
            Self::Puk => "puk",
            Self::Complete => "complete",
        }
    }
}

/// A status code and a JSON body (a `cardunlock_protocol` type, serialised).
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Value,
    /// Seconds for the `Retry-After` header (429 only).
    pub retry_after: Option<u64>,
}

fn to_json<T: Serialize>(body: &T) -> Value {
    serde_json::to_value(body).unwrap_or_else(|_| Value::Object(Default::default()))
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
        Endpoint::Answers => state.rates.answers_address.check(&peer, Instant::now()),
        _ => Ok(()),
    };
    if let Err(wait) = limited {
        return too_many("from this address", wait);
    }
    let result = match endpoint {
        Endpoint::Start => run(state, endpoint, body, start),
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
        _ => {
            // A guessed or stale token writes nothing: the router counts the 401
            // ([`crate::refusals`]).
            log::debug!("{}: invalid session", endpoint.event());
            Ok(Err(refusal(ErrorCode::InvalidSession, INVALID_SESSION)))
        }
    }
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
mod rotation;

use admin::admin;
use rotation::{complete, puk};

fn start(state: &AppState, req: StartRequest) -> Result<Reply, ServerError> {
    let (profile, identity) = match parse_card(req.card.profile.as_str(), &req.card.identity) {
        Ok(card) => card,
        Err(e) => {
            let message = format!("Bad request: {e}.");
            return Ok(refusal(ErrorCode::BadRequest, &message));
        }
    };
    if let Err(wait) = state
        .rates
        .start_card
        .check(&(profile, identity.clone()), Instant::now())
    {
        return Ok(too_many("for this card", wait));
    }
    let card = Some((profile, identity.as_str()));
    let mut secret = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng
        .try_fill_bytes(&mut secret[..])
        .map_err(|_| ServerError::Random)?;
    let token = Token::from_bytes(&secret[..]);
    let ttl = state.session_ttl_ms;
    let pin_policy = PinPolicyWire::from(&profile.pin_policy());
    state.store.transact(|tx| {
        let outcome = logic::start_session(
            tx,
            (profile, &identity),
            &token.hash,
            now_ms(),
            ttl,
            state.max_attempts,
        )?;
        Ok(match outcome {
            StartOutcome::UnknownCard => {
                audit_in(tx, card, None, "start", "unknown_card", "")?;
                refusal(
                    ErrorCode::UnknownCard,
                    "This card is not enrolled for online unlock. Use offline mode or contact your administrator.",
                )
            }
            StartOutcome::Locked => {
                audit_in(tx, card, None, "start", "locked", "")?;
                refusal(ErrorCode::Locked, LOCKED)
            }
            StartOutcome::NoQuestions => {
                audit_in(tx, card, None, "start", "no_questions", "")?;
                refusal(
                    ErrorCode::NoQuestions,
                    "Online unlock is not available for this card: no security questions are defined. Use offline mode.",
                )
            }
            StartOutcome::Started {
                questions,
                attempts_left,
            } => {
                let detail = format!(
                    "{} question(s), {attempts_left} attempt(s) left",
                    questions.len()
                );
                audit_in(tx, card, Some(&token), "start", "started", &detail)?;
                ok(&StartReply {
                    session: SessionToken::new(hex::encode(&secret[..])),
                    questions,
                    attempts_left,
                    pin_policy: pin_policy.clone(),
                })
            }
        })
    })
}

/// The locked refusal, with `attempts_left: 0`.
fn locked() -> Reply {
    refuse_with(ErrorBody {
        attempts_left: Some(0),
        ..ErrorBody::new(ErrorCode::Locked, LOCKED)
    })
}

fn answers(state: &AppState, req: AnswersRequest) -> Result<Reply, ServerError> {
    let (token, session) = session_or_refuse!(state, Endpoint::Answers, &req.session);
    let given = &req.answers;
    if let Err(wait) = state
        .rates
        .answers_card
        .check(&(session.profile, session.identity.clone()), Instant::now())
    {
        return Ok(too_many("for this card", wait));
    }
    let card = Some((session.profile, session.identity.as_str()));
    let a =
        |outcome: &str, detail: &str| audit(state, card, Some(&token), "answers", outcome, detail);
    if session.verified {
        let Some(record) = state
            .store
            .card(session.profile.as_str(), &session.identity)?
        else {
            a("invalid_session", "card no longer enrolled")?;
            return Ok(refusal(ErrorCode::InvalidSession, INVALID_SESSION));
        };
        a("verified", "session already verified")?;
        return Ok(ok(&AnswersReply {
            verified: true,
            user: User {
                name: record.user_name,
                email: record.user_email,
            },
        }));
    }
    let hashes = match state
        .store
        .answer_check(session.profile, &session.identity)?
    {
        AnswerCheck::UnknownCard => {
            a("invalid_session", "card no longer enrolled")?;
            return Ok(refusal(ErrorCode::InvalidSession, INVALID_SESSION));
        }
        AnswerCheck::Locked => {
            a("locked", "refused: card locked")?;
            return Ok(locked());
        }
        AnswerCheck::Hashes(hashes) => hashes,
    };
    if hashes.is_empty() {
        // Re-enrolled without questions while this session was open: an empty answer list
        // must never verify.
        a("no_questions", "refused: no questions enrolled")?;
        return Ok(refusal(
            ErrorCode::NoQuestions,
            "Online unlock is not available for this card: no security questions are defined. Use offline mode.",
        ));
    }
    if given.len() != hashes.len() {
        let message = format!(
            "Bad request: expected {} answers, got {}.",
            hashes.len(),
            given.len()
        );
        a("bad_request", &message)?;
        return Ok(refusal(ErrorCode::BadRequest, &message));
    }
    // Check every answer (no early exit), then decide.
    let correct = given.iter().zip(&hashes).fold(true, |all, (answer, hash)| {
        verify_answer(answer.expose(), hash) & all
    });
    let now = now_ms();
    state.store.transact(|tx| {
        let a = |tx: &mut dyn Tx, outcome: &str, detail: &str| {
            audit_in(tx, card, Some(&token), "answers", outcome, detail)
        };
        Ok(
            match logic::record_answers(tx, &token.hash, now, correct, state.max_attempts)? {
                AnswerOutcome::SessionGone => {
                    a(tx, "invalid_session", "session ended during the check")?;
                    refusal(ErrorCode::InvalidSession, INVALID_SESSION)
                }
                AnswerOutcome::Verified { name, email } => {
                    a(tx, "verified", "")?;
                    ok(&AnswersReply {
                        verified: true,
                        user: User { name, email },
                    })
                }
                AnswerOutcome::Wrong { attempts_left } => {
                    a(
                        tx,
                        "wrong_answers",
                        &format!("{attempts_left} attempt(s) left"),
                    )?;
                    refuse_with(ErrorBody {
                        attempts_left: Some(attempts_left),
                        ..ErrorBody::new(
                            ErrorCode::WrongAnswers,
                            format!(
                                "The answers are not correct. {attempts_left} attempt(s) left."
                            ),
                        )
                    })
                }
                AnswerOutcome::Locked { newly, failed } => {
                    if newly {
                        audit_in(
                            tx,
                            card,
                            Some(&token),
                            "lock",
                            "locked",
                            &format!("after {failed} wrong answer set(s)"),
                        )?;
                        a(tx, "wrong_answers", "0 attempts left")?;
                    } else {
                        a(tx, "locked", "refused: card locked")?;
                    }
                    locked()
                }
            },
        )
    })
}
