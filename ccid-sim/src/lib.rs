//! `cardunlock-ccid-sim`: an in-memory CCID reader with fault injection, for the tests,
//! benchmarks and demos of `cardunlock-ccid` (kept out of the transport so that crate stays
//! free of test-only code and dependencies).
//!
//! - [`ReaderSim`] is the reader: it takes whole bulk-OUT messages, runs them against the
//!   [`SlotCard`] in its slot and queues its replies, with the faults a test injects.
//! - [`SimPipe`] is the host's end: `embedded_io_async::{Read, Write}`; each `flush` hands the
//!   written message to the reader, and reads take the reader's replies in order (a read never
//!   spans two replies, as a USB bulk transfer would not). [`SimControl`] is the control channel
//!   (the ABORT request).
//! - [`TestClock`] is virtual time: nothing waits for real; a sleep jumps to the next event (a
//!   delayed reply) or to its deadline. Everything is deterministic and single-threaded.
//! - [`ApduCard`] puts a [`SimCard`] in the slot at APDU level; [`tpdu`] has the card side of
//!   the TPDU level (T=1 and T=0).
//! - [`ScriptPipe`] answers every message with the next reply of a script (robustness tests).
//!
//! [`apdu_session`] wires all of it to a [`Session`] in one call.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use cardunlock_ccid::codec::SlotError;
use cardunlock_ccid::session::Session;
use cardunlock_sim::SimCard;

mod clock;
mod config;
mod pipe;
mod reader;
mod script;
pub mod tpdu;

pub use clock::TestClock;
pub use config::{Event, Fault, SimConfig, When};
pub use pipe::{SharedReader, SimControl, SimPipe};
pub use reader::ReaderSim;
pub use script::{ScriptPipe, ScriptReply};

/// What sits in the simulated reader's slot: a card seen at the reader's exchange level.
/// At APDU level the payloads are APDUs; at TPDU level they are T=1 blocks or T=0 TPDUs
/// (see `sim::tpdu`).
pub trait SlotCard {
    /// Powers the card on (cold reset) and returns its ATR.
    fn power_on(&mut self) -> Vec<u8>;
    /// Powers the card off.
    fn power_off(&mut self);
    /// One XfrBlock payload in; the DataBlock payload out, or the slot error (`bError`) the
    /// reader reports, such as [`SlotError::IccMute`] for a lost block.
    fn xfr_block(&mut self, payload: &[u8]) -> Result<Vec<u8>, SlotError>;
    /// SetParameters for `protocol` (0: T=0, 1: T=1) with the CCID protocol data structure;
    /// returns the parameters in force. The default accepts them as given.
    fn set_parameters(&mut self, _protocol: u8, data: &[u8]) -> Result<Vec<u8>, SlotError> {
        Ok(data.to_vec())
    }
}

/// A [`SimCard`] in the slot of an APDU-level reader.
#[derive(Debug)]
pub struct ApduCard {
    /// The card (inspect its counters after a test).
    pub card: SimCard,
}

impl ApduCard {
    /// `card` in a slot.
    pub fn new(card: SimCard) -> Self {
        Self { card }
    }
}

impl SlotCard for ApduCard {
    fn power_on(&mut self) -> Vec<u8> {
        self.card.reset();
        self.card.atr().to_vec()
    }

    fn power_off(&mut self) {
        self.card.reset();
    }

    fn xfr_block(&mut self, payload: &[u8]) -> Result<Vec<u8>, SlotError> {
        Ok(self.card.transmit(payload))
    }
}

/// A session over a simulated reader.
pub type SimSession<S> = Session<SimPipe<S>, TestClock, SimControl<S>>;

/// A simulated reader as `config` describes it with `card` at APDU level, and a session to its
/// slot 0 (not yet powered). Panics if the session refuses the descriptor (tests only).
pub fn apdu_session(
    card: SimCard,
    config: SimConfig,
) -> (SimSession<ApduCard>, SharedReader<ApduCard>) {
    session_with(ApduCard::new(card), config)
}

/// As [`apdu_session`] for any card in the slot.
pub fn session_with<S: SlotCard>(card: S, config: SimConfig) -> (SimSession<S>, SharedReader<S>) {
    let clock = TestClock::new();
    let reader = ReaderSim::new(card, config, &clock).into_shared();
    let session = match Session::new(
        reader.pipe(),
        clock,
        reader.control(),
        &config.descriptor,
        0,
    ) {
        Ok(s) => s,
        Err(e) => panic!("the session refused the simulated reader: {e:?}"),
    };
    (session, reader)
}
