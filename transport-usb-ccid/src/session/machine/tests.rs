use super::*;

/// A session's buffers, in memory, for driving the machine by hand.
struct Rig {
    tx: [u8; 64],
    rx: [u8; 64],
    rx_state: RxState,
    next_seq: u8,
    config: Config,
    m: Exchange,
}

impl Rig {
    fn new() -> Self {
        Self {
            tx: [0; 64],
            rx: [0; 64],
            rx_state: RxState::default(),
            next_seq: 6,
            config: Config::DEFAULT,
            m: Exchange::IDLE,
        }
    }

    fn step(&mut self, event: Event, now: u64) -> Want {
        self.m.step(
            event,
            now,
            &mut Bufs {
                tx: &mut self.tx,
                rx: &mut self.rx,
                rx_state: &mut self.rx_state,
                next_seq: &mut self.next_seq,
                config: &self.config,
            },
        )
    }

    /// Lands `bytes` where the last `Want::Read` asked and feeds the read.
    fn arrive(&mut self, want: Want, bytes: &[u8], now: u64) -> Want {
        let Want::Read { from, to, .. } = want else {
            panic!("expected a read, got {want:?}");
        };
        assert!(
            bytes.len() <= to - from,
            "{} bytes into {from}..{to}",
            bytes.len()
        );
        self.rx[from..from + bytes.len()].copy_from_slice(bytes);
        self.step(Event::Read(bytes.len()), now)
    }
}

fn header(msg_type: u8, length: u32, seq: u8, status: u8, error: u8) -> [u8; HEADER_LEN] {
    Header {
        msg_type,
        length,
        slot: 0,
        seq,
        specific: [status, error, 0],
    }
    .to_bytes()
}

/// Proves the common path is send, read the 10-byte header, read exactly `dwLength`
/// bytes, reply: the reads are framed by the header, and the reply's bytes are counted for
/// the wipe.
#[test]
fn a_reply_is_framed_by_its_header() {
    let mut r = Rig::new();
    let want = r.m.command(5, 0, 10, 5_000, 1, false);
    assert_eq!(
        want,
        Want::Send {
            head: 10,
            payload: true
        }
    );
    let want = r.step(Event::Sent, 100);
    assert_eq!(
        want,
        Want::Read {
            from: 0,
            to: 10,
            deadline: 5_100
        }
    );
    let want = r.arrive(want, &header(msg_type::DATA_BLOCK, 2, 5, 0, 0), 100);
    assert_eq!(
        want,
        Want::Read {
            from: 10,
            to: 12,
            deadline: 5_100
        }
    );
    let want = r.arrive(want, &[0x90, 0x00], 100);
    assert_eq!(want, Want::Reply);
    assert_eq!(r.rx_state.dirty, 12);
    assert_eq!(r.rx_state.fill, 0);
}

/// Proves a reply to another `bSeq` is dropped (the next message is read from the start)
/// and that past `max_stale` of them the command fails.
#[test]
fn stale_replies_are_dropped_up_to_the_limit() {
    let mut r = Rig::new();
    r.config.max_stale = 1;
    r.m.command(5, 0, 10, 5_000, 1, false);
    let mut want = r.step(Event::Sent, 0);
    for _ in 0..r.config.max_stale {
        want = r.arrive(want, &header(msg_type::DATA_BLOCK, 0, 4, 0, 0), 0);
        assert_eq!(
            want,
            Want::Read {
                from: 0,
                to: 10,
                deadline: 5_000
            }
        );
    }
    want = r.arrive(want, &header(msg_type::DATA_BLOCK, 0, 4, 0, 0), 0);
    assert_eq!(want, Want::Fail(Failure::TooManyStale));
}

/// Proves a time extension pushes the deadline out by `bError` times the base wait, and
/// that a deadline passing runs the ABORT sequence (control request, bulk Abort with the
/// same fresh `bSeq`, its SlotStatus) before the command fails with a timeout.
#[test]
fn time_extension_then_timeout_runs_the_abort_sequence() {
    let mut r = Rig::new();
    r.m.command(5, 0, 10, 1_000, 1, false);
    let want = r.step(Event::Sent, 0);
    let want = r.arrive(want, &header(msg_type::DATA_BLOCK, 0, 5, 0x80, 3), 500);
    assert_eq!(
        want,
        Want::Read {
            from: 0,
            to: 10,
            deadline: 3_500
        }
    );
    let want = r.step(Event::TimedOut, 3_500);
    assert_eq!(want, Want::Abort { seq: 6 });
    let want = r.step(Event::AbortRequested, 3_500);
    assert_eq!(
        want,
        Want::Send {
            head: 10,
            payload: false
        }
    );
    assert_eq!(r.tx[..HEADER_LEN], header(msg_type::ABORT, 0, 6, 0, 0));
    let want = r.step(Event::Sent, 3_500);
    assert_eq!(
        want,
        Want::Read {
            from: 0,
            to: 10,
            deadline: 5_500
        }
    );
    // The late reply to the command is drained, then the Abort's SlotStatus ends it.
    let want = r.arrive(want, &header(msg_type::DATA_BLOCK, 0, 5, 0, 0), 3_600);
    let want = r.arrive(want, &header(msg_type::SLOT_STATUS, 0, 6, 0, 0), 3_700);
    assert_eq!(want, Want::Fail(Failure::Timeout));
}

/// Proves a command the reader refused as busy is resent after the delay with a fresh
/// `bSeq` (written into the header in `tx`), and that once the resends are used up the busy
/// reply is the answer.
#[test]
fn busy_is_resent_with_a_fresh_seq() {
    let mut r = Rig::new();
    r.config.busy_retries = 1;
    r.tx[6] = 5;
    r.m.command(5, 0, 10, 5_000, 1, false);
    let want = r.step(Event::Sent, 0);
    let busy = header(msg_type::DATA_BLOCK, 0, 5, 0x40, 0xE0);
    let want = r.arrive(want, &busy, 10);
    assert_eq!(want, Want::Sleep { until: 60 });
    assert_eq!(
        r.step(Event::Slept, 60),
        Want::Send {
            head: 10,
            payload: true
        }
    );
    assert_eq!(r.tx[6], 6);
    let want = r.step(Event::Sent, 60);
    let want = r.arrive(want, &header(msg_type::DATA_BLOCK, 0, 6, 0x40, 0xE0), 70);
    assert_eq!(want, Want::Reply);
    assert_eq!(r.rx[6], 6);
}

/// A whole message as a framed pipe delivers it: `header` then `body`.
fn message(header: [u8; HEADER_LEN], body: &[u8]) -> heapless::Vec<u8, 128> {
    let mut m = heapless::Vec::new();
    m.extend_from_slice(&header).unwrap();
    m.extend_from_slice(body).unwrap();
    m
}

/// Proves a framed pipe's reply is read in one read as large as the buffer and handed on
/// whole, and that a stream's is not (header first): the framing rule follows the pipe.
#[test]
fn a_framed_reply_is_read_in_one_read() {
    let mut r = Rig::new();
    r.m.command(5, 0, 10, 5_000, 1, true);
    let want = r.step(Event::Sent, 100);
    assert_eq!(
        want,
        Want::Read {
            from: 0,
            to: 64,
            deadline: 5_100
        }
    );
    let reply = message(header(msg_type::DATA_BLOCK, 2, 5, 0, 0), &[0x90, 0x00]);
    assert_eq!(r.arrive(want, &reply, 100), Want::Reply);
    assert_eq!(r.rx_state.dirty, 12);
    assert_eq!(r.rx_state.fill, 0);
}

/// Proves a framed pipe may still split a message (a header alone, then the rest) and that
/// bytes after the message's length in one transfer make it malformed (dropped, not taken as
/// the reply), up to the stale limit.
#[test]
fn a_framed_reply_may_be_split_but_not_overlong() {
    let mut r = Rig::new();
    r.m.command(5, 0, 10, 5_000, 1, true);
    let want = r.step(Event::Sent, 0);
    let want = r.arrive(want, &header(msg_type::DATA_BLOCK, 2, 5, 0, 0), 0);
    assert_eq!(
        want,
        Want::Read {
            from: 10,
            to: 12,
            deadline: 5_000
        }
    );
    assert_eq!(r.arrive(want, &[0x90, 0x00], 0), Want::Reply);

    let mut r = Rig::new();
    r.config.max_stale = 0;
    r.m.command(5, 0, 10, 5_000, 1, true);
    let want = r.step(Event::Sent, 0);
    let overlong = message(
        header(msg_type::DATA_BLOCK, 2, 5, 0, 0),
        &[0x90, 0x00, 0xAA],
    );
    assert_eq!(
        r.arrive(want, &overlong, 0),
        Want::Fail(Failure::Codec(CodecError::TrailingBytes))
    );
}

/// Proves a framed reply longer than the buffer is skipped to its end (what the first read
/// took counts) and reported with its length, and that the next message is read whole.
#[test]
fn a_framed_reply_longer_than_the_buffer_is_skipped() {
    let mut r = Rig::new();
    r.config.max_stale = 1;
    r.m.command(5, 0, 10, 5_000, 1, true);
    let want = r.step(Event::Sent, 0);
    // 100 bytes of body into a 64-byte buffer: the first read takes 64 of the 110.
    let long = message(header(msg_type::DATA_BLOCK, 100, 5, 0, 0), &[0xAA; 54]);
    let want = r.arrive(want, &long, 0);
    assert_eq!(
        want,
        Want::Read {
            from: 10,
            to: 56,
            deadline: 5_000
        }
    );
    let want = r.arrive(want, &[0xAA; 46], 0);
    assert_eq!(
        want,
        Want::Read {
            from: 0,
            to: 64,
            deadline: 5_000
        }
    );
    let reply = message(header(msg_type::DATA_BLOCK, 2, 5, 0, 0), &[0x90, 0x00]);
    assert_eq!(r.arrive(want, &reply, 0), Want::Reply);
}
