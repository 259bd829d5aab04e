//! A counting global allocator proves that a full PIV PUK unblock and a full GIDS admin unblock
//! allocate nothing in the core. The card's answers are recorded from the simulated card first
//! (which allocates), then replayed from fixed arrays while the counter is armed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use cardunlock_core::crypto::{AdminKey, CryptoError};
use cardunlock_core::driver::Driver;
use cardunlock_core::flow::LocalKey;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock::{self, UnlockError};
use cardunlock_core::Transport;
use cardunlock_sim::transport::Recording;
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

fn armed<T>(f: impl FnOnce() -> T) -> (T, usize) {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    let out = f();
    ARMED.with(|a| a.set(false));
    (out, COUNT.with(Cell::get))
}

/// The PIV unblock (PUK 12345678, new PIN 840259) over `transport`: recorded against the card,
/// then replayed under the counting allocator.
fn piv_unblock<T: Transport>(transport: T) -> Result<(), UnlockError<T::Error>> {
    let mut driver = Driver::new(transport);
    let input = unlock::piv_input(&PinPolicy::PIV, b"12345678", b"840259", b"840259").unwrap();
    block_on(unlock::piv_unblock(&mut driver, &input.0, &input.1))
}

const R1: [u8; 16] = [0x21; 16];

/// The GIDS unblock (factory admin key, new PIN Xk9w2) over `transport`: recorded against the
/// card, then replayed under the counting allocator.
fn gids_unblock<T: Transport>(transport: T) -> Result<(), UnlockError<T::Error, CryptoError>> {
    let mut driver = Driver::new(transport);
    // Same Z1 bytes in every run, so the recorded card answers fit the replayed flow.
    let mut key = LocalKey::new(
        AdminKey::piv_default(),
        cardunlock_sim::TestRng::repeat(0x44),
    );
    block_on(unlock::gids_unblock(
        &mut driver,
        &unlock::admin_input(&PinPolicy::GIDS, b"Xk9w2", b"Xk9w2").unwrap(),
        R1,
        &mut key,
    ))
}

#[test]
fn piv_unblock_allocates_nothing() {
    let card = SimCard::new(Config::Piv(PivConfig::factory().blocked()));
    let recording = Recording::record(card, |r| piv_unblock(r).unwrap());
    let mut replay = recording.replay();
    let (result, allocations) = armed(|| piv_unblock(&mut replay));
    assert_eq!(result, Ok(()));
    assert_eq!(replay.replayed(), 3, "the replay ran the whole flow");
    assert_eq!(allocations, 0);
}

#[test]
fn gids_unblock_allocates_nothing() {
    let card = SimCard::new(Config::Gids(GidsConfig::factory().blocked()));
    let recording = Recording::record(card, |r| gids_unblock(r).unwrap());
    let mut replay = recording.replay();
    let (result, allocations) = armed(|| gids_unblock(&mut replay));
    assert_eq!(result, Ok(()));
    assert_eq!(replay.replayed(), 6, "the replay ran the whole flow");
    assert_eq!(allocations, 0);
}

#[test]
fn the_counter_does_count() {
    let (v, allocations) = armed(|| vec![1u8; 16]);
    assert_eq!(v.len(), 16);
    assert!(allocations >= 1);
}
