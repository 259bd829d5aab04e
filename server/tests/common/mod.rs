//! Shared test helpers: a server in a temporary directory, an HTTPS client (ureq 2 with the
//! pinned rustls configuration), enrolment and the first steps of a session; and the two
//! backends: every test written inside [`backend_tests!`] runs once on SQLite and once on
//! PostgreSQL (a fresh database per test on the server `CARDUNLOCK_TEST_POSTGRES` names).
#![allow(dead_code, unused_macros, unused_imports)]

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::{
    pinned_client_config, Argon2Params, Config, Enrollment, Limits, MasterSecret, Server,
    ServerHandle,
};
use serde_json::{json, Value};

pub mod operators;

/// Cheap Argon2 for tests that do not measure it.
pub const FAST: Argon2Params = Argon2Params::TEST_ONLY_FAST;

pub const MASTER_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

pub fn master() -> MasterSecret {
    MasterSecret::from_hex(MASTER_HEX).unwrap()
}

/// The backend a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the PostgreSQL variants use: an admin URL
/// (`postgres://postgres@127.0.0.1:PORT/postgres`, what `scripts/start-postgres.sh` prints).
pub const PG_ENV: &str = "CARDUNLOCK_TEST_POSTGRES";

thread_local! {
    static BACKEND: Cell<Backend> = const { Cell::new(Backend::Sqlite) };
    static CREATED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The backend of the running test.
pub fn backend() -> Backend {
    BACKEND.with(Cell::get)
}

/// The admin URL of the test PostgreSQL server. Without one, a PostgreSQL variant says loudly
/// that it did not run (outside the test harness's capture) and passes, except under CI
/// (`CI=true`), where it fails: CI must test both backends.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var(PG_ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "CI=true but {PG_ENV} is not set: the PostgreSQL tests must run in CI \
                 (export {PG_ENV}=\"$(bash scripts/start-postgres.sh)\")"
            );
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! {PG_ENV} is not set: the PostgreSQL variant of `{}` did NOT run. \
                 Run `export {PG_ENV}=\"$(bash scripts/start-postgres.sh)\"` (or bash scripts/test.sh). !!!",
                std::thread::current().name().unwrap_or("?")
            );
            None
        }
    }
}

/// Drops the PostgreSQL databases the test made, even when it failed.
struct DropDatabases;

impl Drop for DropDatabases {
    fn drop(&mut self) {
        let names: Vec<String> = CREATED.with(|c| c.borrow_mut().drain(..).collect());
        if names.is_empty() {
            return;
        }
        let Some(admin) = std::env::var(PG_ENV).ok() else {
            return;
        };
        if let Ok(mut client) = postgres::Client::connect(admin.trim(), postgres::NoTls) {
            for name in names {
                let _ =
                    client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// Runs a test body on `backend` (what [`backend_tests!`] expands to).
pub fn run_on(backend: Backend, test: impl FnOnce()) {
    if backend == Backend::Postgres && postgres_admin_url().is_none() {
        return;
    }
    BACKEND.with(|b| b.set(backend));
    let _cleanup = DropDatabases;
    test();
}

/// `url` with its database name replaced by `name` (query kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{name}{query}", &base[..authority_end])
}

/// A new, empty PostgreSQL database on the test server (dropped when the test ends); its URL.
pub fn new_postgres_database() -> String {
    let admin = postgres_admin_url().expect("PostgreSQL variant without a server");
    let name = format!(
        "cu_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    CREATED.with(|c| c.borrow_mut().push(name.clone()));
    with_database(&admin, &name)
}

/// A fresh store location for the running test's backend: a SQLite file in `dir`, or a new
/// PostgreSQL database.
pub fn db_location(dir: &Path) -> PathBuf {
    match backend() {
        Backend::Sqlite => dir.join("cardunlock.db"),
        Backend::Postgres => PathBuf::from(new_postgres_database()),
    }
}

/// Runs one query returning text rows straight on the store's database (SQLite or
/// PostgreSQL), bypassing the server: what an operator with database access would see.
pub fn query_texts(location: &Path, sql: &str) -> Vec<String> {
    let text = location.to_str().unwrap();
    if text.starts_with("postgres://") {
        let mut client = postgres::Client::connect(text, postgres::NoTls).unwrap();
        client
            .query(sql, &[])
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect()
    } else {
        let db = rusqlite::Connection::open(location).unwrap();
        let mut stmt = db.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }
}

/// Every stored row of every table as text, for "no secret stored" checks.
pub fn dump_database(location: &Path) -> String {
    let text = location.to_str().unwrap();
    if text.starts_with("postgres://") {
        let mut out = String::new();
        for table in [
            "cards",
            "questions",
            "sessions",
            "used_challenges",
            "puk_denied",
            "audit",
        ] {
            for row in query_texts(location, &format!("SELECT t::text FROM {table} t")) {
                out.push_str(&row);
                out.push('\n');
            }
        }
        out
    } else {
        String::from_utf8_lossy(&std::fs::read(location).unwrap()).into_owned()
    }
}

/// Two or more server instances on one store, as a load balancer would see them.
pub fn instances(config: &Config, n: usize) -> Vec<Env> {
    (0..n).map(|_| Env::start(config)).collect()
}

/// Writes each test once per backend: `mod on_sqlite` and `mod on_postgres`.
macro_rules! backend_tests {
    ($($(#[$meta:meta])* fn $name:ident() $body:block)*) => {
        mod on_sqlite {
            use super::*;
            $(
                $(#[$meta])*
                #[test]
                fn $name() {
                    common::run_on(common::Backend::Sqlite, || $body)
                }
            )*
        }
        mod on_postgres {
            use super::*;
            $(
                $(#[$meta])*
                #[test]
                fn $name() {
                    common::run_on(common::Backend::Postgres, || $body)
                }
            )*
        }
    };
}
pub(crate) use backend_tests;

/// A configuration in `dir` (certificate and key; the SQLite file too) with fast Argon2, on a
/// fresh store of the running test's backend.
pub fn config(dir: &Path) -> Config {
    let mut c = Config::new(db_location(dir), dir.join("state"), master());
    c.argon2 = FAST;
    // Functional tests send bursts from one address; tests/flood.rs checks the rate limits.
    c.limits = Limits::without_rate_limits();
    // GIDS / ISO sessions cannot prove their card: here they lock as proven ones do, without
    // back-off (tests/presence.rs checks the back-off).
    c.blind_max_attempts = c.max_attempts;
    c.backoff_base = Duration::ZERO;
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

    /// `start` for a card, asserting 200; returns the whole reply. A PIV card then proves
    /// its presence with [`CARD_KEY`] (asserting 200), and the reply carries the questions
    /// and attempts left of `prove`.
    pub fn start_session(&self, profile: &str, identity: &str) -> Value {
        let (status, mut reply) = self.post("/v1/unlock/start", &card(profile, identity));
        assert_eq!(status, 200, "{reply}");
        if profile == "piv" {
            let (status, proof) = self.prove(&reply, &CARD_KEY);
            assert_eq!(status, 200, "{proof}");
            reply["questions"] = proof["questions"].clone();
            reply["attempts_left"] = proof["attempts_left"].clone();
        }
        reply
    }

    /// `start` for a card, asserting 200, without the proof.
    pub fn start_raw(&self, profile: &str, identity: &str) -> Value {
        let (status, reply) = self.post("/v1/unlock/start", &card(profile, identity));
        assert_eq!(status, 200, "{reply}");
        reply
    }

    /// `prove` for a PIV `start` reply, signed with `key`.
    pub fn prove(&self, start: &Value, key: &[u8; 32]) -> (u16, Value) {
        let session = start["session"].as_str().unwrap();
        let signature = sign_nonce_with(key, session, start["nonce"].as_str().unwrap());
        self.post(
            "/v1/unlock/prove",
            &json!({ "session": session, "signature": signature }),
        )
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
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["verified"], true, "{reply}");
        assert_eq!(reply["user"]["name"], "Michael Benson", "{reply}");
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
        card_auth_key: (profile == "piv").then(card_auth_public),
    }
}

/// The Card Authentication private key (9E) of every PIV card these tests enroll.
pub const CARD_KEY: [u8; 32] = [0x11; 32];

/// [`CARD_KEY`]'s public key, an uncompressed SEC1 point.
pub fn card_auth_public() -> Vec<u8> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let key = p256::SecretKey::from_bytes(&CARD_KEY.into()).unwrap();
    key.public_key().to_encoded_point(false).as_bytes().to_vec()
}

/// What a PIV card holding `key` answers to the session's nonce: the DER signature, hex.
pub fn sign_nonce_with(key: &[u8; 32], session: &str, nonce: &str) -> String {
    use cardunlock_protocol::presence::{digest, token_hash};
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    let hash = token_hash(&cardunlock_protocol::SessionToken::new(session)).unwrap();
    let nonce = nonce
        .parse::<cardunlock_protocol::Nonce>()
        .unwrap()
        .to_array();
    let signing = p256::ecdsa::SigningKey::from_bytes(&(*key).into()).unwrap();
    let signature: p256::ecdsa::Signature = signing.sign_prehash(&digest(&hash, &nonce)).unwrap();
    hex::encode(signature.to_der().as_bytes())
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
