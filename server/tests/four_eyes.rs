//! Four eyes on PIV PUK read-outs: off by default (one operator reads out as before); on, a
//! read-out is a request another helpdesk operator approves, then its requester collects the
//! PUK once, before it lapses; every step audited with its operator.

mod common;

use std::time::Duration;

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::kdf;
use cardunlock_server::protocol::Role;
use common::*;
use serde_json::{json, Value};

const PIV: &str = "00112233445566778899aabbccddeeff";

fn readout(env: &Env, token: &str) -> (u16, Value) {
    let path = format!("/v1/operator/cards/piv/{PIV}/puk-readout");
    let body = json!({"identity_checked": "badge photo over video"});
    env.call("POST", &path, token, Some(&body))
}

fn approve(env: &Env, token: &str, id: &str) -> (u16, Value) {
    env.call(
        "POST",
        &format!("/v1/operator/puk-readouts/{id}/approve"),
        token,
        None,
    )
}

fn collect(env: &Env, token: &str, id: &str) -> (u16, Value) {
    env.call(
        "POST",
        &format!("/v1/operator/puk-readouts/{id}/collect"),
        token,
        None,
    )
}

fn four_eyes(dir: &std::path::Path) -> cardunlock_server::Config {
    let mut c = config(dir);
    c.operators.four_eyes_puk_readout = true;
    c
}

fn puk() -> String {
    kdf::piv_puk(&master(), &hex::decode(PIV).unwrap(), 0)
        .as_str()
        .to_owned()
}

/// The audit rows of event `puk_readout`, as (operator, outcome).
fn readout_rows(env: &Env) -> Vec<(String, String)> {
    let audit = env.server.store().audit().unwrap();
    audit
        .iter()
        .filter(|e| e.event == "puk_readout")
        .map(|e| (e.operator.clone().unwrap_or_default(), e.outcome.clone()))
        .collect()
}

backend_tests! {
    fn off_by_default_one_operator_reads_out_and_the_request_routes_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        assert!(!c.operators.four_eyes_puk_readout);
        let env = Env::start(&c);
        env.server.enroll(&enrollment("piv", PIV, Algorithm::TripleDes)).unwrap();
        let hd = env.signed_in("hd", &[Role::Helpdesk]);
        let (status, reply) = readout(&env, &hd);
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["puk"], puk().as_str());
        let (status, list) = env.call("GET", "/v1/operator/puk-readouts", &hd, None);
        assert_eq!((status, list["requests"].as_array().map(Vec::len)), (200, Some(0)));
        assert_error(&approve(&env, &hd, &"0".repeat(32)), 409, "conflict");
        assert_error(&collect(&env, &hd, &"0".repeat(32)), 409, "conflict");
    }

    fn on_a_second_operator_approves_and_the_requester_collects_once() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&four_eyes(dir.path()));
        env.server.enroll(&enrollment("piv", PIV, Algorithm::TripleDes)).unwrap();
        let alice = env.signed_in("alice", &[Role::Helpdesk]);
        let bob = env.signed_in("bob", &[Role::Helpdesk]);
        let admin = env.signed_in("root", &[Role::Admin]);
        // The read-out is a request: 202, no PUK.
        let (status, pending) = readout(&env, &alice);
        assert_eq!(status, 202, "{pending}");
        assert!(pending.get("puk").is_none(), "{pending}");
        assert!(!pending.to_string().contains(&puk()), "{pending}");
        let id = pending["request"].as_str().unwrap().to_owned();
        assert_eq!(id.len(), 32);
        let (_, detail) = env.call("GET", &format!("/v1/operator/cards/piv/{PIV}"), &alice, None);
        assert_eq!(detail["puk_read_out"], false, "{detail}");
        // Not collectable before approval; the requester cannot approve it; an admin neither.
        assert_error(&collect(&env, &alice, &id), 409, "conflict");
        assert_error(&approve(&env, &alice, &id), 403, "forbidden");
        assert_error(&approve(&env, &admin, &id), 403, "forbidden");
        // Approvers see it.
        let (status, list) = env.call("GET", "/v1/operator/puk-readouts", &bob, None);
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["requests"][0]["request"], id.as_str());
        assert_eq!(list["requests"][0]["requester"], "alice");
        assert!(list["requests"][0].get("approved_by").is_none());
        // Bob approves; once.
        let (status, reply) = approve(&env, &bob, &id);
        assert_eq!(status, 200, "{reply}");
        assert_error(&approve(&env, &bob, &id), 409, "conflict");
        let (_, list) = env.call("GET", "/v1/operator/puk-readouts", &bob, None);
        assert_eq!(list["requests"][0]["approved_by"], "bob");
        // Only the requester collects, and only once.
        assert_error(&collect(&env, &bob, &id), 403, "forbidden");
        let (status, reply) = collect(&env, &alice, &id);
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["puk"], puk().as_str());
        assert_eq!(reply["generation"], 0);
        assert_error(&collect(&env, &alice, &id), 409, "conflict");
        let (_, detail) = env.call("GET", &format!("/v1/operator/cards/piv/{PIV}"), &alice, None);
        assert_eq!(detail["puk_read_out"], true, "{detail}");
        let (_, list) = env.call("GET", "/v1/operator/puk-readouts", &bob, None);
        assert_eq!(list["requests"].as_array().unwrap().len(), 0, "{list}");
        // Every step audited with its operator, never the PUK.
        let rows = readout_rows(&env);
        let has = |who: &str, outcome: &str| rows.iter().any(|(o, r)| o == who && r == outcome);
        assert!(has("alice", "requested"), "{rows:?}");
        assert!(has("alice", "alert"), "self-approval refused: {rows:?}");
        assert!(has("bob", "approved"), "{rows:?}");
        assert!(has("alice", "read_out"), "{rows:?}");
        assert!(has("bob", "alert"), "bob's collect refused: {rows:?}");
        let audit = env.server.store().audit().unwrap();
        let read_out = audit.iter().find(|e| e.event == "puk_readout" && e.outcome == "read_out").unwrap();
        assert!(read_out.detail.contains("approved by bob"), "{}", read_out.detail);
        assert!(!format!("{audit:?}").contains(&puk()));
    }

    fn collect_counts_against_the_daily_cap() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = four_eyes(dir.path());
        c.operators.daily_puk_readouts = 1;
        let env = Env::start(&c);
        env.server.enroll(&enrollment("piv", PIV, Algorithm::TripleDes)).unwrap();
        let alice = env.signed_in("alice", &[Role::Helpdesk]);
        let bob = env.signed_in("bob", &[Role::Helpdesk]);
        let mut ids = Vec::new();
        for _ in 0..2 {
            let (status, pending) = readout(&env, &alice);
            assert_eq!(status, 202, "{pending}");
            let id = pending["request"].as_str().unwrap().to_owned();
            assert_eq!(approve(&env, &bob, &id).0, 200);
            ids.push(id);
        }
        assert_eq!(collect(&env, &alice, &ids[0]).0, 200);
        assert_error(&collect(&env, &alice, &ids[1]), 429, "cap_reached");
    }

    fn unknown_malformed_and_lapsed_requests_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = four_eyes(dir.path());
        c.operators.puk_readout_window = Duration::from_millis(600);
        let env = Env::start(&c);
        env.server.enroll(&enrollment("piv", PIV, Algorithm::TripleDes)).unwrap();
        let alice = env.signed_in("alice", &[Role::Helpdesk]);
        let bob = env.signed_in("bob", &[Role::Helpdesk]);
        assert_error(&approve(&env, &bob, &"0".repeat(32)), 404, "not_found");
        assert_error(&approve(&env, &bob, "not-an-id"), 404, "not_found");
        assert_error(&collect(&env, &alice, &"f".repeat(32)), 404, "not_found");
        // Lapsed before approval.
        let (_, pending) = readout(&env, &alice);
        let id = pending["request"].as_str().unwrap().to_owned();
        std::thread::sleep(Duration::from_millis(800));
        assert_error(&approve(&env, &bob, &id), 404, "not_found");
        // Lapsed after approval, before collection.
        let (_, pending) = readout(&env, &alice);
        let id = pending["request"].as_str().unwrap().to_owned();
        assert_eq!(approve(&env, &bob, &id).0, 200);
        std::thread::sleep(Duration::from_millis(800));
        assert_error(&collect(&env, &alice, &id), 404, "not_found");
        let (_, list) = env.call("GET", "/v1/operator/puk-readouts", &bob, None);
        assert_eq!(list["requests"].as_array().unwrap().len(), 0, "{list}");
        let (_, detail) = env.call("GET", &format!("/v1/operator/cards/piv/{PIV}"), &alice, None);
        assert_eq!(detail["puk_read_out"], false, "{detail}");
        // Non-PIV cards and non-helpdesk roles cannot request.
        let enroller = env.signed_in("station", &[Role::Enroller]);
        assert_error(&readout(&env, &enroller), 403, "forbidden");
    }
}
