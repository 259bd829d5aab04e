//! Operators: sign-in with password + TOTP, throttles, sessions, roles, and the audit trail of
//! what operators do, over the real HTTPS API, on SQLite and (with `CARDUNLOCK_TEST_POSTGRES`)
//! PostgreSQL.

mod common;

use std::time::Duration;

use cardunlock_server::protocol::Role;
use common::operators::PASSWORD;
use common::*;
use serde_json::json;

backend_tests! {
    fn sign_in_accepts_each_code_once() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        let alice = env.operator("alice", &[Role::Helpdesk]);
        let code = alice.code(0);
        let (status, reply) = env.sign_in_with("alice", PASSWORD, &code);
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["operator"]["name"], "alice");
        assert_eq!(reply["operator"]["roles"], json!(["helpdesk"]));
        assert_eq!(reply["idle_timeout_s"], 900);
        assert_eq!(reply["token"].as_str().unwrap().len(), 64);
        // The same code again: refused, though password and code are right.
        let again = env.sign_in_with("alice", PASSWORD, &code);
        assert_error(&again, 401, "unauthorized");
        // The next step's code still works (clock drift window), once.
        assert_eq!(env.sign_in_with("alice", PASSWORD, &alice.code(1)).0, 200);
        // Wrong password, wrong code, unknown name: one answer for all.
        for (name, password, code) in [
            ("alice", "not the password!", alice.code(0)),
            ("alice", PASSWORD, "000000".to_string()),
            ("mallory", PASSWORD, alice.code(0)),
        ] {
            let reply = env.sign_in_with(name, password, &code);
            assert_error(&reply, 401, "unauthorized");
        }
        let audit = env.server.store().audit().unwrap();
        let outcomes: Vec<&str> = audit
            .iter()
            .filter(|e| e.event == "sign_in")
            .map(|e| e.outcome.as_str())
            .collect();
        assert_eq!(
            outcomes,
            ["ok", "wrong_code", "ok", "wrong_password", "wrong_code", "unknown_operator"]
        );
        // A name with no account is not put in the operator column, only in the detail.
        let unknown = audit.iter().find(|e| e.outcome == "unknown_operator").unwrap();
        assert_eq!(unknown.operator, None);
        assert!(unknown.detail.contains("mallory"), "{unknown:?}");
        assert!(audit.iter().filter(|e| e.outcome == "wrong_password").all(|e| e.operator.as_deref() == Some("alice")));
        // Never the password or the code in the audit log.
        let all = format!("{audit:?}");
        assert!(!all.contains(PASSWORD) && !all.contains(&code), "{all}");
    }

    fn failed_sign_ins_lock_the_operator_out_then_the_address() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        c.operators.failures_per_operator = 3;
        c.operators.failures_per_address = 6;
        c.operators.lockout = Duration::from_secs(60);
        let env = Env::start(&c);
        let bob = env.operator("bob", &[Role::Helpdesk]);
        env.operator("carol", &[Role::Helpdesk]);
        for _ in 0..3 {
            assert_error(&env.sign_in_with("bob", "wrong password!!", &bob.code(0)), 401, "unauthorized");
        }
        // Locked out: even the right password and code are not checked.
        let locked = env.sign_in_with("bob", PASSWORD, &bob.code(0));
        assert_error(&locked, 429, "too_many_requests");
        let wait = locked.1["retry_after"].as_u64().unwrap();
        assert!((50..=60).contains(&wait), "{wait}");
        // Another operator from the same address is not locked yet...
        for _ in 0..3 {
            assert_error(&env.sign_in_with("carol", "wrong password!!", "123456"), 401, "unauthorized");
        }
        // ...but now the address has 6 failures: everyone from it waits.
        let dave = env.operator("dave", &[Role::Helpdesk]);
        let reply = env.sign_in_with("dave", PASSWORD, &dave.code(0));
        assert_error(&reply, 429, "too_many_requests");
        let throttled = env
            .server
            .store()
            .audit()
            .unwrap()
            .into_iter()
            .filter(|e| e.event == "sign_in" && e.outcome == "throttled")
            .count();
        assert_eq!(throttled, 2);
    }

    fn roles_are_checked_on_every_call() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        let hd = env.signed_in("hd", &[Role::Helpdesk]);
        let root = env.signed_in("root", &[Role::Admin]);
        for (method, path) in [
            ("GET", "/v1/operator/operators"),
            ("POST", "/v1/operator/operators/root/disable"),
            ("POST", "/v1/operator/operators/root/reset-totp"),
            ("GET", "/v1/operator/audit"),
            ("GET", "/v1/operator/audit.csv"),
        ] {
            let reply = env.call(method, path, &hd, None);
            assert_error(&reply, 403, "forbidden");
        }
        let add = json!({"name": "eve", "roles": ["admin"], "password": "long enough password"});
        assert_error(&env.call("POST", "/v1/operator/operators", &hd, Some(&add)), 403, "forbidden");
        // An admin may not lift a lock (helpdesk work), but manages operators.
        let lift = json!({"reason": "called in"});
        let reply = env.call("POST", "/v1/operator/cards/piv/0a0b/lift-lock", &root, Some(&lift));
        assert_error(&reply, 403, "forbidden");
        let (status, reply) = env.call("POST", "/v1/operator/operators", &root, Some(&add));
        assert_eq!(status, 200, "{reply}");
        assert!(reply["totp_uri"].as_str().unwrap().starts_with("otpauth://totp/cardunlock:eve?"));
        let (status, list) = env.call("GET", "/v1/operator/operators", &root, None);
        assert_eq!(status, 200, "{list}");
        let names: Vec<&str> = list["operators"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["eve", "hd", "root"]);
        // No token, a malformed one, an unknown one.
        for token in ["", "abc", &"00".repeat(32)] {
            let reply = env.call("GET", "/v1/operator/search?q=x", token, None);
            assert_error(&reply, 401, "unauthorized");
        }
    }

    fn sessions_end_on_sign_out_disable_and_idle() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        c.operators.idle_timeout = Duration::from_millis(1500);
        let env = Env::start(&c);
        let admin = env.operator("root", &[Role::Admin]);
        let helpdesk = env.operator("hd", &[Role::Helpdesk]);
        let idle = env.operator("idle", &[Role::Helpdesk]);
        let root = env.sign_in(&admin, 0);
        let hd = env.sign_in(&helpdesk, 0);
        let sleepy = env.sign_in(&idle, 0);
        assert_eq!(env.call("GET", "/v1/operator/search?q=x", &hd, None).0, 200);
        // Disabled: its session ends at once, and it cannot sign in again.
        assert_eq!(env.call("POST", "/v1/operator/operators/hd/disable", &root, None).0, 200);
        assert_error(&env.call("GET", "/v1/operator/search?q=x", &hd, None), 401, "unauthorized");
        let again = env.sign_in_with("hd", PASSWORD, &helpdesk.code(1));
        assert_error(&again, 401, "unauthorized");
        // An admin cannot disable itself.
        assert_error(&env.call("POST", "/v1/operator/operators/root/disable", &root, None), 409, "conflict");
        // Signed out: the token is dead.
        assert_eq!(env.call("DELETE", "/v1/operator/session", &root, None).0, 200);
        assert_error(&env.call("GET", "/v1/operator/operators", &root, None), 401, "unauthorized");
        // Idle past the limit: refused, even though it is far from the absolute limit.
        std::thread::sleep(Duration::from_millis(1700));
        assert_error(&env.call("GET", "/v1/operator/search?q=x", &sleepy, None), 401, "unauthorized");
        let audit = env.server.store().audit().unwrap();
        assert!(audit.iter().any(|e| e.event == "disable_operator" && e.operator.as_deref() == Some("root")));
        assert!(audit.iter().any(|e| e.event == "sign_out" && e.operator.as_deref() == Some("root")));
        // Ended sessions are deleted at the next sign-in: only the new one is left.
        env.sign_in(&admin, 1);
        let left = query_texts(&c.db_path, "SELECT operator FROM operator_sessions");
        assert_eq!(left, ["root"]);
    }

    fn a_session_signed_in_on_one_instance_is_valid_on_another() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        let both = instances(&c, 2);
        let op = both[0].operator("alice", &[Role::Helpdesk]);
        let token = both[0].sign_in(&op, 0);
        let (status, reply) = both[1].call("GET", "/v1/operator/search?q=nobody", &token, None);
        assert_eq!(status, 200, "{reply}");
        // Signed out on the second, dead on the first.
        assert_eq!(both[1].call("DELETE", "/v1/operator/session", &token, None).0, 200);
        assert_error(&both[0].call("GET", "/v1/operator/search?q=x", &token, None), 401, "unauthorized");
        // The code used on one instance is refused on the other.
        let code = op.code(1);
        assert_eq!(both[0].sign_in_with("alice", PASSWORD, &code).0, 200);
        assert_error(&both[1].sign_in_with("alice", PASSWORD, &code), 401, "unauthorized");
    }
}
