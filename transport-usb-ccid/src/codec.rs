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

/// A bulk-OUT command (`PC_to_RDR_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Request<'a> {
    /// `bSlot`.
    pub slot: u8,
    /// `bSeq`.
    pub seq: u8,
    /// The command.
    pub kind: RequestKind<'a>,
}

/// The commands of [`Request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RequestKind<'a> {
    /// 0x62: power the card on.
    IccPowerOn(Voltage),
    /// 0x63: power the card off.
    IccPowerOff,
    /// 0x65: the slot's status.
    GetSlotStatus,
    /// 0x6F: a block (APDU, TPDU or part of one) to the card.
    XfrBlock {
        /// `bBWI`: block waiting time multiplier for this block (T=1).
        bwi: u8,
        /// `wLevelParameter` (see [`chain`]), or the expected reply length at character level.
        level: u16,
        /// `abData`.
        data: &'a [u8],
    },
    /// 0x6C: the protocol parameters in force.
    GetParameters,
    /// 0x6D: back to the default parameters.
    ResetParameters,
    /// 0x61: sets the protocol parameters.
    SetParameters {
        /// `bProtocolNum`: 0 (T=0) or 1 (T=1).
        protocol: u8,
        /// The protocol data structure (5 bytes for T=0, 7 for T=1; see [`ProtocolData`]).
        data: &'a [u8],
    },
    /// 0x6B: a vendor command.
    Escape(&'a [u8]),
    /// 0x6E: stops (`true`) or restarts the card's clock.
    IccClock {
        /// Stop the clock.
        stop: bool,
    },
    /// 0x6A: T=0 APDU-level class bytes.
    T0Apdu {
        /// `bmChanges`.
        changes: u8,
        /// `bClassGetResponse`.
        class_get_response: u8,
        /// `bClassEnvelope`.
        class_envelope: u8,
    },
    /// 0x69: PIN verification or modification (the PIN pad's data structure as given).
    Secure {
        /// `bBWI`.
        bwi: u8,
        /// `wLevelParameter`.
        level: u16,
        /// `abData`.
        data: &'a [u8],
    },
    /// 0x71: a mechanical function (accept, eject, capture, lock, unlock).
    Mechanical {
        /// `bFunction`.
        function: u8,
    },
    /// 0x72: the bulk half of the ABORT sequence.
    Abort,
    /// 0x73: sets the clock frequency and data rate.
    SetDataRateAndClockFrequency {
        /// `dwClockFrequency` in kHz.
        clock_khz: u32,
        /// `dwDataRate` in bit/s.
        data_rate: u32,
    },
}

impl<'a> Request<'a> {
    /// A request for `slot` with `seq`.
    pub const fn new(slot: u8, seq: u8, kind: RequestKind<'a>) -> Self {
        Self { slot, seq, kind }
    }

    /// Encodes the request into `buf`; returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, CodecError> {
        use msg_type as t;
        let (s, q) = (self.slot, self.seq);
        match self.kind {
            RequestKind::IccPowerOn(v) => {
                write_message(buf, t::ICC_POWER_ON, s, q, [v.to_byte(), 0, 0], &[])
            }
            RequestKind::IccPowerOff => write_message(buf, t::ICC_POWER_OFF, s, q, [0; 3], &[]),
            RequestKind::GetSlotStatus => write_message(buf, t::GET_SLOT_STATUS, s, q, [0; 3], &[]),
            RequestKind::XfrBlock { bwi, level, data } => {
                let l = level.to_le_bytes();
                write_message(buf, t::XFR_BLOCK, s, q, [bwi, l[0], l[1]], data)
            }
            RequestKind::GetParameters => write_message(buf, t::GET_PARAMETERS, s, q, [0; 3], &[]),
            RequestKind::ResetParameters => {
                write_message(buf, t::RESET_PARAMETERS, s, q, [0; 3], &[])
            }
            RequestKind::SetParameters { protocol, data } => {
                write_message(buf, t::SET_PARAMETERS, s, q, [protocol, 0, 0], data)
            }
            RequestKind::Escape(data) => write_message(buf, t::ESCAPE, s, q, [0; 3], data),
            RequestKind::IccClock { stop } => {
                write_message(buf, t::ICC_CLOCK, s, q, [u8::from(stop), 0, 0], &[])
            }
            RequestKind::T0Apdu {
                changes,
                class_get_response,
                class_envelope,
            } => write_message(
                buf,
                t::T0_APDU,
                s,
                q,
                [changes, class_get_response, class_envelope],
                &[],
            ),
            RequestKind::Secure { bwi, level, data } => {
                let l = level.to_le_bytes();
                write_message(buf, t::SECURE, s, q, [bwi, l[0], l[1]], data)
            }
            RequestKind::Mechanical { function } => {
                write_message(buf, t::MECHANICAL, s, q, [function, 0, 0], &[])
            }
            RequestKind::Abort => write_message(buf, t::ABORT, s, q, [0; 3], &[]),
            RequestKind::SetDataRateAndClockFrequency {
                clock_khz,
                data_rate,
            } => {
                let c = clock_khz.to_le_bytes();
                let r = data_rate.to_le_bytes();
                let data = [c[0], c[1], c[2], c[3], r[0], r[1], r[2], r[3]];
                write_message(buf, t::SET_DATA_RATE_AND_CLOCK, s, q, [0; 3], &data)
            }
        }
    }

    /// Parses one whole request (exactly one message: header plus `dwLength` bytes).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CodecError> {
        use msg_type as t;
        let (h, data) = split_message(bytes)?;
        let [b7, b8, b9] = h.specific;
        let level = u16::from_le_bytes([b8, b9]);
        let kind = match h.msg_type {
            t::ICC_POWER_ON => {
                RequestKind::IccPowerOn(Voltage::from_byte(b7).ok_or(CodecError::BadField)?)
            }
            t::ICC_POWER_OFF => RequestKind::IccPowerOff,
            t::GET_SLOT_STATUS => RequestKind::GetSlotStatus,
            t::XFR_BLOCK => RequestKind::XfrBlock {
                bwi: b7,
                level,
                data,
            },
            t::GET_PARAMETERS => RequestKind::GetParameters,
            t::RESET_PARAMETERS => RequestKind::ResetParameters,
            t::SET_PARAMETERS => RequestKind::SetParameters { protocol: b7, data },
            t::ESCAPE => RequestKind::Escape(data),
            t::ICC_CLOCK => RequestKind::IccClock { stop: b7 != 0 },
            t::T0_APDU => RequestKind::T0Apdu {
                changes: b7,
                class_get_response: b8,
                class_envelope: b9,
            },
            t::SECURE => RequestKind::Secure {
                bwi: b7,
                level,
                data,
            },
            t::MECHANICAL => RequestKind::Mechanical { function: b7 },
            t::ABORT => RequestKind::Abort,
            t::SET_DATA_RATE_AND_CLOCK => {
                let d: &[u8; 8] = data.try_into().map_err(|_| CodecError::BadField)?;
                RequestKind::SetDataRateAndClockFrequency {
                    clock_khz: u32::from_le_bytes([d[0], d[1], d[2], d[3]]),
                    data_rate: u32::from_le_bytes([d[4], d[5], d[6], d[7]]),
                }
            }
            other => return Err(CodecError::UnknownType(other)),
        };
        Ok(Self {
            slot: h.slot,
            seq: h.seq,
            kind,
        })
    }
}

/// `bError` of a failed command: why the reader could not carry it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SlotError {
    /// 0xFF: the host aborted the command.
    CommandAborted,
    /// 0xFE: the card did not answer (no ATR, or no reply within the waiting time).
    IccMute,
    /// 0xFD: parity error on the line.
    XfrParityError,
    /// 0xFC: the card sent more than the reader could take.
    XfrOverrun,
    /// 0xFB: a hardware error of the reader.
    HardwareError,
    /// 0xF8: the ATR's TS byte is invalid.
    BadAtrTs,
    /// 0xF7: the ATR's TCK byte is wrong.
    BadAtrTck,
    /// 0xF6: the card's protocol is not supported.
    IccProtocolNotSupported,
    /// 0xF5: the card's class (voltage) is not supported.
    IccClassNotSupported,
    /// 0xF4: a T=0 procedure byte conflict.
    ProcedureByteConflict,
    /// 0xF3: the protocol was deactivated.
    DeactivatedProtocol,
    /// 0xF2: the reader is busy with an automatic sequence (PPS, IFSD).
    BusyWithAutoSequence,
    /// 0xF0: the user did not enter the PIN in time.
    PinTimeout,
    /// 0xEF: the user cancelled the PIN entry.
    PinCancelled,
    /// 0xE0: the slot is busy with another command (this one did not run).
    CmdSlotBusy,
    /// 0x00: the command is not supported.
    CommandNotSupported,
    /// 0x01..=0x7F: the message field at this offset has a bad value.
    BadParameter(u8),
    /// Any other (reserved or vendor) value.
    Other(u8),
}

impl SlotError {
    /// Parses `bError` (of a failed command).
    pub const fn from_byte(b: u8) -> Self {
        match b {
            0xFF => Self::CommandAborted,
            0xFE => Self::IccMute,
            0xFD => Self::XfrParityError,
            0xFC => Self::XfrOverrun,
            0xFB => Self::HardwareError,
            0xF8 => Self::BadAtrTs,
            0xF7 => Self::BadAtrTck,
            0xF6 => Self::IccProtocolNotSupported,
            0xF5 => Self::IccClassNotSupported,
            0xF4 => Self::ProcedureByteConflict,
            0xF3 => Self::DeactivatedProtocol,
            0xF2 => Self::BusyWithAutoSequence,
            0xF0 => Self::PinTimeout,
            0xEF => Self::PinCancelled,
            0xE0 => Self::CmdSlotBusy,
            0x00 => Self::CommandNotSupported,
            0x01..=0x7F => Self::BadParameter(b),
            _ => Self::Other(b),
        }
    }

    /// The `bError` byte.
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::CommandAborted => 0xFF,
            Self::IccMute => 0xFE,
            Self::XfrParityError => 0xFD,
            Self::XfrOverrun => 0xFC,
            Self::HardwareError => 0xFB,
            Self::BadAtrTs => 0xF8,
            Self::BadAtrTck => 0xF7,
            Self::IccProtocolNotSupported => 0xF6,
            Self::IccClassNotSupported => 0xF5,
            Self::ProcedureByteConflict => 0xF4,
            Self::DeactivatedProtocol => 0xF3,
            Self::BusyWithAutoSequence => 0xF2,
            Self::PinTimeout => 0xF0,
            Self::PinCancelled => 0xEF,
            Self::CmdSlotBusy => 0xE0,
            Self::CommandNotSupported => 0x00,
            Self::BadParameter(b) | Self::Other(b) => b,
        }
    }
}

impl fmt::Display for SlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CommandAborted => f.write_str("command aborted"),
            Self::IccMute => f.write_str("the card did not answer (mute)"),
            Self::XfrParityError => f.write_str("parity error"),
            Self::XfrOverrun => f.write_str("overrun"),
            Self::HardwareError => f.write_str("reader hardware error"),
            Self::BadAtrTs => f.write_str("bad ATR TS byte"),
            Self::BadAtrTck => f.write_str("bad ATR TCK byte"),
            Self::IccProtocolNotSupported => f.write_str("card protocol not supported"),
            Self::IccClassNotSupported => f.write_str("card voltage class not supported"),
            Self::ProcedureByteConflict => f.write_str("T=0 procedure byte conflict"),
            Self::DeactivatedProtocol => f.write_str("protocol deactivated"),
            Self::BusyWithAutoSequence => f.write_str("reader busy with an automatic sequence"),
            Self::PinTimeout => f.write_str("PIN entry timed out"),
            Self::PinCancelled => f.write_str("PIN entry cancelled"),
            Self::CmdSlotBusy => f.write_str("slot busy"),
            Self::CommandNotSupported => f.write_str("command not supported by the reader"),
            Self::BadParameter(o) => write!(f, "bad parameter at offset {o}"),
            Self::Other(b) => write!(f, "reader error {b:#04x}"),
        }
    }
}

impl core::error::Error for SlotError {}

/// The card's state in `bStatus` (bits 0-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IccStatus {
    /// 0: a card is present and active (powered, clock running).
    Active,
    /// 1: a card is present but inactive (not powered).
    Inactive,
    /// 2: no card.
    Absent,
}

/// The command's outcome in `bStatus` (bits 6-7) with `bError`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CommandStatus {
    /// 0: processed without error.
    Ok,
    /// 1: failed, `bError` says why.
    Failed(SlotError),
    /// 2: the reader asks for more time; `bError` multiplies the waiting time.
    TimeExtension(u8),
}

/// `bStatus` and `bError` together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Status {
    /// The card's state.
    pub icc: IccStatus,
    /// The command's outcome.
    pub command: CommandStatus,
}

impl Status {
    /// Card active, command processed.
    pub const OK: Self = Self {
        icc: IccStatus::Active,
        command: CommandStatus::Ok,
    };

    /// A status with `icc` and `command`.
    pub const fn new(icc: IccStatus, command: CommandStatus) -> Self {
        Self { icc, command }
    }

    /// Parses `bStatus` and `bError`. A reserved ICC or command status is an error; the reserved
    /// bits 2-5 are ignored.
    pub const fn from_bytes(status: u8, error: u8) -> Result<Self, CodecError> {
        let icc = match status & 0x03 {
            0 => IccStatus::Active,
            1 => IccStatus::Inactive,
            2 => IccStatus::Absent,
            _ => return Err(CodecError::BadStatus(status)),
        };
        let command = match status >> 6 {
            0 => CommandStatus::Ok,
            1 => CommandStatus::Failed(SlotError::from_byte(error)),
            2 => CommandStatus::TimeExtension(error),
            _ => return Err(CodecError::BadStatus(status)),
        };
        Ok(Self { icc, command })
    }

    /// `bStatus` and `bError`.
    pub const fn to_bytes(self) -> (u8, u8) {
        let icc = match self.icc {
            IccStatus::Active => 0,
            IccStatus::Inactive => 1,
            IccStatus::Absent => 2,
        };
        match self.command {
            CommandStatus::Ok => (icc, 0),
            CommandStatus::Failed(e) => (icc | 0x40, e.to_byte()),
            CommandStatus::TimeExtension(m) => (icc | 0x80, m),
        }
    }
}

/// `bClockStatus` of SlotStatus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ClockStatus {
    /// 0: the clock is running.
    Running,
    /// 1: stopped in state L.
    StoppedLow,
    /// 2: stopped in state H.
    StoppedHigh,
    /// 3: stopped in an unknown state.
    StoppedUnknown,
    /// Any reserved value.
    Other(u8),
}

impl ClockStatus {
    /// Parses `bClockStatus`.
    pub const fn from_byte(b: u8) -> Self {
        match b {
            0 => Self::Running,
            1 => Self::StoppedLow,
            2 => Self::StoppedHigh,
            3 => Self::StoppedUnknown,
            _ => Self::Other(b),
        }
    }

    /// The `bClockStatus` byte.
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::Running => 0,
            Self::StoppedLow => 1,
            Self::StoppedHigh => 2,
            Self::StoppedUnknown => 3,
            Self::Other(b) => b,
        }
    }
}

/// A bulk-IN reply (`RDR_to_PC_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Response<'a> {
    /// `bSlot`.
    pub slot: u8,
    /// `bSeq` (the command's it answers).
    pub seq: u8,
    /// `bStatus` and `bError`.
    pub status: Status,
    /// The reply.
    pub kind: ResponseKind<'a>,
}

/// The replies of [`Response`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ResponseKind<'a> {
    /// 0x80: the card's data (ATR, APDU response, TPDU/block).
    DataBlock {
        /// `bChainParameter` (see [`chain`]).
        chain: u8,
        /// `abData`.
        data: &'a [u8],
    },
    /// 0x81: the slot's status.
    SlotStatus {
        /// `bClockStatus`.
        clock: ClockStatus,
    },
    /// 0x82: the protocol parameters in force.
    Parameters {
        /// `bProtocolNum`.
        protocol: u8,
        /// The protocol data structure.
        data: &'a [u8],
    },
    /// 0x83: a vendor reply.
    Escape(&'a [u8]),
    /// 0x84: the clock frequency and data rate in force.
    DataRateAndClockFrequency {
        /// `dwClockFrequency` in kHz.
        clock_khz: u32,
        /// `dwDataRate` in bit/s.
        data_rate: u32,
    },
    /// A reply of a type this codec does not know (some readers answer an error with the
    /// command's own type); `bStatus` and `bError` are still meaningful.
    Other {
        /// `bMessageType`.
        msg_type: u8,
        /// Byte 9 of the header.
        specific: u8,
        /// The data.
        data: &'a [u8],
    },
}

impl<'a> Response<'a> {
    /// Encodes the reply into `buf`; returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, CodecError> {
        use msg_type as t;
        let (status, error) = self.status.to_bytes();
        let (s, q) = (self.slot, self.seq);
        match self.kind {
            ResponseKind::DataBlock { chain, data } => {
                write_message(buf, t::DATA_BLOCK, s, q, [status, error, chain], data)
            }
            ResponseKind::SlotStatus { clock } => write_message(
                buf,
                t::SLOT_STATUS,
                s,
                q,
                [status, error, clock.to_byte()],
                &[],
            ),
            ResponseKind::Parameters { protocol, data } => {
                write_message(buf, t::PARAMETERS, s, q, [status, error, protocol], data)
            }
            ResponseKind::Escape(data) => {
                write_message(buf, t::ESCAPE_REPLY, s, q, [status, error, 0], data)
            }
            ResponseKind::DataRateAndClockFrequency {
                clock_khz,
                data_rate,
            } => {
                let c = clock_khz.to_le_bytes();
                let r = data_rate.to_le_bytes();
                let data = [c[0], c[1], c[2], c[3], r[0], r[1], r[2], r[3]];
                write_message(buf, t::DATA_RATE_AND_CLOCK, s, q, [status, error, 0], &data)
            }
            ResponseKind::Other {
                msg_type,
                specific,
                data,
            } => write_message(buf, msg_type, s, q, [status, error, specific], data),
        }
    }

    /// Parses one whole reply (header plus exactly `dwLength` bytes).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CodecError> {
        let (h, data) = split_message(bytes)?;
        Self::from_parts(&h, data)
    }

    /// Builds the reply from an already parsed header and its `dwLength` bytes of data (a
    /// reader of a byte stream parses the header first).
    pub fn from_parts(h: &Header, data: &'a [u8]) -> Result<Self, CodecError> {
        use msg_type as t;
        let [b7, b8, b9] = h.specific;
        let status = Status::from_bytes(b7, b8)?;
        let kind = match h.msg_type {
            t::DATA_BLOCK => ResponseKind::DataBlock { chain: b9, data },
            t::SLOT_STATUS => ResponseKind::SlotStatus {
                clock: ClockStatus::from_byte(b9),
            },
            t::PARAMETERS => ResponseKind::Parameters { protocol: b9, data },
            t::ESCAPE_REPLY => ResponseKind::Escape(data),
            t::DATA_RATE_AND_CLOCK => {
                let d: &[u8; 8] = data.try_into().map_err(|_| CodecError::BadField)?;
                ResponseKind::DataRateAndClockFrequency {
                    clock_khz: u32::from_le_bytes([d[0], d[1], d[2], d[3]]),
                    data_rate: u32::from_le_bytes([d[4], d[5], d[6], d[7]]),
                }
            }
            other => ResponseKind::Other {
                msg_type: other,
                specific: b9,
                data,
            },
        };
        Ok(Self {
            slot: h.slot,
            seq: h.seq,
            status,
            kind,
        })
    }
}

/// The protocol data structure of SetParameters / Parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProtocolData {
    /// `bProtocolNum` 0.
    T0(T0Params),
    /// `bProtocolNum` 1.
    T1(T1Params),
}

/// T=0 parameters (5 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct T0Params {
    /// `bmFindexDindex`: Fi index in the high nibble, Di index in the low one (TA1).
    pub fi_di: u8,
    /// `bmTCCKST0`: bit 1 is the convention (0 direct, 1 inverse).
    pub tcck: u8,
    /// `bGuardTimeT0` (TC1).
    pub guard_time: u8,
    /// `bWaitingIntegerT0` (TC2, WI).
    pub waiting_integer: u8,
    /// `bClockStop`.
    pub clock_stop: u8,
}

/// T=1 parameters (7 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct T1Params {
    /// `bmFindexDindex`.
    pub fi_di: u8,
    /// `bmTCCKST1`: bit 0 is the checksum (0 LRC, 1 CRC), bit 1 the convention; 0x10 is set.
    pub tcck: u8,
    /// `bGuardTimeT1` (TC1).
    pub guard_time: u8,
    /// `bmWaitingIntegersT1`: BWI in the high nibble, CWI in the low one.
    pub waiting_integers: u8,
    /// `bClockStop`.
    pub clock_stop: u8,
    /// `bIFSC`.
    pub ifsc: u8,
    /// `bNadValue`.
    pub nad: u8,
}

impl ProtocolData {
    /// `bProtocolNum`.
    pub const fn protocol(&self) -> u8 {
        match self {
            Self::T0(_) => 0,
            Self::T1(_) => 1,
        }
    }

    /// Writes the structure into `buf`; returns its length (5 or 7).
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, CodecError> {
        let (bytes, len): ([u8; 7], usize) = match self {
            Self::T0(p) => (
                [
                    p.fi_di,
                    p.tcck,
                    p.guard_time,
                    p.waiting_integer,
                    p.clock_stop,
                    0,
                    0,
                ],
                5,
            ),
            Self::T1(p) => (
                [
                    p.fi_di,
                    p.tcck,
                    p.guard_time,
                    p.waiting_integers,
                    p.clock_stop,
                    p.ifsc,
                    p.nad,
                ],
                7,
            ),
        };
        let out = buf
            .get_mut(..len)
            .ok_or(CodecError::BufferTooSmall { needed: len })?;
        out.copy_from_slice(bytes.get(..len).unwrap_or(&[]));
        Ok(len)
    }

    /// Parses the structure of `protocol`.
    pub fn parse(protocol: u8, data: &[u8]) -> Result<Self, CodecError> {
        match (protocol, data) {
            (0, &[fi_di, tcck, guard_time, waiting_integer, clock_stop]) => {
                Ok(Self::T0(T0Params {
                    fi_di,
                    tcck,
                    guard_time,
                    waiting_integer,
                    clock_stop,
                }))
            }
            (1, &[fi_di, tcck, guard_time, waiting_integers, clock_stop, ifsc, nad]) => {
                Ok(Self::T1(T1Params {
                    fi_di,
                    tcck,
                    guard_time,
                    waiting_integers,
                    clock_stop,
                    ifsc,
                    nad,
                }))
            }
            _ => Err(CodecError::BadField),
        }
    }
}

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
