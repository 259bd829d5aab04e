//! The server-backed admin responder: the card's admin requests (GIDS mutual authentication,
//! ISO challenge) relayed to the unlock server inside a verified session. The workstation never
//! holds the admin key.

use cardunlock_core::flow::{AdminRequest, AdminResponder, MAX_ANSWER_LEN};
use cardunlock_protocol::{AdminRequest as Wire, AlgorithmName, SessionToken};

use crate::api::Api;
use crate::failure::Failure;
use crate::hex;

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
    type Error = String;

    async fn answer(
        &mut self,
        request: AdminRequest<'_>,
        out: &mut [u8; MAX_ANSWER_LEN],
    ) -> Result<usize, String> {
        let body = match request {
            AdminRequest::Encrypt { algorithm, block } => Wire::Encrypt {
                algorithm: AlgorithmName::of(algorithm)
                    .ok_or_else(|| format!("no wire name for the algorithm {algorithm}"))?,
                block: hex::encode(block),
            },
            AdminRequest::GidsCryptogram { r1, r2 } => Wire::GidsCryptogram {
                r1: hex::encode(r1),
                r2: hex::encode(r2),
            },
            AdminRequest::GidsCardCryptogram { cryptogram } => Wire::GidsCardCryptogram {
                cryptogram: hex::encode(cryptogram),
            },
            AdminRequest::Decrypt { .. } => {
                return Err("the server does not decrypt PIV witnesses".into())
            }
            _ => return Err("the server does not answer this admin request".into()),
        };
        let bytes = self.api.admin(self.session, body).map_err(|e| {
            if e.code().is_some() {
                self.refusal = Some(e.failure());
            }
            e.to_string()
        })?;
        let dst = out
            .get_mut(..bytes.len())
            .ok_or("the server's answer is too long")?;
        dst.copy_from_slice(&bytes);
        Ok(bytes.len())
    }
}
