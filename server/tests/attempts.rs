//! Security answers: normalisation, the persistent attempt counter, the lock (which survives a
//! restart) and `lift_lock`.

mod common;

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::ServerError;
use common::*;
use serde_json::json;

fn answer(env: &Env, session: &str, answers: &[&str]) -> (u16, serde_json::Value) {
    env.post(
        "/v1/unlock/answers",
        &json!({ "session": session, "answers": answers }),
    )
}

backend_tests! {
    fn wrong_answers_count_down_then_lock_and_the_lock_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Env::start(&cfg);
        env.server
            .enroll(&enrollment("gids", "5a5a", Algorithm::TripleDes))
            .unwrap();
        let s = env.start_session("gids", "5a5a")["session"]
            .as_str()
            .unwrap()
            .to_owned();

        let r = answer(&env, &s, &WRONG);
        assert_error(&r, 403, "wrong_answers");
        assert_eq!(r.1["attempts_left"], 2);
        // The counter is per card: a new session sees it.
        assert_eq!(env.start_session("gids", "5a5a")["attempts_left"], 2);
        let r = answer(&env, &s, &["", ""]);
        assert_error(&r, 403, "wrong_answers");
        assert_eq!(r.1["attempts_left"], 1);
        let r = answer(&env, &s, &WRONG);
        assert_error(&r, 423, "locked");
        // Even the right answers are refused now, in this session or a new one.
        assert_error(&answer(&env, &s, &ANSWERS), 423, "locked");
        assert_error(
            &env.post("/v1/unlock/start", &card("gids", "5a5a")),
            423,
            "locked",
        );

        drop(env);
        let env = Env::start(&cfg);
        let record = env.server.store().card("gids", "5a5a").unwrap().unwrap();
        assert!(record.locked);
        assert_eq!(record.failed_attempts, 3);
        assert_error(
            &env.post("/v1/unlock/start", &card("gids", "5a5a")),
            423,
            "locked",
        );

        env.server.store().lift_lock("gids", "5a5a").unwrap();
        let record = env.server.store().card("gids", "5a5a").unwrap().unwrap();
        assert!(!record.locked);
        assert_eq!(record.failed_attempts, 0);
        assert_eq!(env.start_session("gids", "5a5a")["attempts_left"], 3);
        env.verified_session("gids", "5a5a");

        let audit = env.server.store().audit().unwrap();
        assert!(audit
            .iter()
            .any(|e| e.event == "lock" && e.outcome == "locked"));
        assert!(audit
            .iter()
            .any(|e| e.event == "lift_lock" && e.outcome == "lifted"));
        assert!(matches!(
            env.server.store().lift_lock("gids", "5b5b"),
            Err(ServerError::UnknownCard)
        ));
    }

    fn a_success_resets_the_counter_and_answers_are_normalised() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server
            .enroll(&enrollment("iso", "77", Algorithm::Aes256))
            .unwrap();
        let s = env.start_session("iso", "77")["session"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(answer(&env, &s, &WRONG).1["attempts_left"], 2);
        assert_eq!(answer(&env, &s, &WRONG).1["attempts_left"], 1);
        // Case, spacing and Unicode form do not matter: "São" typed with a combining tilde.
        let typed = ["  rex THE\tdog ", "SA\u{0303}O   PAULO"];
        let reply = answer(&env, &s, &typed);
        assert_eq!(reply.0, 200, "{}", reply.1);
        assert_eq!(reply.1["verified"], true);
        assert_eq!(
            env.server
                .store()
                .card("iso", "77")
                .unwrap()
                .unwrap()
                .failed_attempts,
            0
        );
        // Answering again in a verified session is idempotent (a client retry).
        let again = answer(&env, &s, &WRONG);
        assert_eq!((again.0, &again.1["verified"]), (200, &json!(true)), "{}", again.1);
        assert_eq!(env.start_session("iso", "77")["attempts_left"], 3);
    }

    fn the_wrong_number_of_answers_is_a_bad_request_not_an_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server
            .enroll(&enrollment("iso", "78", Algorithm::TripleDes))
            .unwrap();
        let s = env.start_session("iso", "78")["session"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_error(&answer(&env, &s, &["Rex the Dog"]), 400, "bad_request");
        assert_error(&answer(&env, &s, &["a", "b", "c"]), 400, "bad_request");
        assert_eq!(
            env.server
                .store()
                .card("iso", "78")
                .unwrap()
                .unwrap()
                .failed_attempts,
            0
        );
    }

    fn max_attempts_is_configurable() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.max_attempts = 1;
        cfg.blind_max_attempts = cfg.max_attempts;
        let env = Env::start(&cfg);
        env.server
            .enroll(&enrollment("iso", "79", Algorithm::TripleDes))
            .unwrap();
        assert_eq!(env.start_session("iso", "79")["attempts_left"], 1);
        let s = env.start_session("iso", "79")["session"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_error(&answer(&env, &s, &WRONG), 423, "locked");
    }
}
