//! # cardunlock-protocol
//!
//! The online-unlock contract (`server/API.md`), written once for the server
//! (`cardunlock-server`) and its client: every `/v1/unlock/*` request and reply as a serde type,
//! the error body, the wire names of algorithms, profiles and PIN character sets (with their
//! conversions to `cardunlock_core`), the PIN policy as it travels, the key-derivation labels,
//! and (feature `tls`) the pinned-certificate rustls client set-up, (feature `files`) checked reading of secret
//! files and pinned certificates; [`operator`]: the operator
//! API (`/v1/operator/*`: sign-in, cards, offline responses, enrollment, audit, operators).
//!
//! Secrets that cross the wire (session tokens, answers, PUKs, admin answers) are held in types
//! whose `Debug` prints no secret and whose memory is zeroized on drop.
//!
//! # Example
//!
//! A client's start of an unlock and the server's refusal, each through JSON and back:
//!
//! ```
//! use cardunlock_protocol::{paths, ErrorBody, ErrorCode, Profile, StartRequest};
//!
//! // The client POSTs this to `paths::START`; the server reads it back into the same type.
//! let body = r#"{"card":{"profile":"piv","identity":"3f2504e04f8911d39a0c0305e82c3301"}}"#;
//! let request: StartRequest = serde_json::from_str(body)?;
//! assert_eq!(request.card.profile, Profile::Piv);
//! assert_eq!(serde_json::to_string(&request)?, body);
//! assert_eq!(paths::START, "/v1/unlock/start");
//!
//! // A refusal: the code a program matches on, a sentence for the user, the HTTP status.
//! let refusal = ErrorBody::new(ErrorCode::Locked, "Online unlock is locked for this card.");
//! let back: ErrorBody = serde_json::from_str(&serde_json::to_string(&refusal)?)?;
//! assert_eq!(back, refusal);
//! assert_eq!(back.error.status(), 423);
//! # Ok::<(), serde_json::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod body;
pub mod bytes;
pub mod derivation;
mod error;
#[cfg(feature = "files")]
pub mod files;
mod messages;
mod names;
pub mod operator;
mod policy;
pub mod presence;
#[cfg(feature = "tls")]
mod tls;

// The README's example runs as a doctest too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use bytes::{
    Block, BytesError, CardAuthKey, CardIdentity, Challenge, ChallengeError, GidsCryptogram,
    GidsRandom, Nonce, Signature,
};
pub use error::{ErrorBody, ErrorCode};
pub use messages::{
    AdminAnswer, AdminBody, AdminRequest, AnswersReply, AnswersRequest, CardRef, CompleteReply,
    CompleteRequest, Outcome, ProveReply, ProveRequest, PukReply, PukRequest, Secret, SessionToken,
    StartReply, StartRequest, User,
};
pub use names::{AlgorithmName, ParseNameError, Profile};
pub use operator::Role;
pub use policy::{PinCharset, PinPolicy};
#[cfg(feature = "tls")]
pub use tls::{pinned_client_config, TlsConfigError};

/// The endpoint paths of the online unlock, all `POST`, bodies `application/json`; the
/// operator API's are in [`paths::operator`].
pub mod paths {
    pub use crate::operator::paths as operator;

    /// [`crate::StartRequest`] -> [`crate::StartReply`].
    pub const START: &str = "/v1/unlock/start";
    /// [`crate::ProveRequest`] -> [`crate::ProveReply`] (PIV).
    pub const PROVE: &str = "/v1/unlock/prove";
    /// [`crate::AnswersRequest`] -> [`crate::AnswersReply`].
    pub const ANSWERS: &str = "/v1/unlock/answers";
    /// [`crate::AdminBody`] -> [`crate::AdminAnswer`].
    pub const ADMIN: &str = "/v1/unlock/admin";
    /// [`crate::PukRequest`] -> [`crate::PukReply`].
    pub const PUK: &str = "/v1/unlock/puk";
    /// [`crate::CompleteRequest`] -> [`crate::CompleteReply`].
    pub const COMPLETE: &str = "/v1/unlock/complete";
}

/// Largest request body the server accepts, in bytes (413 `payload_too_large` beyond).
pub const MAX_BODY: usize = 16 * 1024;
