//! A scripted reader: canned (possibly malformed) replies, for robustness tests.

use std::collections::VecDeque;
use std::task::Poll;

use cardunlock_ccid::codec::HEADER_LEN;

use crate::reader::adjust_length;

/// A scripted reader for robustness tests: every flushed message gets the next reply of a
/// script (raw bytes, possibly malformed), optionally patched to answer it (its `bSlot` and
/// `bSeq` copied in, `dwLength` made to match). When the script is out, nothing answers (a
/// [`TestClock`](crate::TestClock) then lets the deadline pass).
#[derive(Debug, Default)]
pub struct ScriptPipe {
    script: VecDeque<ScriptReply>,
    readable: VecDeque<u8>,
    pending: Vec<u8>,
    /// Every message the session flushed.
    pub written: Vec<Vec<u8>>,
}

/// One reply of a [`ScriptPipe`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScriptReply {
    /// The bytes (at least a header's worth is useful, anything goes).
    pub bytes: Vec<u8>,
    /// Copy the command's `bSlot` and `bSeq` into bytes 5 and 6.
    pub answer: bool,
    /// Set `dwLength` to the length that follows the header.
    pub fix_length: bool,
}

impl ScriptPipe {
    /// A pipe answering with `script`.
    pub fn new(script: impl IntoIterator<Item = ScriptReply>) -> Self {
        Self {
            script: script.into_iter().collect(),
            ..Self::default()
        }
    }
}

impl embedded_io_async::ErrorType for ScriptPipe {
    type Error = core::convert::Infallible;
}

impl embedded_io_async::Read for ScriptPipe {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let readable = &mut self.readable;
        core::future::poll_fn(|_cx| {
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            if readable.is_empty() {
                return Poll::Pending;
            }
            let n = buf.len().min(readable.len());
            for (dst, src) in buf.iter_mut().zip(readable.drain(..n)) {
                *dst = src;
            }
            Poll::Ready(Ok(n))
        })
        .await
    }
}

impl embedded_io_async::Write for ScriptPipe {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        let msg = core::mem::take(&mut self.pending);
        if let Some(mut r) = self.script.pop_front() {
            if r.answer {
                for i in [5, 6] {
                    if let (Some(dst), Some(src)) = (r.bytes.get_mut(i), msg.get(i)) {
                        *dst = *src;
                    }
                }
            }
            if r.fix_length && r.bytes.len() >= HEADER_LEN {
                let l = u32::try_from(r.bytes.len() - HEADER_LEN).unwrap_or(u32::MAX);
                adjust_length(&mut r.bytes, |_| l);
            }
            self.readable.extend(r.bytes);
        }
        self.written.push(msg);
        Ok(())
    }
}
