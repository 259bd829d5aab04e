//! The window over a real PC/SC stack: pcscd with the vpcd virtual reader (`Virtual PCD 00 00`),
//! the seed's personalised card served to it like a card put into a reader. The window waits
//! ("Insert your card."), sees the card arrive through pcscd, and unlocks it with the same
//! client code as the CLI. Needs pcscd running (scripts/test.sh starts it).
#![cfg(feature = "pcsc")]

mod common;

use std::time::Duration;

use cardunlock_client::card::{Readers as ReaderChoice, TransportKind};
use cardunlock_client::demo::{Scenario, SharedCard, DEMO_ANSWERS};
use cardunlock_gui::app::UNLOCKED;
use cardunlock_gui::worker::{self, Readers, INSERT_CARD};
use cardunlock_virtual_readers::{reader_addr, reader_name, ReaderLock, ServedCard, VirtualCard};
use common::*;

/// The demo's card, served to vpcd.
struct InReader(SharedCard);

impl VirtualCard for InReader {
    fn atr(&self) -> Vec<u8> {
        self.0.with(|c| c.atr().to_vec())
    }
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.0.with(|c| c.transmit(apdu))
    }
    fn reset(&mut self) {
        self.0.with(|c| c.reset())
    }
}

#[test]
fn waits_for_the_card_in_a_pcsc_reader_then_unlocks_it() {
    let pcsc = cardunlock_pcsc::Pcsc::establish()
        .unwrap_or_else(|e| panic!("pcscd is not running: start it with `pcscd -f &` ({e})"));
    let _lock = ReaderLock::acquire(0, Duration::from_secs(300)).expect("reader lock");
    let name = reader_name(0);
    pcsc.wait_for_removal(&name, Duration::from_secs(10))
        .expect("the reader is empty");

    let demo = demo(Scenario::Seed);
    let d = demo.clone();
    let reader = name.clone();
    let (mut h, _worker) = start(move |end| {
        let mut source = Readers {
            readers: ReaderChoice {
                transport: TransportKind::Pcsc,
                reader: Some(reader),
                verbose: false,
            },
            poll: Duration::from_millis(100),
        };
        worker::run(&mut source, d.api(), worker::Options::default(), end)
    });
    wait_for(&mut h, "waiting");
    assert!(has(&h, INSERT_CARD));
    assert_eq!(h.state().screen().name(), "waiting", "no card yet");

    let served = ServedCard::spawn(InReader(demo.card()), reader_addr(0)).expect("serve to vpcd");
    wait_for(&mut h, "questions");
    assert!(has(&h, "PIV card"));
    answer_questions(&mut h, DEMO_ANSWERS);
    wait_for(&mut h, "new-pin");
    enter_new_pin(&mut h, "840259");
    wait_for(&mut h, "unlocked");
    assert!(has(&h, UNLOCKED));
    assert!(demo.card().with(|c| c.pin_is(b"840259")));
    drop(served);
}
