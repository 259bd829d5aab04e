//! The simulated card as a `cardunlock_core::Transport` (in-process: no reader, no PC/SC), alone
//! or shared ([`SharedCard`]). Replays, recorders and fault injection over it are in
//! `cardunlock-testkit`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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

/// A simulated card shared between handles (cloning gives the same card), usable from any
/// thread: the transport a test or the demo hands to a flow while it keeps a handle to inspect
/// the card afterwards. A core `Transport`, like the card itself.
#[derive(Clone)]
pub struct SharedCard(Arc<Mutex<SimCard>>);

impl SharedCard {
    /// Shares `card`.
    pub fn new(card: SimCard) -> Self {
        Self(Arc::new(Mutex::new(card)))
    }

    /// Runs `f` on the card (inspection in tests and displays).
    pub fn with<R>(&self, f: impl FnOnce(&mut SimCard) -> R) -> R {
        f(&mut self.lock())
    }

    /// The card, locked until the guard is dropped (a test that panicked while holding it does
    /// not poison it for the next).
    pub fn lock(&self) -> MutexGuard<'_, SimCard> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Transport for SharedCard {
    type Error = ErrorKind;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
        let answer = self.with(|c| c.transmit(command));
        answer_into(&answer, response)
    }

    fn supports_extended_length(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, PivConfig};
    use embassy_futures::block_on;

    const SELECT: [u8; 15] = [
        0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00,
    ];

    /// Every clone is the same card: what one handle sends, another sees.
    #[test]
    fn clones_share_one_card() {
        let card = SharedCard::new(SimCard::new(Config::Piv(PivConfig::factory())));
        let mut handle = card.clone();
        let mut buf = [0u8; 64];
        let n = block_on(Transport::transmit(&mut handle, &SELECT, &mut buf)).unwrap();
        assert_eq!(&buf[n - 2..n], &[0x90, 0x00]);
        assert_eq!(card.lock().commands_seen(), 1);
        assert_eq!(card.with(|c| c.commands_seen()), 1);
        assert!(handle.supports_extended_length());
    }

    #[test]
    fn a_short_response_buffer_is_an_error_not_a_panic() {
        let mut card = SimCard::new(Config::Piv(PivConfig::factory()));
        let mut tiny = [0u8; 4];
        let got = block_on(Transport::transmit(&mut card, &SELECT, &mut tiny));
        assert_eq!(got, Err(ErrorKind::ResponseTooLong));
        let mut shared = SharedCard::new(card);
        let got = block_on(Transport::transmit(&mut shared, &SELECT, &mut tiny));
        assert_eq!(got, Err(ErrorKind::ResponseTooLong));
    }
}
