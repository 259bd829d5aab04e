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
//!   state directory) serving the five `POST /v1/unlock/*` endpoints. [`Server::start`] is async;
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

pub mod answers;
mod api;
mod error;
mod http;
pub mod kdf;
mod secret;
mod server;
mod store;
mod tls;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub use answers::{normalise_answer, Argon2Params};
pub use error::ServerError;
pub use secret::MasterSecret;
pub use server::{run_blocking, RunningServer, Server, ServerHandle};
pub use store::{AuditEntry, CardRecord, Database, Enrollment, Store};
pub use tls::{pinned_client_config, CERT_FILE, KEY_FILE};

/// Everything a server needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the store lives: a SQLite database file, or a `postgres://user@host/dbname` URL
    /// ([`Database::from_location`]). Created (SQLite) and migrated on first use.
    pub db_path: PathBuf,
    /// The master secret the card secrets are derived from. Never written to the database.
    pub master: MasterSecret,
    /// Where to listen; port 0 picks a free port (see [`RunningServer::addr`]).
    pub bind: SocketAddr,
    /// Holds `server.crt` and `server.key`, made on the first start and reused after.
    pub state_dir: PathBuf,
    /// Wrong answer sets before a card's online unlock is locked (an operator lifts it).
    pub max_attempts: u32,
    /// How long a session lives after `start`.
    pub session_ttl: Duration,
    /// Argon2id cost of *new* answer hashes (enrolment); verification uses each hash's own.
    pub argon2: Argon2Params,
}

impl Config {
    /// Default attempts before the lock (API.md).
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
    /// Default session lifetime (API.md): 300 s.
    pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(300);

    /// A configuration with the contract's defaults: listen on `127.0.0.1:0`, 3 attempts,
    /// 300 s sessions, Argon2id m = 19456 KiB, t = 2, p = 1.
    pub fn new(
        db_path: impl Into<PathBuf>,
        state_dir: impl Into<PathBuf>,
        master: MasterSecret,
    ) -> Self {
        Self {
            db_path: db_path.into(),
            master,
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            state_dir: state_dir.into(),
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            session_ttl: Self::DEFAULT_SESSION_TTL,
            argon2: Argon2Params::default(),
        }
    }
}
