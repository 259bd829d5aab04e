//! `/puk` and PUK rotation: once per verified session, the pending rotation recorded before the
//! answer, committed by `complete`, and both candidates after a rotation cut off by a restart.

mod common;

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::{kdf, MasterSecret};
use common::*;
use serde_json::{json, Value};

const ID: &str = "3019d4e739da739ced39ce739d836858210842108421c84210c3eb";

fn puk_of(generation: u32) -> String {
    let master = MasterSecret::from_hex(MASTER_HEX).unwrap();
    kdf::piv_puk(&master, &hex::decode(ID).unwrap(), generation).to_string()
}

fn release(env: &Env, session: &str) -> (u16, Value) {
    env.post("/v1/unlock/puk", &json!({ "session": session }))
}

fn complete(env: &Env, session: &str, rotated: bool) -> (u16, Value) {
    let body =
        json!({ "session": session, "outcome": "unlocked", "puk_rotated": rotated, "detail": "" });
    env.post("/v1/unlock/complete", &body)
}

fn gens(env: &Env) -> (u32, Option<u32>) {
    let card = env.server.store().card("piv", ID).unwrap().unwrap();
    (card.puk_gen, card.pending_puk_gen)
}

backend_tests! {
    fn puk_is_released_once_per_verified_session_and_rotation_commits() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server
            .enroll(&enrollment("piv", ID, Algorithm::TripleDes))
            .unwrap();
        let s = env.start_session("piv", ID)["session"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_error(&release(&env, &s), 403, "not_verified");
        assert_eq!(gens(&env), (0, None));

        let s = env.verified_session("piv", ID);
        let reply = release(&env, &s);
        assert_eq!(
            reply,
            (
                200,
                json!({ "puk_candidates": [puk_of(0)], "next_puk": puk_of(1), "tries_left": 3 })
            )
        );
        // Recorded before the answer came back.
        assert_eq!(gens(&env), (0, Some(1)));
        assert_error(&release(&env, &s), 409, "puk_released");
        assert_eq!(complete(&env, &s, true), (200, json!({})));
        assert_eq!(gens(&env), (1, None));

        // The next session gets the new PUK and rotates further.
        let s = env.verified_session("piv", ID);
        assert_eq!(
            release(&env, &s).1,
            json!({ "puk_candidates": [puk_of(1)], "next_puk": puk_of(2), "tries_left": 3 })
        );
        assert_eq!(complete(&env, &s, true).0, 200);
        assert_eq!(gens(&env), (2, None));
        assert_ne!(puk_of(1), puk_of(2));
    }

    fn a_rotation_cut_off_by_a_restart_yields_both_candidates() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Env::start(&cfg);
        env.server
            .enroll(&enrollment("piv", ID, Algorithm::TripleDes))
            .unwrap();
        let s = env.verified_session("piv", ID);
        assert_eq!(release(&env, &s).0, 200);
        drop(env); // the server goes away before `complete`

        let env = Env::start(&cfg);
        assert_eq!(gens(&env), (0, Some(1)));
        let s2 = env.verified_session("piv", ID);
        let reply = release(&env, &s2);
        // Most likely first: the card rotated (the client does that right after /puk; a missing
        // `complete` is most often the call itself failing), else it still holds generation 0.
        // The next PUK is a fresh generation, never one a workstation has already seen.
        assert_eq!(
            reply,
            (
                200,
                json!({ "puk_candidates": [puk_of(1), puk_of(0)], "next_puk": puk_of(2), "tries_left": 3 })
            )
        );
        assert_eq!(gens(&env), (0, Some(2)));

        // Cut off a second time: three generations would be possible, as many as the card's
        // three PUK tries. Trying them could block the PUK, so nothing is released or changed.
        let s3 = env.verified_session("piv", ID);
        let refused = release(&env, &s3);
        assert_error(&refused, 409, "puk_at_risk");
        assert_eq!(refused.1["tries_left"], 3);
        assert!(refused.1.get("puk_candidates").is_none());
        assert_eq!(gens(&env), (0, Some(2)));
        // The first session, completing late, confirms generation 1: two candidates again.
        assert_eq!(complete(&env, &s, true).0, 200);
        assert_eq!(gens(&env), (1, Some(2)));
        assert_eq!(
            release(&env, &s3).1,
            json!({ "puk_candidates": [puk_of(2), puk_of(1)], "next_puk": puk_of(3), "tries_left": 3 })
        );
        assert_eq!(complete(&env, &s3, true).0, 200);
        assert_eq!(gens(&env), (3, None));
        // The second session, completing late, cannot move the card back to an older generation.
        assert_eq!(complete(&env, &s2, true).0, 200);
        assert_eq!(gens(&env), (3, None));
        assert_error(&complete(&env, &s2, true), 401, "invalid_session");
        let s4 = env.verified_session("piv", ID);
        assert_eq!(release(&env, &s4).1["puk_candidates"], json!([puk_of(3)]));
    }

    fn a_rotation_reported_as_failed_stays_possible_but_goes_last() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.limits.piv_puk_tries = 4; // room for three candidates
        let env = Env::start(&cfg);
        env.server
            .enroll(&enrollment("piv", ID, Algorithm::TripleDes))
            .unwrap();
        let s = env.verified_session("piv", ID);
        assert_eq!(release(&env, &s).0, 200);
        // CHANGE REFERENCE DATA failed: the client cannot be sure the card did not take it.
        let failed = json!({ "session": s, "outcome": "unlocked", "puk_rotated": false, "detail": "PUK change failed" });
        assert_eq!(env.post("/v1/unlock/complete", &failed), (200, json!({})));
        assert_eq!(gens(&env), (0, Some(1)));
        let s = env.verified_session("piv", ID);
        assert_eq!(
            release(&env, &s).1,
            json!({ "puk_candidates": [puk_of(0), puk_of(1)], "next_puk": puk_of(2), "tries_left": 4 })
        );
        assert_eq!(complete(&env, &s, false).0, 200);
        let s = env.verified_session("piv", ID);
        // Three candidates need the card's own count of PUK tries (unknown tries allow one
        // unconfirmed candidate: tests/rules.rs).
        let known = json!({ "session": s, "puk_tries_left": 4 });
        assert_eq!(
            env.post("/v1/unlock/puk", &known).1["puk_candidates"],
            json!([puk_of(0), puk_of(2), puk_of(1)])
        );
        assert_eq!(complete(&env, &s, true).0, 200);
        assert_eq!(gens(&env), (3, None));
        let s = env.verified_session("piv", ID);
        assert_eq!(release(&env, &s).1["puk_candidates"], json!([puk_of(3)]));
    }

    fn puk_rotated_without_a_release_is_refused_and_non_piv_cards_get_no_puk() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server
            .enroll(&enrollment("piv", ID, Algorithm::TripleDes))
            .unwrap();
        let s = env.verified_session("piv", ID);
        assert_error(&complete(&env, &s, true), 400, "bad_request");
        assert_eq!(gens(&env), (0, None));
        assert_eq!(complete(&env, &s, false).0, 200);

        env.server
            .enroll(&enrollment("gids", "abcd", Algorithm::TripleDes))
            .unwrap();
        let g = env.verified_session("gids", "abcd");
        assert_error(&release(&env, &g), 400, "bad_request");
    }

    /// The server never releases more PUK candidates than the card can try while
    /// keeping its last try; the client may report fewer tries than the configured limit.
    fn puk_candidates_stay_below_the_tries_the_card_has_left() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server
            .enroll(&enrollment("piv", ID, Algorithm::TripleDes))
            .unwrap();
        let with_tries = |s: &str, tries: u32| {
            env.post("/v1/unlock/puk", &json!({ "session": s, "puk_tries_left": tries }))
        };
        // One try left: even the single candidate would spend the last one.
        let s = env.verified_session("piv", ID);
        let reply = with_tries(&s, 1);
        assert_error(&reply, 409, "puk_at_risk");
        assert_eq!(reply.1["tries_left"], 1);
        assert_eq!(gens(&env), (0, None));
        // Two tries: one candidate is fine; the reply says what the server counted on.
        let reply = with_tries(&s, 2);
        assert_eq!(reply.0, 200, "{}", reply.1);
        assert_eq!(reply.1["tries_left"], 2);
        // Cut off (no complete): two candidates now; with two tries left that is refused, with
        // 10 reported the server still counts on its configured 3.
        let s2 = env.verified_session("piv", ID);
        assert_error(&with_tries(&s2, 2), 409, "puk_at_risk");
        let reply = with_tries(&s2, 10);
        assert_eq!(reply.0, 200, "{}", reply.1);
        assert_eq!(reply.1["tries_left"], 3);
        assert_eq!(reply.1["puk_candidates"].as_array().unwrap().len(), 2);
        // Cut off again: three candidates for three tries is refused; pending stays capped.
        let s3 = env.verified_session("piv", ID);
        assert_error(&release(&env, &s3), 409, "puk_at_risk");
        assert_eq!(gens(&env), (0, Some(2)));
        let audit = env.server.store().audit().unwrap();
        assert_eq!(audit.iter().filter(|e| e.outcome == "puk_at_risk").count(), 3);
        // The operator resolves it: sets the card's PUK to a fresh generation, past every one a
        // workstation has seen (0, 1, 2), and tells the server.
        assert_eq!(env.server.store().renew_puk_generation("piv", ID).unwrap(), 3);
        assert_eq!(gens(&env), (3, None));
        assert_eq!(
            release(&env, &s3).1,
            json!({ "puk_candidates": [puk_of(3)], "next_puk": puk_of(4), "tries_left": 3 })
        );
        assert!(env.server.store().renew_puk_generation("iso", "01").is_err());
    }
}
