//! A counting global allocator proves that a full PIV PUK unblock and a full GIDS admin unblock
//! allocate nothing in the core. The card's answers are recorded from the simulated card first
//! (which allocates), then replayed from fixed arrays while the counter is armed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use cardunlock_core::crypto::AdminKey;
use cardunlock_core::driver::Driver;
use cardunlock_core::flow::LocalKey;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock;
use cardunlock_core::{ErrorKind, Transport};
use cardunlock_sim::{Config, GidsConfig, PivConfig, SimCard};
use embassy_futures::block_on;

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Replays recorded answers from a fixed array: allocates nothing itself.
struct Replay {
    answers: [([u8; 64], usize); 16],
    next: usize,
}

impl Transport for Replay {
    type Error = ErrorKind;

    async fn transmit(&mut self, _command: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
        let (bytes, len) = self.answers.get(self.next).ok_or(ErrorKind::Other)?;
        self.next += 1;
        response
            .get_mut(..*len)
            .ok_or(ErrorKind::ResponseTooLong)?
            .copy_from_slice(&bytes[..*len]);
        Ok(*len)
    }
}

/// A transport that records the card's answers into a [`Replay`].
struct Recorder {
    card: SimCard,
    replay: Replay,
}

impl Transport for Recorder {
    type Error = ErrorKind;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
        let answer = self.card.transmit(command);
        let slot = self
            .replay
            .answers
            .get_mut(self.replay.next)
            .ok_or(ErrorKind::Other)?;
        slot.0[..answer.len()].copy_from_slice(&answer);
        slot.1 = answer.len();
        self.replay.next += 1;
        response[..answer.len()].copy_from_slice(&answer);
        Ok(answer.len())
    }
}

fn armed<T>(f: impl FnOnce() -> T) -> (T, usize) {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    let out = f();
    ARMED.with(|a| a.set(false));
    (out, COUNT.with(Cell::get))
}

#[test]
fn piv_unblock_allocates_nothing() {
    let mut rec = Recorder {
        card: SimCard::new(Config::Piv(PivConfig::factory().blocked())),
        replay: Replay {
            answers: [([0; 64], 0); 16],
            next: 0,
        },
    };
    let mut driver = Driver::new(&mut rec);
    block_on(unlock::piv_unblock(
        &mut driver,
        &PinPolicy::PIV,
        b"12345678",
        b"840259",
        b"840259",
    ))
    .unwrap();
    let mut replay = Replay {
        next: 0,
        ..rec.replay
    };

    let (result, allocations) = armed(|| {
        let mut driver = Driver::new(&mut replay);
        block_on(unlock::piv_unblock(
            &mut driver,
            &PinPolicy::PIV,
            b"12345678",
            b"840259",
            b"840259",
        ))
    });
    assert_eq!(result, Ok(()));
    assert_eq!(replay.next, 3, "the replay ran the whole flow");
    assert_eq!(allocations, 0);
}

#[test]
fn gids_unblock_allocates_nothing() {
    let mut rec = Recorder {
        card: SimCard::new(Config::Gids(GidsConfig::factory().blocked())),
        replay: Replay {
            answers: [([0; 64], 0); 16],
            next: 0,
        },
    };
    let r1 = [0x21; 16];
    // Same Z1 bytes in both runs, so the recorded card answers fit the replayed flow.
    let fill = |b: &mut [u8]| b.fill(0x44);
    let mut driver = Driver::new(&mut rec);
    let mut key = LocalKey::new(AdminKey::piv_default(), fill);
    block_on(unlock::gids_unblock(
        &mut driver,
        &PinPolicy::GIDS,
        b"Xk9w2",
        b"Xk9w2",
        r1,
        &mut key,
    ))
    .unwrap();
    let mut replay = Replay {
        next: 0,
        ..rec.replay
    };

    let (result, allocations) = armed(|| {
        let mut driver = Driver::new(&mut replay);
        let mut key = LocalKey::new(AdminKey::piv_default(), fill);
        block_on(unlock::gids_unblock(
            &mut driver,
            &PinPolicy::GIDS,
            b"Xk9w2",
            b"Xk9w2",
            r1,
            &mut key,
        ))
    });
    assert_eq!(result, Ok(()));
    assert_eq!(replay.next, 6, "the replay ran the whole flow");
    assert_eq!(allocations, 0);
}

#[test]
fn the_counter_does_count() {
    let (v, allocations) = armed(|| vec![1u8; 16]);
    assert_eq!(v.len(), 16);
    assert!(allocations >= 1);
}
