//! The cost of the CCID framing: the same PIV unblock (policy, SELECT, RESET RETRY COUNTER,
//! VERIFY: 3 APDUs) straight to the card in memory, and through the CCID session and a reader in
//! memory, at APDU level and at TPDU level with T=1. Throughput is in APDUs ("elements").
//!
//! Two pairs:
//! - `replay_*`: the card's recorded answers (no allocation): the core alone, then the core plus
//!   the CCID session plus the no-heap loopback reader. Their difference is the framing cost.
//! - `sim_*`: a fresh blocked simulated card per iteration, directly, then behind the fault-
//!   injecting reader simulator at APDU level and at T=1 (the simulator's own bookkeeping
//!   allocates, so these rows overstate what a real pipe costs).

mod common;

use cardunlock_benches::{blocked_piv_card, piv_unblock, record_piv_unblock};
use cardunlock_ccid::descriptor::{ClassDescriptor, ExchangeLevel};
use cardunlock_ccid_sim::tpdu::T1Card;
use cardunlock_ccid_sim::{apdu_session, session_with, SimConfig};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use embassy_futures::block_on;

fn ccid(crit: &mut Criterion) {
    let piv = record_piv_unblock();
    let mut group = crit.benchmark_group("ccid/piv_puk_unblock");
    group.throughput(Throughput::Elements(piv.apdus() as u64));

    // Both replay rows build their transport outside the timed region and run the flow through
    // `&mut` (`iter_batched_ref`): a session (two 271-byte message buffers, the loopback reader's
    // two more) moved by value into the flow and collected by criterion would time memcpy and
    // page faults of criterion's output vector, not the framing.
    group.bench_function("replay_core_only", |b| {
        b.iter_batched_ref(
            || piv.replay(),
            |t| piv_unblock(t).replayed(),
            BatchSize::SmallInput,
        )
    });
    let apdu_level = ClassDescriptor::TYPICAL.with_level(ExchangeLevel::ShortApdu);
    group.bench_function("replay_through_ccid_session", |b| {
        b.iter_batched_ref(
            || piv.replay_session(),
            |s| {
                piv_unblock(&mut *s);
            },
            BatchSize::SmallInput,
        )
    });

    group.bench_function("sim_card_in_memory", |b| {
        b.iter_batched(blocked_piv_card, piv_unblock, BatchSize::SmallInput)
    });
    group.bench_function("sim_card_ccid_apdu_level", |b| {
        b.iter_batched(
            || {
                let (mut s, reader) = apdu_session(blocked_piv_card(), SimConfig::new(apdu_level));
                block_on(s.power_on()).expect("power on");
                (s, reader)
            },
            |(s, reader)| (piv_unblock(s), reader),
            BatchSize::SmallInput,
        )
    });
    let tpdu = ClassDescriptor::TYPICAL.with_level(ExchangeLevel::Tpdu);
    group.bench_function("sim_card_ccid_t1", |b| {
        b.iter_batched(
            || {
                let (mut s, reader) =
                    session_with(T1Card::new(blocked_piv_card()), SimConfig::new(tpdu));
                block_on(s.power_on()).expect("power on");
                (s, reader)
            },
            |(s, reader)| (piv_unblock(s), reader),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = ccid
}
criterion_main!(benches);
