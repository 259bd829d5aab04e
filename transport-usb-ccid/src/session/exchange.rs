//! One command message out and its reply in: `bSeq`, the byte pipe, stale replies, time
//! extensions, busy retries, the ABORT sequence; the checks every reply goes through.

use crate::pipe::Pipe;
use embassy_futures::select::{select, Either};

use super::machine::{Bufs, Event, Failure, Want, NO_HEADER};
use super::{Control, Error, RxState, Session, SessionError, Violation, TX_LEN};
use crate::clock::Clock;
use crate::codec::{
    msg_type, CommandStatus, Header, IccStatus, Request, RequestKind, Response, ResponseKind,
    HEADER_LEN,
};

/// A command ready to send: `tx[..len]` (its header, or all of a message without an APDU), then
/// `data`, the APDU part, from the caller's buffer (never copied into `tx`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Outgoing<'d> {
    /// Bytes of `tx` to send first.
    pub(super) len: usize,
    /// The payload sent after them.
    pub(super) data: &'d [u8],
}

impl<IO, C, K, const N: usize> Session<IO, C, K, N>
where
    IO: Pipe,
    C: Clock,
    K: Control,
{
    /// Writes the header of an XfrBlock (`bBWI` 0) of `len` bytes of APDU with chain parameter
    /// `level` and a fresh `bSeq` into `tx`; returns its length. The caller has checked that
    /// the message fits.
    #[inline]
    pub(super) fn xfr_head(&mut self, len: usize, level: u16) -> usize {
        let seq = self.next_seq();
        let header = Header {
            msg_type: msg_type::XFR_BLOCK,
            length: u32::try_from(len).unwrap_or(u32::MAX),
            slot: self.slot,
            seq,
            specific: [0, level.to_le_bytes()[0], level.to_le_bytes()[1]],
        };
        if let Some(tx) = self.tx.get_mut(..HEADER_LEN) {
            tx.copy_from_slice(&header.to_bytes());
        }
        HEADER_LEN
    }

    pub(super) fn next_seq(&mut self) -> u8 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(1);
        s
    }

    /// Encodes `kind` with a fresh `bSeq`: its header (or, for a message without an APDU, all of
    /// it) into `tx`, its APDU left where the caller has it (see [`Request::encode_head`]).
    #[inline]
    pub(super) fn encode<'d>(
        &mut self,
        kind: RequestKind<'d>,
    ) -> Result<Outgoing<'d>, SessionError<IO, K>> {
        let seq = self.next_seq();
        let req = Request::new(self.slot, seq, kind);
        let max = self.max_msg;
        let tx = self.tx.get_mut(..max.min(TX_LEN)).unwrap_or(&mut []);
        let (len, data) = req.encode_head(tx).map_err(|e| match e {
            crate::codec::CodecError::BufferTooSmall { needed } => {
                Error::MessageTooLong { len: needed, max }
            }
            other => Error::Codec(other),
        })?;
        let total = len.saturating_add(data.len());
        if total > max {
            return Err(Error::MessageTooLong { len: total, max });
        }
        Ok(Outgoing { len, data })
    }

    /// Sends `msg` (encoded with its `bSeq`) and waits for its reply: drops stale replies,
    /// follows time extensions, resends after `CmdSlotBusy`, runs the ABORT sequence on
    /// timeout (all decided by the [`Exchange`](super::machine::Exchange) machine). Returns
    /// the reply's header; its data is at `rx[HEADER_LEN..]`. `tx` never holds an APDU (the
    /// payload is written from the caller's buffer), so it has nothing to wipe.
    pub(super) async fn command(
        &mut self,
        msg: Outgoing<'_>,
    ) -> Result<Header, SessionError<IO, K>> {
        self.drive(msg.len, msg.data).await?;
        Ok(rx_header(&self.rx))
    }

    /// The ABORT sequence: the control request, then the bulk Abort with the same `bSeq`, then
    /// the replies drained until the SlotStatus answering the Abort.
    pub(super) async fn abort_sequence(&mut self) -> Result<(), SessionError<IO, K>> {
        self.drive(0, &[]).await
    }

    /// The one async loop: runs the machine of the command whose header is `tx[..head]` and
    /// whose payload is `payload` (or, with `head` 0, of the ABORT sequence alone: a command's
    /// header is 10 bytes), doing what it wants and feeding back what happened with the clock's
    /// time, until it is done. A command's reply is then in `rx`, header first.
    pub(super) async fn drive(
        &mut self,
        head: usize,
        payload: &[u8],
    ) -> Result<(), SessionError<IO, K>> {
        let mut want = self.start(head);
        // Only `self` lives across the awaits (each field is reached through it), so the
        // future keeps one pointer, not one per field.
        let e = 'io: loop {
            let event = match want {
                Want::Read { from, to, deadline } => {
                    let buf = self.rx.get_mut(from..to).unwrap_or(&mut []);
                    match select(self.io.recv(buf), self.clock.sleep_until_ms(deadline)).await {
                        Either::First(Ok(n)) => Event::Read(n),
                        Either::First(Err(e)) => {
                            // Where the stream stands after a failed transfer is unknown:
                            // forget the message in progress (the reader's reply, if any, is
                            // lost).
                            self.rx_state = RxState {
                                dirty: self.rx_state.dirty,
                                ..RxState::default()
                            };
                            break 'io e;
                        }
                        Either::Second(()) => Event::TimedOut,
                    }
                }
                Want::Send {
                    head,
                    payload: with,
                } => {
                    // One message: the pipe sees its header and its payload as one unit.
                    let part = self.tx.get(..head).unwrap_or(&[]);
                    match self.io.send(part, if with { payload } else { &[] }).await {
                        Ok(true) => Event::Sent,
                        Ok(false) => return Err(Error::Closed),
                        Err(e) => break 'io e,
                    }
                }
                Want::Sleep { until } => {
                    self.clock.sleep_until_ms(until).await;
                    Event::Slept
                }
                Want::Abort { seq } => {
                    let slot = self.slot;
                    self.control
                        .abort(slot, seq)
                        .await
                        .map_err(Error::Control)?;
                    Event::AbortRequested
                }
                Want::Reply | Want::Aborted => return Ok(()),
                Want::Fail(f) => return Err(failure(f)),
            };
            want = self.step(event);
        };
        if head != 0
            && embedded_io_async::Error::kind(&e) == embedded_io_async::ErrorKind::ConnectionReset
        {
            // A stalled endpoint (the USB backend reports a stall so): clear the halt so the
            // next command gets through; the reply to this one is lost.
            let _ = self.control.clear_halt().await;
        }
        Err(Error::Io(e))
    }

    /// Starts the machine on the command whose header is `tx[..head]` (its `bSeq` at byte 6),
    /// or on the ABORT sequence alone for `head` 0; returns its first want.
    #[inline]
    fn start(&mut self, head: usize) -> Want {
        if head == 0 {
            let slot = self.slot;
            let mut b = Bufs {
                tx: &mut self.tx[..],
                rx: &mut self.rx[..],
                rx_state: &mut self.rx_state,
                next_seq: &mut self.seq,
                config: &self.config,
            };
            return self.exchange.abort(slot, IO::FRAMED, &mut b);
        }
        let first = self.tx.get(6).copied().unwrap_or(0);
        self.exchange.command(
            first,
            self.slot,
            head,
            self.config.timeout_ms,
            self.wait_multiplier,
            IO::FRAMED,
        )
    }

    /// Feeds `event` to the machine with the clock's time; returns what it wants next.
    #[inline]
    fn step(&mut self, event: Event) -> Want {
        let now = self.clock.now_ms();
        self.exchange.step(
            event,
            now,
            &mut Bufs {
                tx: &mut self.tx[..],
                rx: &mut self.rx[..],
                rx_state: &mut self.rx_state,
                next_seq: &mut self.seq,
                config: &self.config,
            },
        )
    }
}

/// The header of the reply in `rx` (the machine parsed and checked it; `rx` is longer than a
/// header): one shared copy for the callers of [`Session::command`].
#[inline(never)]
fn rx_header(rx: &[u8]) -> Header {
    Header::parse(rx).unwrap_or(NO_HEADER)
}

/// The session error of a machine's failure.
fn failure<I, K>(f: Failure) -> Error<I, K> {
    match f {
        Failure::Timeout => Error::Timeout,
        Failure::Closed => Error::Closed,
        Failure::TooManyStale => Error::Protocol(Violation::TooManyStale),
        Failure::MessageTooLong { len, max } => Error::MessageTooLong { len, max },
        Failure::Codec(e) => Error::Codec(e),
    }
}

/// The reply `h` heads, its data in `rx`.
pub(super) fn reply<'a, I, C>(rx: &'a [u8], h: &Header) -> Result<Response<'a>, Error<I, C>> {
    let body = rx.get(HEADER_LEN..h.message_len()).unwrap_or(&[]);
    Ok(Response::from_parts(h, body)?)
}

/// The chain parameter and data of the DataBlock in `rx` (header first), after the checks
/// every reply to a command for the card goes through ([`check_status`]).
#[inline]
pub(super) fn data_block<'a, I, C>(
    rx: &'a [u8],
    powered: &mut bool,
) -> Result<(u8, &'a [u8]), Error<I, C>> {
    match fast_data_block(rx) {
        Some(block) => Ok(block),
        None => not_data_block(rx, powered),
    }
}

/// The common case of [`data_block`], decoded in line from the header's bytes: a DataBlock,
/// the card active (bStatus bits 0-1 zero) and the command done (bits 6-7 zero). `None` for
/// anything else, which [`not_data_block`] then reports. (No error value on this path: the
/// common case carries only the chain parameter and the data.)
#[inline]
pub(super) fn fast_data_block(rx: &[u8]) -> Option<(u8, &[u8])> {
    let &[msg_type::DATA_BLOCK, l0, l1, l2, l3, _, _, status, _, chain] = rx.get(..HEADER_LEN)?
    else {
        return None;
    };
    if status & 0xC3 != 0 {
        return None;
    }
    let end = usize::try_from(u32::from_le_bytes([l0, l1, l2, l3]))
        .ok()?
        .checked_add(HEADER_LEN)?;
    Some((chain, rx.get(HEADER_LEN..end)?))
}

/// The error (or, never in practice, the DataBlock) of a reply off the common path.
#[cold]
#[inline(never)]
pub(super) fn not_data_block<'a, I, C>(
    rx: &'a [u8],
    powered: &mut bool,
) -> Result<(u8, &'a [u8]), Error<I, C>> {
    let h = Header::parse(rx)?;
    let resp = reply(rx, &h)?;
    check_status(&resp, powered)?;
    match resp.kind {
        ResponseKind::DataBlock { chain, data } => Ok((chain, data)),
        _ => Err(Error::Protocol(Violation::UnexpectedReply(msg_type_of(
            &resp,
        )))),
    }
}

pub(super) fn msg_type_of(resp: &Response<'_>) -> u8 {
    match resp.kind {
        ResponseKind::DataBlock { .. } => msg_type::DATA_BLOCK,
        ResponseKind::SlotStatus { .. } => msg_type::SLOT_STATUS,
        ResponseKind::Parameters { .. } => msg_type::PARAMETERS,
        ResponseKind::Escape(_) => msg_type::ESCAPE_REPLY,
        ResponseKind::DataRateAndClockFrequency { .. } => msg_type::DATA_RATE_AND_CLOCK,
        ResponseKind::Other { msg_type, .. } => msg_type,
    }
}

/// Checks the card state and command outcome of a reply to a command for the card.
pub(super) fn check_status<I, C>(
    resp: &Response<'_>,
    powered: &mut bool,
) -> Result<(), Error<I, C>> {
    match resp.status.icc {
        IccStatus::Absent => {
            *powered = false;
            return Err(Error::CardRemoved);
        }
        IccStatus::Inactive => {
            *powered = false;
            return Err(Error::CardReset);
        }
        IccStatus::Active => {}
    }
    if let CommandStatus::Failed(e) = resp.status.command {
        return Err(Error::Slot(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type E = Error<(), ()>;

    /// Proves the in-line DataBlock decode of the APDU path agrees with the general path for
    /// every message type the reader sends, every `bStatus` and `bError` and both chain
    /// values: the same data, the same error, the same power state. Fails if the fast path
    /// accepts a reply the general path refuses (a failed command, an absent or inactive card,
    /// a reserved status, another message type).
    #[test]
    fn the_inline_data_block_decode_agrees_with_the_general_path() {
        let types = [
            msg_type::DATA_BLOCK,
            msg_type::SLOT_STATUS,
            msg_type::PARAMETERS,
            msg_type::ESCAPE_REPLY,
            0x42,
        ];
        for t in types {
            for status in 0..=255u8 {
                for error in [0x00, 0xE0, 0xFE] {
                    for chain in [0x00, 0x01] {
                        let mut rx = [0u8; 16];
                        rx[..HEADER_LEN].copy_from_slice(
                            &Header {
                                msg_type: t,
                                length: 3,
                                slot: 0,
                                seq: 0,
                                specific: [status, error, chain],
                            }
                            .to_bytes(),
                        );
                        rx[HEADER_LEN..HEADER_LEN + 3].copy_from_slice(&[1, 2, 3]);
                        let rx = &rx[..HEADER_LEN + 3];
                        let (mut p1, mut p2) = (true, true);
                        let fast: Result<(u8, &[u8]), E> = data_block(rx, &mut p1);
                        // The general path (parse the reply, check the card and command
                        // status, expect a DataBlock), which the fast path falls back to.
                        let slow: Result<(u8, &[u8]), E> = not_data_block(rx, &mut p2);
                        assert_eq!(
                            fast, slow,
                            "type {t:#04x} status {status:#04x} error {error:#04x}"
                        );
                        assert_eq!(p1, p2, "power state, status {status:#04x}");
                    }
                }
            }
        }
    }
}
