//! The five endpoints of API.md, as synchronous functions from a request body to a status and
//! a JSON reply. The HTTP layer ([`crate::http`]) runs them on blocking threads.
//!
//! Every outcome, refusals included, writes an audit row; no row, log line or error message
//! carries an answer, a PUK, a key or a session token (sessions are named by a prefix of the
//! token's SHA-256).

use cardunlock_core::policy::{Charset, PinPolicy};
use rand::RngCore;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::answers::verify_answer;
use crate::store::{
    now_ms, parse_card, session as logic, AnswerCheck, AnswerOutcome, AuditNote, Profile, Session,
    StartOutcome, Store, Tx,
};
use crate::{MasterSecret, ServerError};

/// Admin answers one session may get (an unlock needs one for ISO, two for GIDS).
pub(crate) const MAX_ADMIN_ANSWERS_PER_SESSION: u32 = 16;
/// Longest client `detail` kept in the audit log, in characters.
const MAX_DETAIL_CHARS: usize = 200;

/// What the endpoints share.
pub(crate) struct AppState {
    pub store: std::sync::Arc<Store>,
    pub master: MasterSecret,
    pub max_attempts: u32,
    pub session_ttl_ms: i64,
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
    pub(crate) fn from_path(path: &str) -> Option<Self> {
        match path {
            "/v1/unlock/start" => Some(Self::Start),
            "/v1/unlock/answers" => Some(Self::Answers),
            "/v1/unlock/admin" => Some(Self::Admin),
            "/v1/unlock/puk" => Some(Self::Puk),
            "/v1/unlock/complete" => Some(Self::Complete),
            _ => None,
        }
    }

    fn event(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Answers => "answers",
            Self::Admin => "admin",
            Self::Puk => "puk",
            Self::Complete => "complete",
        }
    }
}

/// A status code and a JSON body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Value,
}

fn ok(body: Value) -> Reply {
    Reply { status: 200, body }
}

/// The contract's error shape: `{"error": code, "message": text}`.
pub(crate) fn refusal(status: u16, code: &str, message: &str) -> Reply {
    Reply {
        status,
        body: json!({ "error": code, "message": message }),
    }
}

const INVALID_SESSION: &str = "The session is unknown, expired or already completed. Start again.";
const LOCKED: &str = "Online unlock is locked for this card after too many wrong answers. \
                      An operator must lift the lock.";
const NOT_VERIFIED: &str = "Answer the security questions first.";

/// Runs one endpoint on a request body. Never panics on any input; database failures become
/// 500 `internal_error` (logged without secrets).
pub(crate) fn dispatch(state: &AppState, endpoint: Endpoint, body: &[u8]) -> Reply {
    let result = match endpoint {
        Endpoint::Start => run(state, endpoint, body, start),
        Endpoint::Answers => run(state, endpoint, body, answers),
        Endpoint::Admin => run(state, endpoint, body, admin),
        Endpoint::Puk => run(state, endpoint, body, puk),
        Endpoint::Complete => run(state, endpoint, body, complete),
    };
    result.unwrap_or_else(|e| {
        log::error!("{}: {e}", endpoint.event());
        refusal(500, "internal_error", "The server failed; try again later.")
    })
}

/// Audits a request refused before an endpoint ran (unknown path, wrong method, too large...).
pub(crate) fn refuse_request(state: &AppState, what: &str, reply: Reply) -> Reply {
    let outcome = reply.body["error"].as_str().unwrap_or("refused").to_owned();
    let note = AuditNote {
        card: None,
        session: None,
        event: "request",
        outcome: &outcome,
        detail: &clean(what),
    };
    if let Err(e) = state.store.record(&note) {
        log::error!("audit: {e}");
    }
    reply
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
            audit(state, None, None, endpoint.event(), "bad_request", &message)?;
            Ok(refusal(400, "bad_request", &message))
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
    state.store.record(&AuditNote {
        card,
        session: session.map(|t| t.reference.as_str()),
        event,
        outcome,
        detail,
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
    tx.insert_audit(
        &AuditNote {
            card,
            session: session.map(|t| t.reference.as_str()),
            event,
            outcome,
            detail,
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
    text: &str,
) -> Result<Result<(Token, Session), Reply>, ServerError> {
    let token = Token::parse(text);
    let session = match &token {
        Some(t) => state.store.session(&t.hash, now_ms())?,
        None => None,
    };
    match (token, session) {
        (Some(token), Some(session)) => Ok(Ok((token, session))),
        (token, _) => {
            let detail = if token.is_some() {
                "unknown, expired or completed"
            } else {
                "malformed token"
            };
            audit(
                state,
                None,
                token.as_ref(),
                endpoint.event(),
                "invalid_session",
                detail,
            )?;
            Ok(Err(refusal(401, "invalid_session", INVALID_SESSION)))
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

#[derive(Deserialize)]
struct CardRef {
    profile: String,
    identity: String,
}

#[derive(Deserialize)]
struct StartRequest {
    card: CardRef,
}

fn policy_json(policy: &PinPolicy<'_>) -> Value {
    let charset = match policy.charset {
        Charset::Digits => "digits",
        Charset::Alphanumeric => "alphanumeric",
        Charset::PrintableAscii => "printable",
    };
    json!({
        "min_len": policy.min_len,
        "max_len": policy.max_len,
        "charset": charset,
        "forbid_repeated": policy.forbid_repeated,
        "forbid_sequences": policy.forbid_sequences,
        "builtin_blocklist": policy.builtin_blocklist,
        "custom_blocklist": policy.custom_blocklist,
    })
}

fn start(state: &AppState, req: StartRequest) -> Result<Reply, ServerError> {
    let (profile, identity) = match parse_card(&req.card.profile, &req.card.identity) {
        Ok(card) => card,
        Err(e) => {
            let message = format!("Bad request: {e}.");
            audit(state, None, None, "start", "bad_request", &message)?;
            return Ok(refusal(400, "bad_request", &message));
        }
    };
    let card = Some((profile, identity.as_str()));
    let mut secret = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng
        .try_fill_bytes(&mut secret[..])
        .map_err(|_| ServerError::Random)?;
    let token = Token::from_bytes(&secret[..]);
    let ttl = state.session_ttl_ms;
    let policy = policy_json(&profile.pin_policy());
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
                    404,
                    "unknown_card",
                    "This card is not enrolled for online unlock. Use offline mode or contact your administrator.",
                )
            }
            StartOutcome::Locked => {
                audit_in(tx, card, None, "start", "locked", "")?;
                refusal(423, "locked", LOCKED)
            }
            StartOutcome::NoQuestions => {
                audit_in(tx, card, None, "start", "no_questions", "")?;
                refusal(
                    409,
                    "no_questions",
                    "Online unlock is not available for this card: no security questions are defined. Use offline mode.",
                )
            }
            StartOutcome::Started {
                card: record,
                questions,
                attempts_left,
            } => {
                let detail = format!(
                    "{} question(s), {attempts_left} attempt(s) left",
                    questions.len()
                );
                audit_in(tx, card, Some(&token), "start", "started", &detail)?;
                ok(json!({
                    "session": hex::encode(&secret[..]),
                    "user": { "name": record.user_name, "email": record.user_email },
                    "questions": questions,
                    "attempts_left": attempts_left,
                    "pin_policy": policy,
                }))
            }
        })
    })
}

#[derive(Deserialize)]
struct AnswersRequest {
    session: String,
    answers: Vec<String>,
}

fn answers(state: &AppState, req: AnswersRequest) -> Result<Reply, ServerError> {
    let given = Zeroizing::new(req.answers);
    let (token, session) = session_or_refuse!(state, Endpoint::Answers, &req.session);
    let card = Some((session.profile, session.identity.as_str()));
    let a =
        |outcome: &str, detail: &str| audit(state, card, Some(&token), "answers", outcome, detail);
    if session.verified {
        a("verified", "session already verified")?;
        return Ok(ok(json!({ "verified": true })));
    }
    let hashes = match state
        .store
        .answer_check(session.profile, &session.identity)?
    {
        AnswerCheck::UnknownCard => {
            a("invalid_session", "card no longer enrolled")?;
            return Ok(refusal(401, "invalid_session", INVALID_SESSION));
        }
        AnswerCheck::Locked => {
            a("locked", "refused: card locked")?;
            return Ok(Reply {
                status: 423,
                body: json!({ "error": "locked", "message": LOCKED, "attempts_left": 0 }),
            });
        }
        AnswerCheck::Hashes(hashes) => hashes,
    };
    if given.len() != hashes.len() {
        let message = format!(
            "Bad request: expected {} answers, got {}.",
            hashes.len(),
            given.len()
        );
        a("bad_request", &message)?;
        return Ok(refusal(400, "bad_request", &message));
    }
    // Check every answer (no early exit), then decide.
    let correct = given.iter().zip(&hashes).fold(true, |all, (answer, hash)| {
        verify_answer(answer, hash) & all
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
                    refusal(401, "invalid_session", INVALID_SESSION)
                }
                AnswerOutcome::Verified => {
                    a(tx, "verified", "")?;
                    ok(json!({ "verified": true }))
                }
                AnswerOutcome::Wrong { attempts_left } => {
                    a(tx, "wrong_answers", &format!("{attempts_left} attempt(s) left"))?;
                    Reply {
                        status: 403,
                        body: json!({
                            "error": "wrong_answers",
                            "message": format!("The answers are not correct. {attempts_left} attempt(s) left."),
                            "attempts_left": attempts_left,
                        }),
                    }
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
                    Reply {
                        status: 423,
                        body: json!({ "error": "locked", "message": LOCKED, "attempts_left": 0 }),
                    }
                }
            },
        )
    })
}
