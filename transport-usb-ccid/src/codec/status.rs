//! `bStatus`, `bError` and `bClockStatus`: the card's state and the command's outcome.

use core::fmt;

use super::CodecError;

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
    #[inline]
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
    #[inline]
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
