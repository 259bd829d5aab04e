//! One command and its reply as a synchronous sans-IO state machine.
//!
//! [`Exchange`] does no I/O and never waits: the session's one async loop
//! ([`Session::drive`](super::Session)) does what the machine asks ([`Want`]: send the message,
//! read into a range of the receive buffer before a deadline, sleep, send the ABORT request)
//! and feeds back what happened ([`Event`]), with the clock's time. The machine owns every rule:
//! framing (the 10-byte header, then exactly `dwLength` bytes; an over-long message skipped),
//! `bSeq` and slot matching with bounded dropping of stale or malformed replies, time extensions
//! (within a hard cap), busy resends, and the ABORT sequence when a deadline passes.
//!
//! The common case (a reply to the expected `bSeq` and slot, no time extension, not busy) is a
//! straight line through [`Exchange::step`]; the rare cases are cold functions of their own.

use super::{Config, RxState};
use crate::codec::{msg_type, CodecError, Header, Request, RequestKind, HEADER_LEN};

/// A header of nothing (for a parse that cannot fail on a buffer longer than a header).
pub(super) const NO_HEADER: Header = Header {
    msg_type: 0,
    length: 0,
    slot: 0,
    seq: 0,
    specific: [0; 3],
};

/// `bError` CMD_SLOT_BUSY.
const SLOT_BUSY: u8 = 0xE0;

/// What the driver did since the last step: its answer to the last [`Want`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Event {
    /// The message (and its payload) was written and flushed.
    Sent,
    /// `n` bytes were read into the range of the last [`Want::Read`].
    Read(usize),
    /// The deadline of the last [`Want::Read`] passed first.
    TimedOut,
    /// The [`Want::Sleep`] is over.
    Slept,
    /// The ABORT control request went out.
    AbortRequested,
}

/// What the machine asks of its driver next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Want {
    /// Write `tx[..head]`, then the command's payload if `payload`, then flush (one message).
    Send {
        /// Bytes of `tx` to write.
        head: usize,
        /// Whether the command's payload follows (not for the bulk Abort).
        payload: bool,
    },
    /// Read into `rx[from..to]`, racing the clock to `deadline`.
    Read {
        /// First byte of the range.
        from: usize,
        /// End of the range (`from < to <= rx.len()`).
        to: usize,
        /// When to give up ([`Event::TimedOut`]).
        deadline: u64,
    },
    /// Sleep until `until` (before a busy resend).
    Sleep {
        /// The time to wake.
        until: u64,
    },
    /// Send the ABORT control request for `seq`.
    Abort {
        /// `bSeq` of the Abort.
        seq: u8,
    },
    /// Done: the reply is in `rx`, its header first (not handed over as a copy: the APDU path
    /// reads the bytes it needs from `rx`).
    Reply,
    /// Done: the ABORT sequence of [`Exchange::abort`] completed.
    Aborted,
    /// Done: failed (I/O and control errors the driver reports itself).
    Fail(Failure),
}

/// Why an exchange failed, I/O aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// No reply in time (after the ABORT sequence ran).
    Timeout,
    /// A read returned no bytes.
    Closed,
    /// More stale or malformed replies than allowed.
    TooManyStale,
    /// A reply longer than the receive buffer (skipped), `len` bytes in all.
    MessageTooLong {
        /// The message's length, header included.
        len: usize,
        /// The receive buffer's length.
        max: usize,
    },
    /// A header that does not parse.
    Codec(CodecError),
}

/// The buffers and counters of the session the machine works on.
pub(super) struct Bufs<'a> {
    /// The transmit buffer (`bSeq` at byte 6 is rewritten for a busy resend; the bulk Abort is
    /// encoded into it).
    pub(super) tx: &'a mut [u8],
    /// The receive buffer: each reply lands at its start.
    pub(super) rx: &'a mut [u8],
    /// Receive progress kept across cancelled reads.
    pub(super) rx_state: &'a mut RxState,
    /// The session's next `bSeq`.
    pub(super) next_seq: &'a mut u8,
    /// The session's settings.
    pub(super) config: &'a Config,
}

impl Bufs<'_> {
    fn take_seq(&mut self) -> u8 {
        let s = *self.next_seq;
        *self.next_seq = s.wrapping_add(1);
        s
    }

    /// Forgets a message in progress (it belongs to an exchange given up on).
    fn forget_partial(&mut self) {
        *self.rx_state = RxState {
            dirty: self.rx_state.dirty,
            ..RxState::default()
        };
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The command is being sent.
    Sending,
    /// Reading the command's reply.
    Reply,
    /// Waiting before resending a command the reader refused as busy.
    Busy,
    /// The ABORT control request is being sent.
    AbortRequest,
    /// The bulk Abort is being sent.
    AbortSending,
    /// Draining replies until the Abort's SlotStatus.
    AbortReply,
}

/// One command (or the ABORT sequence alone) in progress.
#[derive(Clone, Copy, Debug)]
pub(super) struct Exchange {
    phase: Phase,
    /// `bSeq` of the message in flight.
    seq: u8,
    slot: u8,
    /// Header bytes of the command in `tx`.
    head: usize,
    /// Replies dropped so far in this phase.
    dropped: u8,
    /// Busy resends so far.
    busy: u8,
    deadline: u64,
    cap: u64,
    /// The base wait for a reply, times the wait multiplier.
    base: u64,
    /// Whether the exchange is the ABORT sequence alone (its success is [`Want::Aborted`]).
    abort_only: bool,
    /// Whether the pipe keeps to message boundaries ([`Pipe::FRAMED`](crate::pipe::Pipe)): a
    /// reply is then read whole, in one read as large as the buffer.
    framed: bool,
}

impl Exchange {
    /// No exchange in progress (the session keeps its machine, so none is moved per command).
    pub(super) const IDLE: Self = Self {
        phase: Phase::Sending,
        seq: 0,
        slot: 0,
        head: 0,
        dropped: 0,
        busy: 0,
        deadline: 0,
        cap: 0,
        base: 0,
        abort_only: false,
        framed: false,
    };

    /// Starts a command whose header is `tx[..head]` with `bSeq` `seq`, to `slot`; its reply's
    /// wait is `multiplier` times the base wait `timeout_ms`; `framed` as the pipe is. Returns
    /// the first want (send it).
    #[inline]
    pub(super) fn command(
        &mut self,
        seq: u8,
        slot: u8,
        head: usize,
        timeout_ms: u32,
        multiplier: u8,
        framed: bool,
    ) -> Want {
        self.phase = Phase::Sending;
        self.framed = framed;
        self.seq = seq;
        self.slot = slot;
        self.head = head;
        self.busy = 0;
        self.abort_only = false;
        self.base = u64::from(timeout_ms).saturating_mul(u64::from(multiplier.max(1)));
        self.start()
    }

    /// The first want of a command.
    #[inline]
    fn start(&self) -> Want {
        Want::Send {
            head: self.head,
            payload: true,
        }
    }

    /// Starts the ABORT sequence alone, to `slot`; returns the first want.
    pub(super) fn abort(&mut self, slot: u8, framed: bool, b: &mut Bufs<'_>) -> Want {
        self.slot = slot;
        self.framed = framed;
        self.busy = 0;
        self.abort_only = true;
        self.begin_abort(b)
    }

    /// Feeds `event`, observed at `now`, and returns what to do next.
    #[inline]
    pub(super) fn step(&mut self, event: Event, now: u64, b: &mut Bufs<'_>) -> Want {
        match (self.phase, event) {
            (Phase::Reply | Phase::AbortReply, Event::Read(n)) => self.on_read(n, now, b),
            (Phase::Sending, Event::Sent) => {
                self.cap = now.saturating_add(u64::from(b.config.max_wait_ms));
                self.deadline = now.saturating_add(self.base).min(self.cap);
                self.dropped = 0;
                self.phase = Phase::Reply;
                self.next_read(now, b)
            }
            _ => self.rare(event, now, b),
        }
    }

    /// The next read of the message in progress (or its end, or the deadline).
    #[inline]
    fn next_read(&mut self, now: u64, b: &mut Bufs<'_>) -> Want {
        if now >= self.deadline {
            return self.timed_out(b);
        }
        let st = &mut *b.rx_state;
        let (from, to) = if st.skip > 0 {
            let n = usize::try_from(st.skip)
                .unwrap_or(usize::MAX)
                .min(b.rx.len().saturating_sub(HEADER_LEN));
            (HEADER_LEN, HEADER_LEN + n)
        } else if st.fill < HEADER_LEN {
            // A framed pipe hands over a whole message in one read; a stream gives the header
            // first, and the body once its length is known.
            (st.fill, if self.framed { b.rx.len() } else { HEADER_LEN })
        } else {
            if st.fill < st.len {
                (st.fill, st.len)
            } else {
                // Never: the length is known as the header's tenth byte arrives, and a message
                // is handed on as soon as it is whole. Start the message over rather than panic.
                st.fill = 0;
                st.len = 0;
                (0, HEADER_LEN)
            }
        };
        Want::Read {
            from,
            to,
            deadline: self.deadline,
        }
    }

    /// [`next_read`](Self::next_read) for the rare paths: one shared copy, so the common path
    /// alone has it in line.
    #[cold]
    #[inline(never)]
    fn read_on(&mut self, now: u64, b: &mut Bufs<'_>) -> Want {
        self.next_read(now, b)
    }

    /// `n` bytes arrived.
    #[inline]
    fn on_read(&mut self, n: usize, now: u64, b: &mut Bufs<'_>) -> Want {
        if n == 0 {
            return Want::Fail(Failure::Closed);
        }
        let st = &mut *b.rx_state;
        if st.skip > 0 {
            return self.skipped(n, now, b);
        }
        st.fill += n;
        st.dirty = st.dirty.max(st.fill);
        if st.len == 0 && st.fill >= HEADER_LEN {
            // The header is parsed when it is whole and, if the body is still to come, again
            // when the message is: only its length is kept in between (bytes in `rx`, not a
            // copy of the header).
            let h = match Header::parse(b.rx) {
                Ok(h) => h,
                Err(e) => return self.malformed(Failure::Codec(e), now, b),
            };
            let len = h.message_len();
            if len > b.rx.len() {
                return self.too_long(now, b);
            }
            if st.fill == len {
                // All of it in this read (a framed pipe's reply, or a message without a body).
                st.fill = 0;
                return self.on_message(h, now, b);
            }
            st.len = len;
        }
        if st.len != 0 && st.fill >= st.len {
            // Only a framed pipe reads past the length (a stream's reads end there): bytes
            // after the message in the same transfer make it malformed.
            let trailing = st.fill > st.len;
            st.fill = 0;
            st.len = 0;
            if trailing {
                return self.malformed(Failure::Codec(CodecError::TrailingBytes), now, b);
            }
            return match Header::parse(b.rx) {
                Ok(h) => self.on_message(h, now, b),
                Err(e) => self.malformed(Failure::Codec(e), now, b),
            };
        }
        self.next_read(now, b)
    }

    /// A whole message `h` is in `rx`.
    #[inline]
    fn on_message(&mut self, h: Header, now: u64, b: &mut Bufs<'_>) -> Want {
        if self.phase != Phase::Reply || h.seq != self.seq || h.slot != self.slot {
            return self.other_message(h, now, b);
        }
        let [status, error, _] = h.specific;
        match status >> 6 {
            2 => self.time_extension(error, now, b),
            1 if error == SLOT_BUSY && self.busy < b.config.busy_retries => {
                self.busy(now, b.config.busy_delay_ms)
            }
            _ => Want::Reply,
        }
    }

    /// Everything but a reply to the expected command in the reply phase.
    #[cold]
    #[inline(never)]
    fn other_message(&mut self, h: Header, now: u64, b: &mut Bufs<'_>) -> Want {
        if self.phase == Phase::AbortReply {
            if h.msg_type == msg_type::SLOT_STATUS && h.seq == self.seq && h.slot == self.slot {
                return if self.abort_only {
                    Want::Aborted
                } else {
                    Want::Fail(Failure::Timeout)
                };
            }
            return self.drop_in_abort(now, b);
        }
        // A stale reply (wrong bSeq or slot).
        self.malformed(Failure::TooManyStale, now, b)
    }

    /// Drops a stale or malformed reply, failing with `f` past the limit.
    #[cold]
    #[inline(never)]
    fn malformed(&mut self, f: Failure, now: u64, b: &mut Bufs<'_>) -> Want {
        if self.phase == Phase::AbortReply {
            return self.drop_in_abort(now, b);
        }
        self.dropped = self.dropped.saturating_add(1);
        if self.dropped > b.config.max_stale {
            return Want::Fail(f);
        }
        self.read_on(now, b)
    }

    /// Drops a message that does not answer the Abort.
    #[cold]
    #[inline(never)]
    fn drop_in_abort(&mut self, now: u64, b: &mut Bufs<'_>) -> Want {
        self.dropped = self.dropped.saturating_add(1);
        if self.dropped > b.config.max_stale.saturating_add(4) {
            return Want::Fail(Failure::TooManyStale);
        }
        self.read_on(now, b)
    }

    /// Time extension: wait `multiplier` times the base (at least once), within the cap.
    #[cold]
    #[inline(never)]
    fn time_extension(&mut self, multiplier: u8, now: u64, b: &mut Bufs<'_>) -> Want {
        let m = u64::from(multiplier.max(1));
        self.deadline = now
            .saturating_add(self.base.saturating_mul(m))
            .min(self.cap);
        self.read_on(now, b)
    }

    /// The reader refused the command as busy (it did not run): wait, then resend.
    #[cold]
    #[inline(never)]
    fn busy(&mut self, now: u64, delay_ms: u32) -> Want {
        self.busy += 1;
        self.phase = Phase::Busy;
        Want::Sleep {
            until: now.saturating_add(u64::from(delay_ms)),
        }
    }

    /// A header announcing more than the buffer holds: skip its body, then report it.
    #[cold]
    #[inline(never)]
    fn too_long(&mut self, now: u64, b: &mut Bufs<'_>) -> Want {
        // Its length is above the buffer's, so there is something to skip past what was read
        // (the header; from a framed pipe, as much as the buffer held).
        let h = Header::parse(b.rx).unwrap_or(NO_HEADER);
        let read = b.rx_state.fill.saturating_sub(HEADER_LEN) as u64;
        b.rx_state.fill = 0;
        b.rx_state.skip = u64::from(h.length).saturating_sub(read);
        b.rx_state.skipped_len = h.message_len();
        self.read_on(now, b)
    }

    /// `n` bytes of an over-long message skipped.
    #[cold]
    #[inline(never)]
    fn skipped(&mut self, n: usize, now: u64, b: &mut Bufs<'_>) -> Want {
        let st = &mut *b.rx_state;
        st.dirty = st.dirty.max(HEADER_LEN.saturating_add(n));
        st.skip = st.skip.saturating_sub(n as u64);
        if st.skip == 0 {
            let f = Failure::MessageTooLong {
                len: st.skipped_len,
                max: b.rx.len(),
            };
            return self.malformed(f, now, b);
        }
        self.read_on(now, b)
    }

    /// The deadline passed: a command starts the ABORT sequence, the ABORT sequence fails.
    #[cold]
    #[inline(never)]
    fn timed_out(&mut self, b: &mut Bufs<'_>) -> Want {
        if self.phase == Phase::AbortReply {
            b.forget_partial();
            return Want::Fail(Failure::Timeout);
        }
        self.begin_abort(b)
    }

    /// The ABORT sequence: the control request, then the bulk Abort with the same `bSeq`, then
    /// the replies drained until the SlotStatus answering it.
    #[cold]
    #[inline(never)]
    fn begin_abort(&mut self, b: &mut Bufs<'_>) -> Want {
        // Whatever was half read belongs to the aborted exchange.
        b.forget_partial();
        self.seq = b.take_seq();
        self.phase = Phase::AbortRequest;
        Want::Abort { seq: self.seq }
    }

    /// Events off the common path.
    #[cold]
    #[inline(never)]
    fn rare(&mut self, event: Event, now: u64, b: &mut Bufs<'_>) -> Want {
        match (self.phase, event) {
            (Phase::Reply | Phase::AbortReply, Event::TimedOut) => self.timed_out(b),
            (Phase::Busy, Event::Slept) => {
                // Resend with a fresh bSeq (the refused command did not run).
                self.seq = b.take_seq();
                if let Some(s) = b.tx.get_mut(6) {
                    *s = self.seq;
                }
                self.phase = Phase::Sending;
                self.start()
            }
            (Phase::AbortRequest, Event::AbortRequested) => {
                let abort = Request::new(self.slot, self.seq, RequestKind::Abort);
                match abort.encode(b.tx) {
                    Ok(head) => {
                        self.phase = Phase::AbortSending;
                        Want::Send {
                            head,
                            payload: false,
                        }
                    }
                    Err(e) => Want::Fail(Failure::Codec(e)),
                }
            }
            (Phase::AbortSending, Event::Sent) => {
                self.deadline = now.saturating_add(u64::from(b.config.abort_timeout_ms));
                self.dropped = 0;
                self.phase = Phase::AbortReply;
                self.read_on(now, b)
            }
            // The driver answers each want with its event: nothing else reaches here.
            _ => Want::Fail(Failure::Closed),
        }
    }
}

#[cfg(test)]
mod tests;
