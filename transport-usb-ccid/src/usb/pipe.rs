//! The bulk pair as an `embedded_io_async` byte pipe, and the control channel beside it.

use std::string::String;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use std::vec::Vec;

use futures_lite::future;
use nusb::transfer::{
    Buffer, Bulk, ControlOut, ControlType, In, Interrupt, Out, Recipient, TransferError,
};
use nusb::{Endpoint, Interface};

use super::clock::sleep_until;
use super::events::UsbEvents;
use super::framing::Framer;
use super::scan::Endpoints;
use super::UsbError;

/// Timeout of the ABORT control request.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a bulk OUT transfer may wait for the reader to take the data, by default.
const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest IN transfer asked for at once (a CCID message is at most 10 + 65 544 bytes).
const MAX_IN_TRANSFER: usize = 65_600;

/// An opened CCID reader's bulk pair as one byte pipe for [`crate::session::Session`]; its
/// control channel is [`UsbPipe::control`], its interrupt endpoint [`UsbPipe::take_events`].
/// Dropping the pipe and its handles releases the interface.
///
/// - [`Write`](embedded_io_async::Write) buffers; `flush` sends the buffered bytes as ONE bulk
///   OUT transfer with no zero-length packet after it (the session flushes once per message).
/// - [`Read`](embedded_io_async::Read) hands out the bytes of bulk IN transfers. Cancel safe.
/// - A stalled endpoint is cleared by the pipe itself before it reports [`UsbError::Stall`], so
///   the next transfer works.
pub struct UsbPipe {
    name: String,
    interface: Interface,
    bulk_in: Endpoint<Bulk, In>,
    bulk_out: Endpoint<Bulk, Out>,
    interrupt_in: Option<Endpoint<Interrupt, In>>,
    /// The largest IN transfer to ask for (a multiple of the packet size).
    max_in: usize,
    /// The last completed IN transfer, how much of it was read, and where its message data ends.
    in_buf: Option<Buffer>,
    in_pos: usize,
    in_end: usize,
    framer: Framer,
    /// The message being written, sent on `flush`.
    out_buf: Vec<u8>,
    write_timeout: Duration,
    /// Set by [`UsbControl::clear_halt`]; done before the next transfer.
    halt_requested: Arc<AtomicBool>,
}

impl core::fmt::Debug for UsbPipe {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UsbPipe")
            .field("name", &self.name)
            .field("interface", &self.interface.interface_number())
            .field("bulk_in", &self.bulk_in.endpoint_address())
            .field("bulk_out", &self.bulk_out.endpoint_address())
            .finish_non_exhaustive()
    }
}

fn round_up(n: usize, packet: usize) -> usize {
    n.div_ceil(packet).saturating_mul(packet)
}

impl UsbPipe {
    pub(super) fn new(
        name: String,
        interface: Interface,
        endpoints: Endpoints,
        max_message_length: u32,
    ) -> Result<Self, UsbError> {
        let fail = |e| UsbError::from_open(&name, e);
        let bulk_in = interface
            .endpoint::<Bulk, In>(endpoints.bulk_in.address)
            .map_err(fail)?;
        let bulk_out = interface
            .endpoint::<Bulk, Out>(endpoints.bulk_out.address)
            .map_err(fail)?;
        // A reader without a usable interrupt endpoint still works, without slot change events.
        let interrupt_in = endpoints
            .interrupt_in
            .and_then(|ep| interface.endpoint::<Interrupt, In>(ep.address).ok());
        let packet = bulk_in.max_packet_size().max(1);
        let max_message = usize::try_from(max_message_length).unwrap_or(usize::MAX);
        let max_in = round_up(max_message.clamp(packet, MAX_IN_TRANSFER), packet);
        Ok(Self {
            name,
            interface,
            bulk_in,
            bulk_out,
            interrupt_in,
            max_in,
            in_buf: None,
            in_pos: 0,
            in_end: 0,
            framer: Framer::default(),
            // Room for a whole message up front: growing would leave copies of a command (a
            // PIN, a PUK) in freed memory.
            out_buf: Vec::with_capacity(max_message.min(MAX_IN_TRANSFER)),
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            halt_requested: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The reader's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The control channel for the session (ABORT, clear halt). Handles share the pipe's
    /// interface; make as many as needed.
    pub fn control(&self) -> UsbControl {
        UsbControl {
            interface: self.interface.clone(),
            halt_requested: Arc::clone(&self.halt_requested),
            abort_supported: true,
        }
    }

    /// The interrupt endpoint (card insertion and removal), once; `None` when the reader has
    /// none or it was taken already.
    pub fn take_events(&mut self) -> Option<UsbEvents> {
        self.interrupt_in.take().map(UsbEvents::new)
    }

    /// How long a bulk OUT transfer (one CCID command) may wait for the reader to take it
    /// before [`UsbError::WriteTimeout`]; 10 s by default.
    pub fn set_write_timeout(&mut self, timeout: Duration) {
        self.write_timeout = timeout;
    }

    /// Bytes the reader sent past the end of a message in the same transfer, dropped (QEMU's
    /// reader adds 7 to its GetParameters reply); see the module documentation.
    pub fn trailing_bytes_dropped(&self) -> u64 {
        self.framer.dropped()
    }

    /// Bytes of the current IN buffer not read yet.
    fn buffered(&self) -> &[u8] {
        match &self.in_buf {
            Some(b) => b.get(self.in_pos..self.in_end).unwrap_or(&[]),
            None => &[],
        }
    }

    /// Clears a halt on both bulk endpoints. A read transfer still queued is taken back first
    /// and bytes buffered from before are dropped: the session resynchronises on the next
    /// message.
    pub async fn clear_halt(&mut self) -> Result<(), UsbError> {
        self.drop_in_transfers().await;
        self.in_buf = None;
        self.in_pos = 0;
        self.in_end = 0;
        self.framer.reset();
        if self.bulk_out.pending() > 0 {
            self.bulk_out.cancel_all();
            while self.bulk_out.pending() > 0 {
                let mut done = self.bulk_out.next_complete().await;
                done.buffer.fill(0);
            }
        }
        // Done (or failed for good) once both requests were made: a later transfer need not
        // repeat them.
        let cleared_in = self.bulk_in.clear_halt().await;
        let cleared_out = self.bulk_out.clear_halt().await;
        self.halt_requested.store(false, Ordering::Release);
        cleared_in.and(cleared_out).map_err(|e| self.halt_error(e))
    }

    fn halt_error(&self, e: nusb::Error) -> UsbError {
        UsbError::from_open(&self.name, e)
    }

    async fn drop_in_transfers(&mut self) {
        if self.bulk_in.pending() > 0 {
            self.bulk_in.cancel_all();
            while self.bulk_in.pending() > 0 {
                let _ = self.bulk_in.next_complete().await;
            }
        }
    }

    /// Does a clear halt a [`UsbControl`] asked for.
    async fn pending_clear_halt(&mut self) -> Result<(), UsbError> {
        if self.halt_requested.load(Ordering::Acquire) {
            self.clear_halt().await?;
        }
        Ok(())
    }

    /// After a stall on `IN`: clear it (nothing is pending on a stalled endpoint) and report it.
    async fn stalled_in(&mut self) -> UsbError {
        self.drop_in_transfers().await;
        self.framer.reset();
        match self.bulk_in.clear_halt().await {
            Ok(()) => UsbError::Stall,
            Err(e) => self.halt_error(e),
        }
    }

    /// Waits for the OUT transfer in flight (one at most), for at most the write timeout.
    async fn complete_write(&mut self) -> Result<(), UsbError> {
        let deadline = Instant::now().checked_add(self.write_timeout);
        let ep = &mut self.bulk_out;
        let done = future::or(async { Some(ep.next_complete().await) }, async {
            match deadline {
                Some(deadline) => sleep_until(deadline).await,
                // A timeout too long to represent: wait as long as the reader does.
                None => future::pending().await,
            }
            None
        })
        .await;
        let done = match done {
            Some(done) => done,
            None => {
                // The reader does not take the data: take the transfer back.
                self.bulk_out.cancel_all();
                self.bulk_out.next_complete().await
            }
        };
        let status = done.status;
        let mut buffer = done.buffer;
        // The buffer held a command (maybe a VERIFY with a PIN): wipe it.
        buffer.fill(0);
        match status {
            Ok(()) => Ok(()),
            Err(TransferError::Cancelled) => Err(UsbError::WriteTimeout),
            Err(TransferError::Stall) => Err(match self.bulk_out.clear_halt().await {
                Ok(()) => UsbError::Stall,
                Err(e) => self.halt_error(e),
            }),
            Err(e) => Err(UsbError::from_transfer(e)),
        }
    }
}

impl Drop for UsbPipe {
    fn drop(&mut self) {
        self.out_buf.fill(0);
    }
}

impl embedded_io_async::ErrorType for UsbPipe {
    type Error = UsbError;
}

impl embedded_io_async::Read for UsbPipe {
    /// Reads bytes of the reader's bulk IN stream; never returns `Ok(0)` for a non-empty `buf`
    /// (zero-length packets are skipped). Cancel safe: the IN transfer stays queued and its data
    /// is kept for the next read.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, UsbError> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.pending_clear_halt().await?;
        loop {
            let have = self.buffered();
            if !have.is_empty() {
                let n = have.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), have.get(..n)) {
                    dst.copy_from_slice(src);
                }
                self.in_pos += n;
                return Ok(n);
            }
            if self.bulk_in.pending() == 0 {
                let packet = self.bulk_in.max_packet_size().max(1);
                let len = round_up(buf.len(), packet).clamp(packet, self.max_in);
                let mut transfer = match self.in_buf.take() {
                    Some(b) if b.capacity() >= len => b,
                    _ => Buffer::new(len),
                };
                transfer.set_requested_len(len);
                self.bulk_in.submit(transfer);
            }
            // Cancel safe: the transfer stays queued if this future is dropped here.
            let done = self.bulk_in.next_complete().await;
            self.in_pos = 0;
            self.in_end = 0;
            match done.status {
                // Zero bytes (a ZLP) leave nothing buffered: the loop submits again.
                Ok(()) => {
                    let short = done.buffer.len() < done.buffer.requested_len();
                    self.in_end = self.framer.accept(&done.buffer, short);
                    self.in_buf = Some(done.buffer);
                }
                Err(TransferError::Stall) => return Err(self.stalled_in().await),
                Err(e) => return Err(UsbError::from_transfer(e)),
            }
        }
    }
}

impl embedded_io_async::Write for UsbPipe {
    /// Buffers `buf`; [`flush`](embedded_io_async::Write::flush) sends what was written as one
    /// bulk transfer.
    async fn write(&mut self, buf: &[u8]) -> Result<usize, UsbError> {
        self.out_buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    /// Sends the buffered bytes as ONE bulk OUT transfer, with no zero-length packet after it,
    /// and waits until the reader took them. (A transfer of an earlier flush that was cancelled
    /// is waited for first.)
    async fn flush(&mut self) -> Result<(), UsbError> {
        while self.bulk_out.pending() > 0 {
            self.complete_write().await?;
        }
        self.pending_clear_halt().await?;
        if self.out_buf.is_empty() {
            return Ok(());
        }
        let mut transfer = Buffer::new(self.out_buf.len());
        transfer.extend_from_slice(&self.out_buf);
        self.out_buf.fill(0);
        self.out_buf.clear();
        self.bulk_out.submit(transfer);
        self.complete_write().await
    }
}

/// The control channel of a [`UsbPipe`] for the session: the CCID ABORT class request, and
/// clearing halted bulk endpoints.
#[derive(Clone)]
pub struct UsbControl {
    interface: Interface,
    halt_requested: Arc<AtomicBool>,
    /// Cleared once the reader stalled the ABORT request (QEMU's does).
    abort_supported: bool,
}

impl core::fmt::Debug for UsbControl {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UsbControl")
            .field("interface", &self.interface.interface_number())
            .field("abort_supported", &self.abort_supported)
            .finish_non_exhaustive()
    }
}

impl UsbControl {
    /// Whether the reader accepted (or has not yet refused) the ABORT control request.
    pub fn abort_supported(&self) -> bool {
        self.abort_supported
    }
}

impl crate::session::Control for UsbControl {
    type Error = UsbError;

    /// Sends the class request ABORT (0x21 / 0x01, wValue = seq << 8 | slot, wIndex = the
    /// interface). A reader that stalls it (QEMU's does) is taken as not supporting it and not
    /// asked again: the bulk PC_to_RDR_Abort the session sends next is then the whole abort.
    /// Only a removed reader is an error.
    async fn abort(&mut self, slot: u8, seq: u8) -> Result<(), UsbError> {
        if !self.abort_supported {
            return Ok(());
        }
        let result = self
            .interface
            .control_out(
                ControlOut {
                    control_type: ControlType::Class,
                    recipient: Recipient::Interface,
                    request: 0x01,
                    value: u16::from(seq) << 8 | u16::from(slot),
                    index: u16::from(self.interface.interface_number()),
                    data: &[],
                },
                CONTROL_TIMEOUT,
            )
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(TransferError::Stall) => {
                self.abort_supported = false;
                Ok(())
            }
            Err(TransferError::Disconnected) => Err(UsbError::Disconnected),
            // A timeout or another failure of the optional request: the bulk Abort follows.
            Err(_) => Ok(()),
        }
    }

    /// Asks the pipe to clear a halt on both bulk endpoints; it does so before its next transfer
    /// (the pipe owns the endpoints). The pipe already clears a stall it reports itself.
    async fn clear_halt(&mut self) -> Result<(), UsbError> {
        self.halt_requested.store(true, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::round_up;

    #[test]
    fn in_transfers_stay_on_packet_multiples() {
        assert_eq!(round_up(1, 64), 64);
        assert_eq!(round_up(10, 64), 64);
        assert_eq!(round_up(64, 64), 64);
        assert_eq!(round_up(65, 64), 128);
        assert_eq!(round_up(271, 64), 320);
        assert_eq!(round_up(10, 512), 512);
    }
}
