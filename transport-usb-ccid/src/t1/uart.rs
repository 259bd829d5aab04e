//! T=1 over a firmware's own ISO 7816-3 UART: a [`BlockIo`] on any `embedded_io_async` port.
//!
//! A T=1 block is self-delimiting (`NAD PCB LEN`, `LEN` information bytes, then one LRC or two
//! CRC bytes), so the carrier writes the block and reads the card's block back by its own length.

use core::fmt;

use cardunlock_core::transport::{ErrorKind, Transport, TransportError};
use embedded_io_async::{ErrorKind as IoKind, Read, ReadExactError, Write};

use super::{BlockIo, ExchangeError, T1Error, T1};
use crate::atr::Edc;

/// The port failed for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UartError<E> {
    /// The port's error.
    Io(E),
    /// The port reported the end of its stream (it was closed).
    Eof,
}

impl<E: fmt::Display> fmt::Display for UartError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "UART: {e}"),
            Self::Eof => f.write_str("UART: end of stream"),
        }
    }
}

/// The port's error is the source (no `std` needed: `core::error::Error`).
impl<E: embedded_io_async::Error + 'static> core::error::Error for UartError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Eof => None,
        }
    }
}

impl<E: embedded_io_async::Error> TransportError for UartError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Io(e) => match e.kind() {
                IoKind::TimedOut => ErrorKind::Timeout,
                IoKind::NotConnected | IoKind::BrokenPipe => ErrorKind::CardRemoved,
                _ => ErrorKind::Other,
            },
            Self::Eof => ErrorKind::Unavailable,
        }
    }
}

/// A T=1 [`BlockIo`] over a UART `port` that delivers the card's bytes only (no local echo).
///
/// The port must time out its reads (after the block waiting time): a read that times out
/// ([`embedded_io_async::ErrorKind::TimedOut`]) or reports a garbled byte (`InvalidData`: parity,
/// framing, overrun) is a mute or garbled block, which the engine recovers from with R-blocks and
/// RESYNCH; any other port error ends the exchange. The card's WTX multiplier is handed to the
/// optional `on_wait` hook before each block, so the firmware can stretch its read timeout.
pub struct Uart<U> {
    port: U,
    edc: Edc,
    on_wait: Option<fn(&mut U, u8)>,
}

impl<U> fmt::Debug for Uart<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Uart")
            .field("edc", &self.edc)
            .finish_non_exhaustive()
    }
}

impl<U> Uart<U> {
    /// Wraps `port`; `edc` is the card's epilogue (from the ATR: `Atr::t1_edc`).
    pub fn new(port: U, edc: Edc) -> Self {
        Self {
            port,
            edc,
            on_wait: None,
        }
    }

    /// Calls `hook(port, multiplier)` before each block (multiplier 1 but after a WTX request).
    pub fn with_wait_hook(mut self, hook: fn(&mut U, u8)) -> Self {
        self.on_wait = Some(hook);
        self
    }

    /// The port.
    pub fn port(&mut self) -> &mut U {
        &mut self.port
    }

    /// Gives the port back.
    pub fn into_inner(self) -> U {
        self.port
    }
}

/// A read failure as the engine sees it: a timeout or a garbled byte is a mute block.
fn read_failure<E: embedded_io_async::Error>(e: ReadExactError<E>) -> ExchangeError<UartError<E>> {
    match e {
        ReadExactError::UnexpectedEof => ExchangeError::Io(UartError::Eof),
        ReadExactError::Other(e) if matches!(e.kind(), IoKind::TimedOut | IoKind::InvalidData) => {
            ExchangeError::Mute
        }
        ReadExactError::Other(e) => ExchangeError::Io(UartError::Io(e)),
    }
}

impl<U: Read + Write> BlockIo for Uart<U> {
    type Error = UartError<U::Error>;

    async fn exchange(
        &mut self,
        block: &[u8],
        reply: &mut [u8],
        bwt_multiplier: u8,
    ) -> Result<usize, ExchangeError<Self::Error>> {
        if let Some(hook) = self.on_wait {
            hook(&mut self.port, bwt_multiplier.max(1));
        }
        let io = |e| ExchangeError::Io(UartError::Io(e));
        if !crate::io::write_all(&mut self.port, block)
            .await
            .map_err(io)?
        {
            return Err(ExchangeError::Io(UartError::Eof));
        }
        self.port.flush().await.map_err(io)?;
        let mut prologue = [0u8; 3];
        crate::io::read_exact(&mut self.port, &mut prologue)
            .await
            .map_err(read_failure)?;
        let len = 3 + usize::from(prologue[2]) + self.edc.epilogue_len();
        match reply.get_mut(..len) {
            Some(dst) => {
                dst[..3].copy_from_slice(&prologue);
                crate::io::read_exact(&mut self.port, &mut dst[3..])
                    .await
                    .map_err(read_failure)?;
                Ok(len)
            }
            None => {
                // Longer than any block the engine accepts: read it off the line, report garbled.
                let mut rest = len - 3;
                let mut sink = [0u8; 16];
                while rest > 0 {
                    let n = rest.min(sink.len());
                    crate::io::read_exact(&mut self.port, &mut sink[..n])
                        .await
                        .map_err(read_failure)?;
                    rest -= n;
                }
                Err(ExchangeError::Mute)
            }
        }
    }
}

/// The core's [`Transport`] for a card on a UART: APDUs through a [`T1`] engine over a [`Uart`].
///
/// The card's reset, its ATR (which gives the [`T1Params`](super::T1Params)) and the IFSD
/// negotiation come first, on the engine and the port ([`Self::parts`]); then the core's
/// [`Driver`](cardunlock_core::driver::Driver) runs flows over this.
#[derive(Debug)]
pub struct UartT1<U> {
    t1: T1,
    io: Uart<U>,
}

impl<U> UartT1<U> {
    /// APDUs through `t1` over `io`.
    pub fn new(t1: T1, io: Uart<U>) -> Self {
        Self { t1, io }
    }

    /// The engine and the carrier, e.g. for [`T1::negotiate_ifsd`].
    pub fn parts(&mut self) -> (&mut T1, &mut Uart<U>) {
        (&mut self.t1, &mut self.io)
    }

    /// The carrier, e.g. to read its port's counters.
    pub fn uart(&mut self) -> &mut Uart<U> {
        &mut self.io
    }

    /// Gives the carrier back (and with it the port: [`Uart::into_inner`]).
    pub fn into_inner(self) -> Uart<U> {
        self.io
    }
}

impl<U: Read + Write> Transport for UartT1<U> {
    type Error = T1Error<UartError<U::Error>>;

    async fn transmit(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, Self::Error> {
        self.t1.transceive(&mut self.io, command, response).await
    }
}
