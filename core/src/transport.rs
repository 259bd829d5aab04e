//! The one I/O seam of the core: something that carries a command APDU to a card and brings its
//! response back.
//!
//! Implementations: PC/SC (`cardunlock-pcsc`), USB CCID (`cardunlock-ccid`), the simulated card
//! (`cardunlock-sim`), or a firmware's own ISO 7816-3 UART driver.

/// What went wrong below the APDU layer, in a form the flows can act on without knowing the
/// transport (the same split embedded-io-async makes between an error and its kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ErrorKind {
    /// No card is present in the reader.
    NoCard,
    /// The card was removed while a command was in flight or between commands.
    CardRemoved,
    /// The card was reset (by another application or a power glitch): security status is gone.
    CardReset,
    /// The card or the reader did not answer in time.
    Timeout,
    /// The response did not fit the buffer the caller gave.
    ResponseTooLong,
    /// The reader, the service behind it (pcscd) or the bus is not available.
    Unavailable,
    /// The transport refused the command (too long, malformed for the protocol).
    InvalidCommand,
    /// Anything else.
    Other,
}

impl core::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NoCard => "no card in the reader",
            Self::CardRemoved => "the card was removed",
            Self::CardReset => "the card was reset",
            Self::Timeout => "the card or reader did not answer in time",
            Self::ResponseTooLong => "the card's response was too long",
            Self::Unavailable => "the reader is not available",
            Self::InvalidCommand => "the reader refused the command",
            Self::Other => "card communication failed",
        })
    }
}

impl core::error::Error for ErrorKind {}

/// An error of a [`Transport`], classified by [`ErrorKind`]. `Display` says what happened in
/// words (the driver's errors print it); [`TransportError::kind`] says what a flow or a caller
/// can do about it.
pub trait TransportError: core::fmt::Debug + core::fmt::Display {
    /// The kind of failure.
    fn kind(&self) -> ErrorKind;
}

impl TransportError for ErrorKind {
    fn kind(&self) -> ErrorKind {
        *self
    }
}

impl TransportError for core::convert::Infallible {
    fn kind(&self) -> ErrorKind {
        match *self {}
    }
}

/// Carries one command APDU to the card and its response back.
///
/// Contract:
/// - `command` is a complete, encoded command APDU (header, Lc, data, Le), as the core built it.
/// - On success the response (data followed by SW1 SW2) is written to the start of `response`,
///   and its length (at least 2) is returned. A transport never interprets status words: `61 XX`
///   and `6C XX` are handled by the driver above it.
/// - Cancel safety: dropping the future mid-exchange leaves the card in an unknown state; the next
///   call may fail with [`ErrorKind::CardReset`] and the caller must start the flow again.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// The transport's error type.
    type Error: TransportError;

    /// Sends `command`, writes the response into `response`, returns the response length.
    async fn transmit(&mut self, command: &[u8], response: &mut [u8])
        -> Result<usize, Self::Error>;

    /// Whether extended-length APDUs (Lc up to 65535) pass through this transport. When not, the
    /// driver splits long data with command chaining (CLA bit `0x10`).
    fn supports_extended_length(&self) -> bool {
        false
    }
}

impl<T: Transport> Transport for &mut T {
    type Error = T::Error;

    async fn transmit(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, Self::Error> {
        (**self).transmit(command, response).await
    }

    fn supports_extended_length(&self) -> bool {
        (**self).supports_extended_length()
    }
}
