//! Smaller hardening findings: a re-enrolment without questions closes live sessions and an
//! empty answer list never verifies; the state directory, TLS key and SQLite file are private.

mod common;

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::{Server, ServerError};
use common::*;
use serde_json::json;

backend_tests! {
    /// Before the fix, a re-enrolment with zero questions left sessions open and
    /// `answers: []` verified them (an empty list matched the empty set of hashes).
    fn re_enrolling_without_questions_closes_sessions_and_never_verifies_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server.enroll(&enrollment("iso", "0e0e", Algorithm::TripleDes)).unwrap();
        let open = env.start_session("iso", "0e0e")["session"].as_str().unwrap().to_owned();
        let verified = env.verified_session("iso", "0e0e");

        let mut none = enrollment("iso", "0e0e", Algorithm::TripleDes);
        none.questions.clear();
        env.server.enroll(&none).unwrap();

        let reply = env.post("/v1/unlock/answers", &json!({ "session": open, "answers": [] }));
        assert_error(&reply, 401, "invalid_session");
        let admin = json!({ "session": verified, "request": {
            "kind": "encrypt", "algorithm": "3des", "block": "0001020304050607" } });
        assert_error(&env.post("/v1/unlock/admin", &admin), 401, "invalid_session");
        assert_error(&env.post("/v1/unlock/start", &card("iso", "0e0e")), 409, "no_questions");

        // Re-enrolled with questions again: old sessions stay closed, new ones work.
        env.server.enroll(&enrollment("iso", "0e0e", Algorithm::TripleDes)).unwrap();
        let reply = env.post("/v1/unlock/answers", &json!({ "session": open, "answers": ANSWERS }));
        assert_error(&reply, 401, "invalid_session");
        env.verified_session("iso", "0e0e");
    }
}

#[cfg(unix)]
mod files {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// The state directory is made 0700, the key 0600, the SQLite database 0600 (whatever
    /// the umask); a key others can read, or a state directory others can write, stops the
    /// server with the fix in the message.
    #[test]
    fn state_dir_key_and_database_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.db_path = dir.path().join("data/cardunlock.db");
        let env = Env::start(&cfg);
        env.server
            .enroll(&enrollment("iso", "f11e", Algorithm::TripleDes))
            .unwrap();
        env.verified_session("iso", "f11e");
        drop(env);
        assert_eq!(mode(&cfg.state_dir), 0o700);
        assert_eq!(mode(&cfg.state_dir.join("server.key")), 0o600);
        assert_eq!(mode(&cfg.db_path), 0o600);

        // A database someone made world-readable is tightened on the next start.
        std::fs::set_permissions(&cfg.db_path, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(Env::start(&cfg));
        assert_eq!(mode(&cfg.db_path), 0o600);

        let key = cfg.state_dir.join("server.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        match Server::spawn(cfg.clone()) {
            Err(ServerError::Permissions(why)) => assert!(why.contains("chmod 600"), "{why}"),
            other => panic!(
                "expected a permissions error, got {:?}",
                other.map(|s| s.url())
            ),
        }
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&cfg.state_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            Server::spawn(cfg.clone()),
            Err(ServerError::Permissions(_))
        ));
    }
}
