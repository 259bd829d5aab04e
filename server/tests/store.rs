//! The store's operator functions: enrolment checks, re-enrolment, identities, the schema
//! version, answers hashed on the way in.

mod common;

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::{Enrollment, ServerError, Store};
use common::*;

backend_tests! {
    fn enrolment_checks_its_input_and_stores_only_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(db_location(dir.path())).unwrap();
        let bad = [
            enrollment("piv", "0102", Algorithm::Aes128), // PIV management keys are 3DES
            enrollment("yubikey", "0102", Algorithm::TripleDes),
            enrollment("gids", "01020", Algorithm::TripleDes),
            enrollment("gids", "", Algorithm::TripleDes),
            enrollment("gids", "xy", Algorithm::TripleDes),
            enrollment("gids", &"ab".repeat(65), Algorithm::TripleDes),
            Enrollment {
                name: "  ".into(),
                ..enrollment("gids", "01", Algorithm::TripleDes)
            },
            Enrollment {
                questions: vec![("Q?".into(), " \t ".into())],
                ..enrollment("gids", "01", Algorithm::TripleDes)
            },
            Enrollment {
                questions: vec![("".into(), "a".into())],
                ..enrollment("gids", "01", Algorithm::TripleDes)
            },
        ];
        for e in &bad {
            let err = store.enroll(e, &FAST).unwrap_err();
            assert!(matches!(err, ServerError::InvalidInput(_)), "{e:?}: {err}");
            // The error never repeats an answer.
            for (_, answer) in &e.questions {
                if answer.trim().len() > 3 {
                    assert!(!err.to_string().contains(answer.as_str()));
                }
            }
        }
        assert!(store.audit().unwrap().is_empty());

        let record = store
            .enroll(&enrollment("gids", "0A0B", Algorithm::Aes256), &FAST)
            .unwrap();
        assert_eq!(record.identity_hex, "0a0b");
        assert_eq!(
            (
                record.key_gen,
                record.puk_gen,
                record.pending_puk_gen,
                record.locked,
                record.failed_attempts
            ),
            (0, 0, None, false, 0)
        );
        assert_eq!(store.card("gids", "0a0b").unwrap(), Some(record.clone()));
        assert_eq!(store.card("gids", "0A0B").unwrap(), Some(record));
        assert_eq!(store.card("iso", "0a0b").unwrap(), None);
        assert!(
            format!("{:?}", enrollment("gids", "01", Algorithm::TripleDes))
                .contains("Name of your first pet?")
        );
        assert!(!format!("{:?}", enrollment("gids", "01", Algorithm::TripleDes)).contains("Rex"));
    }

    fn re_enrolment_replaces_user_and_questions_and_keeps_the_card_state() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Env::start(&cfg);
        env.server
            .enroll(&enrollment("piv", "beef", Algorithm::TripleDes))
            .unwrap();
        let s = env.verified_session("piv", "beef");
        env.post("/v1/unlock/puk", &serde_json::json!({ "session": s }));
        let again = Enrollment {
            name: "Michael R. Benson".into(),
            questions: vec![("Favourite colour?".into(), "Teal".into())],
            ..enrollment("piv", "beef", Algorithm::TripleDes)
        };
        let record = env.server.enroll(&again).unwrap();
        assert_eq!(record.user_name, "Michael R. Benson");
        assert_eq!((record.puk_gen, record.pending_puk_gen), (0, Some(1)));
        let start = env.start_session("piv", "beef");
        assert_eq!(start["questions"], serde_json::json!(["Favourite colour?"]));
        let audit = env.server.store().audit().unwrap();
        assert!(audit
            .iter()
            .any(|e| e.event == "enroll" && e.outcome == "re-enrolled"));
    }

    fn a_database_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = db_location(dir.path());
        drop(Store::open(&path).unwrap());
        match backend() {
            Backend::Sqlite => rusqlite::Connection::open(&path)
                .unwrap()
                .pragma_update(None, "user_version", 99)
                .unwrap(),
            Backend::Postgres => {
                postgres::Client::connect(path.to_str().unwrap(), postgres::NoTls)
                    .unwrap()
                    .batch_execute("UPDATE cardunlock_schema SET version = 99")
                    .unwrap();
            }
        }
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, ServerError::SchemaVersion(99)), "{err}");
        assert!(err.to_string().contains("newer"), "{err}");
        // The refused database was left as it was.
        let version = match backend() {
            Backend::Sqlite => {
                let db = rusqlite::Connection::open(&path).unwrap();
                let journal: String = db
                    .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(journal, "wal");
                db.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
                    .unwrap()
            }
            Backend::Postgres => query_texts(&path, "SELECT version::text FROM cardunlock_schema")
                [0]
                .parse()
                .unwrap(),
        };
        assert_eq!(version, 99);
        // And a server refuses to start on it.
        let cfg = cardunlock_server::Config::new(&path, dir.path().join("state"), master());
        assert!(matches!(
            cardunlock_server::Server::spawn(cfg),
            Err(ServerError::SchemaVersion(99))
        ));
    }
}
