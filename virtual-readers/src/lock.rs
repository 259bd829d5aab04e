//! A machine-wide lock on one vpcd reader, so that tests in different processes (cargo
//! test binaries, nextest's process per test, another crate's tests) do not put cards into the
//! same reader at once.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

/// The lock of vpcd reader `n` is the loopback TCP port `LOCK_BASE_PORT + n`: whoever has it
/// bound holds the lock. The kernel releases it when the holder exits, even by a crash. The
/// port is below Linux's ephemeral range (32768-60999), so no outgoing connection takes it.
pub const LOCK_BASE_PORT: u16 = 25963;

/// Exclusive use of one vpcd reader across processes, held until dropped.
#[derive(Debug)]
pub struct ReaderLock {
    _port: TcpListener,
}

impl ReaderLock {
    /// Waits up to `timeout` for the lock of vpcd reader `index`.
    pub fn acquire(index: u8, timeout: Duration) -> io::Result<Self> {
        let addr = SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            LOCK_BASE_PORT.saturating_add(u16::from(index)),
        ));
        let deadline = Instant::now() + timeout;
        loop {
            match TcpListener::bind(addr) {
                Ok(port) => return Ok(Self { _port: port }),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        }
    }
}
