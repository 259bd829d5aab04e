//! # cardunlock-core
//!
//! The heap-free, `no_std`, async engine that unblocks a smart card whose PIN is blocked.
//!
//! Layers, bottom up:
//! - [`apdu`] and [`sw`]: command APDUs encoded into caller buffers (short and extended
//!   length), responses parsed into borrowed views, and the status word as a total type.
//! - [`tlv`]: bounds-checked BER-TLV reading and writing (the PIV `7C` dynamic authentication
//!   template, data objects).
//! - [`crypto`]: the admin key (3DES, AES-128/192/256), zeroized, never printed, compared in
//!   constant time.
//! - [`secret`]: PIN, PUK and new-PIN values whose constructors enforce the spec limits.
//! - [`piv`], [`gids`], [`iso`]: the command sets of each card profile, as typed builders and
//!   response parsers.
//! - [`flow`]: sans-IO state machines for every unblock flow. They emit commands, consume
//!   responses and ask an [`flow::AdminResponder`] (local key, server, or a person typing the
//!   operator's answer) for admin cryptograms. Randomness comes in as an argument.
//! - [`driver`]: runs the flows over a [`transport::Transport`], handling `61 XX`, `6C XX` and
//!   command chaining.
//! - [`policy`]: the PIN policy, checked before any command reaches the card.
//! - [`unlock`]: the operations as callers use them: raw input, policy first, then the flow.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(feature = "std")]
extern crate std;

mod fmt;

pub mod apdu;
pub mod crypto;
pub mod driver;
pub mod flow;
pub mod gids;
pub mod iso;
pub mod piv;
pub mod policy;
pub mod secret;
pub mod sw;
pub mod tlv;
pub mod transport;
pub mod unlock;

pub use apdu::{Command, Response};
/// The randomness traits [`flow::LocalKey`] requires (`RngCore + CryptoRng`), re-exported so a
/// firmware implements them for its hardware RNG against the same version.
pub use rand_core;
pub use sw::Status;
pub use transport::{ErrorKind, Transport, TransportError};

/// The status word module under its old name: renamed [`sw`] (status words), so it is not taken
/// for the card status of [`flow::CardStatus`].
#[deprecated(since = "0.2.0", note = "renamed `cardunlock_core::sw` (status words)")]
pub mod status {
    pub use crate::sw::*;
}
