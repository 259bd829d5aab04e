//! Test peer through the real stack: a fresh simulated card served to pcscd's vpcd reader
//! `Virtual PCD 00 00`, reached through PC/SC like any hardware card.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cardunlock_pcsc::{Pcsc, PcscTransport, ShareMode};
use cardunlock_sim::{Config, SimCard};
use cardunlock_virtual_readers::{reader_addr, reader_name, ReaderLock, ServedCard};

/// The vpcd reader the tests use.
pub const READER_INDEX: u8 = 0;

/// How long pcscd may take to see a card come or go (it polls vpcd every 400 ms).
const CARD_EVENT: Duration = Duration::from_secs(10);

/// The reader name, `Virtual PCD 00 00`.
pub fn reader() -> String {
    reader_name(READER_INDEX)
}

/// A PC/SC context; fails the test with how to start pcscd when it is not running.
pub fn pcsc() -> Pcsc {
    Pcsc::establish().unwrap_or_else(|e| {
        panic!("pcscd is not running: start it with `pcscd -f &` (see .ci/run) ({e})")
    })
}

/// A simulated card in the reader.
pub struct Inserted {
    /// The card, to inspect while (and after) it is served.
    pub card: Arc<Mutex<SimCard>>,
    /// The vpcd connection: stop it to pull the card.
    pub served: ServedCard,
    /// The PC/SC context.
    pub pcsc: Pcsc,
    // Last: the reader stays ours until the card is out.
    _lock: ReaderLock,
}

impl Inserted {
    /// The card's state.
    pub fn sim(&self) -> MutexGuard<'_, SimCard> {
        self.card.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A shared connection to the card.
    pub fn connect(&self) -> PcscTransport {
        self.pcsc
            .connect(&reader(), ShareMode::Shared)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", reader()))
    }
}

/// Takes the reader (machine-wide lock), waits for it to be empty, serves a fresh simulated
/// card built from `config` and waits until pcscd sees it.
pub fn insert(config: Config) -> Inserted {
    let pcsc = pcsc();
    let lock = ReaderLock::acquire(READER_INDEX, Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("lock of reader {}: {e}", reader()));
    let name = reader();
    pcsc.wait_for_removal(&name, CARD_EVENT).unwrap_or_else(|e| {
        panic!("reader \"{name}\" still holds a card (another virtual card connected to vpcd?): {e}")
    });
    let card = Arc::new(Mutex::new(SimCard::new(config)));
    let served =
        ServedCard::spawn(Arc::clone(&card), reader_addr(READER_INDEX)).unwrap_or_else(|e| {
            panic!(
                "serve the card to vpcd at {}: {e}",
                reader_addr(READER_INDEX)
            )
        });
    let info = pcsc.wait_for_card(&name, CARD_EVENT).unwrap_or_else(|e| {
        let why = if served.is_running() {
            "the card is connected to vpcd"
        } else {
            "vpcd closed the card's connection (pcscd restarted?)"
        };
        panic!("pcscd did not see the card in \"{name}\": {e}; {why}")
    });
    let atr = card
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .atr()
        .to_vec();
    assert_eq!(info.atr, atr, "the card in the reader is not ours");
    Inserted {
        card,
        served,
        pcsc,
        _lock: lock,
    }
}

/// Takes the reader and waits until it is empty (for no-card tests).
pub fn empty_reader() -> (Pcsc, ReaderLock) {
    let pcsc = pcsc();
    let lock = ReaderLock::acquire(READER_INDEX, Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("lock of reader {}: {e}", reader()));
    pcsc.wait_for_removal(&reader(), CARD_EVENT)
        .unwrap_or_else(|e| panic!("reader still holds a card: {e}"));
    (pcsc, lock)
}

/// A deterministic "random" source for the GIDS host random and padding.
pub fn counter_rng() -> cardunlock_sim::TestRng {
    cardunlock_sim::TestRng::counter(0)
}
