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
//! - [`session`]: an async CCID session over any `embedded_io_async::{Read, Write}` byte pipe
//!   (a USB bulk pair, a firmware's USB host stack, a serial bridge); it implements the core's
//!   [`cardunlock_core::Transport`].
//! - [`clock`]: the time source the caller gives the session (deadlines, time extensions).
//! - [`loopback`]: an in-memory CCID reader in front of any core `Transport`, no heap (firmware
//!   images, benchmarks).
//! - `usb` (feature `nusb`): the host backend over USB.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "tpdu")]
pub mod atr;
pub mod clock;
pub mod codec;
pub mod descriptor;
mod io;
pub mod loopback;
pub mod session;
#[cfg(feature = "tpdu")]
pub mod t0;
#[cfg(feature = "tpdu")]
pub mod t1;

#[cfg(feature = "nusb")]
pub mod usb;
