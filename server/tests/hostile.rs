//! Hostile input on every endpoint: malformed, oversized, wrong types, missing fields, huge
//! numbers, deep nesting, non-hex, wrong lengths. Always a 4xx with the JSON error shape, never
//! a 5xx, and the server keeps serving.

mod common;

use cardunlock_core::crypto::Algorithm;
use common::*;
use serde_json::{json, Value};

const ENDPOINTS: [&str; 5] = [
    "/v1/unlock/start",
    "/v1/unlock/answers",
    "/v1/unlock/admin",
    "/v1/unlock/puk",
    "/v1/unlock/complete",
];

fn assert_4xx(reply: &(u16, Value), what: &str) {
    assert!(
        (400..500).contains(&reply.0),
        "{what}: {} {}",
        reply.0,
        reply.1
    );
    assert!(
        reply.1["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: {}",
        reply.1
    );
    assert!(reply.1["message"].as_str().is_some(), "{what}: {}", reply.1);
}

fn generic_bodies() -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = [
        "",
        " ",
        "not json",
        "{",
        "}",
        "[]",
        "null",
        "123",
        "\"session\"",
        "{}",
        "{\"session\":}",
        "{\"session\": 5}",
        "{\"session\": null}",
        "{\"session\": true}",
        "{\"session\": {}}",
        "{\"session\": []}",
        "{\"session\": 1e999999}",
        "{\"session\": -0.0e-99999}",
        "{\"session\": 123456789012345678901234567890123456789}",
        "{\"session\": \"\\ud800\"}",
        "{\"session\": \"a\", \"session\": \"b\"}",
        "{\"session\": \"\\u0000\", \"card\": 7, \"answers\": 1, \"request\": 2, \"outcome\": 3}",
        "{\"card\": {\"profile\": [], \"identity\": {}}}",
        "{\"card\": null}",
        "{\"card\": \"piv\"}",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    bodies.push(b"{\"session\": \"\xff\xfe\"}".to_vec());
    bodies.push(b"\xef\xbb\xbf{}".to_vec());
    // Deep nesting, just under the 16 KiB limit, bare and inside every field.
    bodies.push(format!("{}{}", "[".repeat(8000), "]".repeat(8000)).into_bytes());
    for field in ["session", "card", "answers", "request", "outcome"] {
        let deep = format!(
            "{{\"{field}\": {}{}}}",
            "{\"a\":".repeat(2000),
            "}".repeat(2000)
        );
        bodies.push(deep.into_bytes());
    }
    bodies
}

backend_tests! {
    fn malformed_bodies_get_4xx_on_every_endpoint() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server
            .enroll(&enrollment("iso", "0101", Algorithm::TripleDes))
            .unwrap();
        for path in ENDPOINTS {
            for body in generic_bodies() {
                let reply = env.post_raw(path, &body);
                assert_4xx(
                    &reply,
                    &format!(
                        "{path} {:?}",
                        String::from_utf8_lossy(&body[..body.len().min(60)])
                    ),
                );
            }
        }
        // Still serving.
        env.verified_session("iso", "0101");
    }

    fn hostile_fields_get_4xx_with_a_live_verified_session() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server
            .enroll(&enrollment("iso", "0202", Algorithm::TripleDes))
            .unwrap();
        env.server
            .enroll(&enrollment("piv", "0303", Algorithm::TripleDes))
            .unwrap();
        let s = env.verified_session("iso", "0202");
        let p = env.verified_session("piv", "0303");
        let cases: Vec<(&str, Value)> = vec![
            ("/v1/unlock/start", card("piv", "zz")),
            ("/v1/unlock/start", card("piv", "")),
            ("/v1/unlock/start", card("piv", "abc")),
            ("/v1/unlock/start", card("piv", &"00".repeat(65))),
            ("/v1/unlock/start", card("PIV", "0303")),
            ("/v1/unlock/start", card("smartcard", "0303")),
            (
                "/v1/unlock/start",
                json!({ "card": { "profile": "piv", "identity": 303 } }),
            ),
            ("/v1/unlock/start", json!({ "card": { "profile": "piv" } })),
            (
                "/v1/unlock/answers",
                json!({ "session": s, "answers": "Rex" }),
            ),
            (
                "/v1/unlock/answers",
                json!({ "session": s, "answers": [1, 2] }),
            ),
            (
                "/v1/unlock/answers",
                json!({ "session": s, "answers": [null, null] }),
            ),
            (
                "/v1/unlock/answers",
                json!({ "session": s, "answers": [["a"], ["b"]] }),
            ),
            ("/v1/unlock/answers", json!({ "session": s })),
            (
                "/v1/unlock/answers",
                json!({ "session": "zz".repeat(32), "answers": ANSWERS }),
            ),
            (
                "/v1/unlock/answers",
                json!({ "session": "ab", "answers": ANSWERS }),
            ),
            ("/v1/unlock/admin", json!({ "session": s })),
            ("/v1/unlock/admin", json!({ "session": s, "request": {} })),
            (
                "/v1/unlock/admin",
                json!({ "session": s, "request": { "kind": "decrypt", "block": "00" } }),
            ),
            (
                "/v1/unlock/admin",
                json!({ "session": s, "request": { "kind": 1 } }),
            ),
            (
                "/v1/unlock/admin",
                json!({ "session": s, "request": { "kind": "encrypt" } }),
            ),
            (
                "/v1/unlock/admin",
                json!({ "session": s, "request": { "kind": "encrypt", "algorithm": "3des", "block": "xyz0000000000000" } }),
            ),
            (
                "/v1/unlock/admin",
                json!({ "session": s, "request": { "kind": "encrypt", "algorithm": "3des", "block": "000" } }),
            ),
            (
                "/v1/unlock/admin",
                json!({ "session": s, "request": { "kind": "encrypt", "algorithm": "3des", "block": "" } }),
            ),
            (
                "/v1/unlock/admin",
                json!({ "session": s, "request": { "kind": "encrypt", "algorithm": "3des", "block": "00".repeat(16) } }),
            ),
            (
                "/v1/unlock/admin",
                json!({ "session": s, "request": { "kind": "encrypt", "algorithm": "des", "block": "00".repeat(8) } }),
            ),
            (
                "/v1/unlock/admin",
                json!({ "session": s, "request": { "kind": "encrypt", "algorithm": "3des", "block": 1e300 } }),
            ),
            (
                "/v1/unlock/admin",
                json!({ "session": s, "request": { "kind": "gids_card_cryptogram", "cryptogram": "0".repeat(81) } }),
            ),
            (
                "/v1/unlock/admin",
                json!({ "session": p, "request": { "kind": "encrypt", "algorithm": "3des", "block": "00".repeat(8) } }),
            ),
            (
                "/v1/unlock/puk",
                json!({ "session": 18446744073709551616u128 as f64 }),
            ),
            ("/v1/unlock/puk", json!({ "session": "g".repeat(64) })),
            ("/v1/unlock/puk", json!({ "session": s })),
            (
                "/v1/unlock/complete",
                json!({ "session": s, "outcome": "maybe", "puk_rotated": false }),
            ),
            (
                "/v1/unlock/complete",
                json!({ "session": s, "outcome": "unlocked", "puk_rotated": "yes" }),
            ),
            (
                "/v1/unlock/complete",
                json!({ "session": s, "outcome": "unlocked", "puk_rotated": 1 }),
            ),
            (
                "/v1/unlock/complete",
                json!({ "session": s, "outcome": "unlocked", "detail": 5 }),
            ),
            (
                "/v1/unlock/complete",
                json!({ "session": s, "puk_rotated": false }),
            ),
            (
                "/v1/unlock/complete",
                json!({ "session": s, "outcome": "unlocked", "puk_rotated": true }),
            ),
        ];
        for (path, body) in cases {
            let reply = env.post(path, &body);
            assert_4xx(&reply, &format!("{path} {body}"));
        }
        // The ISO session is still usable: nothing above closed it or spent a challenge.
        let req = json!({ "kind": "encrypt", "algorithm": "3des", "block": "00".repeat(8) });
        assert_eq!(
            env.post("/v1/unlock/admin", &json!({ "session": s, "request": req }))
                .0,
            200
        );
        // Many answers are refused before any hashing.
        let many = vec!["x"; 4000];
        assert_error(
            &env.post(
                "/v1/unlock/answers",
                &json!({ "session": env.start_session("iso", "0202")["session"], "answers": many }),
            ),
            400,
            "bad_request",
        );
        assert_eq!(
            env.server
                .store()
                .card("iso", "0202")
                .unwrap()
                .unwrap()
                .failed_attempts,
            0
        );
    }

    fn oversized_bodies_get_413_and_16_kib_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server
            .enroll(&enrollment("iso", "0404", Algorithm::TripleDes))
            .unwrap();
        for path in ENDPOINTS {
            let mut body = b"{\"session\": \"".to_vec();
            body.resize(16 * 1024 + 1 - 2, b'a');
            body.extend_from_slice(b"\"}");
            assert_eq!(body.len(), 16 * 1024 + 1);
            assert_error(&env.post_raw(path, &body), 413, "payload_too_large");
            assert_error(
                &env.post_raw(path, &vec![b' '; 300 * 1024]),
                413,
                "payload_too_large",
            );
        }
        // Exactly 16 KiB (padding spaces) is processed normally.
        let mut body = serde_json::to_vec(&card("iso", "0404")).unwrap();
        body.resize(16 * 1024, b' ');
        assert_eq!(env.post_raw("/v1/unlock/start", &body).0, 200);
        // Far beyond the drain limit the server may just close the connection; it survives.
        let huge = vec![b' '; 4 * 1024 * 1024];
        let result = env
            .agent
            .post(&format!("{}/v1/unlock/start", env.url))
            .send_bytes(&huge);
        if let Err(ureq::Error::Status(code, _)) = result {
            assert_eq!(code, 413);
        }
        env.verified_session("iso", "0404");
    }

    fn wrong_paths_methods_and_media_types() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        assert_error(
            &env.post("/v1/unlock/nothing", &json!({})),
            404,
            "not_found",
        );
        assert_error(&env.post("/", &json!({})), 404, "not_found");
        let get = env
            .agent
            .get(&format!("{}/v1/unlock/start", env.url))
            .call();
        match get {
            Err(ureq::Error::Status(405, r)) => {
                assert_eq!(r.header("allow"), Some("POST"));
                assert_eq!(
                    r.into_json::<Value>().unwrap()["error"],
                    "method_not_allowed"
                );
            }
            other => panic!("expected 405, got {other:?}"),
        }
        let text = env
            .agent
            .post(&format!("{}/v1/unlock/start", env.url))
            .set("Content-Type", "text/plain")
            .send_string("{}");
        match text {
            Err(ureq::Error::Status(415, r)) => {
                assert_eq!(
                    r.into_json::<Value>().unwrap()["error"],
                    "unsupported_media_type"
                );
            }
            other => panic!("expected 415, got {other:?}"),
        }
        // Refusals are counted, not written one by one: no row until the summary, then one
        // per reason (for this address), without the body.
        let audit = env.server.store().audit().unwrap();
        assert!(audit.iter().all(|e| e.event != "refused"), "{audit:#?}");
        env.server.flush_refusals().unwrap();
        let audit = env.server.store().audit().unwrap();
        for outcome in ["not_found", "method_not_allowed", "unsupported_media_type"] {
            assert_eq!(
                audit
                    .iter()
                    .filter(|e| e.event == "refused" && e.outcome == outcome)
                    .count(),
                1,
                "{outcome}: {audit:#?}"
            );
        }
    }
}
