//! `start`: unknown card, locked card, no questions, the reply's shape; sessions stored hashed,
//! expiring, closed by `complete`.

mod common;

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::Enrollment;
use common::*;
use serde_json::json;
use sha2::{Digest, Sha256};

backend_tests! {
    fn start_refuses_unknown_locked_and_questionless_cards() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        assert_error(
            &env.post("/v1/unlock/start", &card("gids", "0a0b")),
            404,
            "unknown_card",
        );
        // Same identity, other profile: still unknown.
        env.server
            .enroll(&enrollment("iso", "0a0b", Algorithm::TripleDes))
            .unwrap();
        assert_error(
            &env.post("/v1/unlock/start", &card("gids", "0a0b")),
            404,
            "unknown_card",
        );

        let none = Enrollment {
            questions: vec![],
            ..enrollment("gids", "c0ffee", Algorithm::TripleDes)
        };
        env.server.enroll(&none).unwrap();
        let reply = env.post("/v1/unlock/start", &card("gids", "c0ffee"));
        assert_error(&reply, 409, "no_questions");
        assert!(reply.1["message"].as_str().unwrap().contains("offline"));

        // Lock the ISO card with three wrong answer sets, then start refuses it.
        for _ in 0..3 {
            let s = env.start_session("iso", "0a0b")["session"]
                .as_str()
                .unwrap()
                .to_owned();
            env.post(
                "/v1/unlock/answers",
                &json!({ "session": s, "answers": WRONG }),
            );
        }
        assert_error(
            &env.post("/v1/unlock/start", &card("iso", "0a0b")),
            423,
            "locked",
        );
    }

    fn start_reply_has_questions_attempts_and_policy_but_no_user() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server
            .enroll(&enrollment("piv", "00112233", Algorithm::TripleDes))
            .unwrap();
        env.server
            .enroll(&enrollment("gids", "44556677", Algorithm::TripleDes))
            .unwrap();
        // Upper-case identity hex is accepted and means the same card.
        let piv = env.start_session("piv", "00112233");
        assert_eq!(piv["session"].as_str().unwrap().len(), 64);
        assert!(piv["session"]
            .as_str()
            .unwrap()
            .bytes()
            .all(|c| c.is_ascii_hexdigit()));
        // Nothing about the user before the answers are verified: a guessed identity
        // learns no name or e-mail.
        assert!(piv.get("user").is_none(), "{piv}");
        let shown = piv.to_string();
        assert!(!shown.contains("Benson") && !shown.contains("demo.local"), "{shown}");
        assert_eq!(piv["questions"], json!(QUESTIONS));
        assert_eq!(piv["attempts_left"], 3);
        assert_eq!(
            piv["pin_policy"],
            json!({ "min_len": 6, "max_len": 8, "charset": "digits", "forbid_repeated": true,
                    "forbid_sequences": true, "builtin_blocklist": true, "custom_blocklist": [] })
        );
        let gids = env.start_session("gids", "44556677");
        assert_eq!(gids["pin_policy"]["charset"], "alphanumeric");
        assert_eq!(gids["pin_policy"]["min_len"], 4);
        assert_eq!(gids["pin_policy"]["max_len"], 15);
        assert_ne!(piv["session"], gids["session"]);
    }

    fn sessions_are_stored_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Env::start(&cfg);
        env.server
            .enroll(&enrollment("gids", "aa", Algorithm::TripleDes))
            .unwrap();
        let token = env.start_session("gids", "AA")["session"]
            .as_str()
            .unwrap()
            .to_owned();
        let raw = hex::decode(&token).unwrap();
        let hex_of = match backend() {
            Backend::Sqlite => "SELECT lower(hex(token_hash)) FROM sessions",
            Backend::Postgres => "SELECT encode(token_hash, 'hex') FROM sessions",
        };
        let stored = query_texts(&cfg.db_path, hex_of);
        assert_eq!(stored, vec![hex::encode(Sha256::digest(&raw))]);
        let dump = dump_database(&cfg.db_path);
        assert!(!dump.to_lowercase().contains(&token));
    }

    fn completed_sessions_cannot_be_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server
            .enroll(&enrollment("iso", "01", Algorithm::Aes128))
            .unwrap();
        let s = env.verified_session("iso", "01");
        let done = json!({ "session": s, "outcome": "unlocked", "puk_rotated": false, "detail": "" });
        assert_eq!(env.post("/v1/unlock/complete", &done), (200, json!({})));
        assert_error(
            &env.post("/v1/unlock/complete", &done),
            401,
            "invalid_session",
        );
        assert_error(
            &env.post(
                "/v1/unlock/answers",
                &json!({ "session": s, "answers": ANSWERS }),
            ),
            401,
            "invalid_session",
        );
        let block = json!({ "kind": "encrypt", "algorithm": "aes128", "block": "00".repeat(16) });
        assert_error(
            &env.post(
                "/v1/unlock/admin",
                &json!({ "session": s, "request": block }),
            ),
            401,
            "invalid_session",
        );
        assert_error(
            &env.post("/v1/unlock/puk", &json!({ "session": s })),
            401,
            "invalid_session",
        );
        // A made-up token is no better.
        let fake = "ab".repeat(32);
        assert_error(
            &env.post("/v1/unlock/puk", &json!({ "session": fake })),
            401,
            "invalid_session",
        );
    }

    fn sessions_expire() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.session_ttl = std::time::Duration::from_millis(700);
        let env = Env::start(&cfg);
        env.server
            .enroll(&enrollment("iso", "02", Algorithm::TripleDes))
            .unwrap();
        let verified = env.verified_session("iso", "02");
        let fresh = env.start_session("iso", "02")["session"]
            .as_str()
            .unwrap()
            .to_owned();
        std::thread::sleep(std::time::Duration::from_millis(900));
        assert_error(
            &env.post(
                "/v1/unlock/answers",
                &json!({ "session": fresh, "answers": ANSWERS }),
            ),
            401,
            "invalid_session",
        );
        let block = json!({ "kind": "encrypt", "algorithm": "3des", "block": "0011223344556677" });
        assert_error(
            &env.post(
                "/v1/unlock/admin",
                &json!({ "session": verified, "request": block }),
            ),
            401,
            "invalid_session",
        );
        // The expired attempt did not count against the card.
        assert_eq!(
            env.server
                .store()
                .card("iso", "02")
                .unwrap()
                .unwrap()
                .failed_attempts,
            0
        );
    }

    fn sessions_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Env::start(&cfg);
        env.server
            .enroll(&enrollment("iso", "03", Algorithm::TripleDes))
            .unwrap();
        let s = env.start_session("iso", "03")["session"]
            .as_str()
            .unwrap()
            .to_owned();
        drop(env);
        let env = Env::start(&cfg);
        let reply = env.post(
            "/v1/unlock/answers",
            &json!({ "session": s, "answers": ANSWERS }),
        );
        assert_eq!(reply.0, 200, "{}", reply.1);
        assert_eq!(
            reply.1,
            json!({ "verified": true, "user": { "name": "Michael Benson", "email": "Michael.Benson@demo.local" } })
        );
    }
}
