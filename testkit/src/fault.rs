//! [`Faulty`]: a transport that goes wrong at one chosen exchange.

use cardunlock_core::{ErrorKind, Transport};

use crate::answer_into;

/// What goes wrong at the chosen exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault<'a> {
    /// The transport fails with this kind; the card never sees the command.
    Fail(ErrorKind),
    /// The card sees the command and answers, but the answer is lost: the transport reports
    /// [`ErrorKind::Timeout`] (the card's state may have changed without the host knowing).
    Drop,
    /// The card sees the command, but its answer is replaced by these bytes (a garbled or
    /// forged answer).
    Garbage(&'a [u8]),
}

/// A [`Transport`] that forwards to another one and injects one [`Fault`] at exchange `at`
/// (0-based, counting every exchange attempted).
#[derive(Clone, Debug)]
pub struct Faulty<'a, T> {
    inner: T,
    fault: Option<(usize, Fault<'a>)>,
    attempts: usize,
}

impl<'a, T> Faulty<'a, T> {
    /// `inner` with no fault (yet).
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            fault: None,
            attempts: 0,
        }
    }

    /// The same, with `fault` at exchange `at` (replacing any fault set before).
    pub fn with_fault(mut self, at: usize, fault: Fault<'a>) -> Self {
        self.fault = Some((at, fault));
        self
    }

    /// Exchanges attempted, the faulty one included.
    pub fn attempts(&self) -> usize {
        self.attempts
    }

    /// The wrapped transport.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The wrapped transport, mutably.
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// The wrapped transport.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T> Transport for Faulty<'_, T>
where
    T: Transport,
    T::Error: From<ErrorKind>,
{
    type Error = T::Error;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, T::Error> {
        let index = self.attempts;
        self.attempts += 1;
        let fault = self.fault.filter(|(at, _)| *at == index).map(|(_, f)| f);
        if let Some(Fault::Fail(kind)) = fault {
            return Err(kind.into());
        }
        let n = self.inner.transmit(command, response).await?;
        match fault {
            Some(Fault::Drop) => Err(ErrorKind::Timeout.into()),
            Some(Fault::Garbage(bytes)) => Ok(answer_into(bytes, response)?),
            _ => Ok(n),
        }
    }

    fn supports_extended_length(&self) -> bool {
        self.inner.supports_extended_length()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Exchange, Replay};
    use embassy_futures::block_on;

    const CMD: &[u8] = &[0x00, 0x20, 0x00, 0x80];
    const CARD: [Exchange<'static>; 3] = [
        Exchange::any(&[0x90, 0x00]),
        Exchange::any(&[0x63, 0xC2]),
        Exchange::any(&[0x90, 0x00]),
    ];

    fn run(fault: Fault<'_>) -> ([Result<usize, ErrorKind>; 3], usize, usize, [u8; 8]) {
        let mut t = Faulty::new(Replay::new(CARD.iter().copied())).with_fault(1, fault);
        let mut buf = [0u8; 8];
        let mut last = [0u8; 8];
        let mut out = [Ok(0); 3];
        for (i, o) in out.iter_mut().enumerate() {
            *o = block_on(t.transmit(CMD, &mut buf));
            if i == 1 {
                last = buf;
            }
        }
        (out, t.attempts(), t.inner().replayed(), last)
    }

    /// `Fail` at exchange 1: that exchange fails and the card never sees it (the next
    /// exchange gets the card's second answer).
    #[test]
    fn fail_stops_the_command_before_the_card() {
        let (out, attempts, seen, _) = run(Fault::Fail(ErrorKind::CardRemoved));
        assert_eq!(out, [Ok(2), Err(ErrorKind::CardRemoved), Ok(2)]);
        assert_eq!(attempts, 3);
        assert_eq!(seen, 2, "the card saw two commands, not three");
    }

    /// `Drop` at exchange 1: the card sees it, the answer is lost.
    #[test]
    fn drop_loses_the_answer_after_the_card() {
        let (out, attempts, seen, _) = run(Fault::Drop);
        assert_eq!(out, [Ok(2), Err(ErrorKind::Timeout), Ok(2)]);
        assert_eq!(attempts, 3);
        assert_eq!(seen, 3, "the card saw all three commands");
    }

    /// `Garbage` at exchange 1: the card sees it, the flow gets the garbage, only then.
    #[test]
    fn garbage_replaces_the_answer() {
        let (out, _, seen, buf) = run(Fault::Garbage(&[0x6A, 0x82, 0x01]));
        assert_eq!(out, [Ok(2), Ok(3), Ok(2)]);
        assert_eq!(&buf[..3], &[0x6A, 0x82, 0x01]);
        assert_eq!(seen, 3);
        let (out, ..) = run(Fault::Garbage(&[0x6A; 9]));
        assert_eq!(
            out[1],
            Err(ErrorKind::ResponseTooLong),
            "longer than the buffer"
        );
    }

    #[test]
    fn no_fault_is_transparent() {
        let mut t = Faulty::new(Replay::new(CARD.iter().copied()));
        let mut buf = [0u8; 8];
        for want in [[0x90, 0x00], [0x63, 0xC2], [0x90, 0x00]] {
            let n = block_on(t.transmit(CMD, &mut buf)).unwrap();
            assert_eq!(&buf[..n], &want);
        }
    }
}
