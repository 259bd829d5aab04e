//! Round trips to the database per online unlock: a count, not a time. Each step of a whole
//! session (`start`, `answers`, `admin`, `complete`; PIV also `prove` and `puk`) runs against
//! the in-process server and the store's statement counter ([`cardunlock_server::Store::round_trips`])
//! is read around it. On PostgreSQL each counted statement is a network round trip that waits
//! for the database; the ISO session (what `benches/unlock_load.rs` runs) must stay at or under
//! [`PG_BUDGET`], which fails as soon as a step adds a read or a write the session did not need.

mod common;

use cardunlock_core::crypto::Algorithm;
use common::*;
use serde_json::{json, Value};

/// The most round trips a whole ISO online unlock may cost on PostgreSQL: what it costs now
/// (20; 21 before two held-back writes shared the audit row's statement, 25 before the joined
/// reads, 29 before a transaction's last write went in its audit row's statement, 31 before
/// `admin` and `complete` read their session once, inside their transaction; 70 before the row
/// MACs were read and written in the statements that read and write the rows;
/// server/BENCHMARKS-server.md).
const PG_BUDGET: u64 = 20;
/// The same for the PIV session with presence proof and PUK release (41 now, 45 before the
/// joined reads and the held-back queue, 97 before the row MACs were fused).
const PG_PIV_BUDGET: u64 = 41;

/// Runs `step` and returns its reply with the statements it cost.
fn counted(env: &Env, step: impl FnOnce(&Env) -> (u16, Value)) -> (Value, u64) {
    let before = env.server.store().round_trips();
    let (status, reply) = step(env);
    assert_eq!(status, 200, "{reply}");
    (reply, env.server.store().round_trips() - before)
}

/// One ISO session, the benchmark's: start, answers, admin, complete. Returns the count of
/// each step.
fn iso_session(env: &Env, identity: &str, block: &str) -> [u64; 4] {
    let (start, start_n) = counted(env, |e| e.post("/v1/unlock/start", &card("iso", identity)));
    let session = start["session"].as_str().unwrap().to_owned();
    let (verified, answers_n) = counted(env, |e| {
        e.post(
            "/v1/unlock/answers",
            &json!({ "session": session, "answers": ANSWERS }),
        )
    });
    assert_eq!(verified["verified"], true, "{verified}");
    let request = json!({ "kind": "encrypt", "algorithm": "3des", "block": block });
    let (_, admin_n) = counted(env, |e| {
        e.post(
            "/v1/unlock/admin",
            &json!({ "session": session, "request": request }),
        )
    });
    let done =
        json!({ "session": session, "outcome": "unlocked", "puk_rotated": false, "detail": "" });
    let (_, complete_n) = counted(env, |e| e.post("/v1/unlock/complete", &done));
    [start_n, answers_n, admin_n, complete_n]
}

backend_tests! {
    /// Proves the PostgreSQL store spends at most [`PG_BUDGET`] round trips on a whole ISO
    /// online unlock (the second session's count: the first also prepares each statement on
    /// its pooled connection). A step that reads a row again, or checks a MAC in a statement
    /// of its own, pushes it over and fails this test. Every step counts at least its `BEGIN`
    /// and `COMMIT`, so a counter that stopped counting fails it too.
    fn an_online_unlock_stays_within_its_round_trip_budget() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server
            .enroll(&enrollment("iso", "c0ffee", Algorithm::TripleDes))
            .unwrap();
        let warm = iso_session(&env, "c0ffee", "0102030405060708");
        let steps = iso_session(&env, "c0ffee", "1112131415161718");
        let total: u64 = steps.iter().sum();
        eprintln!(
            "{:?}: round trips per ISO session {total} (start {}, answers {}, admin {}, complete {}); first session {}",
            backend(),
            steps[0],
            steps[1],
            steps[2],
            steps[3],
            warm.iter().sum::<u64>()
        );
        assert!(steps.iter().all(|&n| n >= 2), "every step is a transaction: {steps:?}");
        if backend() == Backend::Postgres {
            assert!(total <= PG_BUDGET, "{total} round trips per session: {steps:?}");
        }
    }

    /// The PIV session with presence proof and PUK release, counted and printed (its extra
    /// steps, `prove` and `puk`, each a transaction of their own), bounded by
    /// [`PG_PIV_BUDGET`] so it cannot grow unnoticed.
    fn a_piv_unlock_with_puk_release_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        let mut e = enrollment("piv", "5157", Algorithm::TripleDes);
        e.card_auth_key = Some(card_auth_public());
        env.server.enroll(&e).unwrap();
        let mut counts = Vec::new();
        for _ in 0..2 {
            let before = env.server.store().round_trips();
            let session = env.verified_session("piv", "5157");
            let verified = env.server.store().round_trips() - before;
            let (_, puk) = counted(&env, |e| e.post("/v1/unlock/puk", &json!({ "session": session })));
            let done = json!({ "session": session, "outcome": "unlocked", "puk_rotated": true, "detail": "" });
            let (_, complete) = counted(&env, |e| e.post("/v1/unlock/complete", &done));
            counts.push([verified, puk, complete]);
        }
        let steps = counts[1];
        let total: u64 = steps.iter().sum();
        eprintln!(
            "{:?}: round trips per PIV session {total} (start + prove + answers {}, puk {}, complete {})",
            backend(),
            steps[0],
            steps[1],
            steps[2]
        );
        if backend() == Backend::Postgres {
            assert!(total <= PG_PIV_BUDGET, "{total} round trips per session: {steps:?}");
        }
    }
}
