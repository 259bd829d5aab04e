//! Console test helpers: operators made from the command-line path with their TOTP seed, an
//! independent RFC 6238 code generator, a cookie-and-form HTTP client that does not follow
//! redirects, and a card locked through the real unlock API.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::protocol::operator::Role;
use cardunlock_server::{pinned_client_config, CardRecord};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;

use super::{enrollment, Env, WRONG};

pub use super::operators::PASSWORD;

/// An operator of the test server, with its TOTP seed; its codes are computed here,
/// independently of the server's TOTP code.
pub struct Operator {
    pub name: String,
    seed: Vec<u8>,
}

impl Operator {
    /// Adds `name` with `roles` (as `cardunlock-server add-operator` does).
    pub fn add(env: &Env, name: &str, roles: &[Role]) -> Self {
        let op = env.operator(name, roles);
        Self {
            name: op.name.clone(),
            seed: op.seed.to_vec(),
        }
    }

    /// An operator whose authenticator was set up from `uri`.
    pub fn with_uri(name: &str, uri: &str) -> Self {
        Self {
            name: name.to_owned(),
            seed: seed_of(uri),
        }
    }

    /// The TOTP code of now.
    pub fn code(&self) -> String {
        self.code_at_offset(0)
    }

    /// The TOTP code `seconds` from now.
    pub fn code_at_offset(&self, seconds: u64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        totp(&self.seed, (now + seconds) / 30)
    }
}

/// The seed of an `otpauth://` URI (its base32 `secret` parameter).
pub fn seed_of(uri: &str) -> Vec<u8> {
    let secret = uri
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("secret="))
        .unwrap_or_else(|| panic!("no secret in the otpauth URI"));
    data_encoding::BASE32_NOPAD
        .decode(secret.trim_end_matches('=').as_bytes())
        .unwrap()
}

/// RFC 6238 TOTP (HMAC-SHA1, 6 digits) at time step `step`, written here independently of the
/// server's implementation.
pub fn totp(seed: &[u8], step: u64) -> String {
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(seed).unwrap();
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[19] & 0x0f);
    let bin =
        u32::from_be_bytes([h[offset], h[offset + 1], h[offset + 2], h[offset + 3]]) & 0x7fff_ffff;
    format!("{:06}", bin % 1_000_000)
}

/// Enrols Michael Benson's ISO card `identity` and locks its online unlock with three wrong
/// answer sets through `/v1/unlock/*`.
pub fn locked_card(env: &Env, identity: &str) -> CardRecord {
    let record = env
        .server
        .enroll(&enrollment("iso", identity, Algorithm::TripleDes))
        .unwrap();
    for _ in 0..3 {
        let session = env.start_session("iso", identity)["session"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, reply) = env.post(
            "/v1/unlock/answers",
            &json!({ "session": session, "answers": WRONG }),
        );
        assert!(status >= 400, "{reply}");
    }
    let (status, reply) = env.post("/v1/unlock/start", &super::card("iso", identity));
    assert_eq!(reply["error"], "locked", "{status} {reply}");
    record
}

/// A reply: status, headers we look at, body.
pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookie: Option<String>,
    pub csp: Option<String>,
    pub content_type: Option<String>,
    pub disposition: Option<String>,
    pub body: String,
}

/// An HTTPS client pinned to the test server that does not follow redirects and sends one
/// cookie (the console session) when it has one.
pub struct Browserless {
    agent: ureq::Agent,
    url: String,
    pub cookie: Option<String>,
}

impl Browserless {
    pub fn new(env: &Env) -> Self {
        let agent = ureq::AgentBuilder::new()
            .tls_config(pinned_client_config(env.server.cert_pem()).unwrap())
            .redirects(0)
            .timeout(Duration::from_secs(60))
            .build();
        Self {
            agent,
            url: env.url.clone(),
            cookie: None,
        }
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let req = self.agent.request(method, &format!("{}{path}", self.url));
        match &self.cookie {
            Some(c) => req.set("Cookie", &format!("__Host-cardunlock={c}")),
            None => req,
        }
    }

    fn reply(result: Result<ureq::Response, ureq::Error>) -> Reply {
        let r = match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        Reply {
            status: r.status(),
            location: r.header("location").map(str::to_owned),
            set_cookie: r.header("set-cookie").map(str::to_owned),
            csp: r.header("content-security-policy").map(str::to_owned),
            content_type: r.header("content-type").map(str::to_owned),
            disposition: r.header("content-disposition").map(str::to_owned),
            body: r.into_string().unwrap(),
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        Self::reply(self.request("GET", path).call())
    }

    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        Self::reply(self.request("POST", path).send_form(fields))
    }

    /// A form posted with extra request headers.
    pub fn post_form_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        fields: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.request("POST", path);
        for (name, value) in headers {
            req = req.set(name, value);
        }
        Self::reply(req.send_form(fields))
    }

    /// Signs `op` in; keeps the session cookie.
    pub fn sign_in(&mut self, op: &Operator) {
        let code = op.code();
        let r = self.post_form(
            "/console/sign-in",
            &[("name", &op.name), ("password", PASSWORD), ("totp", &code)],
        );
        self.sign_in_from(r);
    }

    /// Keeps the session cookie of a successful sign-in reply.
    pub fn sign_in_from(&mut self, r: Reply) {
        assert_eq!(r.status, 303, "{}", r.body);
        let cookie = r.set_cookie.expect("a session cookie");
        for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        let value = cookie
            .strip_prefix("__Host-cardunlock=")
            .and_then(|c| c.split(';').next())
            .unwrap();
        self.cookie = Some(value.to_owned());
    }
}

/// The form token in a page (the first hidden `csrf` field).
pub fn csrf_of(page: &str) -> String {
    let at = page.find(r#"name="csrf" value=""#).expect("a form token");
    let rest = &page[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}
