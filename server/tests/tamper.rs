//! A store written outside the server (a DBA, a restored backup, anyone on the path to the
//! database) is caught: every granting row carries a MAC under a key derived from the master
//! secret, and the attempt counter is cross-checked against the audit log. Each forgery below
//! is refused with 500 `internal_error` (no secret in the reply) and an `integrity` alert
//! (audit row at alert level); each test fails if its defence is removed.

mod common;

use std::path::Path;

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::protocol::Role;
use cardunlock_server::Store;
use common::*;
use serde_json::{json, Value};

const PIV: &str = "0a0b0c0d";

/// Runs SQL straight on the store's database, as an attacker with write access would.
fn exec(location: &Path, sql: &str) {
    let text = location.to_str().unwrap();
    if text.starts_with("postgres://") {
        let mut client = postgres::Client::connect(text, postgres::NoTls).unwrap();
        client.batch_execute(sql).unwrap();
    } else {
        let db = rusqlite::Connection::open(location).unwrap();
        db.execute_batch(sql).unwrap();
    }
}

fn is_pg(location: &Path) -> bool {
    location.to_str().unwrap().starts_with("postgres://")
}

/// `true` in the backend's SQL.
fn sql_true(location: &Path) -> &'static str {
    if is_pg(location) {
        "TRUE"
    } else {
        "1"
    }
}

/// The reply is the bare 500 of a server failure, and the store raised the alert.
fn assert_refused(env: &Env, reply: &(u16, Value)) {
    assert_error(reply, 500, "internal_error");
    let text = reply.1.to_string();
    for secret in ["puk", "answer", "hash", "argon2"] {
        assert!(!text.to_lowercase().contains(secret), "{text}");
    }
    let audit = env.server.store().audit().unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.event == "integrity" && e.outcome == "alert"),
        "no alert row: {audit:?}"
    );
}

fn session_of(reply: &Value) -> String {
    reply["session"].as_str().unwrap().to_owned()
}

backend_tests! {
    /// Proves the sessions row MAC: `verified` set by SQL does not release a PUK.
    fn a_session_marked_verified_by_update_gets_no_puk() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Env::start(&cfg);
        env.server.enroll(&enrollment("piv", PIV, Algorithm::TripleDes)).unwrap();
        let s = session_of(&env.start_session("piv", PIV));
        exec(&cfg.db_path, &format!("UPDATE sessions SET verified = {}", sql_true(&cfg.db_path)));
        let reply = env.post("/v1/unlock/puk", &json!({ "session": s }));
        assert_refused(&env, &reply);
        assert!(reply.1.get("puk_candidates").is_none());
        // Nothing moved: no pending rotation was recorded.
        let card = env.server.store().card("piv", PIV).unwrap().unwrap();
        assert_eq!((card.puk_gen, card.pending_puk_gen), (0, None));
    }

    /// Proves the sessions row MAC covers the presence proof: `proven` set by SQL on a session
    /// whose card never signed is refused before any answer is checked.
    fn a_session_marked_proven_by_update_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Env::start(&cfg);
        env.server.enroll(&enrollment("gids", "f6", Algorithm::TripleDes)).unwrap();
        let s = session_of(&env.start_session("gids", "f6"));
        exec(&cfg.db_path, &format!("UPDATE sessions SET proven = {}", sql_true(&cfg.db_path)));
        let reply = env.post("/v1/unlock/answers", &json!({ "session": s, "answers": WRONG }));
        assert_refused(&env, &reply);
        // The refused request counted nothing.
        assert_eq!(env.server.store().card("gids", "f6").unwrap().unwrap().failed_attempts, 0);
    }

    /// Proves the questions row MAC covers the card and the position: an answer hash moved to
    /// another user, or between two questions of one user, is refused.
    fn swapped_answer_hashes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Env::start(&cfg);
        for id in ["a1", "b2"] {
            env.server.enroll(&enrollment("gids", id, Algorithm::TripleDes)).unwrap();
        }
        let hash = |id: &str, pos: u32| {
            query_texts(
                &cfg.db_path,
                &format!(
                    "SELECT answer_hash FROM questions WHERE identity = '{id}' AND position = {pos}"
                ),
            )
            .remove(0)
        };
        // Between two users: b2's first hash copied into a1.
        let (a0, b0) = (hash("a1", 0), hash("b2", 0));
        exec(
            &cfg.db_path,
            &format!("UPDATE questions SET answer_hash = '{b0}' WHERE identity = 'a1' AND position = 0"),
        );
        assert_refused(&env, &env.post("/v1/unlock/start", &card("gids", "a1")));
        exec(
            &cfg.db_path,
            &format!("UPDATE questions SET answer_hash = '{a0}' WHERE identity = 'a1' AND position = 0"),
        );
        env.start_session("gids", "a1");
        // Between two questions of one user.
        let b1 = hash("b2", 1);
        exec(
            &cfg.db_path,
            &format!(
                "UPDATE questions SET answer_hash = '{b1}' WHERE identity = 'b2' AND position = 0;
                 UPDATE questions SET answer_hash = '{b0}' WHERE identity = 'b2' AND position = 1"
            ),
        );
        assert_refused(&env, &env.post("/v1/unlock/start", &card("gids", "b2")));
    }

    /// Proves `answers` checks the MAC of each question row its joined read returns (the
    /// session, its card and the card's questions in one statement): an answer hash copied
    /// from another user after the session started is refused before any answer is checked
    /// against it. Without that check the copied hash (same answers, its own salt) verifies.
    fn an_answer_hash_swapped_after_start_is_refused_at_answers() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Env::start(&cfg);
        for id in ["e1", "f2"] {
            env.server.enroll(&enrollment("iso", id, Algorithm::TripleDes)).unwrap();
        }
        let s = session_of(&env.start_session("iso", "e1"));
        let other = query_texts(
            &cfg.db_path,
            "SELECT answer_hash FROM questions WHERE identity = 'f2' AND position = 0",
        )
        .remove(0);
        exec(
            &cfg.db_path,
            &format!("UPDATE questions SET answer_hash = '{other}' WHERE identity = 'e1' AND position = 0"),
        );
        let reply = env.post("/v1/unlock/answers", &json!({ "session": s, "answers": ANSWERS }));
        assert_refused(&env, &reply);
    }

    /// Proves `answers` checks the session row's MAC in its joined read: a session marked
    /// verified by SQL is refused, where it would otherwise be told "already verified" with
    /// the card holder's name and e-mail (that branch runs no transaction of its own).
    fn a_session_marked_verified_by_update_is_refused_at_answers() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Env::start(&cfg);
        env.server.enroll(&enrollment("iso", "e3", Algorithm::TripleDes)).unwrap();
        let s = session_of(&env.start_session("iso", "e3"));
        exec(&cfg.db_path, &format!("UPDATE sessions SET verified = {}", sql_true(&cfg.db_path)));
        let reply = env.post("/v1/unlock/answers", &json!({ "session": s, "answers": WRONG }));
        assert_refused(&env, &reply);
    }

    /// Proves `answers` checks the card row's MAC in its joined read: on a verified session,
    /// a user e-mail changed by SQL is refused instead of being sent to the client.
    fn a_card_user_changed_by_update_is_refused_at_answers() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Env::start(&cfg);
        env.server.enroll(&enrollment("iso", "e4", Algorithm::TripleDes)).unwrap();
        let s = env.verified_session("iso", "e4");
        exec(&cfg.db_path, "UPDATE cards SET user_email = 'attacker@example.com'");
        let reply = env.post("/v1/unlock/answers", &json!({ "session": s, "answers": ANSWERS }));
        assert!(!reply.1.to_string().contains("attacker"), "{}", reply.1);
        assert_refused(&env, &reply);
    }

    /// Proves `admin` checks the MAC of the diverged mark it reads with the card row: a mark
    /// inserted by SQL (no valid MAC) is refused as a forgery, not taken as the server's.
    fn a_diverged_mark_inserted_by_sql_is_refused_at_admin() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Env::start(&cfg);
        env.server.enroll(&enrollment("iso", "e5", Algorithm::TripleDes)).unwrap();
        let s = env.verified_session("iso", "e5");
        exec(
            &cfg.db_path,
            "INSERT INTO card_diverged (profile, identity, reason, since_ms)
             VALUES ('iso', 'e5', 'forged', 1)",
        );
        let request = json!({ "kind": "encrypt", "algorithm": "3des", "block": "0102030405060708" });
        let reply = env.post("/v1/unlock/admin", &json!({ "session": s, "request": request }));
        assert_refused(&env, &reply);
    }

    /// Proves the cards row MAC: an attempt counter reset by SQL is refused.
    fn a_reset_attempt_counter_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Env::start(&cfg);
        env.server.enroll(&enrollment("gids", "c3", Algorithm::TripleDes)).unwrap();
        let s = session_of(&env.start_session("gids", "c3"));
        let wrong = json!({ "session": s, "answers": WRONG });
        assert_error(&env.post("/v1/unlock/answers", &wrong), 403, "wrong_answers");
        assert_error(&env.post("/v1/unlock/answers", &wrong), 403, "wrong_answers");
        exec(&cfg.db_path, "UPDATE cards SET failed_attempts = 0");
        assert_refused(&env, &env.post("/v1/unlock/answers", &wrong));
        assert_refused(&env, &env.post("/v1/unlock/start", &card("gids", "c3")));
    }

    /// Proves the cards row MAC covers the ISO profile name: a name set by SQL (pointing the
    /// workstation at another profile's key and PIN references) is refused at `start`.
    fn an_iso_profile_name_set_by_update_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Env::start(&cfg);
        env.server.enroll(&enrollment("iso", "c4", Algorithm::TripleDes)).unwrap();
        let started = env.start_raw("iso", "c4");
        assert!(started.get("iso_profile").is_none(), "{started}");
        exec(&cfg.db_path, "UPDATE cards SET iso_profile = 'other-vendor'");
        assert_refused(&env, &env.post("/v1/unlock/start", &card("iso", "c4")));
    }

    /// Proves the audit cross-check: the whole card row put back to an older state (its old,
    /// valid MAC with it) is caught because the audit log counts more wrong answer sets.
    fn a_rolled_back_attempt_counter_is_caught_by_the_audit() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Env::start(&cfg);
        env.server.enroll(&enrollment("gids", "d4", Algorithm::TripleDes)).unwrap();
        let s = session_of(&env.start_session("gids", "d4"));
        let wrong = json!({ "session": s, "answers": WRONG });
        assert_error(&env.post("/v1/unlock/answers", &wrong), 403, "wrong_answers");
        let hex = if is_pg(&cfg.db_path) { "encode(mac, 'hex')" } else { "hex(mac)" };
        let old_mac = query_texts(&cfg.db_path, &format!("SELECT {hex} FROM cards")).remove(0);
        assert_error(&env.post("/v1/unlock/answers", &wrong), 403, "wrong_answers");
        let restore = if is_pg(&cfg.db_path) {
            format!("UPDATE cards SET failed_attempts = 1, mac = decode('{old_mac}', 'hex')")
        } else {
            format!("UPDATE cards SET failed_attempts = 1, mac = x'{old_mac}'")
        };
        exec(&cfg.db_path, &restore);
        // The row itself is valid again (the MAC alone cannot tell)...
        assert_eq!(env.server.store().card("gids", "d4").unwrap().unwrap().failed_attempts, 1);
        // ...but the answers path compares it with the audit log.
        assert_refused(&env, &env.post("/v1/unlock/answers", &json!({ "session": s, "answers": ANSWERS })));
    }

    /// Proves the generation cross-check: a PIV card row put back to before a PUK release (its
    /// old, valid MAC with it) would hand the same PUKs out again; the release's audit row
    /// catches it.
    fn a_card_rolled_back_before_a_puk_release_is_caught_by_the_audit() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Env::start(&cfg);
        env.server.enroll(&enrollment("piv", PIV, Algorithm::TripleDes)).unwrap();
        let hex = if is_pg(&cfg.db_path) { "encode(mac, 'hex')" } else { "hex(mac)" };
        let old_mac = query_texts(&cfg.db_path, &format!("SELECT {hex} FROM cards")).remove(0);
        let s = env.verified_session("piv", PIV);
        assert_eq!(env.post("/v1/unlock/puk", &json!({ "session": s })).0, 200);
        let restore = if is_pg(&cfg.db_path) {
            format!("UPDATE cards SET pending_puk_gen = NULL, mac = decode('{old_mac}', 'hex')")
        } else {
            format!("UPDATE cards SET pending_puk_gen = NULL, mac = x'{old_mac}'")
        };
        exec(&cfg.db_path, &restore);
        let card = env.server.store().card("piv", PIV).unwrap().unwrap();
        assert_eq!((card.puk_gen, card.pending_puk_gen), (0, None));
        let s = env.verified_session("piv", PIV);
        let reply = env.post("/v1/unlock/puk", &json!({ "session": s }));
        assert_refused(&env, &reply);
        assert!(reply.1.get("puk_candidates").is_none());
    }

    /// Proves the operators row MAC: another operator's roles or password hash copied into an
    /// account is refused at sign-in.
    fn a_copied_operator_row_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Env::start(&cfg);
        env.operator("alice", &[Role::Admin]);
        let bob = env.operator("bob", &[Role::Helpdesk]);
        let carol = env.operator("carol", &[Role::Helpdesk]);
        env.sign_in(&bob, 0);
        exec(
            &cfg.db_path,
            "UPDATE operators SET roles = (SELECT roles FROM operators WHERE name = 'alice')
             WHERE name = 'bob'",
        );
        let reply = env.sign_in_with("bob", operators::PASSWORD, &bob.code(1));
        assert_refused(&env, &reply);
        assert!(reply.1.get("token").is_none());
        let hash = query_texts(&cfg.db_path, "SELECT password_hash FROM operators WHERE name = 'alice'")
            .remove(0);
        exec(
            &cfg.db_path,
            &format!("UPDATE operators SET password_hash = '{hash}' WHERE name = 'carol'"),
        );
        let reply = env.sign_in_with("carol", operators::PASSWORD, &carol.code(0));
        assert_refused(&env, &reply);
    }

    /// Proves the one-time migration: rows written before the store had its key get MACs once
    /// (audited); a reset migration mark is refused at start.
    fn existing_rows_get_macs_once_and_a_reset_mark_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        {
            let unkeyed = Store::open(&cfg.db_path).unwrap();
            unkeyed.enroll(&enrollment("iso", "e5", Algorithm::Aes256), &FAST).unwrap();
        }
        let env = Env::start(&cfg);
        env.verified_session("iso", "e5");
        let audit = env.server.store().audit().unwrap();
        assert_eq!(
            audit.iter().filter(|e| e.event == "row_mac" && e.outcome == "stamped").count(),
            1
        );
        drop(env);
        exec(&cfg.db_path, "UPDATE row_mac_state SET done = FALSE");
        let store = Store::open(&cfg.db_path).unwrap();
        assert!(matches!(
            store.set_audit_key(&master()),
            Err(cardunlock_server::ServerError::Tampered(_))
        ));
    }
}
