//! Shared test helpers: a server in a temporary directory, an HTTPS client (ureq 2 with the
//! pinned rustls configuration), enrolment and the first steps of a session.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::{
    pinned_client_config, Argon2Params, Config, Enrollment, MasterSecret, Server, ServerHandle,
};
use serde_json::{json, Value};

/// Cheap Argon2 for tests that do not measure it.
pub const FAST: Argon2Params = Argon2Params {
    m_cost_kib: 64,
    t_cost: 1,
    p_cost: 1,
};

pub const MASTER_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

pub fn master() -> MasterSecret {
    MasterSecret::from_hex(MASTER_HEX).unwrap()
}

/// A configuration in `dir` with fast Argon2.
pub fn config(dir: &Path) -> Config {
    let mut c = Config::new(dir.join("cardunlock.db"), dir.join("state"), master());
    c.argon2 = FAST;
    c
}

pub struct Env {
    pub server: ServerHandle,
    pub agent: ureq::Agent,
    pub url: String,
}

impl Env {
    pub fn start(config: &Config) -> Self {
        let server = Server::spawn(config.clone()).unwrap();
        let agent = agent(server.cert_pem());
        let url = server.url();
        Self { server, agent, url }
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        post(&self.agent, &self.url, path, body)
    }

    pub fn post_raw(&self, path: &str, body: &[u8]) -> (u16, Value) {
        post_raw(&self.agent, &self.url, path, body)
    }

    /// `start` for a card, asserting 200; returns the whole reply.
    pub fn start_session(&self, profile: &str, identity: &str) -> Value {
        let (status, reply) = self.post("/v1/unlock/start", &card(profile, identity));
        assert_eq!(status, 200, "{reply}");
        reply
    }

    /// `start` then the right answers; returns the verified session token.
    pub fn verified_session(&self, profile: &str, identity: &str) -> String {
        let session = self.start_session(profile, identity)["session"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, reply) = self.post(
            "/v1/unlock/answers",
            &json!({ "session": session, "answers": ANSWERS }),
        );
        assert_eq!((status, &reply), (200, &json!({ "verified": true })));
        session
    }
}

pub fn agent(cert_pem: &str) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .tls_config(pinned_client_config(cert_pem).unwrap())
        .timeout(Duration::from_secs(60))
        .build()
}

pub fn post(agent: &ureq::Agent, url: &str, path: &str, body: &Value) -> (u16, Value) {
    post_raw(agent, url, path, &serde_json::to_vec(body).unwrap())
}

/// POSTs raw bytes as JSON; any HTTP status is returned with its JSON body.
pub fn post_raw(agent: &ureq::Agent, url: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let result = agent
        .post(&format!("{url}{path}"))
        .set("Content-Type", "application/json")
        .send_bytes(body);
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = response.status();
    assert_eq!(response.content_type(), "application/json");
    (status, response.into_json().unwrap())
}

pub fn card(profile: &str, identity: &str) -> Value {
    json!({ "card": { "profile": profile, "identity": identity } })
}

pub const QUESTIONS: [&str; 2] = ["Name of your first pet?", "City you were born in?"];
pub const ANSWERS: [&str; 2] = ["Rex the Dog", "São Paulo"];
pub const WRONG: [&str; 2] = ["Rex the Dog", "Lisbon"];

pub fn enrollment(profile: &str, identity: &str, algorithm: Algorithm) -> Enrollment {
    Enrollment {
        name: "Michael Benson".into(),
        email: "Michael.Benson@demo.local".into(),
        profile: profile.into(),
        identity_hex: identity.into(),
        algorithm,
        questions: QUESTIONS
            .iter()
            .zip(ANSWERS)
            .map(|(q, a)| (q.to_string(), a.to_string()))
            .collect(),
    }
}

/// Asserts the contract's error shape and code.
pub fn assert_error(reply: &(u16, Value), status: u16, code: &str) {
    assert_eq!(reply.0, status, "{}", reply.1);
    assert_eq!(reply.1["error"], code, "{}", reply.1);
    assert!(
        reply.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        reply.1
    );
}
