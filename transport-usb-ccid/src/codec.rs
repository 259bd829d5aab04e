//! The CCID 1.1 message codec: every bulk-OUT command (`PC_to_RDR_*`), every bulk-IN reply
//! (`RDR_to_PC_*`) and the two interrupt-IN messages, encoded into caller buffers and parsed into
//! borrowed views. No I/O, no heap.
//!
//! Every bulk message starts with the same 10-byte header: `bMessageType`, `dwLength` (little
//! endian, the length of what follows the header), `bSlot`, `bSeq` and three message-specific
//! bytes. [`Header::parse`] tells a reader of a byte stream how many more bytes to read.
//!
//! Encoders never truncate: a message that does not fit the buffer is an error. Parsers are total:
//! they never panic, whatever the bytes.

use core::fmt;

mod interrupt;
mod request;
mod response;
mod status;

pub use interrupt::{Interrupt, SlotChange, MAX_SLOTS};
pub use request::{Request, RequestKind};
pub use response::{ProtocolData, Response, ResponseKind, T0Params, T1Params};
pub use status::{ClockStatus, CommandStatus, IccStatus, SlotError, Status};

/// Length of the header of every bulk message.
pub const HEADER_LEN: usize = 10;
/// The usual `dwMaxCCIDMessageLength`: a header plus a short APDU (`5 + 255 + 1`) with room to
/// spare (`10 + 261 = 271`).
pub const SHORT_MESSAGE_LEN: usize = 271;

/// `bMessageType` values.
pub mod msg_type {
    /// PC_to_RDR_IccPowerOn.
    pub const ICC_POWER_ON: u8 = 0x62;
    /// PC_to_RDR_IccPowerOff.
    pub const ICC_POWER_OFF: u8 = 0x63;
    /// PC_to_RDR_GetSlotStatus.
    pub const GET_SLOT_STATUS: u8 = 0x65;
    /// PC_to_RDR_XfrBlock.
    pub const XFR_BLOCK: u8 = 0x6F;
    /// PC_to_RDR_GetParameters.
    pub const GET_PARAMETERS: u8 = 0x6C;
    /// PC_to_RDR_ResetParameters.
    pub const RESET_PARAMETERS: u8 = 0x6D;
    /// PC_to_RDR_SetParameters.
    pub const SET_PARAMETERS: u8 = 0x61;
    /// PC_to_RDR_Escape.
    pub const ESCAPE: u8 = 0x6B;
    /// PC_to_RDR_IccClock.
    pub const ICC_CLOCK: u8 = 0x6E;
    /// PC_to_RDR_T0APDU.
    pub const T0_APDU: u8 = 0x6A;
    /// PC_to_RDR_Secure.
    pub const SECURE: u8 = 0x69;
    /// PC_to_RDR_Mechanical.
    pub const MECHANICAL: u8 = 0x71;
    /// PC_to_RDR_Abort.
    pub const ABORT: u8 = 0x72;
    /// PC_to_RDR_SetDataRateAndClockFrequency.
    pub const SET_DATA_RATE_AND_CLOCK: u8 = 0x73;
    /// RDR_to_PC_DataBlock.
    pub const DATA_BLOCK: u8 = 0x80;
    /// RDR_to_PC_SlotStatus.
    pub const SLOT_STATUS: u8 = 0x81;
    /// RDR_to_PC_Parameters.
    pub const PARAMETERS: u8 = 0x82;
    /// RDR_to_PC_Escape.
    pub const ESCAPE_REPLY: u8 = 0x83;
    /// RDR_to_PC_DataRateAndClockFrequency.
    pub const DATA_RATE_AND_CLOCK: u8 = 0x84;
    /// RDR_to_PC_NotifySlotChange (interrupt IN).
    pub const NOTIFY_SLOT_CHANGE: u8 = 0x50;
    /// RDR_to_PC_HardwareError (interrupt IN).
    pub const HARDWARE_ERROR: u8 = 0x51;
}

/// Why a message could not be encoded or parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CodecError {
    /// The output buffer is too small: the message needs `needed` bytes.
    BufferTooSmall {
        /// Bytes the whole message needs.
        needed: usize,
    },
    /// The input ends before the message does (`needed` bytes in all).
    Truncated {
        /// Bytes the whole message needs.
        needed: usize,
    },
    /// Bytes follow the message (its `dwLength` says less than what was given).
    TrailingBytes,
    /// A payload does not fit `dwLength` (above `u32::MAX`).
    TooLong,
    /// The message type is not one this direction knows.
    UnknownType(u8),
    /// `bStatus` has a reserved value (ICC status 3 or command status 3).
    BadStatus(u8),
    /// A field has a value the message does not allow (voltage, protocol, parameter length).
    BadField,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed } => {
                write!(
                    f,
                    "CCID message needs {needed} bytes, the buffer is smaller"
                )
            }
            Self::Truncated { needed } => {
                write!(f, "CCID message truncated ({needed} bytes needed)")
            }
            Self::TrailingBytes => f.write_str("bytes follow the CCID message"),
            Self::TooLong => f.write_str("CCID payload too long"),
            Self::UnknownType(t) => write!(f, "unknown CCID message type {t:#04x}"),
            Self::BadStatus(s) => write!(f, "reserved CCID bStatus {s:#04x}"),
            Self::BadField => f.write_str("invalid field in CCID message"),
        }
    }
}

impl core::error::Error for CodecError {}

/// The 10-byte header of every bulk message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header {
    /// `bMessageType`.
    pub msg_type: u8,
    /// `dwLength`: bytes after the header.
    pub length: u32,
    /// `bSlot`.
    pub slot: u8,
    /// `bSeq`.
    pub seq: u8,
    /// The three message-specific bytes (7, 8, 9).
    pub specific: [u8; 3],
}

impl Header {
    /// Parses the first 10 bytes of `bytes` (more may follow).
    #[inline]
    pub fn parse(bytes: &[u8]) -> Result<Self, CodecError> {
        let h: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(CodecError::Truncated { needed: HEADER_LEN })?;
        Ok(Self {
            msg_type: h[0],
            length: u32::from_le_bytes([h[1], h[2], h[3], h[4]]),
            slot: h[5],
            seq: h[6],
            specific: [h[7], h[8], h[9]],
        })
    }

    /// The header's bytes.
    #[inline]
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let l = self.length.to_le_bytes();
        let s = self.specific;
        [
            self.msg_type,
            l[0],
            l[1],
            l[2],
            l[3],
            self.slot,
            self.seq,
            s[0],
            s[1],
            s[2],
        ]
    }

    /// Length of the whole message (header included); saturates on 16-bit targets.
    #[inline]
    pub fn message_len(&self) -> usize {
        HEADER_LEN.saturating_add(usize::try_from(self.length).unwrap_or(usize::MAX))
    }
}

/// Writes a header and `data` into `buf`; returns the message length.
fn write_message(
    buf: &mut [u8],
    msg_type: u8,
    slot: u8,
    seq: u8,
    specific: [u8; 3],
    data: &[u8],
) -> Result<usize, CodecError> {
    let length = u32::try_from(data.len()).map_err(|_| CodecError::TooLong)?;
    let needed = HEADER_LEN + data.len();
    let out = buf
        .get_mut(..needed)
        .ok_or(CodecError::BufferTooSmall { needed })?;
    let header = Header {
        msg_type,
        length,
        slot,
        seq,
        specific,
    };
    let (h, d) = out.split_at_mut(HEADER_LEN);
    h.copy_from_slice(&header.to_bytes());
    d.copy_from_slice(data);
    Ok(needed)
}

/// Splits a whole message into its header and exactly `dwLength` bytes of data.
fn split_message(bytes: &[u8]) -> Result<(Header, &[u8]), CodecError> {
    let header = Header::parse(bytes)?;
    let needed = header.message_len();
    let body = bytes.get(HEADER_LEN..).unwrap_or(&[]);
    match body.len().cmp(&(needed - HEADER_LEN)) {
        core::cmp::Ordering::Less => Err(CodecError::Truncated { needed }),
        core::cmp::Ordering::Greater => Err(CodecError::TrailingBytes),
        core::cmp::Ordering::Equal => Ok((header, body)),
    }
}

/// `bPowerSelect` of IccPowerOn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Voltage {
    /// 0: the reader chooses (automatic voltage selection).
    Auto,
    /// 1: class A, 5.0 V.
    V5,
    /// 2: class B, 3.0 V.
    V3,
    /// 3: class C, 1.8 V.
    V1_8,
}

impl Voltage {
    /// The `bPowerSelect` byte.
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::Auto => 0,
            Self::V5 => 1,
            Self::V3 => 2,
            Self::V1_8 => 3,
        }
    }

    /// Parses `bPowerSelect`.
    pub const fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::Auto),
            1 => Some(Self::V5),
            2 => Some(Self::V3),
            3 => Some(Self::V1_8),
            _ => None,
        }
    }

    /// The `bVoltageSupport` bit of this class (0 for `Auto`).
    pub const fn support_bit(self) -> u8 {
        match self {
            Self::Auto => 0,
            Self::V5 => 0x01,
            Self::V3 => 0x02,
            Self::V1_8 => 0x04,
        }
    }
}

/// `wLevelParameter` of XfrBlock and `bChainParameter` of DataBlock at extended APDU level.
pub mod chain {
    /// The APDU begins and ends in this message.
    pub const WHOLE: u16 = 0x0000;
    /// The APDU begins in this message and continues in the next.
    pub const BEGIN: u16 = 0x0001;
    /// This message continues the APDU and ends it.
    pub const END: u16 = 0x0002;
    /// This message continues the APDU and another follows.
    pub const CONTINUE: u16 = 0x0003;
    /// Empty data: the sender expects the next part from the other side.
    pub const MORE: u16 = 0x0010;
}
