//! ISO/IEC 7816-3 T=0: [`transmit`] maps a short command APDU to TPDUs (§12.2, with the
//! `61 XX` / `6C XX` procedures), [`TpduIo`] carries one TPDU, and [`Uart`] runs the
//! procedure-byte state machine (§10.3) over a firmware's ISO 7816-3 UART.
//!
//! Extended-length APDUs do not exist at T=0 without ENVELOPE; [`transmit`] refuses them with
//! [`T0Error::ExtendedLength`] (a `Transport` over T=0 reports no extended-length support, so
//! the core's driver chains long data instead).

use cardunlock_core::transport::{ErrorKind, TransportError};
use core::fmt;
use embedded_io_async::{Read, ReadExactError, Write};

/// Carries one T=0 command TPDU (5-byte header `CLA INS P1 P2 P3`, then `P3` data bytes for an
/// outgoing transfer) and brings back the card's answer: the data bytes it sent, if any, followed by
/// `SW1 SW2`. A CCID reader at TPDU level does this with one XfrBlock (the reader handles the
/// procedure bytes); a firmware's UART does it with the procedure-byte state machine of this module.
#[allow(async_fn_in_trait)]
pub trait TpduIo {
    /// The carrier's error.
    type Error;
    /// Sends `tpdu`, writes the data and status word into `reply`, returns their length.
    async fn exchange(&mut self, tpdu: &[u8], reply: &mut [u8]) -> Result<usize, Self::Error>;
}

/// GET RESPONSE / `6C` re-sends accepted for one command (each brings at least one byte, so a
/// 64 KiB response needs at most 256 of them).
pub const MAX_GET_RESPONSE: u16 = 300;

/// Why a T=0 exchange failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum T0Error<E> {
    /// The carrier failed.
    Io(E),
    /// Not a well-formed command APDU (shorter than 4 bytes, or Lc not matching the data).
    InvalidCommand,
    /// An extended-length APDU: T=0 carries short APDUs only.
    ExtendedLength,
    /// The response did not fit the caller's buffer.
    ResponseTooLong,
    /// The card's answer is shorter than a status word, or longer than the TPDU allows.
    InvalidResponse,
    /// The card kept answering `61 XX` or `6C XX` past [`MAX_GET_RESPONSE`].
    TooManyGetResponse,
}

impl<E> T0Error<E> {
    /// The same error with the carrier's error converted.
    pub fn map_io<F>(self, f: impl FnOnce(E) -> F) -> T0Error<F> {
        match self {
            Self::Io(e) => T0Error::Io(f(e)),
            Self::InvalidCommand => T0Error::InvalidCommand,
            Self::ExtendedLength => T0Error::ExtendedLength,
            Self::ResponseTooLong => T0Error::ResponseTooLong,
            Self::InvalidResponse => T0Error::InvalidResponse,
            Self::TooManyGetResponse => T0Error::TooManyGetResponse,
        }
    }

    /// The core's classification, with the carrier's errors classified by `io_kind`.
    pub fn kind_with(&self, io_kind: impl FnOnce(&E) -> ErrorKind) -> ErrorKind {
        match self {
            Self::Io(e) => io_kind(e),
            Self::InvalidCommand | Self::ExtendedLength => ErrorKind::InvalidCommand,
            Self::ResponseTooLong => ErrorKind::ResponseTooLong,
            Self::InvalidResponse | Self::TooManyGetResponse => ErrorKind::Other,
        }
    }
}

impl<E: TransportError> TransportError for T0Error<E> {
    fn kind(&self) -> ErrorKind {
        self.kind_with(TransportError::kind)
    }
}

impl<E: fmt::Display> fmt::Display for T0Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "T=0: {e}"),
            Self::InvalidCommand => f.write_str("T=0: malformed command APDU"),
            Self::ExtendedLength => {
                f.write_str("T=0: extended-length APDUs are not supported (use command chaining)")
            }
            Self::ResponseTooLong => f.write_str("T=0: the card's response is too long"),
            Self::InvalidResponse => f.write_str("T=0: the card's answer is malformed"),
            Self::TooManyGetResponse => {
                f.write_str("T=0: the card never finished sending its response")
            }
        }
    }
}

/// An error without `std` too (`core::error::Error`).
impl<E: fmt::Display + fmt::Debug> core::error::Error for T0Error<E> {}

/// The class byte of a GET RESPONSE following a command of class `cla`: the logical channel
/// kept, chaining and secure messaging bits cleared; `00` after a proprietary class.
fn get_response_cla(cla: u8) -> u8 {
    match cla {
        0x00..=0x1F => cla & 0x03,
        0x40..=0x7F => 0x40 | (cla & 0x0F),
        _ => 0x00,
    }
}

/// Sends the short command APDU `apdu` as T=0 TPDUs and writes the response (data, then
/// SW1 SW2) into `response`, returning its length.
///
/// - Case 1: `CLA INS P1 P2 00`.
/// - Case 2: P3 = Le; on `6C XX` the TPDU is sent again with P3 = XX.
/// - Case 3: P3 = Lc and the data.
/// - Case 4: the case-3 TPDU; on `61 XX` GET RESPONSE with P3 = min(XX, Ne).
///
/// In cases 2 and 4, `61 XX` is followed with GET RESPONSE (the pieces concatenated) until Ne
/// bytes are there; a `61 XX` past that, or after a case 1 or 3 command, is returned to the
/// caller as the status word (the core's driver fetches the rest). A `6C XX` to a GET RESPONSE
/// repeats it with P3 = XX. At most [`MAX_GET_RESPONSE`] extra TPDUs in all.
///
/// Strict ([`Replies::Tpdu`]): data in the answer to a TPDU that carried data is
/// [`T0Error::InvalidResponse`], as a T=0 card cannot send any there. [`transmit_with`] takes
/// the answers of a card behind a reader that passes whole APDUs.
pub async fn transmit<I: TpduIo>(
    io: &mut I,
    apdu: &[u8],
    response: &mut [u8],
) -> Result<usize, T0Error<I::Error>> {
    transmit_with(io, apdu, response, Replies::Tpdu).await
}

/// What answers [`transmit_with`] takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Replies {
    /// Only what a T=0 card can answer: no data after a TPDU that sent data (the procedure
    /// bytes of a firmware's UART, [`Uart`]).
    Tpdu,
    /// Also whole APDU answers: a reply longer than a status word to a TPDU that sent data
    /// is the response data (at most 256 bytes) and its status word. A TPDU-level CCID reader
    /// that passes the TPDU to a card answering at APDU level delivers these: QEMU's
    /// `usb-ccid` with `ccid-card-passthru` (SPICE smart-card passthrough of virtual
    /// desktops) answers a case 4 command with data and `90 00`, not `61 XX`.
    ApduLevel,
}

/// [`transmit`], taking the answers `replies` allows.
pub async fn transmit_with<I: TpduIo>(
    io: &mut I,
    apdu: &[u8],
    response: &mut [u8],
    replies: Replies,
) -> Result<usize, T0Error<I::Error>> {
    let mut tpdu = [0u8; 5 + 255];
    let result = transmit_in(io, apdu, response, &mut tpdu, replies).await;
    // The TPDU may carry a PIN or PUK.
    tpdu.fill(0);
    core::hint::black_box(&tpdu);
    result
}

async fn transmit_in<I: TpduIo>(
    io: &mut I,
    apdu: &[u8],
    response: &mut [u8],
    tpdu: &mut [u8; 5 + 255],
    replies: Replies,
) -> Result<usize, T0Error<I::Error>> {
    let [cla, ins, p1, p2, body @ ..] = apdu else {
        return Err(T0Error::InvalidCommand);
    };
    // (data, Le) of the APDU; Le 0 means 256.
    let (data, le): (&[u8], Option<u8>) = match body {
        [] => (&[], None),
        [le] => (&[], Some(*le)),
        [0, _, ..] => return Err(T0Error::ExtendedLength),
        [lc, rest @ ..] => {
            let lc = usize::from(*lc);
            match rest.len().checked_sub(lc) {
                Some(0) => (rest, None),
                Some(1) => (rest.get(..lc).unwrap_or(&[]), rest.last().copied()),
                _ => return Err(T0Error::InvalidCommand),
            }
        }
    };
    tpdu[..4].copy_from_slice(&[*cla, *ins, *p1, *p2]);
    let mut reply = [0u8; 256 + 2];
    let mut filled = 0usize;
    let mut budget = MAX_GET_RESPONSE;
    // Case 2 sends P3 = Le, cases 1 and 3/4 P3 = Lc (0 for case 1).
    let mut len = if data.is_empty() {
        tpdu[4] = le.unwrap_or(0);
        5
    } else {
        tpdu[4] = data.len() as u8;
        tpdu.get_mut(5..5 + data.len())
            .ok_or(T0Error::InvalidCommand)?
            .copy_from_slice(data);
        5 + data.len()
    };
    // Ne: the most response data the command asks for (Le 00: 256).
    let ne = le.map(|le| if le == 0 { 256 } else { usize::from(le) });
    // Whether `6C XX` may be answered by resending the TPDU (an outgoing TPDU never is).
    let mut incoming = data.is_empty() && le.is_some();
    loop {
        let n = io
            .exchange(tpdu.get(..len).unwrap_or(&[]), &mut reply)
            .await
            .map_err(T0Error::Io)?;
        let answer = reply.get(..n).ok_or(T0Error::InvalidResponse)?;
        let [part @ .., sw1, sw2] = answer else {
            return Err(T0Error::InvalidResponse);
        };
        let expect = match tpdu[4] {
            0 => 256,
            p3 => usize::from(p3),
        };
        // After a TPDU that sent data (len > 5) a T=0 card has no data to send; a card at APDU
        // level behind the reader sends its whole response (a short one: 256 bytes at most).
        let outgoing = len > 5;
        let fits = match (outgoing, replies) {
            (false, _) => part.len() <= expect,
            (true, Replies::Tpdu) => false,
            (true, Replies::ApduLevel) => part.len() <= 256,
        };
        if !part.is_empty() && !fits {
            return Err(T0Error::InvalidResponse);
        }
        let end = filled + part.len();
        response
            .get_mut(filled..end)
            .ok_or(T0Error::ResponseTooLong)?
            .copy_from_slice(part);
        filled = end;
        let more = match (*sw1, incoming) {
            (0x6C, true) => {
                tpdu[4] = *sw2;
                true
            }
            // More data waits and Ne is not reached yet (cases 2 and 4): fetch it, no more
            // than Ne in all; past Ne, `61 XX` goes up to the caller.
            (0x61, _) if ne.is_some_and(|ne| filled < ne) => {
                let avail = if *sw2 == 0 { 256 } else { usize::from(*sw2) };
                let want = avail.min(ne.unwrap_or(256) - filled);
                tpdu[..5].copy_from_slice(&[get_response_cla(*cla), 0xC0, 0x00, 0x00, want as u8]);
                len = 5;
                incoming = true;
                true
            }
            _ => false,
        };
        if !more {
            response
                .get_mut(filled..filled + 2)
                .ok_or(T0Error::ResponseTooLong)?
                .copy_from_slice(&[*sw1, *sw2]);
            reply.fill(0);
            return Ok(filled + 2);
        }
        budget = budget.checked_sub(1).ok_or(T0Error::TooManyGetResponse)?;
    }
}

/// Most NULL procedure bytes (`60`) accepted in one TPDU by default.
pub const DEFAULT_MAX_NULLS: u32 = 10_000;

/// Why a TPDU over the UART failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum UartError<E> {
    /// The port failed.
    Io(E),
    /// The port reported the end of its stream.
    Eof,
    /// A byte that is neither a NULL, an acknowledgement nor an SW1.
    ProcedureByte(u8),
    /// More NULL bytes than the limit: the card never finishes.
    TooManyNulls,
    /// Not a TPDU (shorter than 5 bytes, or data not matching P3).
    InvalidTpdu,
    /// The card's answer does not fit the reply buffer.
    ReplyTooLong,
}

impl<E: fmt::Display> fmt::Display for UartError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "UART: {e}"),
            Self::Eof => f.write_str("UART: end of stream"),
            Self::ProcedureByte(b) => write!(f, "T=0: unexpected procedure byte {b:02X}"),
            Self::TooManyNulls => f.write_str("T=0: the card keeps asking for more time"),
            Self::InvalidTpdu => f.write_str("T=0: malformed TPDU"),
            Self::ReplyTooLong => f.write_str("T=0: the card's answer is too long"),
        }
    }
}

/// The port's error is the source (no `std` needed: `core::error::Error`).
impl<E: embedded_io_async::Error + 'static> core::error::Error for UartError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl<E: embedded_io_async::Error> TransportError for UartError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Io(e) => match e.kind() {
                embedded_io_async::ErrorKind::TimedOut => ErrorKind::Timeout,
                embedded_io_async::ErrorKind::NotConnected
                | embedded_io_async::ErrorKind::BrokenPipe => ErrorKind::CardRemoved,
                _ => ErrorKind::Other,
            },
            Self::Eof => ErrorKind::CardRemoved,
            Self::TooManyNulls => ErrorKind::Timeout,
            Self::InvalidTpdu => ErrorKind::InvalidCommand,
            Self::ReplyTooLong => ErrorKind::ResponseTooLong,
            Self::ProcedureByte(_) => ErrorKind::Other,
        }
    }
}

impl<E> From<ReadExactError<E>> for UartError<E> {
    fn from(e: ReadExactError<E>) -> Self {
        match e {
            ReadExactError::UnexpectedEof => Self::Eof,
            ReadExactError::Other(e) => Self::Io(e),
        }
    }
}

/// T=0 over a half-duplex ISO 7816-3 UART: the interface device side of the procedure bytes.
///
/// The port must deliver the card's bytes only (no local echo of what was written) and time
/// out its reads after the work waiting time; every NULL byte restarts that wait, and
/// at most `max_nulls` are accepted per TPDU.
#[derive(Debug)]
pub struct Uart<U> {
    port: U,
    max_nulls: u32,
}

impl<U> Uart<U> {
    /// Wraps `port`, accepting [`DEFAULT_MAX_NULLS`] NULL bytes per TPDU.
    pub fn new(port: U) -> Self {
        Self {
            port,
            max_nulls: DEFAULT_MAX_NULLS,
        }
    }

    /// The same with another limit of NULL bytes per TPDU.
    pub fn with_max_nulls(mut self, max_nulls: u32) -> Self {
        self.max_nulls = max_nulls;
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

impl<U: Read + Write> Uart<U> {
    async fn read_byte(&mut self) -> Result<u8, UartError<U::Error>> {
        let mut b = [0u8; 1];
        crate::io::read_exact(&mut self.port, &mut b).await?;
        Ok(b[0])
    }
}

impl<U: Read + Write> TpduIo for Uart<U> {
    type Error = UartError<U::Error>;

    async fn exchange(&mut self, tpdu: &[u8], reply: &mut [u8]) -> Result<usize, Self::Error> {
        let [_, ins, _, _, p3, data @ ..] = tpdu else {
            return Err(UartError::InvalidTpdu);
        };
        let ins = *ins;
        let outgoing = !data.is_empty();
        let total = match (outgoing, *p3) {
            (true, p3) if data.len() == usize::from(p3) => data.len(),
            (true, _) => return Err(UartError::InvalidTpdu),
            (false, 0) => 256,
            (false, p3) => usize::from(p3),
        };
        let header = tpdu.get(..5).ok_or(UartError::InvalidTpdu)?;
        if !crate::io::write_all(&mut self.port, header)
            .await
            .map_err(UartError::Io)?
        {
            return Err(UartError::Eof);
        }
        self.port.flush().await.map_err(UartError::Io)?;
        let mut done = 0usize;
        let mut nulls = 0u32;
        loop {
            let pb = self.read_byte().await?;
            let step = if pb == 0x60 {
                nulls = nulls.saturating_add(1);
                if nulls > self.max_nulls {
                    return Err(UartError::TooManyNulls);
                }
                continue;
            } else if pb == ins {
                total - done
            } else if pb == ins ^ 0xFF {
                1
            } else if pb & 0xF0 == 0x60 || pb & 0xF0 == 0x90 {
                let sw2 = self.read_byte().await?;
                // Data sent is not part of the reply; data received is.
                let at = if outgoing { 0 } else { done };
                reply
                    .get_mut(at..at + 2)
                    .ok_or(UartError::ReplyTooLong)?
                    .copy_from_slice(&[pb, sw2]);
                return Ok(at + 2);
            } else {
                return Err(UartError::ProcedureByte(pb));
            };
            if done + step > total || step == 0 {
                // An acknowledgement with nothing left to transfer.
                return Err(UartError::ProcedureByte(pb));
            }
            if outgoing {
                let chunk = data.get(done..done + step).ok_or(UartError::InvalidTpdu)?;
                if !crate::io::write_all(&mut self.port, chunk)
                    .await
                    .map_err(UartError::Io)?
                {
                    return Err(UartError::Eof);
                }
                self.port.flush().await.map_err(UartError::Io)?;
            } else {
                let dst = reply
                    .get_mut(done..done + step)
                    .ok_or(UartError::ReplyTooLong)?;
                crate::io::read_exact(&mut self.port, dst).await?;
            }
            done += step;
        }
    }
}
