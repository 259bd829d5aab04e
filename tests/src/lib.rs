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

/// A well-formed answer to the GIDS GENERAL AUTHENTICATE step 2 (`7C 2A 82 28`, 40 bytes, `90 00`)
/// that no card holding the admin key computed: the forged card cryptogram the fault tests put in
/// place of the card's (`Fault::Garbage(&FORGED_GIDS_CRYPTOGRAM)` at exchange 3: SELECT, MSE SET,
/// GA step 1, GA step 2).
pub const FORGED_GIDS_CRYPTOGRAM: [u8; 46] = {
    let mut f = [0x33u8; 46];
    f[0] = 0x7C;
    f[1] = 0x2A;
    f[2] = 0x82;
    f[3] = 0x28;
    f[44] = 0x90;
    f[45] = 0x00;
    f
};

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
