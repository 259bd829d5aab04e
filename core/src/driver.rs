//! The async driver: runs [`Flow`]s over a [`Transport`], and takes care of what the transport
//! layer of ISO 7816-4 leaves to the host: `61 XX` (GET RESPONSE until the data is complete),
//! `6C XX` (resend with the exact Le) and command chaining (CLA bit `0x10`) when a command's data
//! does not fit one short APDU and the transport has no extended length.
//!
//! Buffers are fixed arrays inside the driver: nothing allocates. Their sizes are const
//! generics with defaults that fit every built-in flow and short or extended APDUs
//! ([`DEFAULT_SEND_LEN`], [`DEFAULT_RECV_LEN`]); a firmware that speaks short APDUs to one kind
//! of card sizes them down:
//!
//! ```
//! # use cardunlock_core::{driver::Driver, ErrorKind, Transport};
//! # struct Uart;
//! # impl Transport for Uart {
//! #     type Error = ErrorKind;
//! #     async fn transmit(&mut self, _: &[u8], _: &mut [u8]) -> Result<usize, ErrorKind> {
//! #         Err(ErrorKind::NoCard)
//! #     }
//! # }
//! // 32 bytes for a command (PIV RESET RETRY COUNTER takes 21), 128 for a response.
//! let driver: Driver<Uart, 32, 128> = Driver::with_buffers(Uart);
//! # let _ = driver;
//! ```
//!
//! A send buffer below [`MIN_SEND_LEN`] (no room for a chain link) does not compile:
//!
//! ```compile_fail
//! # use cardunlock_core::{driver::Driver, ErrorKind, Transport};
//! # struct Uart;
//! # impl Transport for Uart {
//! #     type Error = ErrorKind;
//! #     async fn transmit(&mut self, _: &[u8], _: &mut [u8]) -> Result<usize, ErrorKind> {
//! #         Err(ErrorKind::NoCard)
//! #     }
//! # }
//! let driver: Driver<Uart, 6, 128> = Driver::with_buffers(Uart);
//! # let _ = driver;
//! ```

use crate::apdu::{may_resend, Command, EncodeError, Response, CLA_CHAINING, SHORT_MAX_DATA};
use crate::flow::{Action, AdminResponder, Event, Flow, FlowError, MAX_ANSWER_LEN};
use crate::fmt::{debug, trace};
use crate::sw::Status;
use crate::transport::{ErrorKind, Transport, TransportError};
use zeroize::Zeroize;

/// Largest response data (all `61 XX` parts together) a driver of the default size assembles.
pub const MAX_RESPONSE: usize = 1024;
/// Largest command data the driver sends (chained if needed).
pub const MAX_COMMAND_DATA: usize = 1024;
/// Room a flow gets in [`Flow::action`] to build its command data: the largest built-in
/// command, GIDS GENERAL AUTHENTICATE step 2, takes 44 bytes. Zeroized after every exchange.
/// Kept small because it lives on a firmware's stack; a vendor command with longer (public) data
/// borrows it from the flow instead, and one that does not fit fails with
/// [`FlowError::Encode`] before anything is sent.
pub const FLOW_BUFFER_LEN: usize = 64;
/// Most GET RESPONSE rounds for one command before the driver gives up.
const MAX_GET_RESPONSE: usize = 32;

/// The default send buffer: the largest encoded command one exchange carries, a short APDU with
/// 255 data bytes or an extended one with up to 256. Longer data is chained, whatever the
/// transport supports.
pub const DEFAULT_SEND_LEN: usize = 4 + 3 + SHORT_MAX_DATA + 3;
/// The default receive buffer: [`MAX_RESPONSE`] bytes of response data and the status word.
pub const DEFAULT_RECV_LEN: usize = MAX_RESPONSE + 2;
/// A send buffer for short APDUs only: a header, Lc, 255 data bytes and Le. Longer command
/// data is chained in short links; an extended APDU never goes out.
pub const SHORT_SEND_LEN: usize = 4 + 1 + SHORT_MAX_DATA + 1;
/// A receive buffer for one short response: 256 bytes of data and the status word. A response
/// longer than that (over `61 XX` rounds) ends with [`ProtocolError::ResponseTooLong`]; every
/// built-in unblock stays far below it.
pub const SHORT_RECV_LEN: usize = 256 + 2;
/// The smallest send buffer: a header, Lc, one byte of data and Le, so a chain always moves on.
pub const MIN_SEND_LEN: usize = 7;
/// The smallest receive buffer: a status word.
pub const MIN_RECV_LEN: usize = 2;
/// One answer of the transport: 256 bytes of data (short Le `00`) and the status word.
const CHUNK_LEN: usize = 258;

/// A violation of the APDU transport rules by the card or the reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ProtocolError {
    /// The command could not be encoded (data above [`MAX_COMMAND_DATA`]).
    Encode(EncodeError),
    /// The response was shorter than a status word.
    ShortResponse,
    /// The response (with all `61 XX` parts) exceeds the driver's receive buffer.
    ResponseTooLong,
    /// The card kept answering `61 XX`, or answered `6C XX` again after the one resend.
    Loop,
    /// The card refused a chained part of a command.
    ChainRefused(Status),
}

impl core::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Encode(e) => write!(f, "the command could not be encoded: {e}"),
            Self::ShortResponse => f.write_str("the response is shorter than a status word"),
            Self::ResponseTooLong => f.write_str("the response exceeds the receive buffer"),
            Self::Loop => f.write_str("the card kept asking for the command again"),
            Self::ChainRefused(sw) => write!(f, "the card refused a chained part (SW {sw})"),
        }
    }
}

impl core::error::Error for ProtocolError {}

impl From<EncodeError> for ProtocolError {
    fn from(e: EncodeError) -> Self {
        Self::Encode(e)
    }
}

/// Everything an unblock can fail with, one variant per layer. `R` is the admin responder's
/// error; flows run without one ([`Driver::run_without_admin`]) have none
/// ([`Infallible`](core::convert::Infallible), the default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error<T, R = core::convert::Infallible> {
    /// The transport failed (no card, card removed, reader gone ...).
    Transport(T),
    /// The card or reader broke the APDU rules.
    Protocol(ProtocolError),
    /// The card's answer ended the flow (wrong PUK, blocked, refused PIN, forged cryptogram ...).
    Flow(FlowError),
    /// The admin responder (key, server, operator) could not answer.
    Responder(R),
}

impl<T: TransportError, R> Error<T, R> {
    /// The transport error kind, if this is a transport error.
    pub fn transport_kind(&self) -> Option<ErrorKind> {
        match self {
            Self::Transport(e) => Some(e.kind()),
            _ => None,
        }
    }
}

impl<T, R> Error<T, R> {
    /// The flow error, if the card's answer ended the flow.
    pub fn flow(&self) -> Option<&FlowError> {
        match self {
            Self::Flow(e) => Some(e),
            _ => None,
        }
    }

    /// Tries left on the secret that was wrong, when the card said (see
    /// [`FlowError::tries_left`]).
    pub fn tries_left(&self) -> Option<u8> {
        self.flow().and_then(FlowError::tries_left)
    }
}

impl<T, R> From<FlowError> for Error<T, R> {
    fn from(e: FlowError) -> Self {
        Self::Flow(e)
    }
}

impl<T, R> From<ProtocolError> for Error<T, R> {
    fn from(e: ProtocolError) -> Self {
        Self::Protocol(e)
    }
}

impl<T: core::fmt::Display, R: core::fmt::Display> core::fmt::Display for Error<T, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "card transport: {e}"),
            Self::Protocol(e) => write!(f, "card protocol: {e}"),
            Self::Flow(e) => write!(f, "{e}"),
            Self::Responder(e) => write!(f, "admin response: {e}"),
        }
    }
}

impl<T, R> core::error::Error for Error<T, R>
where
    T: core::error::Error + 'static,
    R: core::error::Error + 'static,
{
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Transport(e) => Some(e),
            Self::Protocol(e) => Some(e),
            Self::Flow(e) => Some(e),
            Self::Responder(e) => Some(e),
        }
    }
}

/// Error of [`Driver::transceive`].
pub type TransceiveError<T> = Error<T, core::convert::Infallible>;

/// Runs flows over a transport.
///
/// `SEND` is the send buffer (one encoded command; longer command data is chained by the space
/// there), `RECV` the receive buffer (the whole response, `61 XX` parts together, and the status
/// word). [`Driver::new`] makes one of the default sizes; [`Driver::with_buffers`] one of the
/// sizes its type names. Sizes below [`MIN_SEND_LEN`] or [`MIN_RECV_LEN`] do not compile.
pub struct Driver<T, const SEND: usize = DEFAULT_SEND_LEN, const RECV: usize = DEFAULT_RECV_LEN> {
    link: Link<T, SEND, RECV>,
    /// Where flows build their command data; zeroized after every exchange.
    flow_buf: [u8; FLOW_BUFFER_LEN],
}

/// The transport and its frame buffers, apart from the flow buffer so a command borrowing the
/// flow buffer can be sent through it.
struct Link<T, const SEND: usize, const RECV: usize> {
    transport: T,
    tx: [u8; SEND],
    rx: [u8; RECV],
    chunk: [u8; CHUNK_LEN],
    commands: u32,
}

impl<T: core::fmt::Debug, const SEND: usize, const RECV: usize> core::fmt::Debug
    for Driver<T, SEND, RECV>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Driver")
            .field("transport", &self.link.transport)
            .field("commands", &self.link.commands)
            .finish()
    }
}

impl<T: Transport> Driver<T> {
    /// A driver over `transport` with buffers of the default sizes ([`DEFAULT_SEND_LEN`],
    /// [`DEFAULT_RECV_LEN`]).
    pub fn new(transport: T) -> Self {
        Self::with_buffers(transport)
    }
}

impl<T: Transport, const SEND: usize, const RECV: usize> Driver<T, SEND, RECV> {
    /// A driver over `transport` with the buffer sizes of its type,
    /// `Driver<T, SEND, RECV>`.
    pub fn with_buffers(transport: T) -> Self {
        // Buffers too small to send a chain link or hold a status word do not compile.
        const {
            assert!(
                SEND >= MIN_SEND_LEN && RECV >= MIN_RECV_LEN,
                "Driver buffers: SEND >= MIN_SEND_LEN and RECV >= MIN_RECV_LEN"
            )
        };
        Self {
            link: Link {
                transport,
                tx: [0; SEND],
                rx: [0; RECV],
                chunk: [0; CHUNK_LEN],
                commands: 0,
            },
            flow_buf: [0; FLOW_BUFFER_LEN],
        }
    }

    /// The transport.
    pub fn transport(&mut self) -> &mut T {
        &mut self.link.transport
    }

    /// Gives the transport back.
    pub fn into_inner(self) -> T {
        let Self { link, .. } = self;
        link.transport
    }

    /// APDUs exchanged so far (GET RESPONSE and resends included).
    pub fn commands_sent(&self) -> u32 {
        self.link.commands
    }

    /// Sends one command and returns the card's complete response, after GET RESPONSE rounds
    /// (`61 XX`), at most one resend with the right Le (`6C XX`, only for a command without
    /// secret data, see [`may_resend`]) and command chaining as needed. The response borrows
    /// the driver's receive buffer.
    pub async fn transceive(
        &mut self,
        cmd: &Command<'_>,
    ) -> Result<Response<'_>, TransceiveError<T::Error>> {
        self.link.transceive(cmd).await
    }

    /// Runs `flow` to its end, asking `responder` for admin cryptograms.
    pub async fn run<F: Flow, R: AdminResponder>(
        &mut self,
        flow: &mut F,
        responder: &mut R,
    ) -> Result<F::Output, Error<T::Error, R::Error>> {
        self.run_with(flow, Some(responder)).await
    }

    /// Runs a flow that needs no admin key (PIV PUK unblock, status, a vendor's PUK reset) to
    /// its end. Should the flow ask for an admin cryptogram all the same, it ends with
    /// [`FlowError::NoAdminResponder`].
    pub async fn run_without_admin<F: Flow>(
        &mut self,
        flow: &mut F,
    ) -> Result<F::Output, Error<T::Error>> {
        self.run_with(flow, None::<&mut Unanswered>).await
    }

    async fn run_with<F: Flow, R: AdminResponder>(
        &mut self,
        flow: &mut F,
        mut responder: Option<&mut R>,
    ) -> Result<F::Output, Error<T::Error, R::Error>> {
        let mut answer = [0u8; MAX_ANSWER_LEN];
        loop {
            let action = flow.action(&mut self.flow_buf);
            match action {
                Err(e) => {
                    self.flow_buf.zeroize();
                    return Err(Error::Flow(e));
                }
                Ok(Action::Done(out)) => return Ok(out),
                Ok(Action::Send(cmd)) => {
                    let sent = self.link.transceive(&cmd).await;
                    // The command data may be a PIN, a PUK, a key or a cryptogram: it does not
                    // outlive the exchange.
                    self.flow_buf.zeroize();
                    let r = sent.map_err(widen)?;
                    flow.handle(Event::Response(r))
                        .inspect_err(|e| debug!("flow ended: {}", e))?;
                }
                Ok(Action::Ask(request)) => {
                    let Some(responder) = responder.as_deref_mut() else {
                        return Err(Error::Flow(FlowError::NoAdminResponder));
                    };
                    let n = responder
                        .answer(request, &mut answer)
                        .await
                        .map_err(Error::Responder)?;
                    let a = answer.get(..n).ok_or(Error::Flow(FlowError::BadAnswer))?;
                    let result = flow.handle(Event::Answer(a));
                    answer.zeroize();
                    result?;
                }
            }
        }
    }
}

/// The responder type of [`Driver::run_without_admin`], which passes none: never asked.
struct Unanswered;

impl AdminResponder for Unanswered {
    type Error = core::convert::Infallible;

    async fn answer(
        &mut self,
        _: crate::flow::AdminRequest<'_>,
        _: &mut [u8; MAX_ANSWER_LEN],
    ) -> Result<usize, Self::Error> {
        // Never called: `run_without_admin` passes no responder, so an `Ask` ends the flow.
        Ok(0)
    }
}

impl<T: Transport, const SEND: usize, const RECV: usize> Link<T, SEND, RECV> {
    async fn exchange(&mut self, len: usize) -> Result<usize, TransceiveError<T::Error>> {
        self.commands = self.commands.wrapping_add(1);
        let tx = self.tx.get(..len).unwrap_or(&[]);
        let result = self.transport.transmit(tx, &mut self.chunk).await;
        // The command may carry a PIN, a PUK or a key: it does not outlive the exchange.
        if let Some(sent) = self.tx.get_mut(..len) {
            sent.zeroize();
        }
        let n = result.map_err(Error::Transport)?;
        if n < 2 || n > self.chunk.len() {
            return Err(Error::Protocol(ProtocolError::ShortResponse));
        }
        Ok(n)
    }

    fn encode(&mut self, cmd: &Command<'_>) -> Result<usize, TransceiveError<T::Error>> {
        cmd.encode(&mut self.tx)
            .map_err(|e| Error::Protocol(ProtocolError::Encode(e)))
    }

    /// Whether `cmd` goes out as one APDU: the encoded command fits the send buffer, and its
    /// data fits one short APDU or the transport takes extended length.
    fn fits_one_apdu(&self, cmd: &Command<'_>) -> bool {
        cmd.encoded_len() <= SEND
            && (cmd.data.len() <= SHORT_MAX_DATA || self.transport.supports_extended_length())
    }

    /// The data of one chain link: a short APDU (header, Lc, data, room for a short Le) that
    /// fits the send buffer. At least 1, as [`MIN_SEND_LEN`] guarantees.
    const LINK_DATA: usize = {
        let room = SEND.saturating_sub(6);
        if room < SHORT_MAX_DATA {
            room
        } else {
            SHORT_MAX_DATA
        }
    };

    async fn transceive(
        &mut self,
        cmd: &Command<'_>,
    ) -> Result<Response<'_>, TransceiveError<T::Error>> {
        if cmd.data.len() > MAX_COMMAND_DATA {
            return Err(Error::Protocol(ProtocolError::Encode(EncodeError::TooLong)));
        }
        trace!(
            "apdu > ins {} p1 {} p2 {} nc {}",
            cmd.ins,
            cmd.p1,
            cmd.p2,
            cmd.data.len()
        );
        // Command chaining by the space really there: data that does not go out as one APDU
        // (see `fits_one_apdu`) is sent in short links of up to 255 bytes that fit the buffer.
        let mut data = cmd.data;
        while !self.fits_one_apdu(&Command { data, ..*cmd }) {
            let cut = Self::LINK_DATA.min(data.len());
            if cut == 0 {
                // Only the Le field is left and it does not fit: nothing to chain.
                return Err(Error::Protocol(ProtocolError::Encode(
                    EncodeError::BufferTooSmall(cmd.encoded_len()),
                )));
            }
            let (part, rest) = data.split_at(cut);
            let link = Command {
                cla: cmd.cla | CLA_CHAINING,
                data: part,
                le: 0,
                ..*cmd
            };
            let len = self.encode(&link)?;
            let n = self.exchange(len).await?;
            let (_, sw1, sw2) = split_reply(&self.chunk, n)?;
            let status = Status::from_bytes(sw1, sw2);
            if !status.is_success() {
                return Err(Error::Protocol(ProtocolError::ChainRefused(status)));
            }
            data = rest;
        }
        let mut last = Command { data, ..*cmd };
        let mut len = self.encode(&last)?;
        let mut filled = 0usize;
        let mut resent = false;
        for _ in 0..MAX_GET_RESPONSE {
            let n = self.exchange(len).await?;
            let (part, sw1, sw2) = split_reply(&self.chunk, n)?;
            let dst = self
                .rx
                .get_mut(filled..filled + part.len())
                .ok_or(Error::Protocol(ProtocolError::ResponseTooLong))?;
            dst.copy_from_slice(part);
            filled += part.len();
            match Status::from_bytes(sw1, sw2) {
                Status::MoreData(x) => {
                    let le = if x == 0 { 256 } else { usize::from(x) };
                    len = self.encode(
                        &Command::new(cmd.cla & !CLA_CHAINING, 0xC0, 0x00, 0x00).with_le(le),
                    )?;
                }
                // One resend with the exact Le, and only of a command without secret data: a
                // PIN, PUK or key is never sent twice (the flow sees the 6C XX instead).
                Status::WrongLe(x) if filled == 0 && may_resend(&last) => {
                    if resent {
                        return Err(Error::Protocol(ProtocolError::Loop));
                    }
                    resent = true;
                    last.le = if x == 0 { 256 } else { usize::from(x) };
                    len = self.encode(&last)?;
                }
                status => {
                    let tail = self
                        .rx
                        .get_mut(filled..filled + 2)
                        .ok_or(Error::Protocol(ProtocolError::ResponseTooLong))?;
                    // Keep the card's exact SW bytes (63 0X stays 63 0X).
                    tail.copy_from_slice(&[sw1, sw2]);
                    trace!("apdu < {} bytes sw {}", filled, status.to_u16());
                    let all = self.rx.get(..filled + 2).unwrap_or(&[]);
                    return Response::parse(all)
                        .map_err(|_| Error::Protocol(ProtocolError::ShortResponse));
                }
            }
        }
        Err(Error::Protocol(ProtocolError::Loop))
    }
}

/// The first `n` bytes of `chunk` split into response data and status word, or
/// [`ProtocolError::ShortResponse`] (what [`Link::exchange`] already rules out; checked here
/// again so no index can panic).
fn split_reply<T>(chunk: &[u8], n: usize) -> Result<(&[u8], u8, u8), TransceiveError<T>> {
    match chunk.get(..n) {
        Some([part @ .., sw1, sw2]) => Ok((part, *sw1, *sw2)),
        _ => Err(Error::Protocol(ProtocolError::ShortResponse)),
    }
}

fn widen<T, R>(e: TransceiveError<T>) -> Error<T, R> {
    match e {
        Error::Transport(t) => Error::Transport(t),
        Error::Protocol(p) => Error::Protocol(p),
        Error::Flow(f) => Error::Flow(f),
        Error::Responder(never) => match never {},
    }
}

#[cfg(test)]
mod tests;
