//! Why a T=1 exchange failed: [`T1Error`].

use cardunlock_core::transport::{ErrorKind, TransportError};
use core::fmt;

/// Why a T=1 exchange failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum T1Error<E> {
    /// The carrier failed (reader gone, card removed, I/O error).
    Io(E),
    /// The command is empty.
    InvalidCommand,
    /// The response did not fit the caller's buffer (the card's chain was read to its end and
    /// dropped, so the channel stays in step).
    ResponseTooLong,
    /// The card did not answer usefully through the retries and the RESYNCHs: reset it.
    Unresponsive,
    /// The channel had to be resynchronised after the command may have reached the card: its
    /// outcome is unknown and it was not sent again. Read the card's state before retrying.
    Resynchronized,
    /// The card aborted the chain (S(ABORT) request).
    Aborted,
    /// The card kept sending WTX or IFS requests without ever answering.
    TooManyRequests,
    /// The card did not confirm the IFSD asked for.
    IfsdRefused,
    /// The card's response chain went past the longest legal response ([`MAX_RESPONSE`](super::MAX_RESPONSE)); the
    /// channel was resynchronised (its sequence numbers are back to their start).
    ChainTooLong,
}

impl<E> T1Error<E> {
    /// The same error with the carrier's error converted.
    pub fn map_io<F>(self, f: impl FnOnce(E) -> F) -> T1Error<F> {
        match self {
            Self::Io(e) => T1Error::Io(f(e)),
            Self::InvalidCommand => T1Error::InvalidCommand,
            Self::ResponseTooLong => T1Error::ResponseTooLong,
            Self::Unresponsive => T1Error::Unresponsive,
            Self::Resynchronized => T1Error::Resynchronized,
            Self::Aborted => T1Error::Aborted,
            Self::TooManyRequests => T1Error::TooManyRequests,
            Self::IfsdRefused => T1Error::IfsdRefused,
            Self::ChainTooLong => T1Error::ChainTooLong,
        }
    }

    /// The core's classification of this error, with the carrier's errors classified by
    /// `io_kind`.
    pub fn kind_with(&self, io_kind: impl FnOnce(&E) -> ErrorKind) -> ErrorKind {
        match self {
            Self::Io(e) => io_kind(e),
            Self::InvalidCommand => ErrorKind::InvalidCommand,
            Self::ResponseTooLong | Self::ChainTooLong => ErrorKind::ResponseTooLong,
            Self::Unresponsive | Self::TooManyRequests => ErrorKind::Timeout,
            Self::Resynchronized | Self::Aborted | Self::IfsdRefused => ErrorKind::Other,
        }
    }
}

impl<E: TransportError> TransportError for T1Error<E> {
    fn kind(&self) -> ErrorKind {
        self.kind_with(TransportError::kind)
    }
}

impl<E: fmt::Display> fmt::Display for T1Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "T=1: {e}"),
            Self::InvalidCommand => f.write_str("T=1: empty command"),
            Self::ResponseTooLong => f.write_str("T=1: the card's response is too long"),
            Self::Unresponsive => f.write_str(
                "T=1: the card does not answer (retransmissions and resynchronisation failed)",
            ),
            Self::Resynchronized => f.write_str(
                "T=1: the channel was resynchronised after the command may have reached the \
                 card; its outcome is unknown and it was not repeated",
            ),
            Self::Aborted => f.write_str("T=1: the card aborted the exchange"),
            Self::ChainTooLong => f.write_str(
                "T=1: the card's response chain is longer than any legal response (65,538 \
                 bytes); the channel was resynchronised",
            ),
            Self::TooManyRequests => {
                f.write_str("T=1: the card keeps asking for more time and never answers")
            }
            Self::IfsdRefused => f.write_str("T=1: the card did not accept the IFSD"),
        }
    }
}

/// An error without `std` too (`core::error::Error`).
impl<E: fmt::Display + fmt::Debug> core::error::Error for T1Error<E> {}
