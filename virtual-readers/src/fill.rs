//! The one read loop of both peers (vpcd over TCP, QEMU's VSCard over a unix socket): exactly
//! `buf.len()` bytes, polling a stop flag between short reads.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};

/// How a [`fill`] ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Filled {
    /// The buffer is full.
    Full,
    /// The peer closed the connection before the first byte (at a message boundary).
    Closed,
    /// The stop flag was raised.
    Stopped,
}

/// Reads exactly `buf.len()` bytes from `stream` (whose read timeout bounds each wait).
/// `at_boundary`: EOF before the first byte is a clean close rather than an error.
/// `before_read` runs before every read (vpcd's socket re-arms TCP_QUICKACK there); `peer`
/// names the other side in the error of a connection closed mid-message.
pub(crate) fn fill(
    stream: &mut impl Read,
    buf: &mut [u8],
    stop: &AtomicBool,
    at_boundary: bool,
    mut before_read: impl FnMut(),
    peer: &str,
) -> io::Result<Filled> {
    let mut pos = 0;
    while let Some(rest) = buf.get_mut(pos..).filter(|rest| !rest.is_empty()) {
        if stop.load(Ordering::Acquire) {
            return Ok(Filled::Stopped);
        }
        before_read();
        match stream.read(rest) {
            Ok(0) if stop.load(Ordering::Acquire) => return Ok(Filled::Stopped),
            Ok(0) if pos == 0 && at_boundary => return Ok(Filled::Closed),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{peer} closed the connection in the middle of a message"),
                ))
            }
            Ok(n) => pos += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Filled::Full)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its chunks one read at a time, then EOF.
    struct Chunks(Vec<io::Result<Vec<u8>>>);

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let chunk = self.0.remove(0)?;
            buf[..chunk.len()].copy_from_slice(&chunk);
            Ok(chunk.len())
        }
    }

    fn run(chunks: Vec<io::Result<Vec<u8>>>, len: usize, at_boundary: bool) -> io::Result<Filled> {
        let mut buf = vec![0; len];
        fill(
            &mut Chunks(chunks),
            &mut buf,
            &AtomicBool::new(false),
            at_boundary,
            || {},
            "peer",
        )
    }

    #[test]
    fn short_reads_and_timeouts_are_joined() {
        let timeout = Err(io::Error::from(io::ErrorKind::TimedOut));
        let got = run(vec![Ok(vec![1]), timeout, Ok(vec![2, 3])], 3, true);
        assert_eq!(got.unwrap(), Filled::Full);
    }

    #[test]
    fn eof_at_a_boundary_is_a_close_and_mid_message_an_error() {
        assert_eq!(run(vec![], 2, true).unwrap(), Filled::Closed);
        let e = run(vec![], 2, false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let e = run(vec![Ok(vec![1])], 2, true).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(e.to_string().contains("peer closed the connection"), "{e}");
    }

    #[test]
    fn a_raised_stop_flag_ends_the_wait() {
        let stop = AtomicBool::new(true);
        let mut buf = [0; 2];
        let got = fill(
            &mut Chunks(vec![Ok(vec![1, 2])]),
            &mut buf,
            &stop,
            true,
            || {},
            "peer",
        );
        assert_eq!(got.unwrap(), Filled::Stopped);
    }

    #[test]
    fn other_errors_end_it() {
        let e = run(
            vec![Err(io::Error::from(io::ErrorKind::ConnectionReset))],
            2,
            true,
        );
        assert_eq!(e.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
    }
}
