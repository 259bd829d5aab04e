//! What a card must do to be served over vpcd.

use std::sync::{Arc, Mutex, PoisonError};

use cardunlock_sim::SimCard;

/// A card that can be put into a virtual reader.
///
/// Implemented for [`SimCard`], for `Arc<Mutex<C>>` (so a test keeps a handle to inspect the
/// card while it is served), for `Box<C>` (a card chosen at run time) and for `&mut C`.
pub trait VirtualCard {
    /// The answer to reset, sent when the reader asks for it (at power-up and every time vpcd
    /// polls for card presence).
    fn atr(&self) -> Vec<u8>;

    /// Processes one command APDU and returns the response: data followed by SW1 SW2.
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8>;

    /// Warm reset (and cold start at power-up): security status, selection and pending state
    /// are dropped, persistent data (PINs, counters, keys) is kept.
    fn reset(&mut self);

    /// Power off. By default the same as [`VirtualCard::reset`].
    fn power_off(&mut self) {
        self.reset();
    }
}

impl VirtualCard for SimCard {
    fn atr(&self) -> Vec<u8> {
        SimCard::atr(self).to_vec()
    }

    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        SimCard::transmit(self, apdu)
    }

    fn reset(&mut self) {
        SimCard::reset(self);
    }
}

/// A shared card. A poisoned lock (a thread panicked while holding it) is taken over as it is:
/// the card's state is still what the last command left.
impl<C: VirtualCard + ?Sized> VirtualCard for Arc<Mutex<C>> {
    fn atr(&self) -> Vec<u8> {
        self.lock().unwrap_or_else(PoisonError::into_inner).atr()
    }

    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .transmit(apdu)
    }

    fn reset(&mut self) {
        self.lock().unwrap_or_else(PoisonError::into_inner).reset();
    }

    fn power_off(&mut self) {
        self.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .power_off();
    }
}

impl<C: VirtualCard + ?Sized> VirtualCard for Box<C> {
    fn atr(&self) -> Vec<u8> {
        (**self).atr()
    }

    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        (**self).transmit(apdu)
    }

    fn reset(&mut self) {
        (**self).reset();
    }

    fn power_off(&mut self) {
        (**self).power_off();
    }
}

impl<C: VirtualCard + ?Sized> VirtualCard for &mut C {
    fn atr(&self) -> Vec<u8> {
        (**self).atr()
    }

    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        (**self).transmit(apdu)
    }

    fn reset(&mut self) {
        (**self).reset();
    }

    fn power_off(&mut self) {
        (**self).power_off();
    }
}
