//! A card served on its own thread, for tests and demos.

use std::io;
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::connection::{Connection, DEFAULT_CONNECT_RETRY};
use crate::VirtualCard;

/// Options of [`ServedCard::spawn_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeOptions {
    /// How long to retry connecting while vpcd is not listening.
    pub connect_retry: Duration,
    /// Set `TCP_QUICKACK` before every read (Linux). Off only to measure what it saves.
    pub quickack: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            connect_retry: DEFAULT_CONNECT_RETRY,
            quickack: true,
        }
    }
}

/// Removes a [`ServedCard`] from its reader from anywhere (another thread, a transport wrapper
/// in a test), without waiting for the serving thread.
#[derive(Clone, Debug)]
pub struct StopHandle {
    stop: Arc<AtomicBool>,
    stream: Arc<TcpStream>,
}

impl StopHandle {
    /// Raises the stop flag and shuts the connection down: vpcd sees the card gone at its next
    /// exchange. Idempotent.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        // Already shut down or closed by vpcd: nothing left to do.
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Whether [`StopHandle::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// A card in a vpcd reader, served by a background thread. Stopping or dropping it disconnects
/// from vpcd: the card is removed from the reader.
#[derive(Debug)]
pub struct ServedCard {
    handle: StopHandle,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl ServedCard {
    /// Connects to vpcd at `addr` (retrying for [`DEFAULT_CONNECT_RETRY`] while it is not
    /// listening), then serves `card` on a new thread. Returns once connected; pcscd sees the
    /// card at its next reader poll (within about 400 ms), so wait for it through PC/SC.
    pub fn spawn<C>(card: C, addr: impl ToSocketAddrs) -> io::Result<Self>
    where
        C: VirtualCard + Send + 'static,
    {
        Self::spawn_with(card, addr, ServeOptions::default())
    }

    /// [`ServedCard::spawn`] with non-default options.
    pub fn spawn_with<C>(
        mut card: C,
        addr: impl ToSocketAddrs,
        options: ServeOptions,
    ) -> io::Result<Self>
    where
        C: VirtualCard + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let mut connection = Connection::connect(addr, options.connect_retry, &stop)?;
        connection.set_quickack(options.quickack);
        let stream = Arc::new(connection.try_clone_stream()?);
        let flag = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name("virtual-readers".into())
            .spawn(move || connection.serve(&mut card, &flag))?;
        Ok(Self {
            handle: StopHandle { stop, stream },
            thread: Some(thread),
        })
    }

    /// A handle that removes the card from anywhere.
    pub fn stop_handle(&self) -> StopHandle {
        self.handle.clone()
    }

    /// Whether the serving thread still runs (false once stopped or vpcd closed the
    /// connection).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Removes the card: disconnects and waits for the serving thread. Returns how serving
    /// ended (an I/O error other than the disconnect itself). Idempotent.
    pub fn stop(&mut self) -> io::Result<()> {
        self.handle.stop();
        match self.thread.take() {
            None => Ok(()),
            Some(t) => t
                .join()
                .map_err(|_| io::Error::other("the vpcd card thread panicked"))?,
        }
    }
}

impl Drop for ServedCard {
    fn drop(&mut self) {
        // Nothing to report from a destructor.
        let _ = self.stop();
    }
}
