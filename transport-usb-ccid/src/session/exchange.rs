//! One command message out and its reply in: `bSeq`, the byte pipe, stale replies, time
//! extensions, busy retries, the ABORT sequence; the checks every reply goes through.

use embassy_futures::select::{select, Either};
use embedded_io_async::{Read, Write};

use super::{Control, Error, RxState, Session, SessionError, Violation};
use crate::clock::Clock;
use crate::codec::{
    msg_type, CommandStatus, Header, IccStatus, Request, RequestKind, Response, ResponseKind,
    SlotError, HEADER_LEN,
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
    IO: Read + Write,
    C: Clock,
    K: Control,
{
    pub(super) fn next_seq(&mut self) -> u8 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(1);
        s
    }

    /// Encodes `kind` with a fresh `bSeq`: its header (or, for a message without an APDU, all of
    /// it) into `tx`, its APDU left where the caller has it (see [`Request::encode_head`]).
    pub(super) fn encode<'d>(
        &mut self,
        kind: RequestKind<'d>,
    ) -> Result<Outgoing<'d>, SessionError<IO, K>> {
        let seq = self.next_seq();
        let req = Request::new(self.slot, seq, kind);
        let max = self.max_msg;
        let tx = self.tx.get_mut(..max).unwrap_or(&mut []);
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

    /// Writes `tx[..len]` and the payload as one message and flushes it (two writes, one flush:
    /// the pipe sees one message).
    async fn send(&mut self, msg: Outgoing<'_>) -> Result<(), SessionError<IO, K>> {
        let head = self.tx.get(..msg.len).unwrap_or(&[]);
        for part in [head, msg.data] {
            if !part.is_empty()
                && !crate::io::write_all(&mut self.io, part)
                    .await
                    .map_err(Error::Io)?
            {
                return Err(Error::Closed);
            }
        }
        self.io.flush().await.map_err(Error::Io)
    }

    /// Reads one whole message into `rx` before `deadline`; `Ok(None)` on timeout (a partly read
    /// message is kept and finished by the next call).
    async fn recv(&mut self, deadline: u64) -> Result<Option<Header>, SessionError<IO, K>> {
        let Self {
            io,
            clock,
            rx,
            rx_state,
            ..
        } = self;
        loop {
            if clock.now_ms() >= deadline {
                return Ok(None);
            }
            let (want_from, want_to) = if rx_state.skip > 0 {
                let n = usize::try_from(rx_state.skip)
                    .unwrap_or(usize::MAX)
                    .min(N.saturating_sub(HEADER_LEN));
                (HEADER_LEN, HEADER_LEN + n)
            } else if rx_state.fill < HEADER_LEN {
                (rx_state.fill, HEADER_LEN)
            } else if let Some(h) = rx_state.header {
                (rx_state.fill, h.message_len())
            } else {
                let h = Header::parse(rx.as_slice())?;
                (rx_state.fill, h.message_len())
            };
            if want_from >= want_to {
                // Header complete with no body, or body complete.
                let h = match rx_state.header.take() {
                    Some(h) => h,
                    None => Header::parse(rx.as_slice())?,
                };
                rx_state.fill = 0;
                return Ok(Some(h));
            }
            let buf = rx.get_mut(want_from..want_to).unwrap_or(&mut []);
            let n = match select(io.read(buf), clock.sleep_until_ms(deadline)).await {
                Either::First(Ok(n)) => n,
                Either::First(Err(e)) => {
                    // Where the stream stands after a failed transfer is unknown: forget the
                    // message in progress (the reader's reply, if any, is lost).
                    *rx_state = RxState {
                        dirty: rx_state.dirty,
                        ..RxState::default()
                    };
                    return Err(Error::Io(e));
                }
                Either::Second(()) => return Ok(None),
            };
            if n == 0 {
                return Err(Error::Closed);
            }
            if rx_state.skip > 0 {
                rx_state.dirty = rx_state.dirty.max(HEADER_LEN.saturating_add(n));
                rx_state.skip = rx_state.skip.saturating_sub(n as u64);
                if rx_state.skip == 0 {
                    return Err(Error::MessageTooLong {
                        len: rx_state.skipped_len,
                        max: N,
                    });
                }
                continue;
            }
            rx_state.fill += n;
            rx_state.dirty = rx_state.dirty.max(rx_state.fill);
            if rx_state.fill == HEADER_LEN {
                let h = Header::parse(rx.as_slice())?;
                if h.message_len() > N {
                    // Too long for the buffer: skip its body, then report it.
                    // (Its length is above N - 10 > 0, so there is something to skip.)
                    rx_state.fill = 0;
                    rx_state.skip = u64::from(h.length);
                    rx_state.skipped_len = h.message_len();
                    continue;
                }
                rx_state.header = Some(h);
            }
            if let Some(h) = rx_state.header {
                if rx_state.fill >= h.message_len() {
                    // The whole message is in: no second pass through the loop.
                    rx_state.fill = 0;
                    rx_state.header = None;
                    return Ok(Some(h));
                }
            }
        }
    }

    /// Sends `msg` (encoded with its `bSeq`) and waits for its reply: drops stale replies,
    /// follows time extensions, resends after `CmdSlotBusy`, runs the ABORT sequence on
    /// timeout. The reply's data is at `rx[HEADER_LEN..]`. `tx` never holds an APDU (the
    /// payload is written from the caller's buffer), so it has nothing to wipe.
    pub(super) async fn command(
        &mut self,
        msg: Outgoing<'_>,
    ) -> Result<Header, SessionError<IO, K>> {
        let result = self.command_attempts(msg).await;
        if let Err(Error::Io(e)) = &result {
            if embedded_io_async::Error::kind(e) == embedded_io_async::ErrorKind::ConnectionReset {
                // A stalled endpoint (the USB backend reports a stall so): clear the halt so the
                // next command gets through; the reply to this one is lost.
                let _ = self.control.clear_halt().await;
            }
        }
        result
    }

    async fn command_attempts(&mut self, msg: Outgoing<'_>) -> Result<Header, SessionError<IO, K>> {
        let mut busy = 0u8;
        loop {
            let seq = self.tx.get(6).copied().unwrap_or(0);
            self.send(msg).await?;
            let h = self.await_reply(seq).await?;
            let status = self.rx.get(7).copied().unwrap_or(0);
            let error = self.rx.get(8).copied().unwrap_or(0);
            let busy_now =
                status >> 6 == 1 && SlotError::from_byte(error) == SlotError::CmdSlotBusy;
            if !busy_now || busy >= self.config.busy_retries {
                return Ok(h);
            }
            busy += 1;
            let until = self
                .clock
                .now_ms()
                .saturating_add(u64::from(self.config.busy_delay_ms));
            self.clock.sleep_until_ms(until).await;
            // Resend with a fresh bSeq (the refused command did not run).
            let seq = self.next_seq();
            if let Some(b) = self.tx.get_mut(6) {
                *b = seq;
            }
        }
    }

    /// Waits for the reply to `seq` (see [`command`](Self::command)).
    async fn await_reply(&mut self, seq: u8) -> Result<Header, SessionError<IO, K>> {
        let start = self.clock.now_ms();
        let cap = start.saturating_add(u64::from(self.config.max_wait_ms));
        let base = u64::from(self.config.timeout_ms)
            .saturating_mul(u64::from(self.wait_multiplier.max(1)));
        let mut deadline = start.saturating_add(base).min(cap);
        let mut stale = 0u8;
        loop {
            let h = match self.recv(deadline).await {
                Ok(Some(h)) => h,
                Ok(None) => {
                    self.abort_sequence().await?;
                    return Err(Error::Timeout);
                }
                Err(e) => {
                    if matches!(e, Error::MessageTooLong { .. } | Error::Codec(_)) {
                        // A malformed message is dropped like a stale one.
                        stale = stale.saturating_add(1);
                        if stale > self.config.max_stale {
                            return Err(e);
                        }
                        continue;
                    }
                    return Err(e);
                }
            };
            if h.seq != seq || h.slot != self.slot {
                stale = stale.saturating_add(1);
                if stale > self.config.max_stale {
                    return Err(Error::Protocol(Violation::TooManyStale));
                }
                continue;
            }
            if h.specific[0] >> 6 == 2 {
                // Time extension: wait bError times the base (at least once), within the cap.
                let m = u64::from(h.specific[1].max(1));
                deadline = self
                    .clock
                    .now_ms()
                    .saturating_add(base.saturating_mul(m))
                    .min(cap);
                continue;
            }
            return Ok(h);
        }
    }

    /// The ABORT sequence: the control request, then the bulk Abort with the same `bSeq`, then
    /// the replies drained until the SlotStatus answering the Abort.
    pub(super) async fn abort_sequence(&mut self) -> Result<(), SessionError<IO, K>> {
        // Whatever was half read belongs to the aborted exchange.
        self.rx_state = RxState {
            dirty: self.rx_state.dirty,
            ..RxState::default()
        };
        let seq = self.next_seq();
        self.control
            .abort(self.slot, seq)
            .await
            .map_err(Error::Control)?;
        let len = Request::new(self.slot, seq, RequestKind::Abort)
            .encode(&mut self.tx)
            .map_err(Error::Codec)?;
        self.send(Outgoing { len, data: &[] }).await?;
        let deadline = self
            .clock
            .now_ms()
            .saturating_add(u64::from(self.config.abort_timeout_ms));
        let mut dropped = 0u8;
        loop {
            match self.recv(deadline).await {
                Ok(Some(h)) => {
                    if h.msg_type == msg_type::SLOT_STATUS && h.seq == seq && h.slot == self.slot {
                        return Ok(());
                    }
                }
                Ok(None) => {
                    self.rx_state = RxState {
                        dirty: self.rx_state.dirty,
                        ..RxState::default()
                    };
                    return Err(Error::Timeout);
                }
                Err(Error::Io(e)) => return Err(Error::Io(e)),
                Err(Error::Closed) => return Err(Error::Closed),
                Err(_) => {}
            }
            dropped = dropped.saturating_add(1);
            if dropped > self.config.max_stale.saturating_add(4) {
                return Err(Error::Protocol(Violation::TooManyStale));
            }
        }
    }
}

/// The reply `h` heads, its data in `rx`.
pub(super) fn reply<'a, I, C>(rx: &'a [u8], h: &Header) -> Result<Response<'a>, Error<I, C>> {
    let body = rx.get(HEADER_LEN..h.message_len()).unwrap_or(&[]);
    Ok(Response::from_parts(h, body)?)
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
