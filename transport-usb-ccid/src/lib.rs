//! `cardunlock-ccid`: reach a smart card through a USB CCID reader without PC/SC.
//!
//! Layers, bottom up (each usable on its own, all `no_std` and heap-free unless a feature says
//! otherwise):
//! - [`codec`]: every CCID 1.1 bulk and interrupt message, encoded into caller buffers and parsed
//!   into borrowed views; `bStatus` / `bError` as typed values. Parsing never panics.
//! - [`descriptor`]: the CCID class descriptor (exchange level, message size, voltages,
//!   protocols, slots, feature bits).
//! - `atr`: the card's Answer To Reset (protocols, Fi/Di, T=1 IFSC / BWI / CWI / EDC).
//! - `t0` and `t1`: the ISO 7816-3 transmission protocols, independent of CCID framing, so a
//!   firmware can run them over its own UART too.
//!
//! `atr`, `t0`, `t1` and the session's TPDU level (PPS, SetParameters, T=0 / T=1 over
//! XfrBlock) are the default feature `tpdu`: a firmware that only meets APDU-level readers
//! builds with `default-features = false` and does not link them (its session then refuses
//! TPDU-level readers with [`session::Unsupported::Level`]).
//! - [`session`]: an async CCID session over any [`pipe::Pipe`]: every
//!   `embedded_io_async::{Read, Write}` byte stream is one (a USB bulk pair, a firmware's USB
//!   host stack, a serial bridge); it implements the core's [`cardunlock_core::Transport`].
//! - [`clock`]: the time source the caller gives the session (deadlines, time extensions).
//! - [`loopback`]: an in-memory CCID reader in front of any core `Transport`, no heap (firmware
//!   images, benchmarks).
//! - `usb` (feature `nusb`): the host backend over USB.
//!
//! # Example
//!
//! A session over an APDU-level reader in memory ([`loopback`]) with a simulated PIV card in
//! its slot: power on, then one APDU through the core's [`Transport`](cardunlock_core::Transport)
//! (any flow of `cardunlock-core` runs over the session the same way, through its `Driver`).
//!
//! ```
//! use cardunlock_ccid::clock::NoTimeout;
//! use cardunlock_ccid::descriptor::{ClassDescriptor, ExchangeLevel};
//! use cardunlock_ccid::loopback::Loopback;
//! use cardunlock_ccid::session::{NoControl, Session};
//! use cardunlock_core::Transport;
//! use cardunlock_sim::{Config, PivConfig, SimCard};
//!
//! const ATR: &[u8] = &[0x3B, 0x80, 0x80, 0x01, 0x01];
//! let reader = Loopback::new(SimCard::new(Config::Piv(PivConfig::factory())), ATR);
//! let descriptor = ClassDescriptor::TYPICAL.with_level(ExchangeLevel::ShortApdu);
//! let mut session: Session<_, _> = Session::new(reader, NoTimeout, NoControl, &descriptor, 0)?;
//! embassy_futures::block_on(async {
//!     assert_eq!(session.power_on().await?, ATR);
//!     // SELECT the PIV application.
//!     let select = [0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00];
//!     let mut response = [0u8; 258];
//!     let len = session.transmit(&select, &mut response).await?;
//!     assert_eq!(response[len - 2..len], [0x90, 0x00]);
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "tpdu")]
pub mod atr;
pub mod clock;
pub mod codec;
pub mod descriptor;
mod io;
pub mod loopback;
pub mod pipe;
pub mod session;
#[cfg(feature = "tpdu")]
pub mod t0;
#[cfg(feature = "tpdu")]
pub mod t1;

#[cfg(feature = "nusb")]
pub mod usb;

// The README's example runs as a doctest too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
