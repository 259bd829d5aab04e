//! Test support: transports that wrap the simulated card and inject faults, and a recorder of
//! what reached the card.

use std::cell::RefCell;
use std::rc::Rc;

use cardunlock_core::{ErrorKind, Transport};
use cardunlock_sim::SimCard;

/// A simulated card shared between the transport and the test, which inspects it afterwards.
pub type SharedCard = Rc<RefCell<SimCard>>;

/// What to do to the exchange with index `at` (0-based, counting every APDU).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The transport fails with this kind; the card never sees the command.
    Fail(ErrorKind),
    /// The card sees the command, but its answer is replaced by these bytes.
    Garbage(&'static [u8]),
}

/// A transport to a [`SharedCard`] that records every command and can inject one fault.
pub struct TestTransport {
    /// The card.
    pub card: SharedCard,
    /// Every command APDU that reached the card.
    pub seen: Vec<Vec<u8>>,
    /// Exchanges attempted (faulty ones included).
    pub attempts: usize,
    fault: Option<(usize, Fault)>,
}

impl TestTransport {
    /// A transport to `card` with no fault.
    pub fn new(card: &SharedCard) -> Self {
        Self {
            card: card.clone(),
            seen: Vec::new(),
            attempts: 0,
            fault: None,
        }
    }

    /// Injects `fault` at exchange `at`.
    pub fn with_fault(mut self, at: usize, fault: Fault) -> Self {
        self.fault = Some((at, fault));
        self
    }
}

impl Transport for TestTransport {
    type Error = ErrorKind;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
        let index = self.attempts;
        self.attempts += 1;
        let fault = self.fault.filter(|(at, _)| *at == index).map(|(_, f)| f);
        if let Some(Fault::Fail(kind)) = fault {
            return Err(kind);
        }
        self.seen.push(command.to_vec());
        let mut answer = self.card.borrow_mut().transmit(command);
        if let Some(Fault::Garbage(bytes)) = fault {
            answer = bytes.to_vec();
        }
        let dst = response
            .get_mut(..answer.len())
            .ok_or(ErrorKind::ResponseTooLong)?;
        dst.copy_from_slice(&answer);
        Ok(answer.len())
    }
}

/// Wraps a card for sharing.
pub fn shared(card: SimCard) -> SharedCard {
    Rc::new(RefCell::new(card))
}

/// Deterministic "random" bytes for flows under test (see [`cardunlock_sim::TestRng`]: not a
/// CSPRNG, only for tests).
pub fn fill_counter(seed: u8) -> cardunlock_sim::TestRng {
    cardunlock_sim::TestRng::counter(seed)
}

pub mod uart_card;
