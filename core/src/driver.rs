//! The async driver: runs [`Flow`]s over a [`Transport`], and takes care of what the transport
//! layer of ISO 7816-4 leaves to the host: `61 XX` (GET RESPONSE until the data is complete),
//! `6C XX` (resend with the exact Le) and command chaining (CLA bit `0x10`) when a command's data
//! does not fit one short APDU and the transport has no extended length.
//!
//! Buffers are fixed arrays inside the driver: nothing allocates.

use crate::apdu::{Command, EncodeError, Response, CLA_CHAINING, SHORT_MAX_DATA};
use crate::flow::{Action, AdminResponder, Event, Flow, FlowError, MAX_ANSWER_LEN};
use crate::fmt::{debug, trace};
use crate::status::Status;
use crate::transport::{ErrorKind, Transport, TransportError};
use zeroize::Zeroize;

/// Largest response (all `61 XX` parts together) the driver assembles.
pub const MAX_RESPONSE: usize = 1024;
/// Largest command data the driver sends (chained if needed).
pub const MAX_COMMAND_DATA: usize = 1024;
/// Most GET RESPONSE rounds for one command before the driver gives up.
const MAX_GET_RESPONSE: usize = 32;

/// Whether a command may be sent again after `6C XX`: not one that carries a PIN, PUK or key
/// (VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER...) nor an admin authentication
/// (EXTERNAL / GENERAL AUTHENTICATE), which the card may have run and counted already.
const fn may_resend(ins: u8) -> bool {
    !crate::apdu::is_sensitive(ins) && !matches!(ins, 0x82 | 0x87)
}

const TX_LEN: usize = 4 + 3 + SHORT_MAX_DATA + 3;
const RX_LEN: usize = MAX_RESPONSE + 2;

/// A violation of the APDU transport rules by the card or the reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProtocolError {
    /// The command could not be encoded (data above [`MAX_COMMAND_DATA`]).
    Encode(EncodeError),
    /// The response was shorter than a status word.
    ShortResponse,
    /// The response (with all `61 XX` parts) exceeds [`MAX_RESPONSE`].
    ResponseTooLong,
    /// The card kept answering `61 XX` or `6C XX`.
    Loop,
    /// The card refused a chained part of a command.
    ChainRefused(Status),
}

/// Everything an unblock can fail with, one variant per layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error<T, R> {
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

impl<T, R> From<FlowError> for Error<T, R> {
    fn from(e: FlowError) -> Self {
        Self::Flow(e)
    }
}

impl<T: core::fmt::Debug, R: core::fmt::Debug> core::fmt::Display for Error<T, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "card transport: {e:?}"),
            Self::Protocol(e) => write!(f, "card protocol: {e:?}"),
            Self::Flow(e) => write!(f, "{e}"),
            Self::Responder(e) => write!(f, "admin response: {e:?}"),
        }
    }
}

/// Error of [`Driver::transceive`].
pub type TransceiveError<T> = Error<T, core::convert::Infallible>;

/// Runs flows over a transport.
pub struct Driver<T> {
    transport: T,
    tx: [u8; TX_LEN],
    rx: [u8; RX_LEN],
    chunk: [u8; 258],
    commands: u32,
}

impl<T: core::fmt::Debug> core::fmt::Debug for Driver<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Driver")
            .field("transport", &self.transport)
            .field("commands", &self.commands)
            .finish()
    }
}

impl<T: Transport> Driver<T> {
    /// A driver over `transport`.
    pub fn new(transport: T) -> Self {
        Self {
            transport,
            tx: [0; TX_LEN],
            rx: [0; RX_LEN],
            chunk: [0; 258],
            commands: 0,
        }
    }

    /// The transport.
    pub fn transport(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Gives the transport back.
    pub fn into_inner(self) -> T {
        self.transport
    }

    /// APDUs exchanged so far (GET RESPONSE and resends included).
    pub fn commands_sent(&self) -> u32 {
        self.commands
    }

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

    /// Sends one command and returns the card's complete response, after GET RESPONSE rounds
    /// (`61 XX`), a resend with the right Le (`6C XX`) and command chaining as needed. The
    /// response borrows the driver's receive buffer.
    pub async fn transceive(
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
        // Command chaining for data above one short APDU (no transport here takes extended
        // length for granted).
        let mut data = cmd.data;
        while data.len() > SHORT_MAX_DATA && !self.transport.supports_extended_length() {
            let (part, rest) = data.split_at(SHORT_MAX_DATA);
            let link = Command {
                cla: cmd.cla | CLA_CHAINING,
                data: part,
                le: 0,
                ..*cmd
            };
            let len = self.encode(&link)?;
            let n = self.exchange(len).await?;
            let status = Status::from_bytes(self.chunk[n - 2], self.chunk[n - 1]);
            if !status.is_success() {
                return Err(Error::Protocol(ProtocolError::ChainRefused(status)));
            }
            data = rest;
        }
        let mut last = Command { data, ..*cmd };
        let mut len = self.encode(&last)?;
        let mut filled = 0usize;
        for _ in 0..MAX_GET_RESPONSE {
            let n = self.exchange(len).await?;
            let (sw1, sw2) = (self.chunk[n - 2], self.chunk[n - 1]);
            let part = self.chunk.get(..n - 2).unwrap_or(&[]);
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
                // Resent with the right Le only when running it twice cannot spend a try.
                Status::WrongLe(x) if filled == 0 && may_resend(cmd.ins) => {
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

    /// Runs `flow` to its end, asking `responder` for admin cryptograms.
    pub async fn run<F: Flow, R: AdminResponder>(
        &mut self,
        flow: &mut F,
        responder: &mut R,
    ) -> Result<F::Output, Error<T::Error, R::Error>> {
        let mut answer = [0u8; MAX_ANSWER_LEN];
        loop {
            match flow.action() {
                Action::Done(out) => return Ok(out),
                Action::Send(cmd) => {
                    let r = self.transceive(&cmd).await.map_err(widen)?;
                    flow.handle(Event::Response(r))
                        .inspect_err(|e| debug!("flow ended: {}", e))?;
                }
                Action::Ask(request) => {
                    let n = responder
                        .answer(request, &mut answer)
                        .await
                        .map_err(Error::Responder)?;
                    let a = answer.get(..n).ok_or(Error::Flow(FlowError::BadAnswer))?;
                    let result = flow.handle(Event::Answer(a));
                    answer = [0; MAX_ANSWER_LEN];
                    result?;
                }
            }
        }
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
mod tests {
    use super::*;
    use crate::flow::{NoAdmin, PivUnblock};
    use crate::policy::PinPolicy;
    use crate::secret::{NewPin, PivReference};

    /// Answers `90 00` to everything.
    struct Ok9000;

    impl Transport for Ok9000 {
        type Error = ErrorKind;

        async fn transmit(&mut self, _: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
            response[..2].copy_from_slice(&[0x90, 0x00]);
            Ok(2)
        }
    }

    #[test]
    fn no_pin_or_puk_is_left_in_the_send_buffer() {
        let pin = NewPin::new(&PinPolicy::PIV, b"840259", b"840259", None, None).unwrap();
        let mut flow = PivUnblock::new(PivReference::puk(b"12345678").unwrap(), &pin).unwrap();
        let mut driver = Driver::new(Ok9000);
        embassy_futures::block_on(driver.run(&mut flow, &mut NoAdmin)).unwrap();
        assert_eq!(driver.commands_sent(), 3);
        let contains = |needle: &[u8]| driver.tx.windows(needle.len()).any(|w| w == needle);
        assert!(!contains(b"12345678"), "the PUK stayed in the driver");
        assert!(!contains(b"840259"), "the PIN stayed in the driver");
    }
}
