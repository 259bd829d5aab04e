//! [`Tape`]: exchanges kept in caller-provided storage; [`Recorder`]: the transport that keeps
//! them.

use cardunlock_core::{ErrorKind, Transport, TransportError};

use crate::{Exchange, Replay};

/// Bytes before the command: the answer's tag and the command's length.
const HEAD: usize = 1 + 4;
/// Bytes between the command and the answer: the answer's length.
const MID: usize = 4;

/// The transport failures a tape can keep, by tag (tag 0 is an answer).
const KINDS: [ErrorKind; 8] = [
    ErrorKind::NoCard,
    ErrorKind::CardRemoved,
    ErrorKind::CardReset,
    ErrorKind::Timeout,
    ErrorKind::ResponseTooLong,
    ErrorKind::Unavailable,
    ErrorKind::InvalidCommand,
    ErrorKind::Other,
];

fn tag(answer: Result<&[u8], ErrorKind>) -> u8 {
    match answer {
        Ok(_) => 0,
        // A kind added to the core later is kept as `Other`.
        Err(kind) => KINDS
            .iter()
            .position(|k| *k == kind)
            .map_or(KINDS.len() as u8, |i| i as u8 + 1),
    }
}

fn kind_of(tag: u8) -> ErrorKind {
    KINDS
        .get(usize::from(tag).wrapping_sub(1))
        .copied()
        .unwrap_or(ErrorKind::Other)
}

/// Exchanges (command and answer, or command and transport failure) kept in order in storage
/// the caller provides: `[u8; N]`, `&mut [u8]`, or a `Vec<u8>` of a chosen length. It never
/// grows: what does not fit is refused. The commands carry test PINs and PUKs: the storage is
/// wiped when the tape is dropped (not the copies a move of an array leaves behind).
pub struct Tape<B: AsMut<[u8]>> {
    buf: B,
    used: usize,
    count: usize,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Tape<B> {
    /// An empty tape over `buf` (its whole length is the capacity).
    pub fn new(buf: B) -> Self {
        Self {
            buf,
            used: 0,
            count: 0,
        }
    }

    /// Whether an exchange of a `command_len`-byte command and an answer of up to `answer_len`
    /// bytes fits.
    pub fn has_room(&self, command_len: usize, answer_len: usize) -> bool {
        let need = HEAD
            .saturating_add(command_len)
            .saturating_add(MID)
            .saturating_add(answer_len);
        self.buf.as_ref().len().saturating_sub(self.used) >= need
    }

    /// Appends one exchange; `false` (and the tape unchanged) when it does not fit.
    fn push(&mut self, command: &[u8], answer: Result<&[u8], ErrorKind>) -> bool {
        let answer_bytes = answer.unwrap_or(&[]);
        let (Ok(command_len), Ok(answer_len)) = (
            u32::try_from(command.len()),
            u32::try_from(answer_bytes.len()),
        ) else {
            return false;
        };
        if !self.has_room(command.len(), answer_bytes.len()) {
            return false;
        }
        let Some(free) = self.buf.as_mut().get_mut(self.used..) else {
            return false;
        };
        let mut at = 0;
        for part in [
            &[tag(answer)][..],
            &command_len.to_le_bytes(),
            command,
            &answer_len.to_le_bytes(),
            answer_bytes,
        ] {
            let Some(dst) = free.get_mut(at..at + part.len()) else {
                return false;
            };
            dst.copy_from_slice(part);
            at += part.len();
        }
        self.used += at;
        self.count += 1;
        true
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Tape<B> {
    /// Number of exchanges kept.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no exchange is kept.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of storage used.
    pub fn bytes_used(&self) -> usize {
        self.used
    }

    /// The exchanges, in order (each with its command).
    pub fn exchanges(&self) -> Exchanges<'_> {
        Exchanges {
            rest: self.buf.as_ref().get(..self.used).unwrap_or(&[]),
        }
    }

    /// The commands, in order.
    pub fn commands(&self) -> impl Iterator<Item = &[u8]> {
        self.exchanges().filter_map(|e| e.command)
    }

    /// A [`Replay`] of these exchanges from the start, each command checked.
    pub fn replay(&self) -> Replay<Exchanges<'_>> {
        Replay::new(self.exchanges())
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> core::fmt::Debug for Tape<B> {
    /// Counts only: the bytes hold the commands as sent, secrets included.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tape")
            .field("exchanges", &self.count)
            .field("bytes_used", &self.used)
            .field("capacity", &self.buf.as_ref().len())
            .finish()
    }
}

impl<B: AsMut<[u8]>> Drop for Tape<B> {
    fn drop(&mut self) {
        // Only the part written: a tape over a reused buffer costs what it kept, not its size.
        let buf = self.buf.as_mut();
        let len = buf.len();
        let written = buf.get_mut(..self.used.min(len)).unwrap_or_default();
        written.fill(0);
        // Keeps the wipe from being dropped as a dead store.
        core::hint::black_box(written);
    }
}

/// The exchanges of a [`Tape`], in order.
#[derive(Clone, Debug)]
pub struct Exchanges<'a> {
    rest: &'a [u8],
}

/// Splits a little-endian `u32` length and that many bytes off the front of `bytes`.
fn split_counted(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
    (len <= rest.len()).then(|| rest.split_at(len))
}

impl<'a> Iterator for Exchanges<'a> {
    type Item = Exchange<'a>;

    fn next(&mut self) -> Option<Exchange<'a>> {
        let (&tag, rest) = self.rest.split_first()?;
        let (command, rest) = split_counted(rest)?;
        let (answer, rest) = split_counted(rest)?;
        self.rest = rest;
        Some(Exchange {
            command: Some(command),
            answer: if tag == 0 {
                Ok(answer)
            } else {
                Err(kind_of(tag))
            },
        })
    }
}

/// A [`Transport`] that forwards to another one and keeps every exchange on a [`Tape`],
/// failures included.
///
/// A command is forwarded only when the tape has room for it and for the largest answer the
/// response buffer admits: otherwise the recorder fails the exchange with [`ErrorKind::Other`]
/// before the card sees it and [`Recorder::is_full`] says so. So the tape holds every command
/// that reached the card.
pub struct Recorder<T, B: AsMut<[u8]>> {
    inner: T,
    tape: Tape<B>,
    full: bool,
}

impl<T, B: AsRef<[u8]> + AsMut<[u8]>> Recorder<T, B> {
    /// Records the exchanges with `inner` in `buf`.
    pub fn new(inner: T, buf: B) -> Self {
        Self {
            inner,
            tape: Tape::new(buf),
            full: false,
        }
    }

    /// What was kept so far.
    pub fn tape(&self) -> &Tape<B> {
        &self.tape
    }

    /// The wrapped transport.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The wrapped transport, mutably.
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Whether an exchange was refused because the tape was full.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// The wrapped transport and the tape.
    pub fn into_parts(self) -> (T, Tape<B>) {
        (self.inner, self.tape)
    }
}

impl<T: core::fmt::Debug, B: AsRef<[u8]> + AsMut<[u8]>> core::fmt::Debug for Recorder<T, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Recorder")
            .field("inner", &self.inner)
            .field("tape", &self.tape)
            .field("full", &self.full)
            .finish()
    }
}

impl<T, B> Transport for Recorder<T, B>
where
    T: Transport,
    T::Error: From<ErrorKind>,
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    type Error = T::Error;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, T::Error> {
        if !self.tape.has_room(command.len(), response.len()) {
            self.full = true;
            return Err(ErrorKind::Other.into());
        }
        let result = self.inner.transmit(command, response).await;
        let kept = match &result {
            Ok(n) => response.get(..*n).ok_or(ErrorKind::ResponseTooLong),
            Err(e) => Err(e.kind()),
        };
        // The room was checked above; were a push still refused, the tape says it is full.
        self.full |= !self.tape.push(command, kept);
        result
    }

    fn supports_extended_length(&self) -> bool {
        self.inner.supports_extended_length()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Exchange;
    use embassy_futures::block_on;

    const SELECT: &[u8] = &[0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00];
    const VERIFY: &[u8] = &[0x00, 0x20, 0x00, 0x80];
    const CARD: [Exchange<'static>; 3] = [
        Exchange::any(&[0x6F, 0x01, 0x90, 0x00]),
        Exchange::failure(ErrorKind::CardReset),
        Exchange::any(&[0x63, 0xC1]),
    ];

    fn send<T: Transport>(t: &mut T, command: &[u8]) -> Result<usize, T::Error> {
        let mut buf = [0u8; 8];
        block_on(t.transmit(command, &mut buf))
    }

    /// What a recorder keeps replays as it was: answers and failures, each command checked.
    #[test]
    fn records_answers_and_failures_then_replays_them() {
        let card = Replay::new(CARD.iter().copied());
        let mut recorder = Recorder::new(card, [0u8; 128]);
        assert_eq!(send(&mut recorder, SELECT), Ok(4));
        assert_eq!(send(&mut recorder, VERIFY), Err(ErrorKind::CardReset));
        assert_eq!(send(&mut recorder, VERIFY), Ok(2));
        assert!(!recorder.is_full());
        let (_, tape) = recorder.into_parts();
        assert_eq!(tape.len(), 3);
        let kept: [Exchange<'_>; 3] = [
            Exchange::new(SELECT, &[0x6F, 0x01, 0x90, 0x00]),
            Exchange {
                command: Some(VERIFY),
                answer: Err(ErrorKind::CardReset),
            },
            Exchange::new(VERIFY, &[0x63, 0xC1]),
        ];
        assert!(tape.exchanges().eq(kept.iter().copied()));
        assert!(tape.commands().eq([SELECT, VERIFY, VERIFY]));

        let mut replay = tape.replay();
        assert_eq!(send(&mut replay, SELECT), Ok(4));
        assert_eq!(send(&mut replay, VERIFY), Err(ErrorKind::CardReset));
        // The replay checks the commands the recorder kept.
        assert_eq!(send(&mut replay, SELECT), Err(ErrorKind::InvalidCommand));
        assert_eq!(replay.mismatch(), Some(2));
    }

    /// A full tape stops the exchange before the card sees it, so the tape still holds every
    /// command that reached the card: remove the room check and the second command reaches
    /// the card unrecorded.
    #[test]
    fn a_full_tape_stops_before_the_card() {
        // Room for one exchange of a 7-byte command and an 8-byte answer buffer, not two.
        let card = Replay::new(CARD.iter().copied());
        let mut recorder = Recorder::new(card, [0u8; HEAD + 7 + MID + 8 + 4]);
        assert_eq!(send(&mut recorder, SELECT), Ok(4));
        assert_eq!(send(&mut recorder, VERIFY), Err(ErrorKind::Other));
        assert!(recorder.is_full());
        assert_eq!(recorder.inner().replayed(), 1, "the card saw the command");
        assert_eq!(recorder.tape().len(), 1);
    }

    /// Dropping a tape wipes its storage (the commands hold PINs and PUKs): remove the `Drop`
    /// and the borrowed buffer still holds the PUK afterwards.
    #[test]
    fn a_dropped_tape_wipes_its_storage() {
        let mut buf = [0u8; 64];
        {
            let mut tape = Tape::new(&mut buf[..]);
            assert!(tape.push(b"12345678", Ok(&[0x90, 0x00])));
            assert!(tape.commands().eq([&b"12345678"[..]]));
        }
        assert_eq!(buf, [0; 64]);
    }

    #[test]
    fn every_failure_kind_survives_the_tape() {
        for kind in KINDS {
            assert_eq!(kind_of(tag(Err(kind))), kind);
        }
        assert_eq!(kind_of(0xEE), ErrorKind::Other);
    }

    #[test]
    fn debug_shows_counts_not_bytes() {
        let mut tape = Tape::new([0u8; 64]);
        assert!(tape.push(b"secret-puk", Ok(&[0x90, 0x00])));
        let mut out = [0u8; 128];
        let mut w = Out(&mut out, 0);
        core::fmt::write(&mut w, format_args!("{tape:?}")).unwrap();
        let len = w.1;
        // Counts only: a derived `Debug` would print the buffer, the PUK's bytes with it.
        assert_eq!(
            &out[..len],
            b"Tape { exchanges: 1, bytes_used: 21, capacity: 64 }"
        );
    }

    struct Out<'a>(&'a mut [u8], usize);

    impl core::fmt::Write for Out<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let dst = self
                .0
                .get_mut(self.1..self.1 + s.len())
                .ok_or(core::fmt::Error)?;
            dst.copy_from_slice(s.as_bytes());
            self.1 += s.len();
            Ok(())
        }
    }
}
