//! Operator API helpers: accounts made the way `cardunlock-server add-operator` makes them,
//! TOTP codes computed from the printed URI, and bearer-token requests.

use std::time::{SystemTime, UNIX_EPOCH};

use cardunlock_server::operator::create_operator;
use cardunlock_server::protocol::{Role, Secret};
use cardunlock_server::totp;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::{master, Env, FAST};

pub const PASSWORD: &str = "correct horse battery staple";

/// An operator account and its TOTP seed.
pub struct Op {
    pub name: String,
    pub seed: Zeroizing<Vec<u8>>,
}

pub fn unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Op {
    /// The code of the step `offset` steps from now.
    pub fn code(&self, offset: i64) -> String {
        let t = unix().saturating_add_signed(offset * totp::STEP_SECS as i64);
        totp::code(&self.seed, t).to_string()
    }
}

impl Env {
    /// Adds an operator straight through the store (as the command line does).
    pub fn operator(&self, name: &str, roles: &[Role]) -> Op {
        let uri = create_operator(
            self.server.store(),
            &master(),
            &FAST,
            name,
            roles,
            &Secret::new(PASSWORD),
        )
        .unwrap();
        Op {
            name: name.into(),
            seed: totp::seed_from_uri(uri.expose()).unwrap(),
        }
    }

    /// Signs in with the current code; returns (status, reply).
    pub fn sign_in_with(&self, name: &str, password: &str, code: &str) -> (u16, Value) {
        self.post(
            "/v1/operator/session",
            &json!({"name": name, "password": password, "totp": code}),
        )
    }

    /// Signs `op` in with the code `offset` steps from now; returns the token.
    pub fn sign_in(&self, op: &Op, offset: i64) -> String {
        let (status, reply) = self.sign_in_with(&op.name, PASSWORD, &op.code(offset));
        assert_eq!(status, 200, "{reply}");
        reply["token"].as_str().unwrap().to_owned()
    }

    /// Adds an operator and signs it in with the current code; returns the token.
    pub fn signed_in(&self, name: &str, roles: &[Role]) -> String {
        let op = self.operator(name, roles);
        self.sign_in(&op, 0)
    }

    /// A request with a bearer token; any status is returned with its JSON body.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let (status, text) = self.call_text(method, path, token, body);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Same, the body as text.
    pub fn call_text(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (u16, String) {
        let req = self
            .agent
            .request(method, &format!("{}{path}", self.url))
            .set("Authorization", &format!("Bearer {token}"));
        let result = match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_bytes(&serde_json::to_vec(b).unwrap()),
            None => req.call(),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        let status = response.status();
        (status, response.into_string().unwrap())
    }
}
