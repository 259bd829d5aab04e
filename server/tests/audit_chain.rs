//! The audit log is keyed hash chains (one per instance and concurrent transaction, plus the
//! global chain of older rows): a row removed, changed, moved (within or between chains) or
//! inserted straight in the database (as someone with database access but without the master
//! secret could) is found and named by `verify`; a truncated tail is found against a head
//! saved earlier.

mod common;

use std::path::Path;

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::{ChainHead, ChainReport, MasterSecret, Store};
use common::*;
use serde_json::json;

/// A server's store with a few audit rows (enrolments, a session, refusals summarised).
fn store_with_rows(dir: &Path) -> (Env, std::path::PathBuf) {
    let cfg = config(dir);
    let location = cfg.db_path.clone();
    let env = Env::start(&cfg);
    for id in ["a1", "a2", "a3"] {
        env.server
            .enroll(&enrollment("piv", id, Algorithm::TripleDes))
            .unwrap();
    }
    env.start_session("piv", "a1");
    env.post("/v1/unlock/start", &card("piv", "ffff"));
    env.post("/v1/unlock/complete", &json!({}));
    env.server.flush_refusals().unwrap();
    (env, location)
}

/// Runs one statement straight on the database (`pg` on PostgreSQL, `sqlite` on SQLite).
fn tamper(location: &Path, sqlite: &str, pg: &str) {
    let postgres = location.to_str().unwrap().starts_with("postgres://");
    query_texts(location, if postgres { pg } else { sqlite });
}

fn verify(store: &Store, heads: &[ChainHead]) -> ChainReport {
    store.verify_audit(&master(), heads).unwrap()
}

/// The one instance chain a store with sequential requests wrote.
fn only_chain(report: &ChainReport) -> ChainHead {
    assert_eq!(report.chains.len(), 1, "{report:?}");
    assert!(report.chains[0].chain.is_some(), "{report:?}");
    report.chains[0].clone()
}

fn problem(store: &Store) -> String {
    verify(store, &[])
        .problem
        .expect("the tampering was not found")
}

backend_tests! {
    fn a_clean_chain_verifies_and_reports_its_head() {
        let dir = tempfile::tempdir().unwrap();
        let (env, _) = store_with_rows(dir.path());
        let store = env.server.store();
        let rows = store.audit().unwrap().len() as i64;
        let report = verify(store, &[]);
        assert_eq!(report.problem, None);
        let head = only_chain(&report);
        assert_eq!(head.head.seq, rows);
        // The head's text form reads back, and the head is the one the server would log.
        assert_eq!(ChainHead::parse(&head.to_text()).unwrap(), head);
        assert_eq!(store.audit_heads(), vec![head]);
        // Another master secret's key does not verify the chain.
        let other = MasterSecret::from_hex(&"42".repeat(32)).unwrap();
        let wrong = store.verify_audit(&other, &[]).unwrap();
        assert!(wrong.problem.unwrap().contains("row seq 1 "));
    }

    fn a_deleted_row_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (env, location) = store_with_rows(dir.path());
        tamper(&location, "DELETE FROM audit WHERE seq = 3", "DELETE FROM audit WHERE seq = 3");
        let found = problem(env.server.store());
        assert!(found.contains(": row seq 3 was removed"), "{found}");
    }

    fn an_edited_row_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (env, location) = store_with_rows(dir.path());
        let sql = "UPDATE audit SET detail = 'nothing happened' WHERE seq = 4";
        tamper(&location, sql, sql);
        let found = problem(env.server.store());
        assert!(found.contains(": row seq 4 (id "), "{found}");
        assert!(found.contains("changed"), "{found}");
    }

    fn a_moved_row_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (env, location) = store_with_rows(dir.path());
        // Row 2 moved to the end (a new, highest id).
        tamper(
            &location,
            "UPDATE audit SET id = (SELECT max(id) + 1 FROM audit) WHERE seq = 2",
            "UPDATE audit SET id = DEFAULT WHERE seq = 2",
        );
        let found = problem(env.server.store());
        assert!(found.contains(": row seq 2 was moved out of order"), "{found}");
    }

    fn an_inserted_row_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (env, location) = store_with_rows(dir.path());
        let sql = "INSERT INTO audit (time_ms, event, outcome, detail)
                   VALUES (1700000000000, 'lift_lock', 'lifted', 'forged')";
        tamper(&location, sql, sql);
        let found = problem(env.server.store());
        assert!(found.contains("was inserted"), "{found}");
        // Even with a place in the chain, a forged row's MAC does not verify.
        let dir = tempfile::tempdir().unwrap();
        let (env, location) = store_with_rows(dir.path());
        let rows = env.server.store().audit().unwrap().len();
        let seq = rows + 1;
        let chain = only_chain(&verify(env.server.store(), &[])).chain.unwrap();
        let forged = format!(
            "INSERT INTO audit (time_ms, event, outcome, detail, seq, mac, chain)
             VALUES (1700000000000, 'lift_lock', 'lifted', 'forged', {seq}, {{MAC}}, '{chain}')"
        );
        tamper(
            &location,
            &forged.replace("{MAC}", &format!("x'{}'", "00".repeat(32))),
            &forged.replace("{MAC}", &format!("'\\x{}'::bytea", "00".repeat(32))),
        );
        let found = problem(env.server.store());
        assert!(found.contains(&format!(": row seq {seq} (id ")), "{found}");
    }

    fn a_truncated_tail_is_found_against_a_saved_head() {
        let dir = tempfile::tempdir().unwrap();
        let (env, location) = store_with_rows(dir.path());
        let store = env.server.store();
        let saved = only_chain(&verify(store, &[]));
        // More rows after the head was saved (logged).
        env.server
            .enroll(&enrollment("piv", "a4", Algorithm::TripleDes))
            .unwrap();
        env.server
            .enroll(&enrollment("piv", "a5", Algorithm::TripleDes))
            .unwrap();
        let report = verify(store, std::slice::from_ref(&saved));
        assert_eq!(report.problem, None);
        assert_eq!(only_chain(&report).head.seq, saved.head.seq + 2);
        // The tail, from the saved head on, removed; the stored head rewritten to the new end
        // (all of which someone with database access can do without the key).
        let keep = saved.head.seq - 1;
        tamper(
            &location,
            &format!("DELETE FROM audit WHERE seq > {keep}"),
            &format!("DELETE FROM audit WHERE seq > {keep}"),
        );
        let sqlite = format!(
            "UPDATE audit_heads SET seq = {keep}, mac = (SELECT mac FROM audit WHERE seq = {keep})"
        );
        tamper(&location, &sqlite, &sqlite);
        // On its own the chain looks whole; against the saved head it is not.
        assert_eq!(verify(store, &[]).problem, None);
        let found = verify(store, std::slice::from_ref(&saved)).problem.unwrap();
        assert!(
            found.contains(&format!("ends at seq {keep} before the saved head seq {}", saved.head.seq)),
            "{found}"
        );
    }

    /// Instances starting together on a store with unchained rows chain them once between
    /// them (the head row is locked), and the chain verifies.
    fn instances_starting_together_chain_the_old_rows_once() {
        let dir = tempfile::tempdir().unwrap();
        let location = config(dir.path()).db_path;
        let old = Store::open(&location).unwrap();
        for i in 0..20 {
            old.enroll(&enrollment("piv", &format!("d0{i:02}"), Algorithm::TripleDes), &FAST)
                .unwrap();
        }
        drop(old);
        let stores: Vec<Store> = (0..4).map(|_| Store::open(&location).unwrap()).collect();
        let chained: u64 = std::thread::scope(|s| {
            let runs: Vec<_> = stores
                .iter()
                .map(|store| s.spawn(|| store.set_audit_key(&master()).unwrap()))
                .collect();
            runs.into_iter().map(|r| r.join().unwrap()).sum()
        });
        assert_eq!(chained, 20);
        let report = verify(&stores[0], &[]);
        assert_eq!(report.problem, None);
        // The 20 old rows in the global chain, the "chained" row and the row-MAC migration's
        // `row_mac` row in instance chains.
        assert_eq!(report.chains[0].chain, None);
        assert_eq!(report.chains[0].head.seq, 20);
        assert_eq!(report.rows(), 22);
    }

    fn rows_written_before_the_chain_are_chained_once() {
        let dir = tempfile::tempdir().unwrap();
        let location = config(dir.path()).db_path;
        // A store used without the key (an older server): its rows are unchained.
        let old = Store::open(&location).unwrap();
        old.enroll(&enrollment("piv", "b1", Algorithm::TripleDes), &FAST).unwrap();
        old.enroll(&enrollment("piv", "b2", Algorithm::TripleDes), &FAST).unwrap();
        drop(old);
        let store = Store::open(&location).unwrap();
        assert_eq!(store.set_audit_key(&master()).unwrap(), 2);
        let audit = store.audit().unwrap();
        // Two enrolments, `audit_chain`, the row-MAC migration's `row_mac`.
        assert_eq!(audit.len(), 4);
        assert_eq!(
            (audit[2].event.as_str(), audit[2].outcome.as_str(), audit[2].detail.as_str()),
            ("audit_chain", "chained", "2 existing rows chained")
        );
        assert_eq!(verify(&store, &[]).problem, None);
        store.enroll(&enrollment("piv", "b3", Algorithm::TripleDes), &FAST).unwrap();
        assert_eq!(verify(&store, &[]).rows(), 5);
        // Once: a later start chains nothing, and a row slipped in unchained is named.
        let again = Store::open(&location).unwrap();
        assert_eq!(again.set_audit_key(&master()).unwrap(), 0);
        let unkeyed = Store::open(&location).unwrap();
        unkeyed.enroll(&enrollment("piv", "b4", Algorithm::TripleDes), &FAST).unwrap();
        let found = problem(&again);
        assert!(found.contains("was inserted") && found.contains("after seq 2"), "{found}");
    }

    /// Proves instance chains are checked one by one: two instances write two chains that
    /// verify; a row moved into the other chain (chain column rewritten) is named, as its MAC
    /// binds its chain; and a chain whose rows are all deleted is found by its stored head.
    fn every_instance_chain_is_verified() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let location = cfg.db_path.clone();
        let envs = instances(&cfg, 2);
        for (i, env) in envs.iter().enumerate() {
            env.server
                .enroll(&enrollment("piv", &format!("e{i}"), Algorithm::TripleDes))
                .unwrap();
            env.post("/v1/unlock/start", &card("piv", "ffff"));
        }
        let store = envs[0].server.store();
        let report = verify(store, &[]);
        assert_eq!(report.problem, None);
        let chains: Vec<String> = report.chains.iter().filter_map(|c| c.chain.clone()).collect();
        assert_eq!(chains.len(), 2, "{report:?}");
        assert_ne!(chains[0], chains[1]);
        // Both instances' heads are known to their own handles.
        assert_eq!(envs[1].server.store().audit_heads().len(), 1);
        // The last row of one chain moved into the other.
        let (a, b) = (&chains[0], &chains[1]);
        let moved = format!(
            "UPDATE audit SET chain = '{b}', seq = (SELECT max(seq) + 1 FROM audit WHERE chain = '{b}')
             WHERE id = (SELECT max(id) FROM audit WHERE chain = '{a}')"
        );
        let pg = moved.replace("UPDATE audit SET", "UPDATE audit AS t SET")
            .replace("WHERE id =", "WHERE t.id =");
        tamper(&location, &moved, &pg);
        let found = problem(store);
        assert!(found.starts_with("chain "), "{found}");
        // A whole chain deleted, its head left behind.
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let location = cfg.db_path.clone();
        let env = Env::start(&cfg);
        env.server.enroll(&enrollment("piv", "f1", Algorithm::TripleDes)).unwrap();
        tamper(&location, "DELETE FROM audit", "DELETE FROM audit");
        let found = problem(env.server.store());
        // The row-MAC migration's `row_mac` row, then the enrolment.
        assert!(found.contains("ends at seq 0 but the stored head is seq 2"), "{found}");
    }
}
