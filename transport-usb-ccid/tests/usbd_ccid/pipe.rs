//! The host's byte pipe to the reader's bulk endpoints, as `embedded_io_async::{Read, Write}`.
//!
//! - `write` buffers; `flush` sends what was written as one bulk OUT transfer (one CCID
//!   message), in 64-byte packets, with no zero-length packet after a message whose length is a
//!   multiple of 64 (that resets usbd-ccid) unless [`UsbPipe::zlp_after_full_out`] asks for it.
//! - `read` hands out the bytes of one bulk IN transfer at a time (a transfer ends with a short
//!   packet, or after [`UsbPipe::in_transfer_len`] bytes), running the device loop until one
//!   comes. A transfer with no bytes (a trailing zero-length packet read on its own) is skipped:
//!   `read` never returns `Ok(0)` for a non-empty buffer, which would mean end of stream.
//! - A device that stays silent for [`super::reader::MAX_TICKS`] turns is a `TimedOut` error,
//!   so a test never hangs.

use std::cell::RefCell;
use std::rc::Rc;

use embedded_io_async::{ErrorKind, ErrorType, Read, Write};

use super::fake_bus::Handshake;
use super::reader::{Reader, Trace};

/// Why the pipe failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeError {
    /// The device sent nothing in time.
    Silent,
    /// An endpoint stalled (or never took a packet).
    Bus(Handshake),
    /// `read` was called with bytes written but not flushed: a session bug (the reader would
    /// never see the command).
    Unflushed,
}

impl core::fmt::Display for PipeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Silent => f.write_str("the reader sent nothing"),
            Self::Bus(h) => write!(f, "bus handshake {h:?}"),
            Self::Unflushed => f.write_str("read with an unflushed write"),
        }
    }
}

impl core::error::Error for PipeError {}

impl embedded_io_async::Error for PipeError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Silent => ErrorKind::TimedOut,
            Self::Bus(_) => ErrorKind::BrokenPipe,
            Self::Unflushed => ErrorKind::Other,
        }
    }
}

/// The host's bulk pipe to a [`Reader`].
pub struct UsbPipe {
    reader: Rc<RefCell<Reader>>,
    out: Vec<u8>,
    inbox: Vec<u8>,
    at: usize,
    /// Send a zero-length OUT packet after a message whose length is a multiple of 64 (what
    /// `nusb`'s `submit_end` does). Off by default.
    pub zlp_after_full_out: bool,
    /// Length of each IN transfer the host submits (a multiple of the packet size).
    pub in_transfer_len: usize,
    /// Bulk OUT transfers sent.
    pub messages_out: usize,
    /// Empty IN transfers (zero-length packets read on their own) skipped.
    pub zlps_skipped: usize,
    /// When the device stays silent, `read` waits (returns `Pending` and retries, while the
    /// virtual clock runs on) instead of failing: for a session racing reads against its clock.
    pub wait_when_silent: bool,
}

impl UsbPipe {
    /// A pipe to an enumerated `reader`.
    pub fn new(reader: Rc<RefCell<Reader>>) -> Self {
        Self {
            reader,
            out: Vec::new(),
            inbox: Vec::new(),
            at: 0,
            zlp_after_full_out: false,
            in_transfer_len: 64 * 64,
            messages_out: 0,
            zlps_skipped: 0,
            wait_when_silent: false,
        }
    }
}

/// What the trace keeps of an OUT message: all of it, except the APDU data of VERIFY (20),
/// CHANGE REFERENCE DATA (24) and RESET RETRY COUNTER (2C) in an XfrBlock.
pub fn redact(message: &[u8]) -> Vec<u8> {
    let secret =
        message.first() == Some(&0x6F) && matches!(message.get(11), Some(0x20 | 0x24 | 0x2C));
    if secret {
        message[..message.len().min(15)].to_vec()
    } else {
        message.to_vec()
    }
}

impl ErrorType for UsbPipe {
    type Error = PipeError;
}

impl Write for UsbPipe {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, PipeError> {
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), PipeError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let message = core::mem::take(&mut self.out);
        let result =
            self.reader
                .borrow_mut()
                .bulk_out(&message, self.zlp_after_full_out, redact(&message));
        let mut message = message;
        message.fill(0);
        self.messages_out += 1;
        result.map_err(PipeError::Bus)
    }
}

impl Read for UsbPipe {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, PipeError> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.out.is_empty() {
            return Err(PipeError::Unflushed);
        }
        while self.at >= self.inbox.len() {
            let got = self
                .reader
                .borrow_mut()
                .bulk_in(self.in_transfer_len)
                .map_err(PipeError::Bus)?;
            match got {
                None if self.wait_when_silent => embassy_futures::yield_now().await,
                None => return Err(PipeError::Silent),
                Some(t) if t.is_empty() => self.zlps_skipped += 1,
                Some(t) => {
                    self.inbox = t;
                    self.at = 0;
                }
            }
        }
        let rest = &self.inbox[self.at..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

/// Whether the trace shows a zero-length OUT packet.
pub fn trace_has_out_zlp(trace: &[Trace]) -> bool {
    trace.iter().any(|t| matches!(t, Trace::OutZlp))
}

/// A clock on the reader's virtual time (one millisecond per device-loop turn).
pub struct VirtualClock {
    now: Rc<std::cell::Cell<u64>>,
}

impl VirtualClock {
    /// The clock of `reader`.
    pub fn of(reader: &Rc<RefCell<Reader>>) -> Self {
        Self {
            now: reader.borrow().now_ms.clone(),
        }
    }
}

impl cardunlock_ccid::clock::Clock for VirtualClock {
    fn now_ms(&mut self) -> u64 {
        self.now.get()
    }

    async fn sleep_until_ms(&mut self, deadline_ms: u64) {
        while self.now.get() < deadline_ms {
            embassy_futures::yield_now().await;
        }
    }
}

/// The ABORT class request over the reader's EP0.
pub struct UsbControl {
    reader: Rc<RefCell<Reader>>,
    /// ABORT requests sent: (slot, seq).
    pub aborts: Vec<(u8, u8)>,
}

impl UsbControl {
    /// The control channel of `reader`.
    pub fn new(reader: Rc<RefCell<Reader>>) -> Self {
        Self {
            reader,
            aborts: Vec::new(),
        }
    }
}

impl cardunlock_ccid::session::Control for UsbControl {
    type Error = Handshake;

    async fn abort(&mut self, slot: u8, seq: u8) -> Result<(), Handshake> {
        self.aborts.push((slot, seq));
        self.reader.borrow_mut().control_abort(slot, seq)
    }
}
