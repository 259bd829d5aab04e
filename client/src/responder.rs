//! The server-backed admin responder: the card's admin requests (GIDS mutual authentication,
//! ISO challenge) relayed to the unlock server inside a verified session. The workstation never
//! holds the admin key.

use std::fmt;

use cardunlock_core::crypto::Algorithm;
use cardunlock_core::flow::{AdminRequest, AdminResponder, MAX_ANSWER_LEN};
use cardunlock_protocol::{
    AdminRequest as Wire, AlgorithmName, Block, GidsCryptogram, GidsRandom, SessionToken,
};

use crate::api::Api;
use crate::api::ApiError;
use crate::failure::Failure;

/// Why the server gave no admin answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum ResponderError {
    /// The card's admin key uses an algorithm the wire contract has no name for.
    NoWireName(Algorithm),
    /// The card asked for something the server does not answer (a PIV witness to decrypt).
    Unsupported(&'static str),
    /// The server refused or could not be reached.
    Server(ApiError),
    /// The server's answer does not fit the card's buffer.
    TooLong(usize),
}

impl fmt::Display for ResponderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoWireName(a) => write!(f, "no wire name for the algorithm {a}"),
            Self::Unsupported(what) => write!(f, "the server does not {what}"),
            Self::Server(failure) => fmt::Display::fmt(failure, f),
            Self::TooLong(n) => write!(f, "the server's answer is too long ({n} bytes)"),
        }
    }
}

impl std::error::Error for ResponderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Server(failure) => Some(failure),
            _ => None,
        }
    }
}

/// Relays admin requests to the server inside a verified session.
pub struct ServerResponder<'a> {
    api: &'a Api,
    session: &'a SessionToken,
    refusal: Option<Failure>,
}

impl<'a> ServerResponder<'a> {
    /// A responder for `session` (whose answers the server verified).
    pub fn new(api: &'a Api, session: &'a SessionToken) -> Self {
        Self {
            api,
            session,
            refusal: None,
        }
    }

    /// The server's refusal of the last admin request, if it refused one (a daily cap, a card
    /// marked diverged, ...): what to tell the user rather than the flow's own error.
    pub fn take_refusal(&mut self) -> Option<Failure> {
        self.refusal.take()
    }
}

impl AdminResponder for ServerResponder<'_> {
    type Error = ResponderError;

    async fn answer(
        &mut self,
        request: AdminRequest<'_>,
        out: &mut [u8; MAX_ANSWER_LEN],
    ) -> Result<usize, ResponderError> {
        let body = match request {
            AdminRequest::Encrypt { algorithm, block } => Wire::Encrypt {
                algorithm: AlgorithmName::of(algorithm)
                    .ok_or(ResponderError::NoWireName(algorithm))?,
                block: Block::new(block.to_vec())
                    .map_err(|_| ResponderError::Unsupported("send a block of this length"))?,
            },
            AdminRequest::GidsCryptogram { r1, r2 } => Wire::GidsCryptogram {
                r1: GidsRandom::new(r1.to_vec())
                    .map_err(|_| ResponderError::Unsupported("send this R1"))?,
                r2: GidsRandom::new(r2.to_vec())
                    .map_err(|_| ResponderError::Unsupported("send this R2"))?,
            },
            AdminRequest::GidsCardCryptogram { cryptogram } => Wire::GidsCardCryptogram {
                cryptogram: GidsCryptogram::new(cryptogram.to_vec())
                    .map_err(|_| ResponderError::Unsupported("send this cryptogram"))?,
            },
            AdminRequest::Decrypt { .. } => {
                return Err(ResponderError::Unsupported("decrypt PIV witnesses"))
            }
            _ => return Err(ResponderError::Unsupported("answer this admin request")),
        };
        let bytes = self.api.admin(self.session, body).map_err(|e| {
            if e.code().is_some() {
                self.refusal = Some(e.failure());
            }
            ResponderError::Server(e)
        })?;
        let dst = out
            .get_mut(..bytes.len())
            .ok_or(ResponderError::TooLong(bytes.len()))?;
        dst.copy_from_slice(&bytes);
        Ok(bytes.len())
    }
}
