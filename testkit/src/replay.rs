//! [`Replay`]: a card that answers from a recording and checks each command against it.

use cardunlock_core::{ErrorKind, Transport};

use crate::{answer_into, Exchange};

/// A [`Transport`] that answers from recorded [`Exchange`]s, in order.
///
/// Each command is compared with the recorded one (when the exchange has one): a command the
/// recording does not expect fails with [`ErrorKind::InvalidCommand`] and its index is kept
/// ([`Replay::mismatch`]). Past the end of the recording the card is gone
/// ([`ErrorKind::CardRemoved`]): a replay never invents an answer. It allocates nothing, so a
/// flow over it costs what the core costs.
///
/// The source is any iterator of exchanges: a slice (`Replay::new(EXCHANGES.iter().copied())`),
/// a [`crate::Tape`] ([`crate::Tape::replay`]), or a fuzz input cut into frames.
#[derive(Clone, Debug)]
pub struct Replay<S> {
    source: S,
    next: usize,
    mismatch: Option<usize>,
    extended: bool,
}

impl<'a, S: Iterator<Item = Exchange<'a>>> Replay<S> {
    /// A replay of `source`, short APDUs only (the driver chains long data).
    pub fn new(source: S) -> Self {
        Self {
            source,
            next: 0,
            mismatch: None,
            extended: false,
        }
    }

    /// The same, saying whether extended-length APDUs pass (else the driver chains).
    pub fn with_extended_length(mut self, extended: bool) -> Self {
        self.extended = extended;
        self
    }

    /// Exchanges taken from the recording so far (a mismatched one included).
    pub fn replayed(&self) -> usize {
        self.next
    }

    /// The index of the first exchange whose command differed from the recording, if any.
    pub fn mismatch(&self) -> Option<usize> {
        self.mismatch
    }
}

impl<'a, S: Iterator<Item = Exchange<'a>>> Transport for Replay<S> {
    type Error = ErrorKind;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
        let exchange = self.source.next().ok_or(ErrorKind::CardRemoved)?;
        let index = self.next;
        self.next += 1;
        if exchange.command.is_some_and(|expected| expected != command) {
            self.mismatch.get_or_insert(index);
            return Err(ErrorKind::InvalidCommand);
        }
        answer_into(exchange.answer?, response)
    }

    fn supports_extended_length(&self) -> bool {
        self.extended
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embassy_futures::block_on;

    const SELECT: &[u8] = &[0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00];
    const VERIFY: &[u8] = &[0x00, 0x20, 0x00, 0x80];
    const EXCHANGES: [Exchange<'static>; 3] = [
        Exchange::new(SELECT, &[0x90, 0x00]),
        Exchange::any(&[0x63, 0xC2]),
        Exchange::failure(ErrorKind::Timeout),
    ];

    fn send<T: Transport>(t: &mut T, command: &[u8]) -> Result<([u8; 8], usize), T::Error> {
        let mut buf = [0u8; 8];
        let n = block_on(t.transmit(command, &mut buf))?;
        Ok((buf, n))
    }

    /// Answers in order, recorded failures included, then the card is gone: a replay never
    /// invents an answer past its recording.
    #[test]
    fn answers_in_order_then_the_card_is_gone() {
        let mut replay = Replay::new(EXCHANGES.iter().copied());
        let (buf, n) = send(&mut replay, SELECT).unwrap();
        assert_eq!(&buf[..n], &[0x90, 0x00]);
        let (buf, n) = send(&mut replay, VERIFY).unwrap();
        assert_eq!(&buf[..n], &[0x63, 0xC2]);
        assert_eq!(send(&mut replay, VERIFY).unwrap_err(), ErrorKind::Timeout);
        assert_eq!(
            send(&mut replay, VERIFY).unwrap_err(),
            ErrorKind::CardRemoved
        );
        assert_eq!(replay.replayed(), 3);
        assert_eq!(replay.mismatch(), None);
    }

    /// A command other than the recorded one is refused and its index kept: the check that
    /// makes a replay catch a flow that changed its bytes.
    #[test]
    fn a_command_other_than_the_recorded_one_is_refused() {
        let mut replay = Replay::new(EXCHANGES.iter().copied());
        let mut other = [0u8; 7];
        other.copy_from_slice(SELECT);
        other[6] = 0x01;
        assert_eq!(
            send(&mut replay, &other).unwrap_err(),
            ErrorKind::InvalidCommand
        );
        assert_eq!(replay.mismatch(), Some(0));
        // A prefix of the recorded command is not the command either.
        let mut replay = Replay::new(EXCHANGES.iter().copied());
        assert_eq!(
            send(&mut replay, &SELECT[..5]).unwrap_err(),
            ErrorKind::InvalidCommand
        );
    }

    /// An answer longer than the caller's buffer is an error, not a panic.
    #[test]
    fn a_short_response_buffer_is_an_error() {
        let long = [Exchange::any(&[0x01; 12])];
        let mut replay = Replay::new(long.iter().copied());
        assert_eq!(
            send(&mut replay, VERIFY).unwrap_err(),
            ErrorKind::ResponseTooLong
        );
    }

    #[test]
    fn extended_length_is_what_the_caller_says() {
        let replay = Replay::new(EXCHANGES.iter().copied());
        assert!(!replay.supports_extended_length());
        assert!(replay.with_extended_length(true).supports_extended_length());
    }
}
