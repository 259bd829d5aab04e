//! A counting global allocator proves that a full PIV PUK unblock and a full GIDS admin unblock
//! allocate nothing in the core. The exchanges with the simulated card are recorded first (the
//! card allocates) on a `cardunlock-testkit` tape in a fixed array, then replayed from it, each
//! command checked, while the counter is armed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use cardunlock_core::crypto::AdminKey;
use cardunlock_core::driver::Driver;
use cardunlock_core::flow::LocalKey;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock;
use cardunlock_core::Transport;
use cardunlock_sim::{Config, GidsConfig, PivConfig, SimCard};
use cardunlock_testkit::{Recorder, Tape};
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

fn piv_unblock<T: Transport>(transport: T) -> Result<(), String> {
    let mut driver = Driver::new(transport);
    let input = unlock::piv_input(&PinPolicy::PIV, b"12345678", b"840259", b"840259").unwrap();
    block_on(unlock::piv_unblock(&mut driver, &input.0, &input.1)).map_err(|e| format!("{e:?}"))
}

const R1: [u8; 16] = [0x21; 16];

/// Bytes of tape: room for a whole unblock (each exchange reserves the driver's response buffer).
const TAPE: usize = 4096;

/// The exchanges of `flow` with `card`, on a tape in a fixed array.
fn record(
    card: SimCard,
    flow: impl FnOnce(&mut Recorder<SimCard, [u8; TAPE]>),
) -> Tape<[u8; TAPE]> {
    let mut recorder = Recorder::new(card, [0; TAPE]);
    flow(&mut recorder);
    assert!(!recorder.is_full());
    recorder.into_parts().1
}

fn gids_unblock<T: Transport>(transport: T) -> Result<(), String> {
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
    .map_err(|e| format!("{e:?}"))
}

/// An unblock flow over any transport.
trait Unblock {
    fn run<T: Transport>(&self, transport: T) -> Result<(), String>;
}

struct Piv;
struct Gids;

impl Unblock for Piv {
    fn run<T: Transport>(&self, transport: T) -> Result<(), String> {
        piv_unblock(transport)
    }
}

impl Unblock for Gids {
    fn run<T: Transport>(&self, transport: T) -> Result<(), String> {
        gids_unblock(transport)
    }
}

/// Records `flow` against `card`, then replays it with the counter armed: the same flow, input
/// checks included, succeeds over all `apdus` recorded exchanges with the same commands and
/// allocates nothing (an error's text would allocate, but then the result is no success).
fn replays_without_allocating(card: SimCard, flow: impl Unblock, apdus: usize) {
    let tape = record(card, |r| flow.run(r).unwrap());
    let mut replay = tape.replay();
    let (result, allocations) = armed(|| flow.run(&mut replay));
    assert_eq!(result, Ok(()));
    assert_eq!(replay.replayed(), apdus, "the replay ran the whole flow");
    assert_eq!(replay.mismatch(), None, "every command as recorded");
    assert_eq!(allocations, 0);
}

#[test]
fn piv_unblock_allocates_nothing() {
    let card = SimCard::new(Config::Piv(PivConfig::factory().blocked()));
    replays_without_allocating(card, Piv, 3);
}

#[test]
fn gids_unblock_allocates_nothing() {
    let card = SimCard::new(Config::Gids(GidsConfig::factory().blocked()));
    replays_without_allocating(card, Gids, 6);
}

#[test]
fn the_counter_does_count() {
    let (v, allocations) = armed(|| vec![1u8; 16]);
    assert_eq!(v.len(), 16);
    assert!(allocations >= 1);
}
