//! The reader's bulk endpoints as the session uses them: [`Pipe`].
//!
//! The session sends whole messages and reads replies. Any `embedded_io_async` byte stream that
//! reads and writes is a pipe (the USB backend, a firmware's USB host stack, a serial bridge, a
//! simulator): a message goes out as two writes (its header, then its APDU from the caller's
//! buffer) and one flush, and replies are read as a stream. A pipe that knows where messages
//! begin and end (the in-memory [`Loopback`](crate::loopback::Loopback)) implements [`Pipe`]
//! itself: it takes a message's parts where they lie, with no staging copy, and says it is
//! [`FRAMED`](Pipe::FRAMED), so the session reads a reply in one call instead of its header and
//! its body apart.

use embedded_io_async::{ErrorType, Read, Write};

use crate::io::write_all;

/// The bulk pipe to a reader: whole messages out, the reader's replies in.
#[allow(async_fn_in_trait)]
pub trait Pipe: ErrorType {
    /// Whether [`recv`](Self::recv) keeps to message boundaries: it never returns bytes of two
    /// messages in one call, and it returns a whole message when the buffer has room for it (a
    /// longer one comes over the next calls). `false` for a byte stream.
    const FRAMED: bool = false;

    /// Sends one message, `head` then `payload`, as one unit (on USB, one bulk transfer).
    /// `Ok(false)` when the pipe is closed: it took nothing, or claimed more than it was given.
    async fn send(&mut self, head: &[u8], payload: &[u8]) -> Result<bool, Self::Error>;

    /// Reads what the reader sent next into `buf`, at most `buf.len()` bytes; `Ok(0)` for a
    /// non-empty `buf` means the pipe is closed. The session cancels a `recv` whose deadline
    /// passed and calls it again later, so a cancelled call must lose no byte.
    async fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error>;
}

/// A byte stream is a pipe: a message is two writes (each repeated until all is taken) and one
/// flush, so a backend that sends one transfer per flush never sees part of a message.
impl<T: Read + Write> Pipe for T {
    async fn send(&mut self, head: &[u8], payload: &[u8]) -> Result<bool, T::Error> {
        if !write_all(self, head).await? || !write_all(self, payload).await? {
            return Ok(false);
        }
        self.flush().await?;
        Ok(true)
    }

    async fn recv(&mut self, buf: &mut [u8]) -> Result<usize, T::Error> {
        self.read(buf).await
    }
}
