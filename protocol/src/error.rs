//! The error body every refusal carries.

use serde::{Deserialize, Serialize};

/// The machine-readable code of a refusal (`"error"` in the body).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: the body is malformed, or the request does not fit the card.
    BadRequest,
    /// 401: the session is unknown, expired or completed.
    InvalidSession,
    /// 401: operator API: sign-in refused (wrong name, password or code, or a disabled
    /// operator), or the bearer token is missing, unknown, signed out, idle or expired.
    Unauthorized,
    /// 403: operator API: the operator's roles do not allow this call.
    Forbidden,
    /// 403: the answers are wrong (`attempts_left` says how many sets remain).
    WrongAnswers,
    /// 403: answer the questions first.
    NotVerified,
    /// 403: the GIDS card's cryptogram did not prove it holds the admin key.
    CardNotAuthenticated,
    /// 403: PIV: the card did not prove it is present (no valid signature of the session's
    /// nonce with its Card Authentication key). The one reply every PIV card gets until it has
    /// proved itself, whatever the server knows about it: use offline mode.
    CardNotVerified,
    /// 404: the card is not enrolled.
    UnknownCard,
    /// 404: no such endpoint (operator API: no such operator or enrollment).
    NotFound,
    /// 405: use POST.
    MethodNotAllowed,
    /// 408: the request did not arrive in time.
    RequestTimeout,
    /// 409: the card has no security questions: offline unlock only.
    NoQuestions,
    /// 409: this card challenge was already answered (online unlock and operator offline
    /// responses alike: each challenge once per card, ever).
    ChallengeUsed,
    /// 409: the PUK was already released in this session.
    PukReleased,
    /// 409: operator API: the request conflicts with the current state (an operator of that
    /// name exists, the enrollment is already closed, ...).
    Conflict,
    /// 409: operator API: offline responses are for ISO cards; GIDS authenticates mutually (use
    /// the online unlock), PIV is unblocked with its PUK (`puk-readout`).
    OfflineUnsupported,
    /// 409: releasing the PUK would risk blocking it (`tries_left` says why).
    PukAtRisk,
    /// 409: the card no longer holds the secrets the server has on record (a PIV card refused
    /// every PUK the server believed it held, or a GIDS card failed its admin-key check):
    /// online unlock stays stopped for it until the card is enrolled again.
    CardDiverged,
    /// 413: the body is larger than 16 KiB.
    PayloadTooLarge,
    /// 415: the body must be JSON.
    UnsupportedMediaType,
    /// 423: online unlock is locked for the card.
    Locked,
    /// 429: too many requests (`retry_after` seconds, also in the `Retry-After` header); also
    /// operator sign-in throttled after failures.
    TooManyRequests,
    /// 429: a daily cap is reached (`retry_after`: seconds to the next UTC day): the card's
    /// admin answers to workstations (`/v1/unlock/admin`), or the operator's offline responses,
    /// PUK read-outs or enrollments (operator API).
    CapReached,
    /// 500: the server failed.
    InternalError,
    /// 503: the server is too busy.
    Unavailable,
    /// A code this version does not know.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::InvalidSession => "invalid_session",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::WrongAnswers => "wrong_answers",
            Self::NotVerified => "not_verified",
            Self::CardNotAuthenticated => "card_not_authenticated",
            Self::CardNotVerified => "card_not_verified",
            Self::UnknownCard => "unknown_card",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout => "request_timeout",
            Self::NoQuestions => "no_questions",
            Self::ChallengeUsed => "challenge_used",
            Self::PukReleased => "puk_released",
            Self::PukAtRisk => "puk_at_risk",
            Self::CardDiverged => "card_diverged",
            Self::Conflict => "conflict",
            Self::OfflineUnsupported => "offline_unsupported",
            Self::CapReached => "cap_reached",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Locked => "locked",
            Self::TooManyRequests => "too_many_requests",
            Self::InternalError => "internal_error",
            Self::Unavailable => "unavailable",
            Self::Unknown => "unknown",
        }
    }

    /// The HTTP status the server sends with this code.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest | Self::Unknown => 400,
            Self::InvalidSession | Self::Unauthorized => 401,
            Self::WrongAnswers
            | Self::NotVerified
            | Self::CardNotAuthenticated
            | Self::CardNotVerified
            | Self::Forbidden => 403,
            Self::UnknownCard | Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::RequestTimeout => 408,
            Self::NoQuestions
            | Self::ChallengeUsed
            | Self::PukReleased
            | Self::PukAtRisk
            | Self::CardDiverged
            | Self::Conflict
            | Self::OfflineUnsupported => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::Locked => 423,
            Self::TooManyRequests | Self::CapReached => 429,
            Self::InternalError => 500,
            Self::Unavailable => 503,
        }
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"error": code, "message": text, ...}`: every refusal. Optional fields appear only where
/// API.md names them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The code.
    pub error: ErrorCode,
    /// A sentence for the user.
    pub message: String,
    /// Answer sets left before the lock (`wrong_answers`, `locked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts_left: Option<u32>,
    /// Seconds to wait (`too_many_requests`), as in the `Retry-After` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The card's PUK tries the server counted on (`puk_at_risk`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tries_left: Option<u32>,
}

impl ErrorBody {
    /// A body with just a code and a message.
    pub fn new(error: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error,
            message: message.into(),
            attempts_left: None,
            retry_after: None,
            tries_left: None,
        }
    }
}

impl core::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.message, self.error)
    }
}

impl std::error::Error for ErrorBody {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_as_their_names_and_unknown_ones_parse() {
        for code in [
            ErrorCode::PukAtRisk,
            ErrorCode::CardDiverged,
            ErrorCode::TooManyRequests,
            ErrorCode::Locked,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":"from_the_future","message":"m"}"#).unwrap();
        assert_eq!(body.error, ErrorCode::Unknown);
        let json = serde_json::to_string(&ErrorBody::new(ErrorCode::Locked, "x")).unwrap();
        assert_eq!(json, r#"{"error":"locked","message":"x"}"#);
    }
}
