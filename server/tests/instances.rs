//! Several server instances on one store, as behind a load balancer: the guarantees of one
//! instance hold across them. Each test runs on both backends (two servers on one SQLite file,
//! and two on one PostgreSQL database); each instance has its own runtime, store handle and
//! connection pool, and shares nothing with the other but the database.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::{kdf, MasterSecret};
use common::*;
use serde_json::{json, Value};

fn session_of(reply: &Value) -> String {
    reply["session"].as_str().unwrap().to_owned()
}

fn puk_of(identity: &str, generation: u32) -> String {
    let master = MasterSecret::from_hex(MASTER_HEX).unwrap();
    kdf::piv_puk(&master, &hex::decode(identity).unwrap(), generation).to_string()
}

fn encrypt_expected(profile: &str, identity: &str, block: &[u8]) -> String {
    let master = MasterSecret::from_hex(MASTER_HEX).unwrap();
    let key = kdf::admin_key(
        &master,
        profile,
        &hex::decode(identity).unwrap(),
        Algorithm::TripleDes,
        0,
    );
    let mut out = block.to_vec();
    key.encrypt_ecb(&mut out).unwrap();
    hex::encode(out)
}

backend_tests! {
    /// Interleaved full unlocks on both instances, and at the same time 100 concurrent wrong
    /// answers for one card through both: the lock holds at exactly N, every counted attempt
    /// got its own `attempts_left`, and a right answer afterwards is refused on both.
    fn two_instances_interleave_unlocks_and_count_100_concurrent_wrong_answers_exactly() {
        const N: u32 = 10;
        const WRONG_THREADS: usize = 20;
        const PER_THREAD: usize = 5;
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.max_attempts = N;
        cfg.blind_max_attempts = cfg.max_attempts;
        let servers = Arc::new(instances(&cfg, 2));
        servers[0]
            .server
            .enroll(&enrollment("iso", "a0", Algorithm::TripleDes))
            .unwrap();
        for i in 0..4u8 {
            servers[usize::from(i % 2)]
                .server
                .enroll(&enrollment(if i % 2 == 0 { "piv" } else { "iso" }, &format!("b{i}"), Algorithm::TripleDes))
                .unwrap();
        }
        // Ten unverified sessions on the target card, five started through each instance.
        let sessions: Vec<String> = (0..10)
            .map(|i| session_of(&servers[i % 2].start_session("iso", "a0")))
            .collect();
        let sessions = Arc::new(sessions);
        let barrier = Arc::new(Barrier::new(WRONG_THREADS + 4));
        let mut wrong = Vec::new();
        for t in 0..WRONG_THREADS {
            let (servers, sessions, barrier) = (servers.clone(), sessions.clone(), barrier.clone());
            wrong.push(std::thread::spawn(move || {
                let mut replies = Vec::new();
                barrier.wait();
                for k in 0..PER_THREAD {
                    let env = &servers[(t + k) % 2];
                    let s = &sessions[(t * PER_THREAD + k) % sessions.len()];
                    replies.push(env.post("/v1/unlock/answers", &json!({ "session": s, "answers": WRONG })));
                }
                replies
            }));
        }
        // Meanwhile: unlocks that start on one instance and continue on the other.
        let mut unlocks = Vec::new();
        for i in 0..4u8 {
            let (servers, barrier) = (servers.clone(), barrier.clone());
            unlocks.push(std::thread::spawn(move || {
                let identity = format!("b{i}");
                let piv = i % 2 == 0;
                let profile = if piv { "piv" } else { "iso" };
                let (a, b) = (&servers[usize::from(i % 2)], &servers[usize::from(1 - i % 2)]);
                barrier.wait();
                for round in 0..3u32 {
                    let s = session_of(&a.start_session(profile, &identity));
                    let r = b.post("/v1/unlock/answers", &json!({ "session": s, "answers": ANSWERS }));
                    assert_eq!((r.0, &r.1["verified"]), (200, &json!(true)), "{}", r.1);
                    if piv {
                        let r = a.post("/v1/unlock/puk", &json!({ "session": s }));
                        assert_eq!(r.0, 200, "{}", r.1);
                        assert_eq!(r.1["puk_candidates"], json!([puk_of(&identity, round)]));
                        assert_eq!(r.1["next_puk"], puk_of(&identity, round + 1));
                    } else {
                        let block = [i, round as u8, 1, 2, 3, 4, 5, 6];
                        let req = json!({ "kind": "encrypt", "algorithm": "3des", "block": hex::encode(block) });
                        let r = a.post("/v1/unlock/admin", &json!({ "session": s, "request": req }));
                        assert_eq!(r.1["answer"], encrypt_expected(profile, &identity, &block), "{}", r.1);
                    }
                    let done = json!({ "session": s, "outcome": "unlocked", "puk_rotated": piv, "detail": "" });
                    assert_eq!(b.post("/v1/unlock/complete", &done), (200, json!({})));
                }
            }));
        }
        for u in unlocks {
            u.join().unwrap();
        }
        let replies: Vec<(u16, Value)> = wrong.into_iter().flat_map(|t| t.join().unwrap()).collect();
        assert_eq!(replies.len(), WRONG_THREADS * PER_THREAD);

        let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
        for r in &replies {
            *by_status.entry(r.0).or_default() += 1;
        }
        // N - 1 wrong answers counted down, the N-th locked, every other one was refused.
        assert_eq!(by_status.get(&403), Some(&(N as usize - 1)), "{by_status:?}");
        assert_eq!(by_status.get(&423), Some(&(replies.len() - (N as usize - 1))), "{by_status:?}");
        let mut left: Vec<u64> = replies
            .iter()
            .filter(|r| r.0 == 403)
            .map(|r| r.1["attempts_left"].as_u64().unwrap())
            .collect();
        left.sort_unstable();
        assert_eq!(left, (1..u64::from(N)).collect::<Vec<_>>(), "each count seen exactly once");

        let store = servers[1].server.store();
        let card = store.card("iso", "a0").unwrap().unwrap();
        assert!(card.locked);
        assert_eq!(card.failed_attempts, N);
        let audit = store.audit().unwrap();
        let count = |event: &str, outcome: &str| {
            audit
                .iter()
                .filter(|e| e.identity_hex.as_deref() == Some("a0") && e.event == event && e.outcome == outcome)
                .count()
        };
        assert_eq!(count("lock", "locked"), 1);
        assert_eq!(count("answers", "wrong_answers"), N as usize);
        assert_eq!(count("answers", "locked"), replies.len() - N as usize);

        // A right answer after the lock is refused, through either instance.
        for (i, env) in servers.iter().enumerate() {
            let r = env.post("/v1/unlock/answers", &json!({ "session": sessions[i], "answers": ANSWERS }));
            assert_error(&r, 423, "locked");
            assert_error(&env.post("/v1/unlock/start", &card_ref("iso", "a0")), 423, "locked");
        }
        // The interleaved unlocks all committed: three PUK rotations per PIV card.
        for i in [0u8, 2] {
            let c = store.card("piv", &format!("b{i}")).unwrap().unwrap();
            assert_eq!((c.puk_gen, c.pending_puk_gen), (3, None));
        }
        assert_eq!(
            audit.iter().filter(|e| e.event == "complete" && e.outcome == "unlocked").count(),
            12
        );
        // Rows appended concurrently by the instances form unbroken audit chains (one per
        // instance and concurrent request), every row in one of them.
        let report = store.verify_audit(&master(), &[]).unwrap();
        assert_eq!(report.problem, None);
        assert_eq!(report.rows(), store.audit().unwrap().len() as i64);
        assert!(report.chains.len() >= 2, "{report:?}");
    }

    /// A card challenge answered through one instance is refused through the other, also when
    /// both instances get it at the same moment.
    fn a_challenge_answered_through_one_instance_is_refused_through_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let servers = Arc::new(instances(&cfg, 2));
        servers[0]
            .server
            .enroll(&enrollment("iso", "c0", Algorithm::TripleDes))
            .unwrap();
        let block = "0011223344556677";
        let req = json!({ "kind": "encrypt", "algorithm": "3des", "block": block });
        let s0 = servers[0].verified_session("iso", "c0");
        let s1 = servers[1].verified_session("iso", "c0");
        let first = servers[0].post("/v1/unlock/admin", &json!({ "session": s0, "request": req }));
        assert_eq!(first.0, 200, "{}", first.1);
        let again = servers[1].post("/v1/unlock/admin", &json!({ "session": s1, "request": req }));
        assert_error(&again, 409, "challenge_used");

        // A race: 8 verified sessions (4 per instance) send the same fresh challenge at once.
        let sessions: Vec<String> = (0..8).map(|i| servers[i % 2].verified_session("iso", "c0")).collect();
        let barrier = Arc::new(Barrier::new(sessions.len()));
        let racers: Vec<_> = sessions
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let (servers, barrier) = (servers.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let req = json!({ "kind": "encrypt", "algorithm": "3des", "block": "8899aabbccddeeff" });
                    barrier.wait();
                    servers[i % 2].post("/v1/unlock/admin", &json!({ "session": s, "request": req })).0
                })
            })
            .collect();
        let mut statuses: Vec<u16> = racers.into_iter().map(|t| t.join().unwrap()).collect();
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409, 409, 409, 409, 409, 409, 409]);
        let audit = servers[0].server.store().audit().unwrap();
        assert_eq!(audit.iter().filter(|e| e.event == "admin" && e.outcome == "answered").count(), 2);
    }

    /// An unlock started on one instance completes on the other, step by step alternating, and
    /// a PUK released through one is not released again through the other.
    fn an_unlock_started_on_one_instance_completes_on_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let servers = instances(&cfg, 2);
        let (a, b) = (&servers[0], &servers[1]);
        let id = "d0d1";
        a.server.enroll(&enrollment("piv", id, Algorithm::TripleDes)).unwrap();
        let s = session_of(&a.start_session("piv", id));
        let r = b.post("/v1/unlock/answers", &json!({ "session": s, "answers": ANSWERS }));
        assert_eq!((r.0, &r.1["user"]["email"]), (200, &json!("Michael.Benson@demo.local")));
        let released = a.post("/v1/unlock/puk", &json!({ "session": s }));
        assert_eq!(
            released,
            (200, json!({ "puk_candidates": [puk_of(id, 0)], "next_puk": puk_of(id, 1), "tries_left": 3 }))
        );
        assert_error(&b.post("/v1/unlock/puk", &json!({ "session": s })), 409, "puk_released");
        let done = json!({ "session": s, "outcome": "unlocked", "puk_rotated": true, "detail": "" });
        assert_eq!(b.post("/v1/unlock/complete", &done), (200, json!({})));
        assert_error(&a.post("/v1/unlock/complete", &done), 401, "invalid_session");
        let card = a.server.store().card("piv", id).unwrap().unwrap();
        assert_eq!((card.puk_gen, card.pending_puk_gen), (1, None));

        // GIDS: start on B, answers on A, the host cryptogram on B, the card's checked on A
        // (R1 || R2 travel in the shared session row).
        b.server.enroll(&enrollment("gids", "d2", Algorithm::TripleDes)).unwrap();
        let s = session_of(&b.start_session("gids", "d2"));
        assert_eq!(a.post("/v1/unlock/answers", &json!({ "session": s, "answers": ANSWERS })).0, 200);
        let (r1, r2) = ([7u8; 16], [8u8; 16]);
        let req = json!({ "kind": "gids_cryptogram", "r1": hex::encode(r1), "r2": hex::encode(r2) });
        let r = b.post("/v1/unlock/admin", &json!({ "session": s, "request": req }));
        assert_eq!(r.0, 200, "{}", r.1);
        let mut card_plain = [0x80u8; 40];
        card_plain[..16].copy_from_slice(&r1);
        card_plain[16..32].copy_from_slice(&r2);
        let key = kdf::admin_key(
            &MasterSecret::from_hex(MASTER_HEX).unwrap(),
            "gids",
            &hex::decode("d2").unwrap(),
            Algorithm::TripleDes,
            0,
        );
        let mut cryptogram = card_plain;
        key.cbc_encrypt(&[0; 8], &mut cryptogram).unwrap();
        let req = json!({ "kind": "gids_card_cryptogram", "cryptogram": hex::encode(cryptogram) });
        let r = a.post("/v1/unlock/admin", &json!({ "session": s, "request": req }));
        assert_eq!(r.1["answer"].as_str().unwrap()[..64], hex::encode([r1, r2].concat()), "{}", r.1);
        let done = json!({ "session": s, "outcome": "unlocked", "puk_rotated": false, "detail": "" });
        assert_eq!(a.post("/v1/unlock/complete", &done), (200, json!({})));
        // Both instances wrote to one audit log, in order.
        let audit = b.server.store().audit().unwrap();
        let steps: Vec<&str> = audit
            .iter()
            .filter(|e| e.identity_hex.as_deref() == Some("d2"))
            .map(|e| e.outcome.as_str())
            .collect();
        assert_eq!(steps, ["enrolled", "started", "verified", "answered", "answered", "unlocked"]);
    }

    /// PUK releases racing through both instances: one release per session, and the PUK
    /// generation state loses no update (every session gets its own next generation).
    fn puk_releases_racing_through_both_instances_lose_no_generation() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        // A card with room for six unconfirmed rotations (the cap itself: tests/puk.rs).
        cfg.limits.piv_puk_tries = 8;
        let servers = Arc::new(instances(&cfg, 2));
        let id = "e0e1";
        servers[0].server.enroll(&enrollment("piv", id, Algorithm::TripleDes)).unwrap();
        // Six verified sessions; each one's /puk is sent twice at once, through both instances.
        let sessions: Vec<String> = (0..6).map(|i| servers[i % 2].verified_session("piv", id)).collect();
        let barrier = Arc::new(Barrier::new(2 * sessions.len()));
        let racers: Vec<_> = (0..2 * sessions.len())
            .map(|k| {
                let (servers, barrier) = (servers.clone(), barrier.clone());
                let s = sessions[k / 2].clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    (k / 2, servers[k % 2].post("/v1/unlock/puk", &json!({ "session": s, "puk_tries_left": 8 })))
                })
            })
            .collect();
        let replies: Vec<(usize, (u16, Value))> = racers.into_iter().map(|t| t.join().unwrap()).collect();
        let mut next: Vec<String> = Vec::new();
        for session in 0..sessions.len() {
            let mine: Vec<&(u16, Value)> = replies.iter().filter(|r| r.0 == session).map(|r| &r.1).collect();
            let released: Vec<&&(u16, Value)> = mine.iter().filter(|r| r.0 == 200).collect();
            assert_eq!(released.len(), 1, "session {session}: {mine:?}");
            assert!(mine.iter().any(|r| r.0 == 409 && r.1["error"] == "puk_released"));
            next.push(released[0].1["next_puk"].as_str().unwrap().to_owned());
        }
        next.sort();
        let mut expected: Vec<String> = (1..=6).map(|g| puk_of(id, g)).collect();
        expected.sort();
        assert_eq!(next, expected, "generations 1..=6, each handed out once");
        let card = servers[1].server.store().card("piv", id).unwrap().unwrap();
        assert_eq!((card.puk_gen, card.pending_puk_gen), (0, Some(6)));
    }
}

fn card_ref(profile: &str, identity: &str) -> Value {
    card(profile, identity)
}
