//! `/admin`: only in a verified session; answers checked against keys derived independently
//! with `kdf`; each challenge answered once per card, across sessions and restarts.

mod common;

use cardunlock_core::crypto::{AdminKey, Algorithm};
use cardunlock_server::{kdf, MasterSecret};
use common::*;
use serde_json::{json, Value};

fn admin(env: &Env, session: &str, request: Value) -> (u16, Value) {
    env.post(
        "/v1/unlock/admin",
        &json!({ "session": session, "request": request }),
    )
}

fn answer_bytes(reply: &(u16, Value)) -> Vec<u8> {
    assert_eq!(reply.0, 200, "{}", reply.1);
    hex::decode(reply.1["answer"].as_str().unwrap()).unwrap()
}

fn key(profile: &str, identity: &str, alg: Algorithm) -> AdminKey {
    let master = MasterSecret::from_hex(MASTER_HEX).unwrap();
    kdf::admin_key(&master, profile, &hex::decode(identity).unwrap(), alg, 0)
}

backend_tests! {
    fn admin_needs_verified_answers() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server
            .enroll(&enrollment("iso", "1001", Algorithm::TripleDes))
            .unwrap();
        let s = env.start_session("iso", "1001")["session"]
            .as_str()
            .unwrap()
            .to_owned();
        let req = json!({ "kind": "encrypt", "algorithm": "3des", "block": "0102030405060708" });
        assert_error(&admin(&env, &s, req.clone()), 403, "not_verified");
        env.post(
            "/v1/unlock/answers",
            &json!({ "session": s, "answers": WRONG }),
        );
        assert_error(&admin(&env, &s, req.clone()), 403, "not_verified");
        env.post(
            "/v1/unlock/answers",
            &json!({ "session": s, "answers": ANSWERS }),
        );
        // The refused attempts did not use the challenge up.
        assert_eq!(admin(&env, &s, req).0, 200);
    }

    fn encrypt_answers_with_the_derived_key_for_every_algorithm() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        let cards = [
            ("iso", "2001", Algorithm::TripleDes, "3des"),
            ("iso", "2002", Algorithm::Aes128, "aes128"),
            ("iso", "2003", Algorithm::Aes192, "aes192"),
            ("iso", "2004", Algorithm::Aes256, "aes256"),
        ];
        for (profile, id, alg, name) in cards {
            env.server.enroll(&enrollment(profile, id, alg)).unwrap();
            let s = env.verified_session(profile, id);
            let block: Vec<u8> = (0..alg.block_len() as u8).collect();
            let reply = admin(
                &env,
                &s,
                json!({ "kind": "encrypt", "algorithm": name, "block": hex::encode(&block) }),
            );
            let mut expect = block.clone();
            key(profile, id, alg).encrypt_ecb(&mut expect).unwrap();
            assert_eq!(answer_bytes(&reply), expect, "{profile} {name}");
            // The wrong algorithm or block length is a bad request.
            let other = if alg == Algorithm::TripleDes {
                "aes128"
            } else {
                "3des"
            };
            let wrong_alg =
                json!({ "kind": "encrypt", "algorithm": other, "block": "00".repeat(alg.block_len()) });
            assert_error(&admin(&env, &s, wrong_alg), 400, "bad_request");
            let short = json!({ "kind": "encrypt", "algorithm": name, "block": "00".repeat(alg.block_len() - 1) });
            assert_error(&admin(&env, &s, short), 400, "bad_request");
        }
    }

    fn gids_mutual_authentication_cryptograms() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server
            .enroll(&enrollment("gids", "3001", Algorithm::TripleDes))
            .unwrap();
        let k = key("gids", "3001", Algorithm::TripleDes);
        let s = env.verified_session("gids", "3001");
        let (r1, r2) = ([0x11u8; 16], [0x22u8; 16]);
        let reply = admin(
            &env,
            &s,
            json!({ "kind": "gids_cryptogram", "r1": hex::encode(r1), "r2": hex::encode(r2) }),
        );
        let mut plain = answer_bytes(&reply);
        assert_eq!(plain.len(), 40);
        k.cbc_decrypt(&[0; 8], &mut plain).unwrap();
        assert_eq!(&plain[..16], &r2);
        assert_eq!(&plain[16..32], &r1);
        assert_eq!(plain[39], 0x80, "Z1 = 7 random bytes || 80");

        // The card's cryptogram: the server checks R1 and R2 in it and answers R1 || R2 with
        // the card's Z2 withheld (00.. 80): no decryption service.
        let card_cryptogram = |key: &AdminKey, r1: &[u8; 16], r2: &[u8; 16]| {
            let mut c = [0u8; 40];
            c[..16].copy_from_slice(r1);
            c[16..32].copy_from_slice(r2);
            c[32..].copy_from_slice(&[9, 8, 7, 6, 5, 4, 3, 0x80]);
            key.cbc_encrypt(&[0; 8], &mut c).unwrap();
            c
        };
        let reply = admin(
            &env,
            &s,
            json!({ "kind": "gids_card_cryptogram", "cryptogram": hex::encode(card_cryptogram(&k, &r1, &r2)) }),
        );
        let mut expect = [0u8; 40];
        expect[..16].copy_from_slice(&r1);
        expect[16..32].copy_from_slice(&r2);
        expect[39] = 0x80;
        assert_eq!(answer_bytes(&reply), expect);

        // A card cryptogram that is not this session's R1 || R2 (a replayed or foreign one, or
        // arbitrary data to decrypt) is refused and reveals nothing; each check needs its own
        // host cryptogram, one per session. A refused check marks the card diverged: it is
        // enrolled again before the next variant.
        let other = key("gids", "9999", Algorithm::TripleDes);
        let r1b = [0x44u8; 16];
        for (i, bad) in [0u8, 1, 2].into_iter().enumerate() {
            env.server
                .enroll(&enrollment("gids", "3001", Algorithm::TripleDes))
                .unwrap();
            let s = env.verified_session("gids", "3001");
            let r2b = [0x50 + i as u8; 16];
            let reply = admin(
                &env,
                &s,
                json!({ "kind": "gids_cryptogram", "r1": hex::encode(r1b), "r2": hex::encode(r2b) }),
            );
            assert_eq!(reply.0, 200, "{}", reply.1);
            let cryptogram = match bad {
                0 => card_cryptogram(&other, &r1b, &r2b),
                1 => card_cryptogram(&k, &r1, &r2b),
                _ => [0x5a; 40],
            };
            let reply = admin(
                &env,
                &s,
                json!({ "kind": "gids_card_cryptogram", "cryptogram": hex::encode(cryptogram) }),
            );
            assert_error(&reply, 403, "card_not_authenticated");
            assert!(reply.1.get("answer").is_none());
            // The card is stopped now, whatever comes next in this session.
            let reply = admin(
                &env,
                &s,
                json!({ "kind": "gids_card_cryptogram", "cryptogram": hex::encode(card_cryptogram(&k, &r1b, &r2b)) }),
            );
            assert_error(&reply, 409, "card_diverged");
        }

        env.server
            .enroll(&enrollment("gids", "3001", Algorithm::TripleDes))
            .unwrap();
        let s = env.verified_session("gids", "3001");
        // Without a host cryptogram first: a bad request.
        let r2b = [0x52u8; 16];
        let reply = admin(
            &env,
            &s,
            json!({ "kind": "gids_card_cryptogram", "cryptogram": hex::encode(card_cryptogram(&k, &r1b, &r2b)) }),
        );
        assert_error(&reply, 400, "bad_request");
        // GIDS cards get no raw block encryption (five ECB calls would rebuild the CBC
        // cryptogram around the once-per-challenge rule).
        let ecb = json!({ "kind": "encrypt", "algorithm": "3des", "block": "0102030405060708" });
        assert_error(&admin(&env, &s, ecb), 400, "bad_request");

        // Wrong lengths, non-hex, and GIDS kinds on an ISO card are bad requests.
        let bad = [
            json!({ "kind": "gids_cryptogram", "r1": "11".repeat(15), "r2": "22".repeat(16) }),
            json!({ "kind": "gids_cryptogram", "r1": "zz".repeat(16), "r2": "22".repeat(16) }),
            json!({ "kind": "gids_card_cryptogram", "cryptogram": "00".repeat(41) }),
            json!({ "kind": "sign", "data": "00" }),
        ];
        for request in bad {
            assert_error(&admin(&env, &s, request), 400, "bad_request");
        }
        env.server
            .enroll(&enrollment("iso", "3002", Algorithm::TripleDes))
            .unwrap();
        let iso = env.verified_session("iso", "3002");
        let req = json!({ "kind": "gids_cryptogram", "r1": "11".repeat(16), "r2": "33".repeat(16) });
        assert_error(&admin(&env, &iso, req), 400, "bad_request");
    }

    fn each_challenge_is_answered_once_per_card_across_sessions_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Env::start(&cfg);
        env.server
            .enroll(&enrollment("iso", "4001", Algorithm::TripleDes))
            .unwrap();
        env.server
            .enroll(&enrollment("iso", "4002", Algorithm::TripleDes))
            .unwrap();
        env.server
            .enroll(&enrollment("gids", "4003", Algorithm::TripleDes))
            .unwrap();
        let challenge = json!({ "kind": "encrypt", "algorithm": "3des", "block": "A1B2C3D4E5F60718" });
        let s1 = env.verified_session("iso", "4001");
        assert_eq!(admin(&env, &s1, challenge.clone()).0, 200);
        // Same challenge in lower case is the same challenge (a refused challenge does not
        // spend the session's one answer).
        let s2 = env.verified_session("iso", "4001");
        let lower = json!({ "kind": "encrypt", "algorithm": "3des", "block": "a1b2c3d4e5f60718" });
        assert_error(&admin(&env, &s2, lower), 409, "challenge_used");
        assert_error(&admin(&env, &s2, challenge.clone()), 409, "challenge_used");
        // Another card may get the same challenge answered.
        let other = env.verified_session("iso", "4002");
        assert_eq!(admin(&env, &other, challenge.clone()).0, 200);
        let gids = env.verified_session("gids", "4003");
        let r2 = json!({ "kind": "gids_cryptogram", "r1": "01".repeat(16), "r2": "02".repeat(16) });
        assert_eq!(admin(&env, &gids, r2.clone()).0, 200);

        drop(env);
        let env = Env::start(&cfg);
        let s3 = env.verified_session("iso", "4001");
        assert_error(&admin(&env, &s3, challenge), 409, "challenge_used");
        let gids = env.verified_session("gids", "4003");
        let same_r2 =
            json!({ "kind": "gids_cryptogram", "r1": "07".repeat(16), "r2": "02".repeat(16) });
        assert_error(&admin(&env, &gids, same_r2), 409, "challenge_used");
        let fresh = json!({ "kind": "encrypt", "algorithm": "3des", "block": "0000000000000001" });
        assert_eq!(admin(&env, &s3, fresh).0, 200);
    }

    fn piv_cards_get_no_admin_answers() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server
            .enroll(&enrollment("piv", "5001", Algorithm::TripleDes))
            .unwrap();
        let s = env.verified_session("piv", "5001");
        let req = json!({ "kind": "encrypt", "algorithm": "3des", "block": "0102030405060708" });
        assert_error(&admin(&env, &s, req), 400, "bad_request");
    }

    /// What an ISO unlock needs: one answer per session.
    fn a_session_gets_one_admin_answer() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server
            .enroll(&enrollment("iso", "6001", Algorithm::TripleDes))
            .unwrap();
        let s = env.verified_session("iso", "6001");
        let req = json!({ "kind": "encrypt", "algorithm": "3des", "block": "0000000000000001" });
        assert_eq!(admin(&env, &s, req).0, 200);
        let req = json!({ "kind": "encrypt", "algorithm": "3des", "block": "ffffffffffffffff" });
        assert_error(&admin(&env, &s, req), 429, "too_many_requests");
    }
}
