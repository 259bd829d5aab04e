//! cardunlock's client side, shared by the `cardunlock` CLI and the window: everything about an
//! unlock that is not a terminal, a window or a reader.
//!
//! - [`failure`]: what went wrong, as a kind to branch on and a message that names its subject.
//! - [`hex`]: the one hex helper (parse what people type, format for reading out).
//! - [`api`]: the HTTPS client of the unlock server, pinned to its certificate.
//! - [`iso_profiles`]: the ISO admin profiles a workstation tries, from its configuration.
//! - [`responder`]: the server-backed admin responder (GIDS / ISO cards).
//! - [`online`]: the online unlock (security questions, new PIN, the server answers the card),
//!   with PIV PUK rotation, talking to the person through the [`online::Ui`] trait.
//! - [`offline`]: the offline unlock (the operator's response, or the PUK for PIV).
//! - [`operator`]: the operator API's client (sign-in, enrollment, lift-lock, offline
//!   response, PUK read-out), the session kept owner-only between commands.
//! - [`enroll`]: personalisation of a card with the secrets the server gives it.
//! - `demo` (feature `demo`): the seed scenario in-process (server, user, simulated card).
//! - [`link`] and [`worker`]: the unlock on a worker thread behind a channel, for a front end
//!   that must never block (the window, the login-screen tile): one worker loop for both.
//! - [`card`]: the card in a PC/SC reader (feature `pcsc`) or a USB CCID reader (feature
//!   `ccid`): reader choice, waiting for the card, sessions; every workstation program uses it.
//!
//! Without those two features the caller brings its own [`cardunlock_core::Transport`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod card;
#[cfg(feature = "demo")]
pub mod demo;
pub mod enroll;
pub mod failure;
pub mod hex;
pub mod iso_profiles;
pub mod link;
pub mod offline;
pub mod online;
pub mod operator;
pub mod presence;
pub mod responder;
pub mod status;
pub mod worker;

pub use failure::{Failure, Kind};
