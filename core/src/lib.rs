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
//!
//! # Example
//!
//! The PIV unblock: the PUK and the new PIN (typed twice) are checked against the PIN policy
//! first, then RESET RETRY COUNTER sets the new PIN and a VERIFY proves the card took it.
//! `card` is any [`Transport`] (a PC/SC reader, a USB CCID session, a firmware's UART); here a
//! blocked PIV card in memory whose PUK is `12345678`.
//!
//! ```
//! # use cardunlock_core::{ErrorKind, Transport};
//! # /// Just enough of a blocked PIV card for this example: SELECT, RESET RETRY COUNTER, VERIFY.
//! # struct Card { puk: [u8; 8], pin: [u8; 8] }
//! # impl Transport for Card {
//! #     type Error = ErrorKind;
//! #     async fn transmit(&mut self, c: &[u8], r: &mut [u8]) -> Result<usize, ErrorKind> {
//! #         let data = c.get(5..).unwrap_or_default();
//! #         let sw = match c.get(1) {
//! #             Some(0x2C) if data.len() == 16 && data[..8] == self.puk => {
//! #                 self.pin.copy_from_slice(&data[8..]);
//! #                 [0x90, 0x00]
//! #             }
//! #             Some(0x2C) => [0x63, 0xC2],
//! #             Some(0x20) if data == self.pin => [0x90, 0x00],
//! #             Some(0x20) => [0x63, 0xC0],
//! #             _ => [0x90, 0x00],
//! #         };
//! #         r[..2].copy_from_slice(&sw);
//! #         Ok(2)
//! #     }
//! # }
//! # let card = Card { puk: *b"12345678", pin: [0; 8] };
//! use cardunlock_core::{driver::Driver, policy::PinPolicy, unlock};
//!
//! let (puk, new_pin) = unlock::piv_input(&PinPolicy::PIV, b"12345678", b"840259", b"840259")?;
//! let mut driver = Driver::new(card);
//! embassy_futures::block_on(unlock::piv_unblock(&mut driver, &puk, &new_pin))?;
//! # assert_eq!(&driver.into_inner().pin, b"840259\xFF\xFF");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A firmware sizes the driver for short APDUs (`Driver<T, SHORT_SEND_LEN, SHORT_RECV_LEN>`,
//! [`driver`]) and, when its cards use 3DES keys only, builds without the default feature `aes`.
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
#[deprecated(since = "0.1.0", note = "renamed `cardunlock_core::sw` (status words)")]
pub mod status {
    pub use crate::sw::*;
}
