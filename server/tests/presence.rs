//! PIV card presence: before a verified signature of the session's nonce by the card's Card
//! Authentication key, a PIV card's replies say nothing about what the server knows; answers
//! need that proof; wrong answers from sessions without proof (GIDS, ISO) back off before
//! they lock, and raise an alert on the way.

mod common;

use std::time::Duration;

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::Enrollment;
use common::*;
use serde_json::{json, Value};

/// Another card's key: its signatures never verify under [`CARD_KEY`]'s public key.
const OTHER_KEY: [u8; 32] = [0x22; 32];

/// The reply with its random fields (session token, nonce) replaced by a placeholder of the
/// same length, as bytes.
fn masked(reply: &Value) -> Vec<u8> {
    let mut reply = reply.clone();
    for field in ["session", "nonce"] {
        let len = reply[field].as_str().map_or(0, str::len);
        assert_eq!(len, 64, "{field} in {reply}");
        reply[field] = Value::from("x".repeat(len));
    }
    serde_json::to_vec(&reply).unwrap()
}

fn answer(env: &Env, session: &str, answers: &[&str]) -> (u16, Value) {
    env.post(
        "/v1/unlock/answers",
        &json!({ "session": session, "answers": answers }),
    )
}

backend_tests! {
    /// Proves item "nothing leaks before the proof": `start` and a failed `prove` are the same
    /// bytes (status and body, random fields masked) for an unknown, a locked, a questionless,
    /// a legacy (no key on record) identity and a bad signature; only the verified card hears
    /// its state. Fails if `start` or `prove` branched on the card's state before the proof.
    fn piv_replies_before_the_proof_are_identical_whatever_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        // d002: locked (three wrong sets from a proven session).
        env.server.enroll(&enrollment("piv", "d002", Algorithm::TripleDes)).unwrap();
        let s = env.start_session("piv", "d002")["session"].as_str().unwrap().to_owned();
        for _ in 0..3 {
            answer(&env, &s, &WRONG);
        }
        assert!(env.server.store().card("piv", "d002").unwrap().unwrap().locked);
        // d003: no questions.
        env.server
            .enroll(&Enrollment { questions: vec![], ..enrollment("piv", "d003", Algorithm::TripleDes) })
            .unwrap();
        // d004: enrolled without a Card Authentication key.
        env.server
            .enroll(&Enrollment { card_auth_key: None, ..enrollment("piv", "d004", Algorithm::TripleDes) })
            .unwrap();
        // d005: fine, but the proof will be signed by another key.
        env.server.enroll(&enrollment("piv", "d005", Algorithm::TripleDes)).unwrap();

        let cases = [("d001", CARD_KEY), ("d002", OTHER_KEY), ("d003", OTHER_KEY), ("d004", CARD_KEY), ("d005", OTHER_KEY)];
        let mut starts = Vec::new();
        let mut proofs = Vec::new();
        for (identity, key) in cases {
            let (status, start) = env.post("/v1/unlock/start", &card("piv", identity));
            assert_eq!(status, 200, "{identity}: {start}");
            starts.push(masked(&start));
            let (status, proof) = env.prove(&start, &key);
            proofs.push((status, serde_json::to_vec(&proof).unwrap()));
            // Without a proof, answers hear the same refusal too.
            let s = start["session"].as_str().unwrap();
            let refused = answer(&env, s, &ANSWERS);
            proofs.push((refused.0, serde_json::to_vec(&refused.1).unwrap()));
        }
        assert!(starts.windows(2).all(|w| w[0] == w[1]), "start replies differ");
        assert!(proofs.iter().all(|p| p == &proofs[0]), "refusals differ: {proofs:?}");
        assert_eq!(proofs[0].0, 403);
        let body: Value = serde_json::from_slice(&proofs[0].1).unwrap();
        assert_eq!(body["error"], "card_not_verified");
        assert!(body["message"].as_str().unwrap().contains("offline"));

        // The verified card hears its state, and only it.
        let start = env.start_raw("piv", "d002");
        assert_error(&env.prove(&start, &CARD_KEY), 423, "locked");
        let start = env.start_raw("piv", "d003");
        assert_error(&env.prove(&start, &CARD_KEY), 409, "no_questions");
        let start = env.start_raw("piv", "d005");
        let (status, proven) = env.prove(&start, &CARD_KEY);
        assert_eq!(status, 200, "{proven}");
        assert_eq!(proven["questions"], json!(QUESTIONS));
        assert_eq!(proven["attempts_left"], 3);
        // The audit says why each proof failed (the client never hears it).
        let audit = env.server.store().audit().unwrap();
        for outcome in ["unknown_card", "no_card_auth_key", "bad_signature", "proven"] {
            assert!(audit.iter().any(|e| e.event == "prove" && e.outcome == outcome), "no prove/{outcome}");
        }
    }

    /// Proves "a card that cannot sign the nonce cannot send answers": answers before a proof,
    /// after a wrong-key proof, and with a signature of another session's nonce are refused
    /// and count nothing; the right card's proof opens the questions.
    fn a_card_that_cannot_sign_the_nonce_cannot_send_answers() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server.enroll(&enrollment("piv", "e001", Algorithm::TripleDes)).unwrap();
        let start = env.start_raw("piv", "e001");
        let s = start["session"].as_str().unwrap().to_owned();
        assert_error(&answer(&env, &s, &ANSWERS), 403, "card_not_verified");
        assert_error(&env.post("/v1/unlock/puk", &json!({ "session": s })), 403, "not_verified");
        assert_error(&env.prove(&start, &OTHER_KEY), 403, "card_not_verified");
        assert_error(&answer(&env, &s, &WRONG), 403, "card_not_verified");
        // A real signature, but of another session's nonce: useless here.
        let other = env.start_raw("piv", "e001");
        let replayed = sign_nonce_with(&CARD_KEY, other["session"].as_str().unwrap(), other["nonce"].as_str().unwrap());
        let reply = env.post("/v1/unlock/prove", &json!({ "session": s, "signature": replayed }));
        assert_error(&reply, 403, "card_not_verified");
        let reply = env.post("/v1/unlock/prove", &json!({ "session": s, "signature": "zz" }));
        assert_error(&reply, 403, "card_not_verified");
        let record = env.server.store().card("piv", "e001").unwrap().unwrap();
        assert_eq!((record.failed_attempts, record.locked), (0, false));
        // The card itself proves, then answers.
        assert_eq!(env.prove(&start, &CARD_KEY).0, 200);
        let reply = answer(&env, &s, &ANSWERS);
        assert_eq!(reply.0, 200, "{}", reply.1);
    }

    /// Proves "locks a card-less attacker cannot cause quickly": ISO answers (no card proof)
    /// back off after each wrong set (doubling; answers during the back-off are refused
    /// without being checked or counted), raise an alert when they reach the count that locks
    /// a proven card, and lock only at `blind_max_attempts`.
    fn wrong_answers_without_card_proof_back_off_before_they_lock() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.blind_max_attempts = 5;
        cfg.backoff_base = Duration::from_millis(300);
        let env = Env::start(&cfg);
        env.server.enroll(&enrollment("iso", "f001", Algorithm::TripleDes)).unwrap();
        let start = env.start_session("iso", "f001");
        assert_eq!(start["attempts_left"], 5);
        let s = start["session"].as_str().unwrap().to_owned();
        let mut wait = Duration::from_millis(300);
        // 0.3 s, 0.6 s, 1.2 s, 2.4 s, in whole seconds rounded up.
        for (left, retry_after) in [(4, 1), (3, 1), (2, 2), (1, 3)] {
            let r = answer(&env, &s, &WRONG);
            assert_error(&r, 403, "wrong_answers");
            assert_eq!(r.1["attempts_left"], left, "{}", r.1);
            assert_eq!(r.1["retry_after"], retry_after, "{}", r.1);
            // During the back-off even the right answers are refused, and not counted.
            let r = answer(&env, &s, &ANSWERS);
            assert_error(&r, 429, "too_many_requests");
            let record = env.server.store().card("iso", "f001").unwrap().unwrap();
            assert!(!record.locked, "locked before the blind limit");
            assert_eq!(record.failed_attempts, 5 - left);
            std::thread::sleep(wait + Duration::from_millis(50));
            wait *= 2;
        }
        let audit = env.server.store().audit().unwrap();
        assert_eq!(
            audit.iter().filter(|e| e.event == "alert" && e.outcome == "blind_wrong_answers").count(),
            1,
            "one alert when the proven lock count (3) is reached"
        );
        assert!(audit.iter().any(|e| e.event == "answers" && e.outcome == "backed_off"));
        assert_error(&answer(&env, &s, &WRONG), 423, "locked");
        assert!(env.server.store().card("iso", "f001").unwrap().unwrap().locked);
        // A lift clears the counter and the back-off.
        env.server.store().lift_lock("iso", "f001").unwrap();
        let record = env.server.store().card("iso", "f001").unwrap().unwrap();
        assert_eq!((record.failed_attempts, record.backoff_until_ms), (0, 0));
    }
}

/// The defaults: 10 blind attempts, a 60 s first back-off.
#[test]
fn blind_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cardunlock_server::Config::new(dir.path().join("db"), dir.path(), master());
    assert_eq!(cfg.blind_max_attempts, 10);
    assert_eq!(cfg.backoff_base, Duration::from_secs(60));
}
