//! Test support: the transport every flow test here runs over (the simulated card, shared so
//! the test inspects it afterwards, behind `cardunlock-testkit`'s recorder and fault
//! injection).

use cardunlock_sim::SimCard;
use cardunlock_testkit::{Faulty, Recorder};

pub use cardunlock_sim::SharedCard;
pub use cardunlock_testkit::Fault;

/// Bytes of commands and answers a [`TestTransport`] keeps: far more than any flow here sends
/// (a full tape fails the exchange before the card sees it, see [`Recorder`]).
pub const TAPE_BYTES: usize = 256 * 1024;

/// A transport to a [`SharedCard`] that records every command that reached the card and can
/// inject one [`Fault`] (`.with_fault(at, fault)`); `.attempts()` counts every exchange tried.
pub type TestTransport = Faulty<'static, Recorder<SharedCard, Vec<u8>>>;

/// A [`TestTransport`] to `card` with no fault.
pub fn transport(card: &SharedCard) -> TestTransport {
    Faulty::new(Recorder::new(card.clone(), vec![0; TAPE_BYTES]))
}

/// What a [`TestTransport`] saw.
pub trait Seen {
    /// Every command APDU that reached the card, in order.
    fn seen(&self) -> Vec<Vec<u8>>;
}

impl Seen for TestTransport {
    fn seen(&self) -> Vec<Vec<u8>> {
        self.inner().tape().commands().map(<[u8]>::to_vec).collect()
    }
}

/// Wraps a card for sharing.
pub fn shared(card: SimCard) -> SharedCard {
    SharedCard::new(card)
}

/// Deterministic "random" bytes for flows under test (see [`cardunlock_sim::TestRng`]: not a
/// CSPRNG, only for tests).
pub fn fill_counter(seed: u8) -> cardunlock_sim::TestRng {
    cardunlock_sim::TestRng::counter(seed)
}

pub mod uart_card;
