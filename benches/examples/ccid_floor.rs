//! The CCID framing cost against its floor, as the minimum over rounds (a loaded machine
//! disturbs a minimum least): the PIV unblock (3 APDUs) on the card's recorded answers
//!
//! - straight to the replay (the core path),
//! - through the CCID session and the loopback reader (what `benches/benches/ccid.rs` times as
//!   `replay_through_ccid_session`),
//! - through a bare host over the same loopback reader: the XfrBlock header, one send, one
//!   read of the whole reply, the length / `bSeq` / slot / status checks, the copy out and one
//!   wipe, with no robustness at all (no deadline, stale reply, time extension, busy resend,
//!   ABORT, chaining or power state). It is the floor any session over this reader can reach.
//!
//! Each round builds 2000 transports outside the timed loop and runs the flow through `&mut`,
//! as criterion's `iter_batched_ref` does.
//!
//! `cargo run --release -p cardunlock-benches --example ccid_floor` (`ROUNDS`, default 100).
//! `ONLY=core`, `ONLY=session` or `ONLY=bare` runs one of the three, for an instruction count
//! that load does not disturb:
//! `ONLY=session ROUNDS=1 valgrind --tool=callgrind --toggle-collect='cardunlock_benches::piv_unblock*' target/release/examples/ccid_floor`
//! (the count covers the 2000 timed unblocks, not the set-up).

use std::hint::black_box;
use std::time::Instant;

use cardunlock_benches::{piv_unblock, record_piv_unblock, Recording, LOOPBACK_ATR};
use cardunlock_ccid::loopback::Loopback;
use cardunlock_ccid::pipe::Pipe;
use cardunlock_core::{ErrorKind, Transport};

const BATCH: usize = 2000;

/// The bare host: one APDU per XfrBlock, no robustness (see the module docs).
struct Bare<T: Transport> {
    io: Loopback<T>,
    seq: u8,
    rx: [u8; 271],
}

impl<T: Transport> Transport for Bare<T> {
    type Error = ErrorKind;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
        let seq = self.seq;
        self.seq = seq.wrapping_add(1);
        let l = u32::try_from(command.len())
            .map_err(|_| ErrorKind::InvalidCommand)?
            .to_le_bytes();
        let head = [0x6F, l[0], l[1], l[2], l[3], 0, seq, 0, 0, 0];
        let _ = self.io.send(&head, command).await;
        let got = self.io.recv(&mut self.rx).await.unwrap_or(0);
        let r = &self.rx;
        let len = u32::from_le_bytes([r[1], r[2], r[3], r[4]]) as usize;
        if got != 10 + len || r[0] != 0x80 || r[5] != 0 || r[6] != seq || r[7] & 0xC3 != 0 {
            return Err(ErrorKind::Other);
        }
        let out = response.get_mut(..len).ok_or(ErrorKind::ResponseTooLong)?;
        out.copy_from_slice(&self.rx[10..10 + len]);
        self.rx[..10 + len].fill(0);
        black_box(&self.rx);
        Ok(len)
    }
}

/// The fastest of `rounds` batches of `run` over transports from `make`, in ns an unblock.
fn fastest<T>(rounds: usize, make: impl Fn() -> T, run: impl Fn(&mut T)) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let mut batch: Vec<T> = (0..BATCH).map(|_| make()).collect();
        let start = Instant::now();
        for t in batch.iter_mut() {
            run(t);
        }
        best = best.min(start.elapsed().as_nanos() as f64 / BATCH as f64);
    }
    best
}

fn main() {
    let rounds = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100);
    let only = std::env::var("ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only == name;
    let piv: Recording = record_piv_unblock();
    let core = wanted("core").then(|| {
        fastest(
            rounds,
            || piv.replay(),
            |t| {
                black_box(piv_unblock(t).replayed());
            },
        )
    });
    let session = wanted("session").then(|| {
        fastest(
            rounds,
            || piv.replay_session(),
            |s| {
                piv_unblock(s);
            },
        )
    });
    let bare = wanted("bare").then(|| {
        fastest(
            rounds,
            || Bare {
                io: Loopback::new(piv.replay(), LOOPBACK_ATR),
                seq: 0,
                rx: [0; 271],
            },
            |b| {
                piv_unblock(b);
            },
        )
    });
    println!("fastest of {rounds} rounds of {BATCH} PIV unblocks (3 APDUs), ns an unblock:");
    for (label, ns) in [
        ("core only (replay)            ", core),
        ("CCID session + loopback reader", session),
        ("bare host + loopback reader   ", bare),
    ] {
        let Some(ns) = ns else { continue };
        match core {
            Some(core) => println!("  {label}  {ns:7.1}  {:.2}", ns / core),
            None => println!("  {label}  {ns:7.1}"),
        }
    }
}
