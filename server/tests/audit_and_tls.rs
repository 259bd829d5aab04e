//! The audit log has an entry for every outcome and no secrets; logs carry none either. HTTPS
//! only, with the certificate made once and pinned by the client.

mod common;

use std::sync::Mutex;

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::{kdf, MasterSecret};
use common::*;
use serde_json::json;

/// Collects every log line of the process (all levels).
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {}", record.target(), record.args()));
    }
    fn flush(&self) {}
}

static LOGS: Capture = Capture(Mutex::new(Vec::new()));

backend_tests! {
    fn every_outcome_is_audited_without_secrets_in_audit_or_logs() {
        // Both backends run this test in one process: the logger is set once.
        let _ = log::set_logger(&LOGS);
        log::set_max_level(log::LevelFilter::Trace);
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Env::start(&cfg);
        let piv = "aa01";
        let iso = "bb02";
        env.server
            .enroll(&enrollment("piv", piv, Algorithm::TripleDes))
            .unwrap();
        env.server
            .enroll(&enrollment("iso", iso, Algorithm::TripleDes))
            .unwrap();
        let mut tokens = vec![];

        env.post("/v1/unlock/start", &card("iso", "ffff"));
        let s = env.start_session("piv", piv)["session"]
            .as_str()
            .unwrap()
            .to_owned();
        env.post("/v1/unlock/puk", &json!({ "session": s }));
        env.post(
            "/v1/unlock/answers",
            &json!({ "session": s, "answers": WRONG }),
        );
        env.post(
            "/v1/unlock/answers",
            &json!({ "session": s, "answers": ANSWERS }),
        );
        env.post("/v1/unlock/puk", &json!({ "session": s }));
        env.post("/v1/unlock/puk", &json!({ "session": s }));
        let detail = "new PIN set";
        env.post(
            "/v1/unlock/complete",
            &json!({ "session": s, "outcome": "unlocked", "puk_rotated": true, "detail": detail }),
        );
        env.post(
            "/v1/unlock/complete",
            &json!({ "session": s, "outcome": "unlocked", "puk_rotated": true }),
        );
        tokens.push(s);

        let s = env.verified_session("iso", iso);
        let req = json!({ "kind": "encrypt", "algorithm": "3des", "block": "0102030405060708" });
        env.post("/v1/unlock/admin", &json!({ "session": s, "request": req }));
        // The same challenge again (a new session: one admin answer per session).
        let again = env.verified_session("iso", iso);
        env.post("/v1/unlock/admin", &json!({ "session": again, "request": req }));
        tokens.push(again);
        env.post(
            "/v1/unlock/complete",
            &json!({ "session": s, "outcome": "failed", "puk_rotated": false }),
        );
        tokens.push(s);
        for _ in 0..3 {
            let s = env.start_session("iso", iso)["session"]
                .as_str()
                .unwrap()
                .to_owned();
            env.post(
                "/v1/unlock/answers",
                &json!({ "session": s, "answers": WRONG }),
            );
            tokens.push(s);
        }
        env.post("/v1/unlock/start", &card("iso", iso));
        env.post_raw("/v1/unlock/answers", b"{\"answers\": \"Rex the Dog\"");
        env.server.store().lift_lock("iso", iso).unwrap();
        // Refusals (the unknown session, the malformed body) are counted, then summarised.
        assert!(env.server.flush_refusals().unwrap() >= 2);

        let audit = env.server.store().audit().unwrap();
        let has = |event: &str, outcome: &str| {
            audit
                .iter()
                .any(|e| e.event == event && e.outcome == outcome)
        };
        for (event, outcome) in [
            ("enroll", "enrolled"),
            ("start", "unknown_card"),
            ("start", "started"),
            ("start", "awaiting_proof"),
            ("prove", "proven"),
            ("puk", "not_verified"),
            ("answers", "wrong_answers"),
            ("answers", "verified"),
            ("puk", "released"),
            ("puk", "puk_released"),
            ("complete", "unlocked"),
            ("refused", "unauthorized"),
            ("admin", "answered"),
            ("admin", "challenge_used"),
            ("complete", "failed"),
            ("lock", "locked"),
            ("start", "locked"),
            ("refused", "bad_request"),
            ("lift_lock", "lifted"),
        ] {
            assert!(
                has(event, outcome),
                "no audit row {event}/{outcome}: {audit:#?}"
            );
        }
        assert!(audit
            .iter()
            .any(|e| e.detail.contains("client: new PIN set")));
        assert!(audit.iter().all(|e| e.time_ms > 1_600_000_000_000));

        // No secret anywhere: answers (plain or normalised), PUKs, keys, session tokens.
        let master = MasterSecret::from_hex(MASTER_HEX).unwrap();
        let piv_id = hex::decode(piv).unwrap();
        let mut secrets: Vec<String> = ["rex the dog", "são paulo", "lisbon"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for g in 0..4 {
            secrets.push(kdf::piv_puk(&master, &piv_id, g).to_string());
        }
        let key = kdf::admin_key(
            &master,
            "iso",
            &hex::decode(iso).unwrap(),
            Algorithm::TripleDes,
            0,
        );
        secrets.push(hex::encode(key.expose_bytes()));
        secrets.push(MASTER_HEX.to_owned());
        secrets.extend(tokens);
        let mut texts: Vec<String> = audit
            .iter()
            .map(|e| format!("{e:?}").to_lowercase())
            .collect();
        texts.extend(LOGS.0.lock().unwrap().iter().map(|l| l.to_lowercase()));
        for secret in &secrets {
            for text in &texts {
                assert!(
                    !text.contains(secret.as_str()),
                    "secret {secret:?} in {text:?}"
                );
            }
        }
        // The database holds no plain answer either.
        let db = dump_database(&cfg.db_path).to_lowercase();
        for answer in ["rex the dog", "lisbon"] {
            assert!(!db.contains(answer));
        }
    }

    fn certificate_is_made_once_and_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Env::start(&cfg);
        let pem = env.server.cert_pem().to_owned();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(
            std::fs::read_to_string(env.server.cert_path()).unwrap(),
            pem
        );
        assert!(env.url.starts_with("https://127.0.0.1:"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("state/server.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key is private");
        }
        env.server
            .enroll(&enrollment("iso", "01", Algorithm::TripleDes))
            .unwrap();
        drop(env);
        let env = Env::start(&cfg);
        assert_eq!(env.server.cert_pem(), pem, "reused after a restart");

        // A client pinning another certificate refuses the server.
        let other_dir = tempfile::tempdir().unwrap();
        let other = Env::start(&config(other_dir.path()));
        assert_ne!(other.server.cert_pem(), pem);
        let wrong = agent(other.server.cert_pem());
        let result = wrong
            .post(&format!("{}/v1/unlock/start", env.url))
            .send_json(card("iso", "01"));
        assert!(
            matches!(result, Err(ureq::Error::Transport(_))),
            "{result:?}"
        );

        // Plain HTTP gets no HTTP answer.
        let plain = env.url.replace("https://", "http://");
        let result = ureq::post(&format!("{plain}/v1/unlock/start")).send_json(card("iso", "01"));
        assert!(
            matches!(result, Err(ureq::Error::Transport(_))),
            "{result:?}"
        );
        assert!(cardunlock_server::pinned_client_config("not a certificate").is_err());
    }
}
