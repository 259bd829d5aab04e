//! Shared pieces of the fuzz targets: how a fuzz input is cut into card (or reader) answers, and
//! the card that answers with them (`cardunlock-testkit`'s replay, behind its recorder so the
//! target sees every command that reached the card).
//!
//! Input format of the replaying targets (also what `examples/seeds.rs` writes):
//! a sequence of frames, each `len` then `len` bytes, where `len` is one byte, or `FF` followed
//! by a big-endian `u16` for longer frames. A frame of length `FE` (one byte `FE`, no payload)
//! stands for a transport failure. A truncated last frame gives the bytes that remain.
#![forbid(unsafe_code)]

use cardunlock_core::ErrorKind;
use cardunlock_testkit::{Exchange, Recorder, Replay};

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

/// A frame as a card's answer to whatever command: bytes, or the transport failing with
/// [`ErrorKind::Timeout`].
fn exchange(frame: Frame<'_>) -> Exchange<'_> {
    match frame {
        Frame::Bytes(bytes) => Exchange::any(bytes),
        Frame::Fail => Exchange::failure(ErrorKind::Timeout),
    }
}

/// Bytes of commands and answers a [`ReplayCard`] keeps (each exchange reserves the driver's
/// response buffer while in flight): about a thousand exchanges, far more than a flow sends
/// before it gives up. Past that the exchange fails before the card sees it.
pub const TAPE_BYTES: usize = 1 << 20;

/// A card that answers every command with the next frame of the fuzz input; when the input is
/// out, the card is gone ([`ErrorKind::CardRemoved`]). Every command that reached it is kept:
/// `card.tape().commands()`.
pub type ReplayCard<'a> =
    Recorder<Replay<core::iter::Map<Frames<'a>, FrameExchange>>, &'a mut [u8]>;

/// How a [`Frame`] becomes an [`Exchange`].
pub type FrameExchange = for<'f> fn(Frame<'f>) -> Exchange<'f>;

/// A [`ReplayCard`] answering with the frames of `data`, keeping the exchanges in `tape` (a
/// target reuses one [`TAPE_BYTES`] buffer: a fresh one per run halves the runs per second);
/// `extended`: whether extended-length APDUs pass (else the driver chains).
pub fn replay_card<'a>(data: &'a [u8], extended: bool, tape: &'a mut [u8]) -> ReplayCard<'a> {
    let frames = Frames::new(data).map(exchange as FrameExchange);
    Recorder::new(Replay::new(frames).with_extended_length(extended), tape)
}

/// The answers of a recording as frames (seed generation): a failed exchange as [`FAIL`].
pub fn frames_of<'a>(exchanges: impl Iterator<Item = Exchange<'a>>) -> Vec<u8> {
    let mut out = Vec::new();
    for e in exchanges {
        match e.answer {
            Ok(bytes) => push_frame(&mut out, bytes),
            Err(_) => out.push(FAIL),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use cardunlock_core::Transport;
    use embassy_futures::block_on;

    /// The replay card answers with the frames in order, fails on a `FAIL` frame, is gone when
    /// the input is out, and keeps every command (the flows target's checks read them).
    #[test]
    fn the_replay_card_answers_with_the_frames_and_keeps_the_commands() {
        let mut input = Vec::new();
        push_frame(&mut input, &[0x90, 0x00]);
        input.push(FAIL);
        let mut tape = vec![0; TAPE_BYTES];
        let mut card = replay_card(&input, true, &mut tape);
        assert!(card.supports_extended_length());
        let mut buf = [0u8; 16];
        assert_eq!(block_on(card.transmit(&[0, 0xA4, 4, 0], &mut buf)), Ok(2));
        assert_eq!(&buf[..2], &[0x90, 0x00]);
        let rrc = [0, 0x2C, 0, 0x80];
        assert_eq!(
            block_on(card.transmit(&rrc, &mut buf)),
            Err(ErrorKind::Timeout)
        );
        assert_eq!(
            block_on(card.transmit(&rrc, &mut buf)),
            Err(ErrorKind::CardRemoved)
        );
        let sent: Vec<&[u8]> = card.tape().commands().collect();
        assert_eq!(sent, [&[0, 0xA4, 4, 0][..], &rrc, &rrc]);
        assert_eq!(
            frames_of(card.tape().exchanges()),
            [2, 0x90, 0x00, FAIL, FAIL]
        );
    }

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
