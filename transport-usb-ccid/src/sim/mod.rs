//! An in-memory CCID reader with fault injection (helper A is writing it). Fixed interface for
//! what sits in its slot:

extern crate alloc;
use alloc::vec::Vec;

pub mod tpdu;

/// What sits in the simulated reader's slot: a card seen at the reader's exchange level.
/// At APDU level the payloads are APDUs; at TPDU level they are T=1 blocks or T=0 TPDUs
/// (see `sim::tpdu`).
pub trait SlotCard {
    /// Powers the card on (cold reset) and returns its ATR.
    fn power_on(&mut self) -> Vec<u8>;
    /// Powers the card off.
    fn power_off(&mut self);
    /// One XfrBlock payload in; the DataBlock payload out, or the slot error (`bError`) the
    /// reader reports, such as [`crate::codec::SlotError::IccMute`] for a lost block.
    fn xfr_block(&mut self, payload: &[u8]) -> Result<Vec<u8>, crate::codec::SlotError>;
    /// SetParameters for `protocol` (0: T=0, 1: T=1) with the CCID protocol data structure;
    /// returns the parameters in force. The default accepts them as given.
    fn set_parameters(
        &mut self,
        _protocol: u8,
        data: &[u8],
    ) -> Result<Vec<u8>, crate::codec::SlotError> {
        Ok(data.to_vec())
    }
}
