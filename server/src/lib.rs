//! # cardunlock-server
//!
//! The management server of online unlock (`server/API.md` is the contract): it holds every card
//! secret, the workstation never does.
//!
//! - [`kdf`]: per-card admin keys, PIV management keys and PUKs, diversified with HKDF-SHA256 from
//!   a [`MasterSecret`] that never reaches the database.
//! - [`answers`]: security-question answers, normalised ([`normalise_answer`]) and stored only
//!   as Argon2id PHC strings.
//! - [`Store`]: cards, questions, sessions (tokens stored hashed), one-time challenges, the
//!   attempt counter and lock, PUK generations, and the audit log; in SQLite (WAL, the embedded
//!   default) or PostgreSQL (several server instances sharing one store), chosen by
//!   [`Database::from_location`].
//! - [`Server`]: HTTPS (rustls with the *ring* provider, a self-signed certificate kept in the
//!   state directory) serving the five `POST /v1/unlock/*` endpoints, the operator API
//!   (`/v1/operator/*`) and its OpenAPI document. [`Server::start`] is async;
//!   [`Server::spawn`] runs it on its own runtime thread for synchronous callers; [`run_blocking`]
//!   serves until Ctrl-C (`cardunlock serve`).
//! - [`pinned_client_config`]: the rustls client configuration that trusts exactly the server's
//!   certificate, for the `cardunlock unlock` client.
//!
//! Secrets (master secret, keys, PUKs, answers, session tokens) never appear in `Debug`, errors,
//! logs or the audit log.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod alerts;
pub mod answers;
mod api;
pub mod audit_archive;
pub mod audit_export;
mod console;
pub mod environ;
mod error;
mod files;
mod http;
pub mod kdf;
mod limiter;
pub mod metrics;
pub mod operator;
pub mod proxy;
mod refusals;
mod reply_body;
mod secret;
mod server;
mod store;
mod tls;
pub mod totp;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub use answers::{hash_password, normalise_answer, verify_password, Argon2Params};
pub use cardunlock_protocol as protocol;
pub use error::{ServerError, TlsError};
pub use files::read_secret_file;
pub use operator::{Actor, OpError};
pub use proxy::TrustedProxies;
pub use secret::MasterSecret;
pub use server::{run_blocking, RunningServer, Server, ServerHandle};
pub use store::{
    AuditEntry, AuditHead, CardRecord, ChainHead, ChainReport, Database, Enrollment, Store,
};
pub use tls::{pinned_client_config, TlsFiles, CERT_FILE, KEY_FILE};

/// Everything a server needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the store lives: a SQLite database file, or a `postgres://user@host/dbname` URL
    /// ([`Database::from_location`]). Created (SQLite) and migrated on first use.
    pub db_path: PathBuf,
    /// PEM file of the CA(s) that issue the PostgreSQL server's certificate: the store is then
    /// reached over TLS only, the certificate checked against these CAs and the URL's host name
    /// (`sslmode=verify-full` semantics). `None`: no TLS (a database on the same host or a
    /// trusted network only).
    pub db_ca_file: Option<PathBuf>,
    /// The PostgreSQL password, given apart from the URL (`--db-password-file`): never on the
    /// command line. `None`: the URL's, else the password file's ([`Store::open_with_password`]).
    pub db_password: Option<protocol::Secret>,
    /// The master secret the card secrets are derived from. Never written to the database.
    pub master: MasterSecret,
    /// Where to listen; port 0 picks a free port (see [`RunningServer::addr`]).
    pub bind: SocketAddr,
    /// Holds `server.crt` and `server.key`, made on the first start and reused after (unless
    /// [`Config::tls_files`] is set).
    pub state_dir: PathBuf,
    /// The server's certificate and key from these files instead of the state directory's
    /// (several instances with one identity, or a certificate issued by a private CA).
    pub tls_files: Option<TlsFiles>,
    /// Wrong answer sets before a card's online unlock is locked (an operator lifts it), from
    /// sessions whose card proved its presence (PIV).
    pub max_attempts: u32,
    /// Wrong answer sets from sessions whose card could not prove its presence (GIDS, ISO)
    /// before the lock; each one first starts a back-off ([`Config::backoff_base`]).
    pub blind_max_attempts: u32,
    /// The back-off after the first wrong answer set without card proof; it doubles with
    /// each further one.
    pub backoff_base: Duration,
    /// How long a session lives after `start`.
    pub session_ttl: Duration,
    /// Argon2id cost of *new* answer hashes (enrolment); verification uses each hash's own.
    pub argon2: Argon2Params,
    /// What one client may hold and ask for ([`Limits::default`]).
    pub limits: Limits,
    /// Operator sessions, sign-in throttles and daily caps ([`OperatorPolicy::default`]).
    pub operators: OperatorPolicy,
    /// Load balancers whose PROXY protocol header and `X-Forwarded-For` name the client
    /// ([`proxy`]); none by default (the peer is the client).
    pub trusted_proxies: TrustedProxies,
    /// Where to serve Prometheus metrics (plain HTTP, `GET /metrics`; [`metrics`]); none by
    /// default. Port 0 picks a free port ([`RunningServer::metrics_addr`]).
    pub metrics_bind: Option<SocketAddr>,
    /// Where alerts are posted ([`alerts`]); none by default.
    pub alert_webhook: Option<alerts::AlertWebhook>,
    /// A file the chains' heads are appended to every minute and on shutdown (JSON lines, as
    /// `audit export` writes heads), to keep them off the database host; none by default.
    pub audit_heads_file: Option<PathBuf>,
}

/// How operators are held in check (SECURITY.md, "Operators").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OperatorPolicy {
    /// An operator session ends after this long without a call.
    pub idle_timeout: Duration,
    /// An operator session ends this long after sign-in, whatever happens.
    pub session_lifetime: Duration,
    /// Failed sign-ins of one operator name before it is locked out.
    pub failures_per_operator: u32,
    /// Failed sign-ins from one client address before it is locked out.
    pub failures_per_address: u32,
    /// The first lock-out; each further failure doubles it, up to an hour. Failures older than
    /// an hour are forgotten.
    pub lockout: Duration,
    /// Offline responses one operator may get per UTC day.
    pub daily_offline_responses: u32,
    /// PIV PUK read-outs one operator may get per UTC day.
    pub daily_puk_readouts: u32,
    /// Enrollments one enroller may begin per hour.
    pub enrollments_per_hour: u32,
    /// Four eyes on PIV PUK read-outs: a read-out is a request that another `helpdesk`
    /// operator approves before its requester collects the PUK (off by default).
    pub four_eyes_puk_readout: bool,
    /// How long a four-eyes read-out request stays open for approval and collection.
    pub puk_readout_window: Duration,
}

impl Default for OperatorPolicy {
    /// 15 min idle, 8 h in all; 5 failures per operator and 10 per address, then 30 s
    /// doubling; 20 offline responses and 20 PUK read-outs a day; 120 enrollments an hour;
    /// no four eyes on read-outs (a request would stay open 15 min).
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(15 * 60),
            session_lifetime: Duration::from_secs(8 * 3600),
            failures_per_operator: 5,
            failures_per_address: 10,
            lockout: Duration::from_secs(30),
            daily_offline_responses: 20,
            daily_puk_readouts: 20,
            enrollments_per_hour: 120,
            four_eyes_puk_readout: false,
            puk_readout_window: Duration::from_secs(15 * 60),
        }
    }
}

/// A token bucket: `burst` requests at once, refilled at `per_minute`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed at once.
    pub burst: u32,
    /// Requests allowed per minute, sustained.
    pub per_minute: u32,
}

impl Rate {
    /// `burst` at once, `per_minute` sustained.
    pub const fn new(burst: u32, per_minute: u32) -> Self {
        Self { burst, per_minute }
    }

    /// No limit.
    pub const UNLIMITED: Self = Self::new(u32::MAX, u32::MAX);
}

/// Defences against slow, idle and flooding clients (SECURITY.md, API.md "Limits").
///
/// Per-address limits are kept in each server's memory: several instances behind a load
/// balancer each enforce their own. Per-card limits (`start_per_card`, `answers_per_card`,
/// `admin_answers_per_card_per_day`) are kept in the store: instances sharing a database share
/// one budget per card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open connections in all (also bounded by the process's open-file limit). When full, the
    /// oldest connection still in its TLS handshake is closed for the new one.
    pub max_connections: usize,
    /// Open connections from one IP address; more are closed on accept.
    pub max_connections_per_address: usize,
    /// Time a client has to finish its TLS handshake.
    pub handshake_timeout: Duration,
    /// Time a client has to send a request's headers (also how long an idle kept-alive
    /// connection lives) and, separately, its body.
    pub request_timeout: Duration,
    /// Every request (unlock, operator API, console, unknown paths) per client IP address,
    /// checked before any other work; 429 with `Retry-After` beyond.
    pub requests_per_address: Rate,
    /// `start` per client IP address.
    pub start_per_address: Rate,
    /// `start` per card.
    pub start_per_card: Rate,
    /// `answers` per client IP address.
    pub answers_per_address: Rate,
    /// `answers` per card.
    pub answers_per_card: Rate,
    /// PIV PUK tries a card is assumed to have when `/puk` is asked (SP 800-73 cards and
    /// YubiKeys ship with 3); a client may report fewer.
    pub piv_puk_tries: u32,
    /// Admin answers (an ISO `encrypt`, a GIDS host cryptogram) one card may get from
    /// workstations per UTC day; beyond, `cap_reached` until the next day (audited as an alert).
    pub admin_answers_per_card_per_day: u32,
}

impl Default for Limits {
    /// 4096 connections, 64 per address, a 5 s handshake deadline, 10 s per request;
    /// any request: 300 at once then 1200/min per address;
    /// `start`: 30 at once then 60/min per address, 5 at once then 10/min per card;
    /// `answers`: 30 at once then 60/min per address, 5 at once then 6/min per card;
    /// 3 PUK tries; 3 admin answers per card and day.
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_address: 64,
            handshake_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            requests_per_address: Rate::new(300, 1200),
            start_per_address: Rate::new(30, 60),
            start_per_card: Rate::new(5, 10),
            answers_per_address: Rate::new(30, 60),
            answers_per_card: Rate::new(5, 6),
            piv_puk_tries: 3,
            admin_answers_per_card_per_day: 3,
        }
    }
}

impl Limits {
    /// No rate limits and no daily cap of admin answers (connection limits and timeouts as by
    /// default): load tests, demos.
    pub fn without_rate_limits() -> Self {
        Self {
            requests_per_address: Rate::UNLIMITED,
            start_per_address: Rate::UNLIMITED,
            start_per_card: Rate::UNLIMITED,
            answers_per_address: Rate::UNLIMITED,
            answers_per_card: Rate::UNLIMITED,
            admin_answers_per_card_per_day: u32::MAX,
            ..Self::default()
        }
    }
}

impl Config {
    /// Default attempts before the lock (API.md).
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
    /// Default wrong answer sets without card proof before the lock.
    pub const DEFAULT_BLIND_MAX_ATTEMPTS: u32 = 10;
    /// Default first back-off after a wrong answer set without card proof: 60 s (then 120 s,
    /// 240 s, ...: the lock at 10 comes after about 8.5 hours).
    pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_secs(60);
    /// Default session lifetime (API.md): 300 s.
    pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(300);

    /// A configuration with the contract's defaults: listen on `127.0.0.1:0`, 3 attempts,
    /// 300 s sessions, Argon2id m = 19456 KiB, t = 2, p = 1, [`Limits::default`].
    pub fn new(
        db_path: impl Into<PathBuf>,
        state_dir: impl Into<PathBuf>,
        master: MasterSecret,
    ) -> Self {
        Self {
            db_path: db_path.into(),
            db_ca_file: None,
            db_password: None,
            master,
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            state_dir: state_dir.into(),
            tls_files: None,
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            blind_max_attempts: Self::DEFAULT_BLIND_MAX_ATTEMPTS,
            backoff_base: Self::DEFAULT_BACKOFF_BASE,
            session_ttl: Self::DEFAULT_SESSION_TTL,
            argon2: Argon2Params::default(),
            limits: Limits::default(),
            operators: OperatorPolicy::default(),
            trusted_proxies: TrustedProxies::default(),
            metrics_bind: None,
            alert_webhook: None,
            audit_heads_file: None,
        }
    }
}
