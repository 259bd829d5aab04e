//! The API client's errors: no connection ([`Unreachable`], with the transport's error as its
//! source), a refusal (the contract's error body), or an exchange off the contract
//! ([`ReplyError`], which never holds what the reply said).

use std::sync::Arc;

use cardunlock_protocol::{ErrorBody, ErrorCode};

use crate::failure::{Failure, Kind};

/// Why the server did not give what was asked.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// No connection (refused, TLS failure, timeout).
    Unreachable(Unreachable),
    /// The server answered with a refusal (the contract's error body).
    Refused(ErrorBody),
    /// The exchange left the contract: the request would not encode, the reply would not read
    /// or parse.
    Protocol {
        /// What was asked (the endpoint's path, or "admin answer").
        what: String,
        /// An HTTP error status that came without the contract's error body.
        status: Option<u16>,
        /// What went wrong.
        error: ReplyError,
    },
}

/// No connection to the server: its URL and the transport's error (kept as the source).
#[derive(Debug, Clone)]
pub struct Unreachable {
    /// The URL asked.
    pub url: String,
    source: Arc<dyn std::error::Error + Send + Sync>,
}

impl Unreachable {
    /// `url` could not be reached because of `source`.
    pub fn new(
        url: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            url: url.into(),
            source: Arc::new(source),
        }
    }
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.source, self.url)
    }
}

impl std::error::Error for Unreachable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// How an exchange left the contract. Never holds what the reply said: it may be a secret.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReplyError {
    /// The request did not encode as JSON.
    Encode(Arc<serde_json::Error>),
    /// The reply could not be read.
    Read(Arc<std::io::Error>),
    /// The reply is not the contract's JSON: where, never what.
    OffContract {
        /// What kind of JSON error (read, syntax, data or truncation).
        category: &'static str,
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
    },
    /// The admin answer is not hex.
    AdminAnswer(crate::hex::HexError),
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Encode(e) => write!(f, "encoding the request: {e}"),
            Self::Read(e) => write!(f, "reading the reply: {e}"),
            Self::OffContract {
                category,
                line,
                column,
            } => write!(
                f,
                "the reply does not follow the contract ({category} error at line {line}, \
                 column {column})"
            ),
            Self::AdminAnswer(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReplyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Encode(e) => Some(&**e),
            Self::Read(e) => Some(&**e),
            Self::OffContract { .. } => None,
            Self::AdminAnswer(e) => Some(e),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(e) => write!(f, "unlock server: cannot reach it: {e}"),
            Self::Refused(body) if body.message.is_empty() => {
                write!(f, "unlock server: it refused ({})", body.error)
            }
            Self::Refused(body) => write!(f, "unlock server: {}", body.message),
            Self::Protocol {
                what,
                status: None,
                error,
            } => write!(f, "unlock server: unexpected answer: {what}: {error}"),
            Self::Protocol {
                what,
                status: Some(status),
                error,
            } => write!(
                f,
                "unlock server: unexpected answer: {what}: HTTP {status} without an error body \
                 ({error})"
            ),
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unreachable(e) => Some(e),
            Self::Refused(_) => None,
            Self::Protocol { error, .. } => Some(error),
        }
    }
}

impl ApiError {
    /// The failure this error means for the unlock (the card was not touched by it).
    pub fn failure(&self) -> Failure {
        let kind = match self {
            Self::Unreachable(_) | Self::Protocol { .. } => Kind::Server,
            Self::Refused(body) => match body.error {
                ErrorCode::Locked => Kind::Locked,
                ErrorCode::NoQuestions | ErrorCode::CardNotVerified => Kind::NoQuestions,
                ErrorCode::WrongAnswers => Kind::WrongAnswers {
                    attempts_left: body.attempts_left.unwrap_or(0),
                },
                ErrorCode::InternalError | ErrorCode::Unavailable | ErrorCode::TooManyRequests => {
                    Kind::Server
                }
                ErrorCode::Unauthorized => Kind::Unauthorized,
                _ => Kind::Refused,
            },
        };
        Failure::new(kind, self.to_string()).caused_by(self.clone())
    }

    /// The contract's error code, when the server answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Refused(body) => Some(body.error),
            _ => None,
        }
    }
}
