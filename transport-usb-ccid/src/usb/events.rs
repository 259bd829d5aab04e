//! The reader's interrupt endpoint: card insertion and removal (NotifySlotChange), hardware
//! errors.

use std::vec::Vec;

use futures_lite::future;
use nusb::transfer::{Buffer, In, Interrupt, TransferError};
use nusb::Endpoint;

use super::UsbError;

/// What the reader reported on its interrupt endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReaderEvent {
    /// RDR_to_PC_NotifySlotChange (0x50): a card was inserted or removed.
    SlotChange(SlotStates),
    /// RDR_to_PC_HardwareError (0x51).
    HardwareError {
        /// The slot.
        slot: u8,
        /// bSeq of the message the error concerns.
        seq: u8,
        /// bHardwareErrorCode (0x01: overcurrent).
        code: u8,
    },
    /// Another message (vendor specific, or too short to parse): its bytes.
    Other(Vec<u8>),
}

/// The slot bits of a NotifySlotChange message: two bits per slot, slot 0 in the low bits of
/// the first byte (bit 0: card present, bit 1: changed since the last report).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotStates {
    bits: Vec<u8>,
}

impl SlotStates {
    /// Whether a card is present in `slot` now.
    pub fn present(&self, slot: u8) -> bool {
        self.bit(slot, 0)
    }

    /// Whether `slot` changed (a card was inserted or removed) since the last report.
    pub fn changed(&self, slot: u8) -> bool {
        self.bit(slot, 1)
    }

    fn bit(&self, slot: u8, which: u8) -> bool {
        let byte = usize::from(slot / 4);
        let shift = (slot % 4) * 2 + which;
        self.bits.get(byte).is_some_and(|b| (b >> shift) & 1 == 1)
    }
}

/// Parses one interrupt IN message. Never panics.
pub fn parse_event(message: &[u8]) -> ReaderEvent {
    match message {
        [0x50, bits @ ..] if !bits.is_empty() => ReaderEvent::SlotChange(SlotStates {
            bits: bits.to_vec(),
        }),
        [0x51, slot, seq, code, ..] => ReaderEvent::HardwareError {
            slot: *slot,
            seq: *seq,
            code: *code,
        },
        other => ReaderEvent::Other(other.to_vec()),
    }
}

/// A reader's interrupt endpoint, taken from its pipe with
/// [`UsbPipe::take_events`](super::UsbPipe::take_events), so it can be watched while the
/// session owns the pipe.
pub struct UsbEvents {
    ep: Endpoint<Interrupt, In>,
}

impl core::fmt::Debug for UsbEvents {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UsbEvents")
            .field("endpoint", &self.ep.endpoint_address())
            .finish()
    }
}

impl UsbEvents {
    pub(super) fn new(ep: Endpoint<Interrupt, In>) -> Self {
        Self { ep }
    }

    /// Waits for the reader's next interrupt message: a card inserted or removed
    /// ([`ReaderEvent::SlotChange`]), a hardware error. Cancel safe: the transfer stays queued
    /// and a message that arrives meanwhile is returned by the next call.
    pub async fn next_event(&mut self) -> Result<ReaderEvent, UsbError> {
        loop {
            if self.ep.pending() == 0 {
                let len = self.ep.max_packet_size().max(1);
                self.ep.submit(Buffer::new(len));
            }
            let done = self.ep.next_complete().await;
            match done.status {
                Ok(()) if done.buffer.is_empty() => continue,
                Ok(()) => return Ok(parse_event(&done.buffer)),
                Err(TransferError::Stall) => {
                    self.ep.clear_halt().await.map_err(|_| UsbError::Stall)?;
                }
                Err(e) => return Err(UsbError::from_transfer(e)),
            }
        }
    }

    /// The next event if one has arrived, without waiting (a transfer stays queued for the
    /// next call).
    pub fn poll_event(&mut self) -> Result<Option<ReaderEvent>, UsbError> {
        future::block_on(future::poll_once(self.next_event())).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_change_bits() {
        // Slot 0 present and changed, slot 1 absent, slot 2 present unchanged, slot 5 changed.
        let ReaderEvent::SlotChange(s) = parse_event(&[0x50, 0b0001_0011, 0b0000_1000]) else {
            panic!("not a slot change");
        };
        assert!(s.present(0) && s.changed(0));
        assert!(!s.present(1) && !s.changed(1));
        assert!(s.present(2) && !s.changed(2));
        assert!(!s.present(5) && s.changed(5));
        assert!(!s.present(200) && !s.changed(200));
    }

    #[test]
    fn removal_is_absent_and_changed() {
        let ReaderEvent::SlotChange(s) = parse_event(&[0x50, 0b10]) else {
            panic!("not a slot change");
        };
        assert!(!s.present(0) && s.changed(0));
    }

    #[test]
    fn hardware_error_and_other_messages() {
        assert_eq!(
            parse_event(&[0x51, 0, 7, 1]),
            ReaderEvent::HardwareError {
                slot: 0,
                seq: 7,
                code: 1
            }
        );
        assert_eq!(parse_event(&[0x50]), ReaderEvent::Other(std::vec![0x50]));
        assert_eq!(
            parse_event(&[0x51, 0]),
            ReaderEvent::Other(std::vec![0x51, 0])
        );
        assert_eq!(parse_event(&[]), ReaderEvent::Other(std::vec![]));
    }

    proptest::proptest! {
        #[test]
        fn parse_event_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            slot in proptest::prelude::any::<u8>(),
        ) {
            if let ReaderEvent::SlotChange(s) = parse_event(&bytes) {
                let _ = (s.present(slot), s.changed(slot));
            }
        }
    }
}
