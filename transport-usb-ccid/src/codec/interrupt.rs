//! The interrupt-IN messages: NotifySlotChange and HardwareError.

use super::{msg_type, CodecError};

/// Most slots an interrupt message's bitmap describes here (the CCID maximum is 256; readers
/// have one to a few).
pub const MAX_SLOTS: usize = 64;

/// An interrupt-IN message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Interrupt<'a> {
    /// 0x50: cards inserted or removed.
    SlotChange(SlotChange<'a>),
    /// 0x51: a hardware error in a slot.
    HardwareError {
        /// `bSlot`.
        slot: u8,
        /// `bSeq` of the command running when it happened.
        seq: u8,
        /// `bHardwareErrorCode` (0x01: overcurrent).
        code: u8,
    },
}

/// The slot bitmap of NotifySlotChange: two bits a slot, bit 0 "card present", bit 1 "changed".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SlotChange<'a> {
    bits: &'a [u8],
}

impl<'a> SlotChange<'a> {
    /// A bitmap over `bits` (`bmSlotICCState`).
    pub const fn new(bits: &'a [u8]) -> Self {
        Self { bits }
    }

    /// `bmSlotICCState`.
    pub const fn bits(&self) -> &'a [u8] {
        self.bits
    }

    fn pair(&self, slot: u8) -> u8 {
        let byte = self.bits.get(usize::from(slot / 4)).copied().unwrap_or(0);
        (byte >> ((slot % 4) * 2)) & 0x03
    }

    /// Whether a card is in `slot` (false for slots outside the bitmap).
    pub fn present(&self, slot: u8) -> bool {
        self.pair(slot) & 1 != 0
    }

    /// Whether `slot` changed since the last notification.
    pub fn changed(&self, slot: u8) -> bool {
        self.pair(slot) & 2 != 0
    }

    /// Number of slots the bitmap covers.
    pub fn slots(&self) -> usize {
        self.bits.len() * 4
    }

    /// Writes NotifySlotChange for `(present, changed)` per slot into `buf`; returns its length.
    pub fn encode(slots: &[(bool, bool)], buf: &mut [u8]) -> Result<usize, CodecError> {
        if slots.len() > MAX_SLOTS {
            return Err(CodecError::TooLong);
        }
        let needed = 1 + slots.len().div_ceil(4).max(1);
        let out = buf
            .get_mut(..needed)
            .ok_or(CodecError::BufferTooSmall { needed })?;
        out.fill(0);
        if let Some(t) = out.first_mut() {
            *t = msg_type::NOTIFY_SLOT_CHANGE;
        }
        for (i, (present, changed)) in slots.iter().enumerate() {
            let v = u8::from(*present) | (u8::from(*changed) << 1);
            if let Some(b) = out.get_mut(1 + i / 4) {
                *b |= v << ((i % 4) * 2);
            }
        }
        Ok(needed)
    }
}

impl<'a> Interrupt<'a> {
    /// Parses one interrupt message (one transfer of the interrupt endpoint).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CodecError> {
        match bytes {
            [msg_type::NOTIFY_SLOT_CHANGE, bits @ ..] if !bits.is_empty() => {
                Ok(Self::SlotChange(SlotChange { bits }))
            }
            [msg_type::NOTIFY_SLOT_CHANGE] => Err(CodecError::Truncated { needed: 2 }),
            [msg_type::HARDWARE_ERROR, slot, seq, code] => Ok(Self::HardwareError {
                slot: *slot,
                seq: *seq,
                code: *code,
            }),
            [msg_type::HARDWARE_ERROR, rest @ ..] if rest.len() < 3 => {
                Err(CodecError::Truncated { needed: 4 })
            }
            [msg_type::HARDWARE_ERROR, ..] => Err(CodecError::TrailingBytes),
            [other, ..] => Err(CodecError::UnknownType(*other)),
            [] => Err(CodecError::Truncated { needed: 2 }),
        }
    }

    /// Encodes the message into `buf`; returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, CodecError> {
        match self {
            Self::SlotChange(c) => {
                let needed = 1 + c.bits.len();
                let out = buf
                    .get_mut(..needed)
                    .ok_or(CodecError::BufferTooSmall { needed })?;
                let (t, rest) = out.split_at_mut(1);
                t.copy_from_slice(&[msg_type::NOTIFY_SLOT_CHANGE]);
                rest.copy_from_slice(c.bits);
                Ok(needed)
            }
            Self::HardwareError { slot, seq, code } => {
                let out = buf
                    .get_mut(..4)
                    .ok_or(CodecError::BufferTooSmall { needed: 4 })?;
                out.copy_from_slice(&[msg_type::HARDWARE_ERROR, *slot, *seq, *code]);
                Ok(4)
            }
        }
    }
}
