//! # cardunlock-testkit
//!
//! The test transports of the cardunlock workspace, written once, without `std` and without a
//! heap, so the same pieces serve host tests, benchmarks, fuzz targets and the firmware-like
//! binary of `firmware-size/`:
//!
//! - [`Replay`]: answers from recorded [`Exchange`]s, checking each command the flow sends
//!   against the recording (an exchange recorded without its command answers any command).
//! - [`Recorder`]: wraps another [`Transport`] and keeps every exchange on a [`Tape`], in
//!   storage the caller provides (an array, a slice, a `Vec`); when the storage is full it stops
//!   forwarding instead of growing.
//! - [`Faulty`]: wraps another [`Transport`] and injects a [`Fault`] at the Nth exchange: fail
//!   it before the card sees it, drop the card's answer, or replace it with garbage.
//!
//! They compose: `Faulty<Recorder<SimCard, _>>` is a card whose every exchange is kept and one
//! of which goes wrong; a [`Tape`] replays what a [`Recorder`] kept.
//!
//! A recording holds the commands as sent, PINs and PUKs included: this is scaffolding for test
//! secrets, never for a real card's.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod fault;
mod replay;
mod tape;

pub use cardunlock_core::{ErrorKind, Transport};
pub use fault::{Fault, Faulty};
pub use replay::Replay;
pub use tape::{Exchanges, Recorder, Tape};

/// One exchange of a recording: the command the flow is expected to send and the card's answer
/// (or the failure of the transport).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exchange<'a> {
    /// The command APDU the flow must send, as encoded; `None`: any command (recordings of
    /// answers alone, fuzz input).
    pub command: Option<&'a [u8]>,
    /// The card's answer (data and status word), or the transport's failure.
    pub answer: Result<&'a [u8], ErrorKind>,
}

impl<'a> Exchange<'a> {
    /// `command` answered with `answer`.
    pub const fn new(command: &'a [u8], answer: &'a [u8]) -> Self {
        Self {
            command: Some(command),
            answer: Ok(answer),
        }
    }

    /// Any command answered with `answer`.
    pub const fn any(answer: &'a [u8]) -> Self {
        Self {
            command: None,
            answer: Ok(answer),
        }
    }

    /// Any command failing with `kind` in the transport.
    pub const fn failure(kind: ErrorKind) -> Self {
        Self {
            command: None,
            answer: Err(kind),
        }
    }
}

/// Copies `answer` to the start of `response`; [`ErrorKind::ResponseTooLong`] when it does not
/// fit. What every transport here does with an answer.
pub fn answer_into(answer: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
    response
        .get_mut(..answer.len())
        .ok_or(ErrorKind::ResponseTooLong)?
        .copy_from_slice(answer);
    Ok(answer.len())
}
