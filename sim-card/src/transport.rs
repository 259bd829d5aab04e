//! The simulated card as a `cardunlock_core::Transport` (in-process: no reader, no PC/SC), and a
//! recorder / replayer of its answers for measuring the core alone (the replay allocates nothing).

use cardunlock_core::{ErrorKind, Transport};

use crate::SimCard;

/// Copies `answer` into `response`.
fn answer_into(answer: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
    response
        .get_mut(..answer.len())
        .ok_or(ErrorKind::ResponseTooLong)?
        .copy_from_slice(answer);
    Ok(answer.len())
}

impl Transport for SimCard {
    type Error = ErrorKind;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
        answer_into(&SimCard::transmit(self, command), response)
    }

    fn supports_extended_length(&self) -> bool {
        true
    }
}

/// Largest answer a [`Recording`] keeps.
pub const MAX_ANSWER: usize = 64;
/// Most answers a [`Recording`] keeps.
pub const MAX_ANSWERS: usize = 16;

/// A card's answers to one flow, in fixed arrays.
#[derive(Clone)]
pub struct Recording {
    answers: [([u8; MAX_ANSWER], usize); MAX_ANSWERS],
    len: usize,
}

impl Recording {
    /// Runs `flow` over `card` through a [`Recorder`] and keeps the card's answers.
    pub fn record(card: SimCard, flow: impl FnOnce(&mut Recorder)) -> Self {
        let mut recorder = Recorder {
            card,
            recording: Recording {
                answers: [([0; MAX_ANSWER], 0); MAX_ANSWERS],
                len: 0,
            },
        };
        flow(&mut recorder);
        recorder.recording
    }

    /// Number of APDUs the flow exchanged.
    pub fn apdus(&self) -> usize {
        self.len
    }

    /// A transport that replays these answers from the start.
    pub fn replay(&self) -> Replay<'_> {
        Replay {
            recording: self,
            next: 0,
        }
    }
}

/// Answers with the card and records each answer (see [`Recording::record`]).
pub struct Recorder {
    card: SimCard,
    recording: Recording,
}

impl Transport for Recorder {
    type Error = ErrorKind;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
        let answer = self.card.transmit(command);
        let slot = self
            .recording
            .answers
            .get_mut(self.recording.len)
            .ok_or(ErrorKind::Other)?;
        slot.0
            .get_mut(..answer.len())
            .ok_or(ErrorKind::ResponseTooLong)?
            .copy_from_slice(&answer);
        slot.1 = answer.len();
        self.recording.len += 1;
        answer_into(&answer, response)
    }
}

/// Replays a [`Recording`] whatever the command: allocates nothing, so a flow over it costs what
/// the core costs.
pub struct Replay<'a> {
    recording: &'a Recording,
    next: usize,
}

impl Replay<'_> {
    /// Answers given so far.
    pub fn replayed(&self) -> usize {
        self.next
    }
}

impl Transport for Replay<'_> {
    type Error = ErrorKind;

    async fn transmit(&mut self, _command: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
        let answers = self
            .recording
            .answers
            .get(..self.recording.len)
            .unwrap_or(&[]);
        let (bytes, len) = answers.get(self.next).ok_or(ErrorKind::Other)?;
        self.next += 1;
        answer_into(bytes.get(..*len).ok_or(ErrorKind::Other)?, response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, PivConfig};
    use cardunlock_core::driver::Driver;
    use embassy_futures::block_on;

    const SELECT: [u8; 15] = [
        0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00,
    ];

    #[test]
    fn records_then_replays_and_stops_at_the_end() {
        let card = SimCard::new(Config::Piv(PivConfig::factory()));
        let recording = Recording::record(card, |r| {
            let mut buf = [0u8; 64];
            let n = block_on(Transport::transmit(r, &SELECT, &mut buf)).unwrap();
            assert_eq!(&buf[n - 2..n], &[0x90, 0x00]);
        });
        assert_eq!(recording.apdus(), 1);
        let mut driver = Driver::new(recording.replay());
        let cmd = cardunlock_core::Command::parse(&SELECT).unwrap();
        assert!(block_on(driver.transceive(&cmd))
            .unwrap()
            .status
            .is_success());
        // Past the recording the replay fails instead of inventing answers.
        let err = block_on(driver.transceive(&cmd)).unwrap_err();
        assert_eq!(err.transport_kind(), Some(ErrorKind::Other));
    }

    #[test]
    fn a_short_response_buffer_is_an_error_not_a_panic() {
        let mut card = SimCard::new(Config::Piv(PivConfig::factory()));
        let mut tiny = [0u8; 4];
        let got = block_on(Transport::transmit(&mut card, &SELECT, &mut tiny));
        assert_eq!(got, Err(ErrorKind::ResponseTooLong));
    }
}
