//! `write_all` and `read_exact` that never panic.
//!
//! embedded-io-async's provided methods panic when a port breaks its contract: `write_all` on
//! a `write` that returns 0 (`panic!`) or more than it was given (slice index), `read_exact` on
//! a `read` that returns more than it was given (slice index). A firmware links them through
//! every UART and USB pipe, so these take their place: a port that stalls or overstates is an
//! end of stream, an error the caller already handles.

use embedded_io_async::{Read, ReadExactError, Write};

/// Writes all of `buf` (no flush). `Ok(false)` when the port took nothing or claimed more
/// than it was given: the stream is over.
pub(crate) async fn write_all<W: Write>(port: &mut W, mut buf: &[u8]) -> Result<bool, W::Error> {
    while !buf.is_empty() {
        let n = port.write(buf).await?;
        buf = match buf.get(n..) {
            Some(rest) if n > 0 => rest,
            _ => return Ok(false),
        };
    }
    Ok(true)
}

/// Fills all of `buf` (the UART drivers of `t0` / `t1`); [`ReadExactError::UnexpectedEof`] when the port returns 0 bytes or
/// claims more than it was given.
#[cfg_attr(not(feature = "tpdu"), allow(dead_code))]
pub(crate) async fn read_exact<R: Read>(
    port: &mut R,
    mut buf: &mut [u8],
) -> Result<(), ReadExactError<R::Error>> {
    while !buf.is_empty() {
        let n = port.read(buf).await.map_err(ReadExactError::Other)?;
        buf = match buf.get_mut(n..) {
            Some(rest) if n > 0 => rest,
            _ => return Err(ReadExactError::UnexpectedEof),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_io_async::{ErrorKind, ErrorType};

    /// A port whose `read` and `write` both claim `claim` bytes, whatever they were given.
    struct Liar {
        claim: usize,
    }

    impl ErrorType for Liar {
        type Error = ErrorKind;
    }

    impl Read for Liar {
        async fn read(&mut self, _: &mut [u8]) -> Result<usize, ErrorKind> {
            Ok(self.claim)
        }
    }

    impl Write for Liar {
        async fn write(&mut self, _: &[u8]) -> Result<usize, ErrorKind> {
            Ok(self.claim)
        }

        async fn flush(&mut self) -> Result<(), ErrorKind> {
            Ok(())
        }
    }

    /// Proves a port returning 0 or more than it was given ends the stream instead of
    /// panicking (embedded-io-async's own `write_all` / `read_exact` panic on both).
    #[test]
    fn a_lying_port_is_an_end_of_stream_not_a_panic() {
        for claim in [0, 9] {
            let mut port = Liar { claim };
            let wrote = embassy_futures::block_on(write_all(&mut port, &[1; 4]));
            assert_eq!(wrote, Ok(false), "write claiming {claim}");
            let mut buf = [0u8; 4];
            let read = embassy_futures::block_on(read_exact(&mut port, &mut buf));
            assert!(
                matches!(read, Err(ReadExactError::UnexpectedEof)),
                "read claiming {claim}"
            );
        }
        let mut port = Liar { claim: 2 };
        assert_eq!(
            embassy_futures::block_on(write_all(&mut port, &[1; 4])),
            Ok(true)
        );
    }
}
