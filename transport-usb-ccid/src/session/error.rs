//! The session's error type and its mapping onto the core's [`ErrorKind`].

use core::fmt;

use cardunlock_core::transport::{ErrorKind, TransportError};

use crate::codec::{CodecError, SlotError};
use crate::descriptor::ExchangeLevel;

/// What the session does not support.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Unsupported {
    /// The reader's exchange level (character level).
    Level(ExchangeLevel),
    /// An ICCD device (interface protocol 1 or 2: control-pipe transfers).
    Iccd,
    /// `slot` is above the descriptor's `bMaxSlotIndex`.
    Slot(u8),
    /// `dwMaxCCIDMessageLength` leaves no room for data (below 11 bytes).
    MessageLength(u32),
    /// The card offers no protocol the reader supports (TPDU level). Each field is a set of
    /// protocols, bit 0 T=0 and bit 1 T=1: what the card's ATR offers (in specific mode the
    /// one it runs) and what the reader's `dwProtocols` names.
    Protocol {
        /// The card's protocols.
        card: u8,
        /// The reader's protocols.
        reader: u8,
    },
    /// The TPDU path of this exchange is not available.
    Tpdu,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Level(l) => write!(f, "readers at {l} are not supported"),
            Self::Iccd => f.write_str("ICCD devices (control-pipe CCID) are not supported"),
            Self::Slot(s) => write!(f, "the reader has no slot {s}"),
            Self::MessageLength(l) => write!(f, "dwMaxCCIDMessageLength {l} is too small"),
            Self::Protocol { card: 0b10, reader } if reader & 0b11 == 0b01 => f.write_str(
                "the card speaks only T=1 and the reader only T=0 (as QEMU's usb-ccid): \
                 they have no protocol in common; use a reader that supports T=1",
            ),
            Self::Protocol { card, reader } => write!(
                f,
                "the card offers {} and the reader supports {}: no protocol in common",
                Protocols(*card),
                Protocols(*reader)
            ),
            Self::Tpdu => f.write_str("this TPDU exchange is not supported"),
        }
    }
}

/// A set of protocols (bit 0 T=0, bit 1 T=1) as words.
struct Protocols(u8);

impl fmt::Display for Protocols {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 & 0b11 {
            0b01 => "only T=0",
            0b10 => "only T=1",
            0b11 => "T=0 and T=1",
            _ => "neither T=0 nor T=1",
        })
    }
}

/// The reader broke the CCID rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Violation {
    /// More replies with a wrong `bSeq` or slot than the session drops.
    TooManyStale,
    /// A reply of the wrong type for the command (the type is given).
    UnexpectedReply(u8),
    /// A chained exchange went wrong (bad `bChainParameter`, data where none belongs).
    Chain,
    /// The ATR is empty, longer than 33 bytes, or does not parse.
    BadAtr,
    /// The reader answered GetParameters or SetParameters without the parameters
    /// (`dwLength` 0; QEMU's reader does, and sends them after the message).
    EmptyParameters,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyStale => f.write_str("too many stale replies from the reader"),
            Self::EmptyParameters => {
                f.write_str("the reader answered with empty protocol parameters")
            }
            Self::UnexpectedReply(t) => write!(f, "unexpected reply type {t:#04x}"),
            Self::Chain => f.write_str("broken chaining in the reader's reply"),
            Self::BadAtr => f.write_str("invalid ATR"),
        }
    }
}

/// An error of a [`super::Session`]: `I` is the byte pipe's error, `C` the control channel's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error<I, C> {
    /// The byte pipe failed.
    Io(I),
    /// The pipe was closed (a read returned 0 bytes, or a write took none or claimed more than
    /// it was given).
    Closed,
    /// The control channel (ABORT request) failed.
    Control(C),
    /// The reader, the card or the exchange is not supported.
    Unsupported(Unsupported),
    /// A reply could not be parsed.
    Codec(CodecError),
    /// The reader broke the protocol.
    Protocol(Violation),
    /// The reader reported this error for the command.
    Slot(SlotError),
    /// No card in the slot.
    NoCard,
    /// The card was removed while a command ran (or since the last one).
    CardRemoved,
    /// The card is present but no longer powered (reset or powered off by someone else).
    CardReset,
    /// No reply in time (after the ABORT sequence).
    Timeout,
    /// A message of `len` bytes exceeds the `max` the session or the reader takes.
    MessageTooLong {
        /// The message's length (header included).
        len: usize,
        /// The limit (`dwMaxCCIDMessageLength` or the session's buffer).
        max: usize,
    },
    /// The response did not fit the caller's buffer.
    ResponseTooLong,
    /// The T=0 / T=1 layer failed (TPDU level).
    #[cfg(feature = "tpdu")]
    Tpdu(super::TpduFailure),
}

impl<I, C> Error<I, C> {
    /// The core's classification.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Io(_) | Self::Closed | Self::Control(_) | Self::Unsupported(_) => {
                ErrorKind::Unavailable
            }
            Self::Slot(SlotError::IccMute) | Self::Timeout => ErrorKind::Timeout,
            Self::Slot(SlotError::CmdSlotBusy) => ErrorKind::Unavailable,
            Self::Slot(_) | Self::Codec(_) | Self::Protocol(_) => ErrorKind::Other,
            Self::NoCard => ErrorKind::NoCard,
            Self::CardRemoved => ErrorKind::CardRemoved,
            Self::CardReset => ErrorKind::CardReset,
            Self::MessageTooLong { .. } => ErrorKind::InvalidCommand,
            Self::ResponseTooLong => ErrorKind::ResponseTooLong,
            #[cfg(feature = "tpdu")]
            Self::Tpdu(super::TpduFailure::T1(e)) => e.kind_with(|()| ErrorKind::Other),
            #[cfg(feature = "tpdu")]
            Self::Tpdu(super::TpduFailure::T0(e)) => e.kind_with(|()| ErrorKind::Other),
            #[cfg(feature = "tpdu")]
            Self::Tpdu(super::TpduFailure::Pps(_)) => ErrorKind::Other,
        }
    }
}

impl<I: fmt::Debug + fmt::Display, C: fmt::Debug + fmt::Display> TransportError for Error<I, C> {
    fn kind(&self) -> ErrorKind {
        Error::kind(self)
    }
}

impl<I, C> From<CodecError> for Error<I, C> {
    fn from(e: CodecError) -> Self {
        Self::Codec(e)
    }
}

impl<I: fmt::Display, C: fmt::Display> fmt::Display for Error<I, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "CCID pipe: {e}"),
            Self::Closed => f.write_str("the CCID pipe was closed"),
            Self::Control(e) => write!(f, "CCID control request: {e}"),
            Self::Unsupported(u) => write!(f, "not supported: {u}"),
            Self::Codec(e) => write!(f, "{e}"),
            Self::Protocol(v) => write!(f, "CCID protocol: {v}"),
            Self::Slot(e) => write!(f, "reader: {e}"),
            Self::NoCard => f.write_str("no card in the reader"),
            Self::CardRemoved => f.write_str("the card was removed"),
            Self::CardReset => f.write_str("the card was reset or powered off"),
            Self::Timeout => f.write_str("the reader did not answer in time"),
            Self::MessageTooLong { len, max } => {
                write!(
                    f,
                    "CCID message of {len} bytes exceeds the maximum of {max}"
                )
            }
            Self::ResponseTooLong => f.write_str("the card's response is too long"),
            #[cfg(feature = "tpdu")]
            Self::Tpdu(e) => write!(f, "{e}"),
        }
    }
}

impl<I: core::error::Error, C: fmt::Debug + fmt::Display> core::error::Error for Error<I, C> {}
