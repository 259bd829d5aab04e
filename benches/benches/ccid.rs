//! The cost of the CCID framing: the same PIV unblock (policy, SELECT, RESET RETRY COUNTER,
//! VERIFY: 3 APDUs) straight to the card in memory, and through the CCID session and a reader in
//! memory, at APDU level and at TPDU level with T=1. Throughput is in APDUs ("elements").
//!
//! Two pairs:
//! - `replay_*`: the card's recorded answers (no allocation): the core alone, then the core plus
//!   the CCID session plus the no-heap loopback reader. Their difference is the framing cost;
//!   `replay_loopback_only` is the reader's share of it (the same XfrBlocks written to the
//!   loopback reader directly, its DataBlocks read back), `replay_through_bare_xfrblock` the
//!   floor of this reader (the core behind the least a host can do per APDU, none of the
//!   session's checks).
//! - `sim_*`: a fresh blocked simulated card per iteration, directly, then behind the fault-
//!   injecting reader simulator at APDU level and at T=1 (the simulator's own bookkeeping
//!   allocates, so these rows overstate what a real pipe costs).

mod common;

use cardunlock_benches::{blocked_piv_card, piv_unblock, record_piv_unblock};
use cardunlock_ccid::clock::NoTimeout;
use cardunlock_ccid::descriptor::{ClassDescriptor, ExchangeLevel};
use cardunlock_ccid::loopback::Loopback;
use cardunlock_ccid::session::{NoControl, Session};
use cardunlock_ccid_sim::tpdu::T1Card;
use cardunlock_ccid_sim::{apdu_session, session_with, SimConfig};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use embassy_futures::block_on;
use embedded_io_async::{Read, Write};

const ATR: &[u8] = &[0x3B, 0x80, 0x80, 0x01, 0x01];

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
            || {
                let mut s: Session<_, _, NoControl> = Session::new(
                    Loopback::new(piv.replay(), ATR),
                    NoTimeout,
                    NoControl,
                    &apdu_level,
                    0,
                )
                .expect("session");
                block_on(s.power_on()).expect("power on");
                s
            },
            |s| {
                piv_unblock(&mut *s);
            },
            BatchSize::SmallInput,
        )
    });

    // The reader alone: the same three commands written to the loopback reader as XfrBlocks,
    // its DataBlocks read back. Not a host cost (a real reader does this in its firmware); it
    // tells how much of the CCID row the in-memory reader itself takes.
    let commands: Vec<Vec<u8>> = piv
        .exchanges()
        .map(|e| e.command.expect("recorded command").to_vec())
        .collect();
    group.bench_function("replay_loopback_only", |b| {
        b.iter_batched_ref(
            || Loopback::new(piv.replay(), ATR),
            |reader| {
                block_on(async {
                    let mut reply = [0u8; 271];
                    for (seq, c) in commands.iter().enumerate() {
                        let len = u8::try_from(c.len()).expect("short APDU");
                        let seq = u8::try_from(seq).expect("few APDUs");
                        let head = [0x6F, len, 0, 0, 0, 0, seq, 0, 0, 0];
                        reader.write(&head).await.expect("write");
                        reader.write(c).await.expect("write");
                        reader.flush().await.expect("flush");
                        let n = reader.read(&mut reply).await.expect("read");
                        assert!(n > 10, "a DataBlock with the card's answer");
                    }
                })
            },
            BatchSize::SmallInput,
        )
    });
    // The floor of this reader: the core in front of the loopback reader through the least a
    // host can do per APDU (the XfrBlock header, two writes and a flush, one read, the DataBlock's
    // length and status, the copy out, one wipe), straight-line, without the session's bSeq
    // check, stale replies, time extensions, deadlines or chaining.
    group.bench_function("replay_through_bare_xfrblock", |b| {
        b.iter_batched_ref(
            || BareHost {
                reader: Loopback::new(piv.replay(), ATR),
                seq: 0,
                rx: [0; 271],
            },
            |host| {
                piv_unblock(&mut *host);
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

/// The least a host does per APDU at CCID APDU level (see `replay_through_bare_xfrblock`).
struct BareHost<T> {
    reader: Loopback<T>,
    seq: u8,
    rx: [u8; 271],
}

impl<T: cardunlock_core::Transport> cardunlock_core::Transport for BareHost<T> {
    type Error = cardunlock_core::ErrorKind;

    async fn transmit(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, Self::Error> {
        use cardunlock_core::ErrorKind;
        let len = u8::try_from(command.len()).map_err(|_| ErrorKind::InvalidCommand)?;
        self.seq = self.seq.wrapping_add(1);
        let head = [0x6F, len, 0, 0, 0, 0, self.seq, 0, 0, 0];
        let _ = self.reader.write(&head).await;
        let _ = self.reader.write(command).await;
        let _ = self.reader.flush().await;
        let Ok(n) = self.reader.read(&mut self.rx).await;
        let data_len = usize::from(self.rx[1]);
        let answer = self.rx.get(10..10 + data_len).ok_or(ErrorKind::Other)?;
        if self.rx[7] != 0 || self.rx[6] != self.seq {
            return Err(ErrorKind::Other);
        }
        let out = response
            .get_mut(..data_len)
            .ok_or(ErrorKind::ResponseTooLong)?;
        out.copy_from_slice(answer);
        self.rx[..n].fill(0);
        std::hint::black_box(&self.rx);
        Ok(data_len)
    }
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = ccid
}
criterion_main!(benches);
