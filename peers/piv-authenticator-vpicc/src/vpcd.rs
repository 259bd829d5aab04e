//! The vpcd side: the TCP connection to pcscd's vpcd driver (vsmartcard), its message
//! framing (2-byte big-endian length, then the payload), TCP_QUICKACK before every read, and
//! the stop flag the signal handlers set.

use std::{
    io::{self, ErrorKind, Read, Write},
    net::{SocketAddr, TcpStream, ToSocketAddrs},
    os::fd::AsRawFd,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

/// Set by SIGTERM, SIGINT and SIGHUP: finish the current read and stop.
static STOP: AtomicBool = AtomicBool::new(false);
/// Whether to set TCP_QUICKACK before every read (`--no-quickack` clears it).
pub(crate) static QUICKACK: AtomicBool = AtomicBool::new(true);

extern "C" fn on_signal(_sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// SIGTERM, SIGINT and SIGHUP set the stop flag.
pub(crate) fn install_signal_handlers() {
    // SAFETY: plain sigaction with a handler that only stores to an atomic.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Whether a signal asked the program to stop.
pub(crate) fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Re-arm TCP_QUICKACK (Linux clears it again after a while, so set it before
/// every read).
fn quickack(stream: &TcpStream) {
    if !QUICKACK.load(Ordering::Relaxed) {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: setsockopt on a socket fd we own, with a properly sized int.
    unsafe {
        let one: libc::c_int = 1;
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    #[cfg(not(target_os = "linux"))]
    let _ = stream;
}

pub(crate) enum ReadEnd {
    /// vpcd closed the connection.
    Closed,
    /// A signal asked the program to stop.
    Stopped,
    /// The socket failed.
    Error(io::Error),
}

/// Fill `buf` completely, re-arming quick ACK before each read and checking the
/// stop flag whenever the read times out.
fn read_full(stream: &mut TcpStream, buf: &mut [u8]) -> Result<(), ReadEnd> {
    let mut filled = 0;
    while filled < buf.len() {
        if stopping() {
            return Err(ReadEnd::Stopped);
        }
        quickack(stream);
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(ReadEnd::Closed),
            Ok(n) => filled += n,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Err(ReadEnd::Closed),
            Err(e) => return Err(ReadEnd::Error(e)),
        }
    }
    Ok(())
}

pub(crate) fn read_message(stream: &mut TcpStream) -> Result<Vec<u8>, ReadEnd> {
    let mut len = [0u8; 2];
    read_full(stream, &mut len)?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    read_full(stream, &mut msg)?;
    Ok(msg)
}

pub(crate) fn send_message(stream: &mut TcpStream, payload: &[u8]) -> io::Result<()> {
    let len = u16::try_from(payload.len())
        .map_err(|_| io::Error::new(ErrorKind::InvalidInput, "message too long"))?;
    let mut frame = Vec::with_capacity(payload.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    stream.write_all(&frame)
}

pub(crate) fn connect(addr: &str, port: u16) -> io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = (addr, port).to_socket_addrs()?.collect();
    let mut last = io::Error::new(ErrorKind::NotFound, "no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, Duration::from_secs(2)) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}
