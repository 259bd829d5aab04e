//! Operators at work: enrollment through the server, offline responses, PUK read-outs, lifting
//! locks, the audit (JSON and CSV), and the OpenAPI document against the router.

mod common;

use cardunlock_core::crypto::{AdminKey, Algorithm};
use cardunlock_server::kdf;
use cardunlock_server::protocol::Role;
use common::*;
use serde_json::{json, Value};

const ISO: &str = "0a0b0c0d0e0f";
const PIV: &str = "00112233445566778899aabbccddeeff";
const GIDS: &str = "a1b2c3";

fn enroll_request(profile: &str, identity: &str, algorithm: &str, name: &str) -> Value {
    json!({
        "card": {"profile": profile, "identity": identity},
        "algorithm": algorithm,
        "user": {"name": name, "email": "Michael.Benson@demo.local"},
        "questions": [
            {"question": QUESTIONS[0], "answer": ANSWERS[0]},
            {"question": QUESTIONS[1], "answer": ANSWERS[1]},
        ],
    })
}

/// Begins an enrollment and returns its reply.
fn begin(env: &Env, token: &str, req: &Value) -> Value {
    let (status, reply) = env.call("POST", "/v1/operator/enrollments", token, Some(req));
    assert_eq!(status, 200, "{reply}");
    reply
}

fn done(env: &Env, token: &str, id: &str, personalised: bool) {
    let path = format!("/v1/operator/enrollments/{id}");
    let (status, reply) = env.call(
        "POST",
        &path,
        token,
        Some(&json!({
            "personalised": personalised,
            "card_auth_key": hex::encode(card_auth_public()),
        })),
    );
    assert_eq!(status, 200, "{reply}");
}

fn offline(env: &Env, token: &str, profile: &str, identity: &str, challenge: &str) -> (u16, Value) {
    let path = format!("/v1/operator/cards/{profile}/{identity}/offline-response");
    let body = json!({"challenge": challenge, "identity_checked": "called back on the desk phone"});
    env.call("POST", &path, token, Some(&body))
}

/// `E_K(challenge)` with the card's derived key at `generation`, by core's crypto.
fn expected(identity: &str, algorithm: Algorithm, generation: u32, challenge: &str) -> String {
    let key = kdf::admin_key(
        &master(),
        "iso",
        &hex::decode(identity).unwrap(),
        algorithm,
        generation,
    );
    let mut block = hex::decode(challenge).unwrap();
    key.encrypt_ecb(&mut block).unwrap();
    hex::encode_upper(block)
}

backend_tests! {
    /// An ISO card's enrollment names its workstation ISO profile: the server stores it (and
    /// keeps it under the row MAC) and returns it at `start`; a re-enrollment without a name
    /// clears it; a name on a non-ISO card or a malformed one is refused; PIV and GIDS replies
    /// have no such field. Fails if the name is not stored, not returned, or outlives the card.
    fn an_iso_cards_profile_name_is_stored_and_returned_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        let st = env.signed_in("station", &[Role::Enroller]);
        let report = |id: &Value, body: Value| {
            let path = format!("/v1/operator/enrollments/{}", id.as_str().unwrap());
            env.call("POST", &path, &st, Some(&body))
        };
        let first = begin(&env, &st, &enroll_request("iso", ISO, "3des", "Michael Benson"));
        let bad = report(&first["enrollment"], json!({"personalised": true, "iso_profile": "a b"}));
        assert_error(&bad, 400, "bad_request");
        let (status, reply) = report(&first["enrollment"], json!({"personalised": true, "iso_profile": "acme-minidriver"}));
        assert_eq!(status, 200, "{reply}");
        let started = env.start_raw("iso", ISO);
        assert_eq!(started["iso_profile"], "acme-minidriver", "{started}");
        // Re-enrolled without a name (another workstation's older client): no name is left.
        let second = begin(&env, &st, &enroll_request("iso", ISO, "3des", "Michael Benson"));
        let (status, reply) = report(&second["enrollment"], json!({"personalised": true}));
        assert_eq!(status, 200, "{reply}");
        let started = env.start_raw("iso", ISO);
        assert!(started.get("iso_profile").is_none(), "{started}");
        // Only ISO cards name a profile.
        let gids = begin(&env, &st, &enroll_request("gids", GIDS, "3des", "Michael Benson"));
        let refused = report(&gids["enrollment"], json!({"personalised": true, "iso_profile": "acme"}));
        assert_error(&refused, 400, "bad_request");
        let (status, reply) = report(&gids["enrollment"], json!({"personalised": true}));
        assert_eq!(status, 200, "{reply}");
        let started = env.start_raw("gids", GIDS);
        assert!(started.get("iso_profile").is_none(), "{started}");
    }

    fn enrollment_goes_through_the_server_and_begin_without_done_keeps_the_old_generation() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        let st = env.signed_in("station", &[Role::Enroller]);
        let hd = env.signed_in("hd", &[Role::Helpdesk]);
        // A factory card: nothing current, generation 0 next, with the derived key.
        let first = begin(&env, &st, &enroll_request("iso", ISO, "3des", "Michael Benson"));
        assert_eq!(first["current"], json!([]));
        assert_eq!(first["next"]["key_generation"], 0);
        let key0 = kdf::admin_key(&master(), "iso", &hex::decode(ISO).unwrap(), Algorithm::TripleDes, 0);
        assert_eq!(first["next"]["admin_key"], hex::encode_upper(key0.expose_bytes()));
        // Not reported yet: the card is not enrolled.
        assert_error(&offline(&env, &hd, "iso", ISO, "1122334455667788"), 404, "unknown_card");
        done(&env, &st, first["enrollment"].as_str().unwrap(), true);
        // Reporting twice is refused.
        let path = format!("/v1/operator/enrollments/{}", first["enrollment"].as_str().unwrap());
        assert_error(&env.call("POST", &path, &st, Some(&json!({"personalised": true}))), 409, "conflict");
        // The help desk can now answer with generation 0.
        let (status, reply) = offline(&env, &hd, "iso", ISO, "1122334455667788");
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["response"], expected(ISO, Algorithm::TripleDes, 0, "1122334455667788"));
        // Re-enrollment begun, never reported: the card keeps generation 0, 1 is pending.
        let second = begin(&env, &st, &enroll_request("iso", ISO, "3des", "Michael Benson"));
        assert_eq!(second["next"]["key_generation"], 1);
        assert_eq!(second["current"][0]["key_generation"], 0);
        assert_eq!(second["current"][0]["admin_key"], first["next"]["admin_key"]);
        let (status, detail) = env.call("GET", &format!("/v1/operator/cards/iso/{ISO}"), &hd, None);
        assert_eq!(status, 200, "{detail}");
        assert_eq!(detail["key_generation"], 0);
        assert_eq!(detail["pending_key_generation"], 1);
        let timeline = detail["timeline"].as_array().unwrap();
        assert!(timeline.iter().any(|e| e["event"] == "enroll" && e["operator"] == "station"), "{detail}");
        assert!(timeline.iter().all(|e| e["card"]["identity"] == ISO), "{detail}");
        assert_eq!(detail["questions"], json!(QUESTIONS));
        assert!(!detail.to_string().contains("Rex"), "{detail}");
        let (status, reply) = offline(&env, &hd, "iso", ISO, "0000000000000000");
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["response"], expected(ISO, Algorithm::TripleDes, 0, "0000000000000000"));
        // A third enrollment offers both candidates and moves past both.
        let third = begin(&env, &st, &enroll_request("iso", ISO, "3des", "Michael Benson"));
        let gens: Vec<u64> = third["current"].as_array().unwrap().iter().map(|c| c["key_generation"].as_u64().unwrap()).collect();
        assert_eq!(gens, [0, 1]);
        assert_eq!(third["next"]["key_generation"], 2);
        done(&env, &st, third["enrollment"].as_str().unwrap(), true);
        let (_, reply) = offline(&env, &hd, "iso", ISO, "0102030405060708");
        assert_eq!(reply["response"], expected(ISO, Algorithm::TripleDes, 2, "0102030405060708"));
        // Re-enrolling an enrolled card is an alert in the audit.
        let audit = env.server.store().audit().unwrap();
        let alerts = audit.iter().filter(|e| e.event == "enroll_begin" && e.outcome == "alert").count();
        assert_eq!(alerts, 2);
        // Helpdesk cannot enroll.
        let reply = env.call("POST", "/v1/operator/enrollments", &hd, Some(&enroll_request("iso", ISO, "3des", "X")));
        assert_error(&reply, 403, "forbidden");
    }

    fn piv_enrollment_hands_out_puk_and_management_key_and_reenrollment_moves_both() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        let st = env.signed_in("station", &[Role::Enroller]);
        let hd = env.signed_in("hd", &[Role::Helpdesk]);
        let id = hex::decode(PIV).unwrap();
        // PIV management keys are 3DES.
        let aes = env.call("POST", "/v1/operator/enrollments", &st, Some(&enroll_request("piv", PIV, "aes256", "M")));
        assert_error(&aes, 400, "bad_request");
        let first = begin(&env, &st, &enroll_request("piv", PIV, "3des", "Michael Benson"));
        let next = &first["next"];
        assert_eq!(next["algorithm"], "3des");
        assert_eq!(next["puk"], kdf::piv_puk(&master(), &id, 0).as_str());
        assert_eq!(next["puk_generation"], 0);
        let mgmt = kdf::piv_mgmt_key(&master(), &id, 0);
        assert_eq!(next["admin_key"], hex::encode_upper(mgmt.expose_bytes()));
        done(&env, &st, first["enrollment"].as_str().unwrap(), true);
        // The online unlock works on the enrolled card, with the enrolled answers.
        env.verified_session("piv", PIV);
        // A PUK read out, then a completed re-enrollment: both generations move, the flag clears.
        let path = format!("/v1/operator/cards/piv/{PIV}/puk-readout");
        let (status, _) = env.call("POST", &path, &hd, Some(&json!({"identity_checked": "in person"})));
        assert_eq!(status, 200);
        let second = begin(&env, &st, &enroll_request("piv", PIV, "3des", "Michael Benson"));
        assert_eq!(second["current"][0]["puk"], next["puk"]);
        assert_eq!(second["next"]["puk_generation"], 1);
        assert_eq!(second["next"]["key_generation"], 1);
        done(&env, &st, second["enrollment"].as_str().unwrap(), true);
        let (_, detail) = env.call("GET", &format!("/v1/operator/cards/piv/{PIV}"), &hd, None);
        assert_eq!(detail["puk_generation"], 1, "{detail}");
        assert_eq!(detail["key_generation"], 1, "{detail}");
        assert_eq!(detail["pending_key_generation"], Value::Null, "{detail}");
        assert_eq!(detail["puk_read_out"], false, "{detail}");
        // Another enroller cannot report someone else's enrollment.
        let st2 = env.signed_in("station2", &[Role::Enroller]);
        let third = begin(&env, &st, &enroll_request("piv", PIV, "3des", "Michael Benson"));
        let path = format!("/v1/operator/enrollments/{}", third["enrollment"].as_str().unwrap());
        let reply = env.call("POST", &path, &st2, Some(&json!({"personalised": true})));
        assert_error(&reply, 403, "forbidden");
    }

    fn offline_responses_are_right_once_per_challenge_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        c.operators.daily_offline_responses = 3;
        let env = Env::start(&c);
        env.server.enroll(&enrollment("iso", ISO, Algorithm::TripleDes)).unwrap();
        env.server.enroll(&enrollment("iso", "abcd", Algorithm::Aes128)).unwrap();
        env.server.enroll(&enrollment("gids", GIDS, Algorithm::TripleDes)).unwrap();
        env.server.enroll(&enrollment("piv", PIV, Algorithm::TripleDes)).unwrap();
        let hd = env.signed_in("hd", &[Role::Helpdesk]);
        // Core's 3DES against the vector of docs/card-facts.md first, then the server against core.
        let mut block = hex::decode("D4BD9B1DA5D26CDA").unwrap();
        AdminKey::piv_default().encrypt_ecb(&mut block).unwrap();
        assert_eq!(hex::encode_upper(&block), "B5A85C0F0207FCF1");
        let (status, reply) = offline(&env, &hd, "iso", ISO, "D4BD 9B1D A5D2 6CDA");
        assert_eq!(status, 200, "{reply}");
        let want = expected(ISO, Algorithm::TripleDes, 0, "D4BD9B1DA5D26CDA");
        assert_eq!(reply["response"], want);
        let grouped: Vec<String> = want.as_bytes().chunks(4).map(|c| String::from_utf8(c.to_vec()).unwrap()).collect();
        assert_eq!(reply["grouped"], grouped.join(" "));
        // The same challenge (any spelling) is answered once, ever.
        assert_error(&offline(&env, &hd, "iso", ISO, "d4bd9b1da5d26cda"), 409, "challenge_used");
        // AES cards take 16 bytes; 8 are refused.
        let aes = "000102030405060708090A0B0C0D0E0F";
        let (status, reply) = offline(&env, &hd, "iso", "abcd", aes);
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["response"], expected("abcd", Algorithm::Aes128, 0, aes));
        assert_error(&offline(&env, &hd, "iso", "abcd", "0001020304050607"), 400, "bad_request");
        // GIDS and PIV are refused with a clear code.
        let gids = offline(&env, &hd, "gids", GIDS, "1122334455667788");
        assert_error(&gids, 409, "offline_unsupported");
        assert!(gids.1["message"].as_str().unwrap().contains("GIDS authenticates mutually"));
        assert_error(&offline(&env, &hd, "piv", PIV, "1122334455667788"), 409, "offline_unsupported");
        // The identity check is required.
        let path = format!("/v1/operator/cards/iso/{ISO}/offline-response");
        let reply = env.call("POST", &path, &hd, Some(&json!({"challenge": "1111111111111111", "identity_checked": " "})));
        assert_error(&reply, 400, "bad_request");
        // Third answer of the day is the last: the fourth is refused and audited as an alert.
        let third = offline(&env, &hd, "iso", ISO, "2222222222222222");
        assert_eq!(third.0, 200, "{}", third.1);
        let capped = offline(&env, &hd, "iso", ISO, "3333333333333333");
        assert_error(&capped, 429, "cap_reached");
        assert!(capped.1["retry_after"].as_u64().unwrap() <= 86_400);
        let audit = env.server.store().audit().unwrap();
        assert!(audit.iter().any(|e| e.event == "offline_response" && e.outcome == "alert"));
        // Never the response in the audit.
        assert!(!format!("{audit:?}").contains(&want));
    }

    /// Proves the challenge is decoded when the request is parsed: a malformed one is a 400
    /// `bad_request` naming the rule (never the value) for an operator with the role and, as
    /// the body is read before any role check, for one without it (not a 403); no audit row,
    /// no challenge spent; a good one is then answered as before.
    fn malformed_offline_challenges_are_bad_requests() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server.enroll(&enrollment("iso", ISO, Algorithm::TripleDes)).unwrap();
        let hd = env.signed_in("hd", &[Role::Helpdesk]);
        let auditor = env.signed_in("au", &[Role::Auditor]);
        let rule = "the challenge must be 8 bytes (16 hex digits, 3DES) or 16 bytes (32 hex digits, AES)";
        for bad in ["D4BD 9B1D A5D2", "D4BD9B1DA5D26CDX", "quitesecretvalue", "00112233445566778899"] {
            for token in [&hd, &auditor] {
                let (status, reply) = offline(&env, token, "iso", ISO, bad);
                assert_error(&(status, reply.clone()), 400, "bad_request");
                let message = reply["message"].as_str().unwrap();
                assert!(message.contains(rule), "{message}");
                assert!(!message.contains(bad) && !message.contains("secret"), "{message}");
            }
        }
        let audit = env.server.store().audit().unwrap();
        assert!(!audit.iter().any(|e| e.event == "offline_response"), "{audit:?}");
        // A number where the text belongs is refused the same way, without quoting it.
        let path = format!("/v1/operator/cards/iso/{ISO}/offline-response");
        let body = json!({"challenge": 123456789, "identity_checked": "badge"});
        let (status, reply) = env.call("POST", &path, &hd, Some(&body));
        assert_error(&(status, reply.clone()), 400, "bad_request");
        assert!(!reply["message"].as_str().unwrap().contains("123456789"), "{reply}");
        // The good challenge still gets its answer, once.
        let (status, reply) = offline(&env, &hd, "iso", ISO, "d4bd 9b1d a5d2 6cda");
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["response"], expected(ISO, Algorithm::TripleDes, 0, "D4BD9B1DA5D26CDA"));
        // Without the role, a well-formed challenge is still forbidden.
        assert_error(&offline(&env, &auditor, "iso", ISO, "1111111111111111"), 403, "forbidden");
    }

    fn puk_readout_marks_the_card_and_lift_lock_needs_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        c.operators.daily_puk_readouts = 1;
        let env = Env::start(&c);
        env.server.enroll(&enrollment("piv", PIV, Algorithm::TripleDes)).unwrap();
        let hd = env.signed_in("hd", &[Role::Helpdesk]);
        let path = format!("/v1/operator/cards/piv/{PIV}/puk-readout");
        let body = json!({"identity_checked": "badge photo over video"});
        let (status, reply) = env.call("POST", &path, &hd, Some(&body));
        assert_eq!(status, 200, "{reply}");
        let puk = kdf::piv_puk(&master(), &hex::decode(PIV).unwrap(), 0);
        assert_eq!(reply["puk"], puk.as_str());
        assert_eq!(reply["generation"], 0);
        let (_, detail) = env.call("GET", &format!("/v1/operator/cards/piv/{PIV}"), &hd, None);
        assert_eq!(detail["puk_read_out"], true);
        assert_error(&env.call("POST", &path, &hd, Some(&body)), 429, "cap_reached");
        // Lock the card with three wrong answer sets, then lift it.
        for _ in 0..3 {
            let session = env.start_session("piv", PIV)["session"].as_str().unwrap().to_owned();
            env.post("/v1/unlock/answers", &json!({"session": session, "answers": WRONG}));
        }
        // A PIV card hears of its lock only once it proved its presence.
        let start = env.start_raw("piv", PIV);
        assert_error(&env.prove(&start, &CARD_KEY), 423, "locked");
        let lift = format!("/v1/operator/cards/piv/{PIV}/lift-lock");
        assert_error(&env.call("POST", &lift, &hd, Some(&json!({"reason": ""}))), 400, "bad_request");
        let (status, reply) = env.call("POST", &lift, &hd, Some(&json!({"reason": "user called, identity checked"})));
        assert_eq!(status, 200, "{reply}");
        env.start_session("piv", PIV);
        let (_, found) = env.call("GET", "/v1/operator/search?q=BENSON", &hd, None);
        assert_eq!(found["cards"][0]["card"]["identity"], PIV);
        assert_eq!(found["cards"][0]["locked"], false);
        // The card holder's unlock rows carry the client address too (no operator).
        let audit = env.server.store().audit().unwrap();
        let unlock: Vec<_> = audit.iter().filter(|e| e.event == "start" || e.event == "answers").collect();
        assert!(!unlock.is_empty());
        for row in unlock {
            assert_eq!(row.address.as_deref(), Some("127.0.0.1"), "{row:?}");
            assert_eq!(row.operator, None, "{row:?}");
        }
    }

    fn every_operator_action_is_audited_with_its_operator_and_the_csv_defuses_formulas() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        let st = env.signed_in("station", &[Role::Enroller]);
        let hd = env.signed_in("hd", &[Role::Helpdesk]);
        let au = env.signed_in("aud", &[Role::Auditor]);
        let e = begin(&env, &st, &enroll_request("iso", ISO, "3des", "=HYPERLINK(\"http://x\")"));
        done(&env, &st, e["enrollment"].as_str().unwrap(), true);
        assert_eq!(offline(&env, &hd, "iso", ISO, "1122334455667788").0, 200);
        let lift = format!("/v1/operator/cards/iso/{ISO}/lift-lock");
        assert_eq!(env.call("POST", &lift, &hd, Some(&json!({"reason": "-1+1 \"quoted\""}))).0, 200);
        let (status, reply) = env.call("GET", "/v1/operator/audit?operator=hd", &au, None);
        assert_eq!(status, 200, "{reply}");
        let events: Vec<&str> = reply["entries"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
        assert_eq!(events, ["lift_lock", "offline_response", "sign_in"]);
        for entry in reply["entries"].as_array().unwrap() {
            assert_eq!(entry["operator"], "hd", "{entry}");
            assert_eq!(entry["address"], "127.0.0.1", "{entry}");
        }
        assert_eq!(reply["entries"][0]["role"], "helpdesk");
        // Every row an operator's call wrote names the operator.
        let audit = env.server.store().audit().unwrap();
        for event in ["enroll_begin", "enroll", "offline_response", "lift_lock", "sign_in", "audit_query"] {
            let rows: Vec<_> = audit.iter().filter(|e| e.event == event).collect();
            assert!(!rows.is_empty(), "{event}");
            assert!(rows.iter().all(|e| e.operator.is_some()), "{event}: {rows:?}");
        }
        // The user filter matches the card holder's name.
        let (_, by_user) = env.call("GET", "/v1/operator/audit?user=hyperlink&event=enroll", &au, None);
        assert_eq!(by_user["entries"].as_array().unwrap().len(), 1, "{by_user}");
        // CSV: a header, and quotes doubled inside quoted cells.
        let (status, csv) = env.call_text("GET", "/v1/operator/audit.csv?card=0A0B0C0D0E0F", &au, None);
        assert_eq!(status, 200);
        assert!(csv.starts_with("time_ms,operator,role,address,profile,identity,"), "{csv}");
        assert!(csv.contains("\"\"quoted\"\""), "{csv}");
        for line in csv.lines().skip(1) {
            assert!(line.starts_with('"'), "{line}");
        }
    }

    fn the_openapi_document_lists_exactly_the_routes() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        let token = env.signed_in("root", &[Role::Admin]);
        let (status, doc) = env.call("GET", "/v1/openapi.json", "", None);
        assert_eq!(status, 200);
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        // Every path constant of the contract is documented...
        let mut known: Vec<&str> = vec![
            cardunlock_server::protocol::paths::START,
            cardunlock_server::protocol::paths::PROVE,
            cardunlock_server::protocol::paths::ANSWERS,
            cardunlock_server::protocol::paths::ADMIN,
            cardunlock_server::protocol::paths::PUK,
            cardunlock_server::protocol::paths::COMPLETE,
        ];
        use cardunlock_server::protocol::paths::operator as op;
        known.extend([
            op::SESSION, op::SEARCH, op::CARD, op::LIFT_LOCK, op::OFFLINE_RESPONSE, op::PUK_READOUT,
            op::PUK_READOUTS, op::PUK_READOUT_APPROVE, op::PUK_READOUT_COLLECT,
            op::ENROLLMENTS, op::ENROLLMENT, op::AUDIT, op::AUDIT_CSV, op::OPERATORS,
            op::OPERATOR_DISABLE, op::OPERATOR_RESET_TOTP, op::OPERATOR_PASSWORD, op::OPENAPI,
        ]);
        let mut documented: Vec<&str> = paths.keys().map(String::as_str).collect();
        documented.sort_unstable();
        known.sort_unstable();
        assert_eq!(documented, known);
        // ...and the router serves each documented method and refuses the others with 405.
        for (path, item) in paths {
            let concrete = path
                .replace("{profile}", "iso")
                .replace("{identity}", "0a0b")
                .replace("{id}", &"0".repeat(32))
                .replace("{name}", "nobody");
            for method in ["GET", "POST", "DELETE", "PUT"] {
                let documented = item.get(method.to_lowercase()).is_some();
                let (status, body) = env.call(method, &concrete, &token, Some(&json!({})))
                    .clone();
                if documented {
                    assert_ne!(body["message"], "No such endpoint.", "{method} {path}: {body}");
                    assert_ne!(status, 405, "{method} {path}: {body}");
                } else {
                    assert_eq!(status, 405, "{method} {path} is served but not documented: {body}");
                }
            }
        }
    }
}
