//! Sans-IO unblock flows.
//!
//! A flow is a deterministic state machine: [`Flow::action`] says what it needs next (a command
//! sent to the card, an admin cryptogram from an [`AdminResponder`], or nothing because it is
//! done), and [`Flow::handle`] feeds it the outcome. No I/O, no clock; randomness comes in through
//! the constructors. The async [`crate::driver`] runs flows over a transport; tests run them
//! against a simulated card directly.

use crate::apdu::{Command, Response};
use crate::crypto::{AdminKey, Algorithm, CryptoError};
use crate::status::Status;

mod gids;
mod iso;
mod piv;
mod status;

pub use gids::GidsUnblock;
pub use iso::IsoUnblock;
pub use piv::{PivChangePuk, PivMgmtAuth, PivSetMgmtKey, PivUnblock};
pub use status::{CardStatus, Profile, ReadStatus};

/// What an admin-key flow does once the card accepted the admin cryptogram.
pub(crate) enum AfterAuth {
    /// RESET RETRY COUNTER with this PIN, then VERIFY with it.
    Unblock(crate::secret::Pin),
    /// Change the admin key to this one (personalisation at enrollment).
    ChangeKey(AdminKey),
}

impl AfterAuth {
    /// Handles the answer to the command after authentication; `true` when a VERIFY with the
    /// new PIN follows.
    pub(crate) fn command_done(&self, event: Event<'_>) -> Result<bool, FlowError> {
        let status = response(event)?.status;
        match (self, status.is_success()) {
            (Self::Unblock(_), true) => Ok(true),
            (Self::ChangeKey(_), true) => Ok(false),
            (Self::Unblock(_), false) => Err(rrc_error(status)),
            (Self::ChangeKey(_), false) => Err(FlowError::UnexpectedStatus {
                step: Step::ChangeReferenceData,
                status,
            }),
        }
    }

    /// Handles the answer to VERIFY with the new PIN.
    pub(crate) fn verify_done(event: Event<'_>) -> Result<(), FlowError> {
        let status = response(event)?.status;
        if status.is_success() {
            Ok(())
        } else {
            Err(FlowError::NewPinNotAccepted(status))
        }
    }
}

/// What a flow needs next.
#[derive(Debug)]
pub enum Action<'a, O> {
    /// Send this command to the card and feed back [`Event::Response`].
    Send(Command<'a>),
    /// Ask the admin responder and feed back [`Event::Answer`].
    Ask(AdminRequest<'a>),
    /// The flow has finished with this result.
    Done(O),
}

/// The outcome of the last [`Action`].
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// The card's response to [`Action::Send`].
    Response(Response<'a>),
    /// The responder's answer to [`Action::Ask`].
    Answer(&'a [u8]),
}

/// A sans-IO flow.
pub trait Flow {
    /// What the flow yields when done.
    type Output: Clone;

    /// What the flow needs next. Calling it again without [`Flow::handle`] returns the same.
    fn action(&self) -> Action<'_, Self::Output>;

    /// Feeds the outcome of the last action. An error ends the flow.
    fn handle(&mut self, event: Event<'_>) -> Result<(), FlowError>;
}

/// A cryptogram only the admin key holder can compute. The flow never sees the key: a local key,
/// a management server or an operator (offline mode) answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminRequest<'a> {
    /// Encrypt one block (ECB): answer to a PIV or ISO challenge, or the expected card answer
    /// to the host challenge of a PIV mutual authentication. Answer: one block.
    Encrypt {
        /// The admin key algorithm.
        algorithm: Algorithm,
        /// The block to encrypt.
        block: &'a [u8],
    },
    /// Decrypt one block (ECB): the PIV witness. Answer: one block.
    Decrypt {
        /// The admin key algorithm.
        algorithm: Algorithm,
        /// The block to decrypt.
        block: &'a [u8],
    },
    /// GIDS: compute `3DES-CBC_K(IV 0, R2 || R1 || Z1)`. Answer: 40 bytes.
    GidsCryptogram {
        /// Host random.
        r1: &'a [u8; 16],
        /// Card random.
        r2: &'a [u8; 16],
    },
    /// GIDS: decrypt the card's cryptogram so the flow can check R1 and R2 in it. Answer: 40
    /// bytes.
    GidsCardCryptogram {
        /// The card's 40-byte cryptogram.
        cryptogram: &'a [u8; 40],
    },
}

/// Room for any [`AdminRequest`] answer.
pub const MAX_ANSWER_LEN: usize = 40;

/// Answers [`AdminRequest`]s.
#[allow(async_fn_in_trait)]
pub trait AdminResponder {
    /// Why no answer could be given.
    type Error: core::fmt::Debug;

    /// Writes the answer into `out` and returns its length.
    async fn answer(
        &mut self,
        request: AdminRequest<'_>,
        out: &mut [u8; MAX_ANSWER_LEN],
    ) -> Result<usize, Self::Error>;
}

/// The responder for flows that need no admin key (PIV PUK unblock, status). Refuses all.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoAdmin;

/// Error of [`NoAdmin`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NoAdminKey;

impl AdminResponder for NoAdmin {
    type Error = NoAdminKey;

    async fn answer(
        &mut self,
        _: AdminRequest<'_>,
        _: &mut [u8; MAX_ANSWER_LEN],
    ) -> Result<usize, NoAdminKey> {
        Err(NoAdminKey)
    }
}

/// Answers with an admin key held locally (provisioning station, operator tool, tests).
/// `Z` random bytes of the GIDS exchange come from `fill_random`.
pub struct LocalKey<F: FnMut(&mut [u8])> {
    key: AdminKey,
    fill_random: F,
}

impl<F: FnMut(&mut [u8])> core::fmt::Debug for LocalKey<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocalKey").field("key", &self.key).finish()
    }
}

impl<F: FnMut(&mut [u8])> LocalKey<F> {
    /// A responder over `key`.
    pub fn new(key: AdminKey, fill_random: F) -> Self {
        Self { key, fill_random }
    }

    /// Computes the answer synchronously.
    pub fn answer_now(
        &mut self,
        request: AdminRequest<'_>,
        out: &mut [u8; MAX_ANSWER_LEN],
    ) -> Result<usize, CryptoError> {
        match request {
            AdminRequest::Encrypt { algorithm, block }
            | AdminRequest::Decrypt { algorithm, block } => {
                if algorithm != self.key.algorithm() {
                    return Err(CryptoError::KeyLength);
                }
                let dst = out.get_mut(..block.len()).ok_or(CryptoError::BlockLength)?;
                dst.copy_from_slice(block);
                if matches!(request, AdminRequest::Encrypt { .. }) {
                    self.key.encrypt_ecb(dst)?;
                } else {
                    self.key.decrypt_ecb(dst)?;
                }
                Ok(block.len())
            }
            AdminRequest::GidsCryptogram { r1, r2 } => {
                out[..16].copy_from_slice(r2);
                out[16..32].copy_from_slice(r1);
                (self.fill_random)(&mut out[32..39]);
                out[39] = 0x80;
                self.key.cbc_encrypt(&[0; 8], out)?;
                Ok(MAX_ANSWER_LEN)
            }
            AdminRequest::GidsCardCryptogram { cryptogram } => {
                out.copy_from_slice(cryptogram);
                self.key.cbc_decrypt(&[0; 8], out)?;
                Ok(MAX_ANSWER_LEN)
            }
        }
    }
}

impl<F: FnMut(&mut [u8])> AdminResponder for LocalKey<F> {
    type Error = CryptoError;

    async fn answer(
        &mut self,
        request: AdminRequest<'_>,
        out: &mut [u8; MAX_ANSWER_LEN],
    ) -> Result<usize, CryptoError> {
        self.answer_now(request, out)
    }
}

/// The command a flow was at when something went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Step {
    /// SELECT.
    Select,
    /// VERIFY (status query or PIN).
    Verify,
    /// GET DATA (identity, PIN status).
    GetData,
    /// GET METADATA (YubiKey).
    GetMetadata,
    /// MANAGE SECURITY ENVIRONMENT.
    ManageSecurityEnvironment,
    /// GENERAL AUTHENTICATE.
    GeneralAuthenticate,
    /// GET CHALLENGE.
    GetChallenge,
    /// EXTERNAL AUTHENTICATE.
    ExternalAuthenticate,
    /// RESET RETRY COUNTER.
    ResetRetryCounter,
    /// CHANGE REFERENCE DATA.
    ChangeReferenceData,
    /// Waiting for the admin responder.
    AdminAnswer,
}

/// Why a flow stopped. Tries left are reported wherever the card tells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FlowError {
    /// The card has no application of the profile this flow needs (SELECT failed).
    ApplicationNotFound(Status),
    /// No known profile (PIV, GIDS, ISO admin) answered SELECT.
    UnknownCard,
    /// The PUK was wrong; this many PUK tries are left.
    WrongPuk {
        /// PUK tries left.
        tries_left: u8,
    },
    /// The PUK is blocked: the card cannot be unblocked with it any more.
    PukBlocked,
    /// The card refused the new PIN (its own PIN rules: `6A 80`, YubiKey complexity `69 85`).
    NewPinRejected(Status),
    /// The admin cryptogram was wrong (wrong admin key, or a wrong operator response).
    AdminAuthFailed {
        /// Admin-key tries left, when the card says.
        tries_left: Option<u8>,
    },
    /// The admin key is blocked.
    AdminBlocked,
    /// The card's own cryptogram did not check out: not the card we hold the key for, or a
    /// forged answer. Nothing was changed on it.
    CardAuthFailed,
    /// The admin key algorithm the card uses is not the one the caller asked for.
    AlgorithmMismatch,
    /// The card answered a step with a status word the flow cannot act on.
    UnexpectedStatus {
        /// The step.
        step: Step,
        /// What the card said.
        status: Status,
    },
    /// The card answered a step with data that does not parse.
    MalformedResponse(Step),
    /// The admin responder's answer had the wrong length.
    BadAnswer,
    /// The flow was fed an event it did not ask for (a driver bug).
    UnexpectedEvent,
    /// The unblock succeeded but the card then refused the new PIN on VERIFY.
    NewPinNotAccepted(Status),
}

impl core::fmt::Display for FlowError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::ApplicationNotFound(sw) => {
                write!(f, "the card has no such application (SW {sw})")
            }
            Self::UnknownCard => f.write_str("the card is not a PIV, GIDS or ISO admin card"),
            Self::WrongPuk { tries_left } => write!(f, "wrong PUK: {tries_left} tries left"),
            Self::PukBlocked => f.write_str("the PUK is blocked"),
            Self::NewPinRejected(sw) => write!(f, "the card refused the new PIN (SW {sw})"),
            Self::AdminAuthFailed {
                tries_left: Some(n),
            } => {
                write!(f, "wrong admin response: {n} admin-key tries left")
            }
            Self::AdminAuthFailed { tries_left: None } => f.write_str("wrong admin response"),
            Self::AdminBlocked => f.write_str("the admin key is blocked"),
            Self::CardAuthFailed => {
                f.write_str("the card failed to prove it holds the admin key; nothing was changed")
            }
            Self::AlgorithmMismatch => f.write_str("the card uses another admin key algorithm"),
            Self::UnexpectedStatus { step, status } => {
                write!(f, "unexpected status {status} at {step:?}")
            }
            Self::MalformedResponse(step) => write!(f, "malformed card response at {step:?}"),
            Self::BadAnswer => f.write_str("the admin response has the wrong length"),
            Self::UnexpectedEvent => f.write_str("flow fed an unexpected event"),
            Self::NewPinNotAccepted(sw) => {
                write!(
                    f,
                    "the card was unblocked but refused the new PIN (SW {sw})"
                )
            }
        }
    }
}

/// The response of an [`Event`], or [`FlowError::UnexpectedEvent`].
pub(crate) fn response(event: Event<'_>) -> Result<Response<'_>, FlowError> {
    match event {
        Event::Response(r) => Ok(r),
        Event::Answer(_) => Err(FlowError::UnexpectedEvent),
    }
}

/// The answer of an [`Event`] with exactly `len` bytes.
pub(crate) fn answer(event: Event<'_>, len: usize) -> Result<&[u8], FlowError> {
    match event {
        Event::Answer(a) if a.len() == len => Ok(a),
        Event::Answer(_) => Err(FlowError::BadAnswer),
        Event::Response(_) => Err(FlowError::UnexpectedEvent),
    }
}

/// The data of a `90 00` response at `step`, or the status as an error.
pub(crate) fn expect_ok(event: Event<'_>, step: Step) -> Result<&[u8], FlowError> {
    let r = response(event)?;
    if r.status.is_success() {
        Ok(r.data)
    } else {
        Err(FlowError::UnexpectedStatus {
            step,
            status: r.status,
        })
    }
}

/// Maps the card's answer to an admin cryptogram.
pub(crate) fn admin_auth_error(status: Status) -> FlowError {
    match status {
        Status::AuthenticationBlocked | Status::RetriesLeft(0) => FlowError::AdminBlocked,
        Status::RetriesLeft(n) => FlowError::AdminAuthFailed {
            tries_left: Some(n),
        },
        Status::SecurityStatusNotSatisfied
        | Status::IncorrectData
        | Status::VerificationFailed
        | Status::ConditionsNotSatisfied => FlowError::AdminAuthFailed { tries_left: None },
        status => FlowError::UnexpectedStatus {
            step: Step::GeneralAuthenticate,
            status,
        },
    }
}

/// Maps the card's answer to a RESET RETRY COUNTER that needed admin authentication.
pub(crate) fn rrc_error(status: Status) -> FlowError {
    match status {
        Status::IncorrectData | Status::WrongLength | Status::ConditionsNotSatisfied => {
            FlowError::NewPinRejected(status)
        }
        status => FlowError::UnexpectedStatus {
            step: Step::ResetRetryCounter,
            status,
        },
    }
}
