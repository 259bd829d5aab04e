//! [`VirtualCard`]: what a card must do to sit in a virtual or simulated reader (vpcd, QEMU's
//! emulated CCID reader, the simulated USB CCID reader).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};

use crate::SimCard;

/// A card that answers command APDUs and has an ATR, so that a virtual or simulated reader can
/// hold it.
///
/// Implemented for [`SimCard`], for `Arc<Mutex<C>>` and `Rc<RefCell<C>>` (so a test keeps a
/// handle to inspect the card while a reader holds it), for `Box<C>` (a card chosen at run time)
/// and for `&mut C`.
pub trait VirtualCard {
    /// The answer to reset, sent when the reader asks for it (at power-up and every time the
    /// reader polls for card presence).
    fn atr(&self) -> Vec<u8>;

    /// Processes one command APDU and returns the response: data followed by SW1 SW2.
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8>;

    /// Warm reset (and cold start at power-up): security status, selection and pending state
    /// are dropped, persistent data (PINs, counters, keys) is kept. A card without transient
    /// state implements it as a no-op.
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

/// A card shared between threads. A poisoned lock (a thread panicked while holding it) is taken
/// over as it is: the card's state is still what the last command left.
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

/// A card shared within one thread. The card is borrowed only for the duration of each call, so
/// the holder of another handle must not keep a borrow of it across a call into the reader
/// (`RefCell` would panic on the conflicting borrow).
impl<C: VirtualCard + ?Sized> VirtualCard for Rc<RefCell<C>> {
    fn atr(&self) -> Vec<u8> {
        self.borrow().atr()
    }

    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.borrow_mut().transmit(apdu)
    }

    fn reset(&mut self) {
        self.borrow_mut().reset();
    }

    fn power_off(&mut self) {
        self.borrow_mut().power_off();
    }
}

/// `VirtualCard` for a pointer to one (`Box<C>`, `&mut C`): every call goes to the card.
macro_rules! forward_virtual_card {
    ($($ptr:ty),+) => {$(
        impl<C: VirtualCard + ?Sized> VirtualCard for $ptr {
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
    )+};
}

forward_virtual_card!(Box<C>, &mut C);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, PivConfig, ATR_PIV};

    const SELECT_PIV: [u8; 10] = [0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08];
    /// VERIFY with the factory PIN 123456.
    const VERIFY_PIN: [u8; 13] = [
        0x00, 0x20, 0x00, 0x80, 0x08, b'1', b'2', b'3', b'4', b'5', b'6', 0xFF, 0xFF,
    ];
    /// VERIFY without data: the PIN's status.
    const PIN_STATUS: [u8; 4] = [0x00, 0x20, 0x00, 0x80];

    fn sw(resp: &[u8]) -> [u8; 2] {
        [resp[resp.len() - 2], resp[resp.len() - 1]]
    }

    /// Verifies the PIN through `card`, resets or powers it off, and returns the PIN status.
    fn status_after(card: &mut dyn VirtualCard, power_off: bool) -> [u8; 2] {
        assert_eq!(sw(&card.transmit(&SELECT_PIV)), [0x90, 0x00]);
        assert_eq!(card.transmit(&VERIFY_PIN), [0x90, 0x00]);
        assert_eq!(card.transmit(&PIN_STATUS), [0x90, 0x00]);
        if power_off {
            card.power_off();
        } else {
            card.reset();
        }
        assert_eq!(sw(&card.transmit(&SELECT_PIV)), [0x90, 0x00]);
        sw(&card.transmit(&PIN_STATUS))
    }

    fn piv() -> SimCard {
        SimCard::new(Config::Piv(PivConfig::factory()))
    }

    #[test]
    fn every_wrapper_forwards_to_the_card_and_reset_drops_the_verified_pin() {
        for power_off in [false, true] {
            let mut plain = piv();
            assert_eq!(VirtualCard::atr(&plain), ATR_PIV);
            assert_eq!(status_after(&mut plain, power_off), [0x63, 0xC3]);

            let mut by_ref = piv();
            let mut r = &mut by_ref;
            assert_eq!(VirtualCard::atr(&r), ATR_PIV);
            assert_eq!(status_after(&mut r, power_off), [0x63, 0xC3]);

            let mut boxed: Box<dyn VirtualCard> = Box::new(piv());
            assert_eq!(boxed.atr(), ATR_PIV);
            assert_eq!(status_after(&mut boxed, power_off), [0x63, 0xC3]);

            let shared = Arc::new(Mutex::new(piv()));
            let mut held = Arc::clone(&shared);
            assert_eq!(held.atr(), ATR_PIV);
            assert_eq!(status_after(&mut held, power_off), [0x63, 0xC3]);
            // The other handle sees the same card: the PIN is verified again through it.
            let mut other = shared;
            assert_eq!(other.transmit(&VERIFY_PIN), [0x90, 0x00]);
            assert_eq!(held.transmit(&PIN_STATUS), [0x90, 0x00]);

            let shared = Rc::new(RefCell::new(piv()));
            let mut held = Rc::clone(&shared);
            assert_eq!(held.atr(), ATR_PIV);
            assert_eq!(status_after(&mut held, power_off), [0x63, 0xC3]);
            assert_eq!(shared.borrow_mut().transmit(&VERIFY_PIN), [0x90, 0x00]);
            assert_eq!(held.transmit(&PIN_STATUS), [0x90, 0x00]);
        }
    }

    /// A card whose power-off differs from its reset, to see which one each wrapper calls.
    #[derive(Default)]
    struct Counting {
        resets: u32,
        power_offs: u32,
    }

    impl VirtualCard for Counting {
        fn atr(&self) -> Vec<u8> {
            vec![0x3B, 0x00]
        }
        fn transmit(&mut self, _apdu: &[u8]) -> Vec<u8> {
            vec![0x90, 0x00]
        }
        fn reset(&mut self) {
            self.resets += 1;
        }
        fn power_off(&mut self) {
            self.power_offs += 1;
        }
    }

    #[test]
    fn wrappers_forward_power_off_as_power_off() {
        let arc = Arc::new(Mutex::new(Counting::default()));
        let rc = Rc::new(RefCell::new(Counting::default()));
        let mut inner = Counting::default();
        {
            let mut cards: Vec<Box<dyn VirtualCard + '_>> = vec![
                Box::new(Arc::clone(&arc)),
                Box::new(Rc::clone(&rc)),
                Box::new(&mut inner),
            ];
            for card in &mut cards {
                card.power_off();
                card.reset();
                card.power_off();
            }
        }
        let seen = |c: &Counting| (c.resets, c.power_offs);
        assert_eq!(seen(&arc.lock().unwrap()), (1, 2));
        assert_eq!(seen(&rc.borrow()), (1, 2));
        assert_eq!(seen(&inner), (1, 2));
    }

    #[test]
    fn a_poisoned_lock_is_taken_over() {
        let shared = Arc::new(Mutex::new(piv()));
        let poisoner = Arc::clone(&shared);
        let _ = std::thread::spawn(move || {
            let mut card = poisoner.lock().unwrap();
            card.transmit(&SELECT_PIV);
            card.transmit(&VERIFY_PIN);
            panic!("poison the lock");
        })
        .join();
        assert!(shared.is_poisoned());
        let mut card = shared;
        // The state the panicking thread left is kept: still selected, PIN still verified.
        assert_eq!(card.transmit(&PIN_STATUS), [0x90, 0x00]);
        assert_eq!(card.atr(), ATR_PIV);
    }
}
