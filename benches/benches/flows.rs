//! Whole unblock flows, in-process: against the simulated card (a fresh blocked card per
//! iteration, built outside the timed part and dropped after it), and over a replay of the card's
//! recorded answers that allocates nothing, which leaves the core's own cost. Throughput is in
//! APDUs exchanged ("elements").

mod common;

use cardunlock_benches::{
    blocked_gids_card, blocked_piv_card, gids_unblock, piv_unblock, record_gids_unblock,
    record_piv_unblock,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn flows(crit: &mut Criterion) {
    let piv = record_piv_unblock();
    let mut group = crit.benchmark_group("flow/piv_puk_unblock");
    group.throughput(Throughput::Elements(piv.apdus() as u64));
    group.bench_function("sim_card", |b| {
        b.iter_batched(blocked_piv_card, piv_unblock, BatchSize::SmallInput)
    });
    group.bench_function("replay_core_only", |b| {
        b.iter(|| piv_unblock(piv.replay()).replayed())
    });
    group.finish();

    let gids = record_gids_unblock();
    let mut group = crit.benchmark_group("flow/gids_admin_unblock");
    group.throughput(Throughput::Elements(gids.apdus() as u64));
    group.bench_function("sim_card", |b| {
        b.iter_batched(blocked_gids_card, gids_unblock, BatchSize::SmallInput)
    });
    group.bench_function("replay_core_only", |b| {
        b.iter(|| gids_unblock(gids.replay()).replayed())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = flows
}
criterion_main!(benches);
