//! Sans-IO unblock flows.
//!
//! A flow is a deterministic state machine: [`Flow::action`] says what it needs next (a command
//! sent to the card, an admin cryptogram from an [`AdminResponder`], or nothing because it is
//! done), and [`Flow::handle`] feeds it the outcome. No I/O, no clock; randomness comes in through
//! the constructors. The async [`crate::driver`] runs flows over a transport; tests run them
//! against a simulated card directly.
//!
//! # Commands are built in the driver's buffer
//!
//! [`Flow::action`] receives the driver's command-data buffer (as quinn-proto's `poll_transmit`
//! receives the caller's datagram buffer). A flow builds its command there with the command-set
//! builders ([`crate::piv`], [`crate::gids`], [`crate::iso`], or [`crate::apdu::Cursor`] for a
//! vendor's own command) and returns the [`Command`] borrowing it. The driver sends it and then
//! zeroizes the buffer, so a PIN, PUK or key exists once in the flow (as the typed value it was
//! given) and once, for the duration of one exchange, in the driver.
//!
//! # Order between flows
//!
//! Flows that must run one right after another in the same exclusive session take the previous
//! flow's output as a token: [`Selected`] (the application is selected, no second SELECT needed)
//! and [`MgmtAuthenticated`] (the PIV management key was authenticated, [`PivSetMgmtKey`] may
//! follow). Only the core creates tokens, and a token is consumed by the flow it allows.
//!
//! # Writing a flow for a new card profile
//!
//! A vendor profile lives outside this crate: implement [`Flow`] for a state machine of your
//! own, build commands with [`crate::apdu::Command`] and [`crate::apdu::Cursor`], read answers
//! with [`response`], [`expect_ok`] and [`answer`], and map status words with [`puk_reset_error`],
//! [`admin_auth_error`] and [`admin_reset_error`] so that the CLI and the server report it like
//! the built-in profiles. Run it with [`crate::driver::Driver::run`]. The example crate
//! `examples/vendor-profile` does this for a vendor applet with its own PIN reset command.
//!
//! ```
//! use cardunlock_core::apdu::{Command, Cursor};
//! use cardunlock_core::flow::{self, Action, Event, Flow, FlowError, Step};
//! use cardunlock_core::secret::Pin;
//!
//! /// `80 5E 00 00 <PUK> <new PIN>` after a SELECT (the vendor's own reset command). It borrows
//! /// the caller's secrets: no second copy.
//! struct VendorReset<'a> { puk: &'a Pin, new_pin: &'a Pin, step: u8 }
//!
//! impl Flow for VendorReset<'_> {
//!     type Output = ();
//!     fn action<'a>(&'a mut self, buf: &'a mut [u8]) -> Result<Action<'a, ()>, FlowError> {
//!         Ok(match self.step {
//!             0 => Action::Send(Command::new(0x00, 0xA4, 0x04, 0x00).with_data(&[0xF0, 0x01])),
//!             1 => {
//!                 let mut w = Cursor::new(buf);
//!                 w.put(self.puk.expose())?.put(self.new_pin.expose())?;
//!                 Action::Send(Command::new(0x80, 0x5E, 0x00, 0x00).with_data(w.finish()))
//!             }
//!             _ => Action::Done(()),
//!         })
//!     }
//!     fn handle(&mut self, event: Event<'_>) -> Result<(), FlowError> {
//!         let status = flow::response(event)?.status;
//!         match self.step {
//!             0 if !status.is_success() => return Err(FlowError::ApplicationNotFound(status)),
//!             1 if !status.is_success() => {
//!                 return Err(flow::puk_reset_error(status, Step::ResetRetryCounter))
//!             }
//!             _ => {}
//!         }
//!         self.step += 1;
//!         Ok(())
//!     }
//! }
//! # /// A vendor applet that takes `80 5E` with PUK 12345678 and records the new PIN.
//! # struct Applet { new_pin: Vec<u8> }
//! # impl cardunlock_core::Transport for Applet {
//! #     type Error = cardunlock_core::ErrorKind;
//! #     async fn transmit(&mut self, c: &[u8], r: &mut [u8]) -> Result<usize, Self::Error> {
//! #         let sw = match (c.get(..2), c.get(5..)) {
//! #             (Some([0x00, 0xA4]), _) => [0x90, 0x00],
//! #             (Some([0x80, 0x5E]), Some(d)) if d.starts_with(b"12345678") => {
//! #                 self.new_pin = d[8..].to_vec();
//! #                 [0x90, 0x00]
//! #             }
//! #             _ => [0x6A, 0x82],
//! #         };
//! #         r[..2].copy_from_slice(&sw);
//! #         Ok(2)
//! #     }
//! # }
//! # let (puk, new_pin) = (Pin::new(b"12345678").unwrap(), Pin::new(b"4711").unwrap());
//! # let mut flow = VendorReset { puk: &puk, new_pin: &new_pin, step: 0 };
//! # let mut driver = cardunlock_core::driver::Driver::new(Applet { new_pin: Vec::new() });
//! # embassy_futures::block_on(driver.run_without_admin(&mut flow)).unwrap();
//! # assert_eq!(driver.into_inner().new_pin, b"4711");
//! ```

use crate::apdu::{Command, EncodeError, Response};
use crate::crypto::{AdminKey, Algorithm, CryptoError};
use crate::sw::Status;

mod gids;
mod iso;
mod piv;
mod status;

pub use gids::{GidsChangeAdminKey, GidsUnblock};
pub use iso::{IsoChangeAdminKey, IsoUnblock};
pub use piv::{
    MgmtAuthenticated, PivChangePuk, PivMgmtAuth, PivSetMgmtKey, PivUnblock, PivUnblockOptions,
};
pub use status::{CardStatus, Profile, ReadStatus, Selected};

/// What an admin-key flow does once the card accepted the admin cryptogram. It borrows the
/// caller's PIN or key.
pub(crate) enum AfterAuth<'a> {
    /// RESET RETRY COUNTER with this PIN, then VERIFY with it.
    Unblock(&'a crate::secret::Pin),
    /// Change the admin key to this one (personalisation at enrollment).
    ChangeKey(&'a AdminKey),
}

/// Where an admin-key flow stands once the card accepted the admin cryptogram: the command of
/// [`AfterAuth`], then (for an unblock) VERIFY with the new PIN, then done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tail {
    /// RESET RETRY COUNTER or the key change is sent.
    Command,
    /// VERIFY with the new PIN is sent.
    VerifyNew,
    /// Finished.
    Done,
}

impl AfterAuth<'_> {
    /// Handles `event` in `tail`; returns where the flow stands next.
    pub(crate) fn step(&self, tail: Tail, event: Event<'_>) -> Result<Tail, FlowError> {
        match tail {
            Tail::Command if self.command_done(event)? => Ok(Tail::VerifyNew),
            Tail::Command => Ok(Tail::Done),
            Tail::VerifyNew => Self::verify_done(event).map(|()| Tail::Done),
            Tail::Done => Err(FlowError::UnexpectedEvent),
        }
    }

    /// Handles the answer to the command after authentication; `true` when a VERIFY with the
    /// new PIN follows.
    pub(crate) fn command_done(&self, event: Event<'_>) -> Result<bool, FlowError> {
        let status = response(event)?.status;
        match (self, status.is_success()) {
            (Self::Unblock(_), true) => Ok(true),
            (Self::ChangeKey(_), true) => Ok(false),
            (Self::Unblock(_), false) => Err(admin_reset_error(status)),
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

/// `impl Flow` for a newtype over an admin-key flow (`Self(inner)`): both calls go to `inner`.
macro_rules! delegate_flow {
    ($($name:ident),+) => {$(
        impl $crate::flow::Flow for $name<'_> {
            type Output = ();

            fn action<'a>(
                &'a mut self,
                buf: &'a mut [u8],
            ) -> Result<$crate::flow::Action<'a, ()>, $crate::flow::FlowError> {
                self.0.action(buf)
            }

            fn handle(
                &mut self,
                event: $crate::flow::Event<'_>,
            ) -> Result<(), $crate::flow::FlowError> {
                self.0.handle(event)
            }
        }
    )+};
}
pub(crate) use delegate_flow;

/// What a flow needs next.
#[derive(Debug)]
#[non_exhaustive]
pub enum Action<'a, O> {
    /// Send this command to the card and feed back [`Event::Response`]. Its data borrows the
    /// buffer given to [`Flow::action`] or the flow itself.
    Send(Command<'a>),
    /// Ask the admin responder and feed back [`Event::Answer`].
    Ask(AdminRequest<'a>),
    /// The flow has finished with this result.
    Done(O),
}

/// The outcome of the last [`Action`].
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The card's response to [`Action::Send`].
    Response(Response<'a>),
    /// The responder's answer to [`Action::Ask`].
    Answer(&'a [u8]),
}

/// A sans-IO flow.
///
/// The driver calls [`Flow::action`] once per step, performs the action, and feeds the outcome
/// to [`Flow::handle`]; after [`Action::Done`] it calls neither again.
pub trait Flow {
    /// What the flow yields when done.
    type Output;

    /// What the flow needs next. A command is built into `buf`, the driver's command-data
    /// buffer ([`crate::driver::FLOW_BUFFER_LEN`] bytes, zeroized after each exchange), or
    /// borrows the flow's own constants and values. Fails only when the command does not fit
    /// `buf` ([`FlowError::Encode`]); nothing was sent then.
    fn action<'a>(&'a mut self, buf: &'a mut [u8]) -> Result<Action<'a, Self::Output>, FlowError>;

    /// Feeds the outcome of the last action. An error ends the flow.
    fn handle(&mut self, event: Event<'_>) -> Result<(), FlowError>;
}

/// A cryptogram only the admin key holder can compute. The flow never sees the key: a local key,
/// a management server or an operator (offline mode) answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Why no answer could be given. Printed with `Display` in the driver's errors.
    type Error: core::fmt::Debug + core::fmt::Display;

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

impl core::fmt::Display for NoAdminKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("this operation has no admin key")
    }
}

impl core::error::Error for NoAdminKey {}

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
/// The `Z` random bytes of the GIDS exchange come from `rng`, which must be a CSPRNG
/// ([`rand_core::CryptoRng`]): on a host `rand::rngs::OsRng`, on a firmware its hardware RNG.
pub struct LocalKey<R: rand_core::RngCore + rand_core::CryptoRng> {
    key: AdminKey,
    rng: R,
}

impl<R: rand_core::RngCore + rand_core::CryptoRng> core::fmt::Debug for LocalKey<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocalKey").field("key", &self.key).finish()
    }
}

impl<R: rand_core::RngCore + rand_core::CryptoRng> LocalKey<R> {
    /// A responder over `key`, drawing random padding from `rng`.
    pub fn new(key: AdminKey, rng: R) -> Self {
        Self { key, rng }
    }

    /// Computes the answer synchronously. [`CryptoError::WrongAlgorithm`] when the request is
    /// for another algorithm than the key's.
    pub fn answer_now(
        &mut self,
        request: AdminRequest<'_>,
        out: &mut [u8; MAX_ANSWER_LEN],
    ) -> Result<usize, CryptoError> {
        match request {
            AdminRequest::Encrypt { algorithm, block }
            | AdminRequest::Decrypt { algorithm, block } => {
                if algorithm != self.key.algorithm() {
                    return Err(CryptoError::WrongAlgorithm);
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
                self.rng.fill_bytes(&mut out[32..39]);
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

impl<R: rand_core::RngCore + rand_core::CryptoRng> AdminResponder for LocalKey<R> {
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
#[non_exhaustive]
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
    /// SET MANAGEMENT KEY (YubiKey PIV extension).
    SetManagementKey,
    /// Waiting for the admin responder.
    AdminAnswer,
    /// A vendor profile's own command (see [`Flow`]).
    Vendor,
}

impl core::fmt::Display for Step {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Select => "SELECT",
            Self::Verify => "VERIFY",
            Self::GetData => "GET DATA",
            Self::GetMetadata => "GET METADATA",
            Self::ManageSecurityEnvironment => "MANAGE SECURITY ENVIRONMENT",
            Self::GeneralAuthenticate => "GENERAL AUTHENTICATE",
            Self::GetChallenge => "GET CHALLENGE",
            Self::ExternalAuthenticate => "EXTERNAL AUTHENTICATE",
            Self::ResetRetryCounter => "RESET RETRY COUNTER",
            Self::ChangeReferenceData => "CHANGE REFERENCE DATA",
            Self::SetManagementKey => "SET MANAGEMENT KEY",
            Self::AdminAnswer => "the admin answer",
            Self::Vendor => "the vendor command",
        })
    }
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
    /// The flow's command did not fit the driver's buffer. Nothing was sent.
    Encode(EncodeError),
    /// The flow asked for an admin cryptogram but was run without an admin responder
    /// ([`crate::driver::Driver::run_without_admin`]). Nothing more was sent.
    NoAdminResponder,
}

/// What kind of failure a [`FlowError`] is, for callers that act on the category (exit codes,
/// HTTP status) rather than the detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FlowErrorKind {
    /// The card is not of the expected profile.
    WrongCard,
    /// A secret (PUK, admin key or answer) was wrong; tries were spent.
    WrongSecret,
    /// The secret is blocked.
    Blocked,
    /// The card refused the new PIN.
    PinRejected,
    /// The card could not prove it holds the admin key.
    CardNotAuthentic,
    /// The card or the responder answered outside the protocol, or a program bug.
    Protocol,
}

impl core::fmt::Display for FlowErrorKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::WrongCard => "wrong card",
            Self::WrongSecret => "wrong secret",
            Self::Blocked => "blocked",
            Self::PinRejected => "new PIN rejected",
            Self::CardNotAuthentic => "card not authentic",
            Self::Protocol => "protocol error",
        })
    }
}

impl core::error::Error for FlowErrorKind {}

impl FlowError {
    /// The category of this error.
    pub fn kind(&self) -> FlowErrorKind {
        match self {
            Self::ApplicationNotFound(_) | Self::UnknownCard | Self::AlgorithmMismatch => {
                FlowErrorKind::WrongCard
            }
            Self::WrongPuk { .. } | Self::AdminAuthFailed { .. } => FlowErrorKind::WrongSecret,
            Self::PukBlocked | Self::AdminBlocked => FlowErrorKind::Blocked,
            Self::NewPinRejected(_) | Self::NewPinNotAccepted(_) => FlowErrorKind::PinRejected,
            Self::CardAuthFailed => FlowErrorKind::CardNotAuthentic,
            Self::UnexpectedStatus { .. }
            | Self::MalformedResponse(_)
            | Self::BadAnswer
            | Self::UnexpectedEvent
            | Self::Encode(_)
            | Self::NoAdminResponder => FlowErrorKind::Protocol,
        }
    }

    /// Tries left on the secret that was wrong, when the card said.
    pub fn tries_left(&self) -> Option<u8> {
        match self {
            Self::WrongPuk { tries_left } => Some(*tries_left),
            Self::AdminAuthFailed { tries_left } => *tries_left,
            Self::PukBlocked | Self::AdminBlocked => Some(0),
            _ => None,
        }
    }
}

impl From<EncodeError> for FlowError {
    fn from(e: EncodeError) -> Self {
        Self::Encode(e)
    }
}

impl core::error::Error for FlowError {}

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
                write!(f, "unexpected status {status} at {step}")
            }
            Self::MalformedResponse(step) => write!(f, "malformed card response at {step}"),
            Self::BadAnswer => f.write_str("the admin response has the wrong length"),
            Self::UnexpectedEvent => f.write_str("flow fed an unexpected event"),
            Self::NewPinNotAccepted(sw) => {
                write!(
                    f,
                    "the card was unblocked but refused the new PIN (SW {sw})"
                )
            }
            Self::Encode(e) => write!(f, "the command could not be built: {e}"),
            Self::NoAdminResponder => {
                f.write_str("the operation needs an admin key, but none was given")
            }
        }
    }
}

/// The card's response of an [`Event`], or [`FlowError::UnexpectedEvent`] for an admin answer.
pub fn response(event: Event<'_>) -> Result<Response<'_>, FlowError> {
    match event {
        Event::Response(r) => Ok(r),
        Event::Answer(_) => Err(FlowError::UnexpectedEvent),
    }
}

/// The admin responder's answer of an [`Event`] with exactly `len` bytes
/// ([`FlowError::BadAnswer`] for another length, [`FlowError::UnexpectedEvent`] for a card
/// response).
pub fn answer(event: Event<'_>, len: usize) -> Result<&[u8], FlowError> {
    match event {
        Event::Answer(a) if a.len() == len => Ok(a),
        Event::Answer(_) => Err(FlowError::BadAnswer),
        Event::Response(_) => Err(FlowError::UnexpectedEvent),
    }
}

/// The data of a `90 00` response at `step`, or [`FlowError::UnexpectedStatus`] with the status.
pub fn expect_ok(event: Event<'_>, step: Step) -> Result<&[u8], FlowError> {
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

/// Maps the card's refusal of an admin cryptogram (GENERAL or EXTERNAL AUTHENTICATE) to
/// [`FlowError::AdminBlocked`], [`FlowError::AdminAuthFailed`] with the tries left, or
/// [`FlowError::UnexpectedStatus`] at [`Step::GeneralAuthenticate`].
pub fn admin_auth_error(status: Status) -> FlowError {
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

/// Maps the card's refusal of a RESET RETRY COUNTER sent after an admin authentication (no
/// PUK in it): [`FlowError::NewPinRejected`] for the card's PIN rules, otherwise
/// [`FlowError::UnexpectedStatus`].
pub fn admin_reset_error(status: Status) -> FlowError {
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

/// Maps the card's refusal of a command that carried a PUK (PIV RESET RETRY COUNTER, CHANGE
/// REFERENCE DATA of the PUK, a vendor's PIN reset command): [`FlowError::PukBlocked`],
/// [`FlowError::WrongPuk`] with the tries left, [`FlowError::NewPinRejected`] for the card's PIN
/// rules (`6A 80`, `69 85`, `67 00`), otherwise [`FlowError::UnexpectedStatus`] at `step`.
pub fn puk_reset_error(status: Status, step: Step) -> FlowError {
    match status {
        Status::AuthenticationBlocked | Status::RetriesLeft(0) => FlowError::PukBlocked,
        Status::RetriesLeft(n) => FlowError::WrongPuk { tries_left: n },
        Status::IncorrectData | Status::ConditionsNotSatisfied | Status::WrongLength => {
            FlowError::NewPinRejected(status)
        }
        status => FlowError::UnexpectedStatus { step, status },
    }
}
