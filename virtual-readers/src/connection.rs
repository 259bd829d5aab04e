//! One connection to vpcd, and the message loop that serves a card over it.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

#[cfg(any(target_os = "linux", target_os = "android"))]
use socket2::SockRef;
use zeroize::{Zeroize, Zeroizing};

use crate::fill::{fill, Filled};
use crate::VirtualCard;

/// How long [`serve`] and [`crate::ServedCard::spawn`] keep retrying when vpcd is not listening
/// yet (pcscd still starting).
pub const DEFAULT_CONNECT_RETRY: Duration = Duration::from_secs(10);

/// How often a blocked read wakes up to look at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);
/// Pause between two connection attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Timeout of one connection attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A control message from vpcd (a 1-byte payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// `00`: power the card off.
    PowerOff,
    /// `01`: power the card on (a cold reset).
    PowerOn,
    /// `02`: warm reset.
    Reset,
    /// `04`: send the ATR.
    GetAtr,
    /// Any other byte: ignored, as vpcd defines no other control message.
    Unknown(u8),
}

impl Control {
    /// The control message of payload byte `b`.
    pub const fn from_byte(b: u8) -> Self {
        match b {
            0x00 => Self::PowerOff,
            0x01 => Self::PowerOn,
            0x02 => Self::Reset,
            0x04 => Self::GetAtr,
            other => Self::Unknown(other),
        }
    }

    /// The payload byte of this control message.
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::PowerOff => 0x00,
            Self::PowerOn => 0x01,
            Self::Reset => 0x02,
            Self::GetAtr => 0x04,
            Self::Unknown(b) => b,
        }
    }
}

/// A connection to vpcd, as a virtual card.
///
/// While it is open the reader shows a card; dropping it removes the card.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    quickack: bool,
    /// Receive buffer. Commands carry PINs and PUKs: zeroized after every message.
    buf: Zeroizing<Vec<u8>>,
}

impl Connection {
    /// Connects to vpcd at `addr`, retrying for `retry_for` while nothing listens there (pcscd
    /// not started yet), and giving up early when `stop` is raised (then the error is
    /// [`io::ErrorKind::Interrupted`]).
    pub fn connect(
        addr: impl ToSocketAddrs,
        retry_for: Duration,
        stop: &AtomicBool,
    ) -> io::Result<Self> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        let deadline = Instant::now() + retry_for;
        loop {
            let mut last_error =
                io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to");
            for a in &addrs {
                match TcpStream::connect_timeout(a, CONNECT_TIMEOUT) {
                    Ok(stream) => return Self::from_stream(stream),
                    Err(e) => last_error = e,
                }
            }
            if stop.load(Ordering::Acquire) {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "stopped while connecting to vpcd",
                ));
            }
            if Instant::now() >= deadline || addrs.is_empty() {
                return Err(last_error);
            }
            thread::sleep(RETRY_PAUSE);
        }
    }

    /// Wraps an already connected stream (sets `TCP_NODELAY` and the stop-poll read timeout).
    pub fn from_stream(stream: TcpStream) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(STOP_POLL))?;
        Ok(Self {
            stream,
            quickack: true,
            buf: Zeroizing::new(Vec::new()),
        })
    }

    /// Whether `TCP_QUICKACK` is set before every read (the default, on Linux). Turning it off
    /// is only useful to measure what it saves.
    pub fn set_quickack(&mut self, on: bool) {
        self.quickack = on;
    }

    /// A second handle to the socket, e.g. to shut it down from another thread
    /// (`shutdown(Both)` makes [`Connection::serve`] return at once: the card is removed).
    pub fn try_clone_stream(&self) -> io::Result<TcpStream> {
        self.stream.try_clone()
    }

    /// Serves `card` until `stop` is raised (checked at least every 50 ms) or vpcd closes the
    /// connection, both `Ok(())`. A connection lost in the middle of a message, or any other
    /// socket error, is an error.
    pub fn serve<C: VirtualCard + ?Sized>(
        &mut self,
        card: &mut C,
        stop: &AtomicBool,
    ) -> io::Result<()> {
        loop {
            let mut header = [0u8; 2];
            match self.fill(&mut header, stop, true)? {
                Filled::Full => {}
                Filled::Closed | Filled::Stopped => return Ok(()),
            }
            let len = usize::from(u16::from_be_bytes(header));
            let mut body = std::mem::take(&mut *self.buf);
            body.clear();
            body.resize(len, 0);
            let filled = self.fill(&mut body, stop, false);
            let result = match filled {
                Ok(Filled::Full) => self.handle(card, &body).map(|()| true),
                Ok(Filled::Closed | Filled::Stopped) => Ok(false),
                Err(e) => Err(e),
            };
            body.zeroize();
            *self.buf = body;
            if !result? {
                return Ok(());
            }
        }
    }

    /// Acts on one message from vpcd.
    fn handle<C: VirtualCard + ?Sized>(&mut self, card: &mut C, message: &[u8]) -> io::Result<()> {
        match message {
            [] => Ok(()),
            [control] => match Control::from_byte(*control) {
                Control::PowerOff => {
                    card.power_off();
                    Ok(())
                }
                Control::PowerOn | Control::Reset => {
                    card.reset();
                    Ok(())
                }
                Control::GetAtr => {
                    let atr = card.atr();
                    self.send(&atr)
                }
                Control::Unknown(_) => Ok(()),
            },
            apdu => {
                let response = Zeroizing::new(card.transmit(apdu));
                self.send(&response)
            }
        }
    }

    /// Sends one message (length and payload in one write).
    fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        let len = u16::try_from(payload.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "card response longer than 65535 bytes",
            )
        })?;
        let mut frame = Zeroizing::new(Vec::with_capacity(payload.len() + 2));
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame)?;
        self.stream.flush()
    }

    /// Reads exactly `buf.len()` bytes, re-arming TCP_QUICKACK before each read (see
    /// [`fill`](crate::fill::fill)).
    fn fill(&mut self, buf: &mut [u8], stop: &AtomicBool, at_boundary: bool) -> io::Result<Filled> {
        let this = &*self;
        fill(
            &mut &this.stream,
            buf,
            stop,
            at_boundary,
            || this.quickack(),
            "vpcd",
        )
    }

    /// Asks the kernel to ACK at once: vpcd sends the length and the body of a message in two
    /// segments and waits for the ACK of the first (Nagle) before sending the second.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn quickack(&self) {
        if self.quickack {
            // Best effort: a failure only costs latency.
            let _ = SockRef::from(&self.stream).set_quickack(true);
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn quickack(&self) {}
}

/// Connects to vpcd at `addr` (retrying for [`DEFAULT_CONNECT_RETRY`]) and serves `card` until
/// `stop` is raised or vpcd closes the connection. Returning closes the connection: the card
/// leaves the reader.
pub fn serve<C: VirtualCard + ?Sized>(
    card: &mut C,
    addr: impl ToSocketAddrs,
    stop: &AtomicBool,
) -> io::Result<()> {
    Connection::connect(addr, DEFAULT_CONNECT_RETRY, stop)?.serve(card, stop)
}
