//! Eight clients unlock eight different cards at once; every full session succeeds. And a
//! server on the contract's default Argon2 parameters hashes and verifies with them.

mod common;

use std::sync::{Arc, Barrier};

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::{kdf, Argon2Params, MasterSecret};
use common::*;
use serde_json::json;

backend_tests! {
    fn eight_concurrent_unlocks_of_different_cards_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let env = Arc::new(Env::start(&cfg));
        for i in 0..8u8 {
            let (profile, alg) = match i % 3 {
                0 => ("piv", Algorithm::TripleDes),
                1 => ("gids", Algorithm::TripleDes),
                _ => ("iso", Algorithm::Aes128),
            };
            env.server
                .enroll(&enrollment(profile, &format!("c0{i:02x}"), alg))
                .unwrap();
        }
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8u8)
            .map(|i| {
                let (env, barrier) = (env.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let identity = format!("c0{i:02x}");
                    let profile = ["piv", "gids", "iso"][usize::from(i % 3)];
                    // Each thread its own connection.
                    let agent = agent(env.server.cert_pem());
                    barrier.wait();
                    let (status, start) = post(&agent, &env.url, "/v1/unlock/start", &card(profile, &identity));
                    assert_eq!(status, 200, "{start}");
                    let session = start["session"].as_str().unwrap().to_owned();
                    if profile == "piv" {
                        let signature = sign_nonce_with(&CARD_KEY, &session, start["nonce"].as_str().unwrap());
                        let proof = json!({ "session": session, "signature": signature });
                        assert_eq!(post(&agent, &env.url, "/v1/unlock/prove", &proof).0, 200);
                    }
                    let body = json!({ "session": session, "answers": ANSWERS });
                    assert_eq!(post(&agent, &env.url, "/v1/unlock/answers", &body).0, 200);
                    let master = MasterSecret::from_hex(MASTER_HEX).unwrap();
                    let id = hex::decode(&identity).unwrap();
                    let mut rotated = false;
                    if profile == "piv" {
                        let (status, reply) = post(&agent, &env.url, "/v1/unlock/puk", &json!({ "session": session }));
                        assert_eq!(status, 200);
                        assert_eq!(reply["puk_candidates"][0], kdf::piv_puk(&master, &id, 0).as_str());
                        rotated = true;
                    } else if profile == "gids" {
                        let (r1, r2) = ([i; 16], [i.wrapping_add(100); 16]);
                        let req = json!({ "kind": "gids_cryptogram", "r1": hex::encode(r1), "r2": hex::encode(r2) });
                        let (status, reply) =
                            post(&agent, &env.url, "/v1/unlock/admin", &json!({ "session": session, "request": req }));
                        assert_eq!(status, 200, "{reply}");
                        let mut plain = hex::decode(reply["answer"].as_str().unwrap()).unwrap();
                        kdf::admin_key(&master, profile, &id, Algorithm::TripleDes, 0).cbc_decrypt(&[0; 8], &mut plain).unwrap();
                        assert_eq!((&plain[..16], &plain[16..32]), (&r2[..], &r1[..]));
                    } else {
                        let alg = if profile == "iso" { Algorithm::Aes128 } else { Algorithm::TripleDes };
                        let block = vec![i; alg.block_len()];
                        let name = if profile == "iso" { "aes128" } else { "3des" };
                        let req = json!({ "kind": "encrypt", "algorithm": name, "block": hex::encode(&block) });
                        let (status, reply) =
                            post(&agent, &env.url, "/v1/unlock/admin", &json!({ "session": session, "request": req }));
                        assert_eq!(status, 200, "{reply}");
                        let mut expect = block.clone();
                        kdf::admin_key(&master, profile, &id, alg, 0).encrypt_ecb(&mut expect).unwrap();
                        assert_eq!(reply["answer"], hex::encode(expect));
                    }
                    let done = json!({ "session": session, "outcome": "unlocked", "puk_rotated": rotated, "detail": "" });
                    assert_eq!(post(&agent, &env.url, "/v1/unlock/complete", &done).0, 200);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let audit = env.server.store().audit().unwrap();
        assert_eq!(
            audit
                .iter()
                .filter(|e| e.event == "complete" && e.outcome == "unlocked")
                .count(),
            8
        );
        for i in [0u8, 3, 6] {
            assert_eq!(
                env.server
                    .store()
                    .card("piv", &format!("c0{i:02x}"))
                    .unwrap()
                    .unwrap()
                    .puk_gen,
                1
            );
        }
    }

    fn default_argon2_parameters_are_the_contracts() {
        let dir = tempfile::tempdir().unwrap();
        let cfg =
            cardunlock_server::Config::new(
            db_location(dir.path()),
            dir.path().join("state"),
            master(),
        );
        assert_eq!(
            cfg.argon2,
            Argon2Params {
                m_cost_kib: 19_456,
                t_cost: 2,
                p_cost: 1
            }
        );
        assert_eq!((cfg.max_attempts, cfg.session_ttl.as_secs()), (3, 300));
        let env = Env::start(&cfg);
        env.server
            .enroll(&enrollment("iso", "d0", Algorithm::TripleDes))
            .unwrap();
        let phc = query_texts(&cfg.db_path, "SELECT answer_hash FROM questions LIMIT 1")
            .remove(0);
        assert!(phc.starts_with("nfkc-cf:$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        env.verified_session("iso", "d0");
    }
}
