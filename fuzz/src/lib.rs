//! Shared pieces of the fuzz targets: how a fuzz input is cut into card (or reader) answers, and
//! a core `Transport` that replays them while recording every command the flow sent.
//!
//! Input format of the replaying targets (also what `examples/seeds.rs` writes):
//! a sequence of frames, each `len` then `len` bytes, where `len` is one byte, or `FF` followed
//! by a big-endian `u16` for longer frames. A frame of length `FE` (one byte `FE`, no payload)
//! stands for a transport failure. A truncated last frame gives the bytes that remain.
#![forbid(unsafe_code)]

use cardunlock_core::{ErrorKind, Transport};

/// The marker of a failed exchange (the transport reports [`ErrorKind::Timeout`]).
pub const FAIL: u8 = 0xFE;
/// The marker of a frame with a two-byte length.
pub const LONG: u8 = 0xFF;

/// One frame of a fuzz input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Bytes (a card answer, a reader message, a T=1 block...).
    Bytes(&'a [u8]),
    /// The carrier failed.
    Fail,
}

/// Cuts a fuzz input into [`Frame`]s.
#[derive(Clone, Debug)]
pub struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Frames<'a> {
    /// Frames of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    /// Bytes not yet cut into frames.
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        let (&first, rest) = self.rest.split_first()?;
        let (len, rest) = match first {
            FAIL => {
                self.rest = rest;
                return Some(Frame::Fail);
            }
            LONG => match rest {
                [hi, lo, tail @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), tail),
                _ => (rest.len(), &[][..]),
            },
            n => (usize::from(n), rest),
        };
        let len = len.min(rest.len());
        let (bytes, tail) = rest.split_at(len);
        self.rest = tail;
        Some(Frame::Bytes(bytes))
    }
}

/// Appends `bytes` as one frame to `out` (for writing seeds).
pub fn push_frame(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.len() < usize::from(FAIL) {
        out.push(bytes.len() as u8);
    } else {
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        out.push(LONG);
        out.extend_from_slice(&len.to_be_bytes());
    }
    out.extend_from_slice(&bytes[..bytes.len().min(usize::from(u16::MAX))]);
}

/// A card that answers every command with the next frame of the fuzz input; when the input is
/// out, the card is gone ([`ErrorKind::CardRemoved`]). Every command is recorded.
#[derive(Debug)]
pub struct ReplayCard<'a> {
    frames: Frames<'a>,
    /// Every command APDU sent, as encoded.
    pub sent: Vec<Vec<u8>>,
    extended: bool,
}

impl<'a> ReplayCard<'a> {
    /// A card answering with the frames of `data`; `extended`: whether extended-length APDUs
    /// pass (else the driver chains).
    pub fn new(data: &'a [u8], extended: bool) -> Self {
        Self {
            frames: Frames::new(data),
            sent: Vec::new(),
            extended,
        }
    }

    /// Commands sent with this instruction byte.
    pub fn count_ins(&self, ins: u8) -> usize {
        self.sent.iter().filter(|c| c.get(1) == Some(&ins)).count()
    }
}

impl Transport for ReplayCard<'_> {
    type Error = ErrorKind;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
        self.sent.push(command.to_vec());
        match self.frames.next() {
            None => Err(ErrorKind::CardRemoved),
            Some(Frame::Fail) => Err(ErrorKind::Timeout),
            Some(Frame::Bytes(b)) => {
                let dst = response
                    .get_mut(..b.len())
                    .ok_or(ErrorKind::ResponseTooLong)?;
                dst.copy_from_slice(b);
                Ok(b.len())
            }
        }
    }

    fn supports_extended_length(&self) -> bool {
        self.extended
    }
}

/// A card that records the answers of `inner` as frames (seed generation).
#[derive(Debug)]
pub struct Recorder<T> {
    /// The real card.
    pub inner: T,
    /// The answers as frames (see the module documentation).
    pub frames: Vec<u8>,
}

impl<T: Transport> Transport for Recorder<T> {
    type Error = T::Error;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, T::Error> {
        let n = self.inner.transmit(command, response).await?;
        push_frame(&mut self.frames, &response[..n]);
        Ok(n)
    }

    fn supports_extended_length(&self) -> bool {
        self.inner.supports_extended_length()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut out = Vec::new();
        push_frame(&mut out, &[0x90, 0x00]);
        push_frame(&mut out, &[7; 300]);
        out.push(FAIL);
        push_frame(&mut out, &[]);
        let got: Vec<_> = Frames::new(&out).collect();
        assert_eq!(
            got,
            vec![
                Frame::Bytes(&[0x90, 0x00]),
                Frame::Bytes(&[7; 300]),
                Frame::Fail,
                Frame::Bytes(&[]),
            ]
        );
    }
}
