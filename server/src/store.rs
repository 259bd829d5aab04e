//! The store: cards, their questions (answers as Argon2id hashes only), sessions, used
//! challenges and the audit log. Never the master secret, a key, a PUK or a plain answer.
//!
//! One interface, two backends chosen by the location: a file path is SQLite (the embedded
//! default, [`sqlite`]), a `postgres://` or `postgresql://` URL is PostgreSQL ([`pg`]),
//! which several server instances can share. The unlock logic ([`session`]) is written once
//! against the primitive operations of [`tx::Tx`]; each call runs in one transaction
//! ([`Store::transact`]) in which the endpoint also writes its audit row, so an outcome and its
//! audit row are committed together or not at all. The slow part of a request (Argon2) never
//! runs inside a transaction.

mod cards;
pub(crate) mod chain;
pub(crate) mod joined;
mod mac;
pub(crate) mod ops;
#[cfg(feature = "postgres")]
mod pg;
pub(crate) mod presence;
pub(crate) mod readouts;
pub(crate) mod rules;
mod schema;
pub(crate) mod session;
mod sqlite;
mod stmt;
pub(crate) mod tx;

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cardunlock_core::crypto::Algorithm;
use cardunlock_protocol::AlgorithmName;

use crate::ServerError;

pub use chain::{AuditHead, ChainHead, ChainReport};
pub(crate) use session::{
    AnswerCheck, AnswerOutcome, Blind, ChallengeOutcome, CompleteOutcome, PukOutcome, Session,
    StartOutcome,
};
pub(crate) use tx::Tx;

const MAX_QUESTIONS: usize = 16;
const MAX_TEXT: usize = 512;

/// A card profile: the contract's ([`cardunlock_protocol::Profile`]).
pub(crate) use cardunlock_protocol::Profile;

/// The contract's name of an algorithm: `3des`, `aes128`, `aes192`, `aes256`.
pub(crate) fn algorithm_name(algorithm: Algorithm) -> &'static str {
    AlgorithmName::name_of(algorithm)
}

/// The algorithm of a contract name.
pub(crate) fn parse_algorithm(name: &str) -> Option<Algorithm> {
    name.parse::<AlgorithmName>()
        .ok()
        .map(AlgorithmName::algorithm)
}

/// Checks a card identity that did not come in a parsed message (a URL path, a stored row):
/// 1 to 64 bytes of hex, either case. Returns it in lowercase with its bytes.
pub(crate) fn parse_identity(identity_hex: &str) -> Result<(String, Vec<u8>), ServerError> {
    let identity = identity_hex
        .parse::<cardunlock_protocol::CardIdentity>()
        .map_err(|e| ServerError::InvalidInput(e.to_string()))?;
    Ok((identity.to_hex(), identity.as_bytes().to_vec()))
}

/// Checks a profile name and an identity as the operator functions take them.
pub(crate) fn parse_card(
    profile: &str,
    identity_hex: &str,
) -> Result<(Profile, String), ServerError> {
    let profile = Profile::parse(profile)
        .ok_or_else(|| ServerError::InvalidInput("profile must be piv, gids or iso".into()))?;
    let (identity, _) = parse_identity(identity_hex)?;
    Ok((profile, identity))
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What an operator enrols: the user, the card and the security questions.
///
/// `Debug` shows the questions but never the answers. The caller owns the plain answers: drop
/// (or zeroize) the enrolment soon after [`Store::enroll`].
pub struct Enrollment {
    /// The user's name, shown by the client ("Michael Benson").
    pub name: String,
    /// The user's e-mail address.
    pub email: String,
    /// `piv`, `gids` or `iso`.
    pub profile: String,
    /// The card identity as `cardunlock status` prints it (hex; stored lowercase).
    pub identity_hex: String,
    /// The admin-key algorithm (GIDS / ISO); PIV management keys are 3DES per the contract.
    pub algorithm: Algorithm,
    /// (question, plain answer) pairs in the order the client shows them; the answers are
    /// normalised and hashed on the way in. None at all: online unlock is unavailable.
    pub questions: Vec<(String, String)>,
    /// PIV: the card's Card Authentication public key (9E), an uncompressed P-256 point, as
    /// read from the card; `None` keeps the one on record (a card without one cannot prove
    /// its presence: online unlock answers `card_not_verified`).
    pub card_auth_key: Option<Vec<u8>>,
}

impl fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let questions: Vec<&str> = self.questions.iter().map(|(q, _)| q.as_str()).collect();
        f.debug_struct("Enrollment")
            .field("name", &self.name)
            .field("email", &self.email)
            .field("profile", &self.profile)
            .field("identity_hex", &self.identity_hex)
            .field("algorithm", &self.algorithm)
            .field("questions", &questions)
            .finish_non_exhaustive()
    }
}

/// A card as the store knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardRecord {
    /// `piv`, `gids` or `iso`.
    pub profile: String,
    /// Lowercase hex identity.
    pub identity_hex: String,
    /// The admin-key algorithm (3DES for PIV).
    pub algorithm: Algorithm,
    /// Generation of the admin / management key on the card.
    pub key_gen: u32,
    /// Generation of the PUK the card was last confirmed to hold (PIV).
    pub puk_gen: u32,
    /// Set while a PUK rotation was handed out but not confirmed (`complete` missing, or
    /// `puk_rotated: false`): the card holds the PUK of a generation from `puk_gen` to this one.
    pub pending_puk_gen: Option<u32>,
    /// An admin-key generation handed to an enrollment that was never reported done.
    pub pending_key_gen: Option<u32>,
    /// The current PUK was read out to someone by an operator (cleared by the next rotation).
    pub puk_read_out: bool,
    /// When the card was first enrolled, ms since the Unix epoch.
    pub enrolled_ms: i64,
    /// Online unlock locked after too many wrong answer sets.
    pub locked: bool,
    /// Wrong answer sets since the last success or lift.
    pub failed_attempts: u32,
    /// The user's name.
    pub user_name: String,
    /// The user's e-mail address.
    pub user_email: String,
    /// PIV: the Card Authentication public key (9E) recorded at enrollment, an uncompressed
    /// SEC1 point in hex; `None`: the card cannot prove its presence (enrolled before this was
    /// recorded, or not PIV).
    pub card_auth_key: Option<String>,
    /// Until when (ms since the Unix epoch) answers from sessions without card proof are
    /// refused after wrong ones (0: no back-off).
    pub backoff_until_ms: i64,
    /// ISO admin cards: the name of the workstation ISO profile recorded at enrollment.
    pub iso_profile: Option<String>,
}

/// One audit row: who did what to which card and how it ended. Never secrets or answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The card's profile, when known.
    pub profile: Option<String>,
    /// The card's identity (hex), when known.
    pub identity_hex: Option<String>,
    /// A short reference of the session (a prefix of its token's SHA-256), when any.
    pub session: Option<String>,
    /// What was attempted: `enroll`, `lift_lock`, `start`, `answers`, `lock`, `admin`, `puk`,
    /// `complete`, `refused` (a minute's summary of refused requests, [`crate::Server`]) or
    /// `audit_chain` (rows written before the audit chain, chained).
    pub event: String,
    /// How it ended (`started`, `verified`, `wrong_answers`, `locked`, `answered`,
    /// `challenge_used`, `released`, `unlocked`, `invalid_session`, `bad_request`, ...).
    pub outcome: String,
    /// Free text: counts, generations, kinds; never a secret.
    pub detail: String,
    /// The operator who acted, if an operator did.
    pub operator: Option<String>,
    /// The role that allowed it (wire name).
    pub role: Option<String>,
    /// The client's IP address, when the action came over the network.
    pub address: Option<String>,
}

/// An audit row about to be written.
pub(crate) struct AuditNote<'a> {
    pub card: Option<(Profile, &'a str)>,
    pub session: Option<&'a str>,
    pub event: &'a str,
    pub outcome: &'a str,
    pub detail: &'a str,
    /// The operator who acted.
    pub operator: Option<&'a str>,
    /// The role that allowed the action.
    pub role: Option<cardunlock_protocol::Role>,
    /// The client's address.
    pub address: Option<&'a str>,
}

impl<'a> AuditNote<'a> {
    /// A row the server writes on its own account: no session, operator, role or address.
    pub(crate) fn server(
        card: Option<(Profile, &'a str)>,
        event: &'a str,
        outcome: &'a str,
        detail: &'a str,
    ) -> Self {
        Self {
            card,
            session: None,
            event,
            outcome,
            detail,
            operator: None,
            role: None,
            address: None,
        }
    }
}

/// Where the store lives: a SQLite file or a PostgreSQL database.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite database file (created and migrated on first use).
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL connection URL, `postgres://user[:password]@host[:port]/dbname[?...]`
    /// (the database must exist; its schema is created and migrated on first use).
    Postgres(String),
}

impl Database {
    /// A `postgres://` or `postgresql://` URL is PostgreSQL; anything else is a SQLite path.
    pub fn from_location(location: impl AsRef<Path>) -> Self {
        let location = location.as_ref();
        match location.to_str() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Self::Postgres(url.to_owned())
            }
            _ => Self::Sqlite(location.to_owned()),
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string())
    }
}

/// The path, or the URL with its password hidden.
impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "SQLite {}", path.display()),
            Self::Postgres(url) => write!(f, "PostgreSQL {}", redact_url(url)),
        }
    }
}

enum Backend {
    Sqlite(sqlite::SqliteDb),
    #[cfg(feature = "postgres")]
    Postgres(pg::PgDb),
}

/// The store. Open it once per process and share it (`Arc<Store>`); with PostgreSQL, any
/// number of processes may open the same database.
pub struct Store {
    backend: Backend,
    /// The audit chain's key, once [`Store::set_audit_key`] gave it.
    audit_key: std::sync::OnceLock<chain::AuditKey>,
    /// The row-MAC key, given with the audit key ([`mac`]).
    row_key: std::sync::OnceLock<mac::RowKey>,
    /// The audit chains this handle writes.
    lanes: chain::lanes::Lanes,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend_name())
            .finish_non_exhaustive()
    }
}

/// Connections a PostgreSQL store pools: the server's bound on concurrent requests
/// (`2 × cores`, at least 4) plus two for operator calls.
#[cfg(feature = "postgres")]
fn default_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    u32::try_from((2 * cores).max(4) + 2).unwrap_or(16)
}

impl Store {
    /// Opens (creating if needed) and migrates the store at `location`: a SQLite file path, or a
    /// `postgres://` URL ([`Database::from_location`]). Fails with
    /// [`ServerError::SchemaVersion`] on a schema newer than this code, and with
    /// [`ServerError::DatabaseUnavailable`] when PostgreSQL cannot be reached.
    pub fn open(location: impl AsRef<Path>) -> Result<Self, ServerError> {
        Self::open_database(&Database::from_location(location))
    }

    /// [`Store::open`] with the PostgreSQL password given apart from the URL (from a file, never
    /// the command line). Without one, a PostgreSQL URL without a password takes it from the
    /// file `$PGPASSFILE` names (else `~/.pgpass`), in libpq's format, when one matches.
    pub fn open_with_password(
        location: impl AsRef<Path>,
        password: Option<&cardunlock_protocol::Secret>,
    ) -> Result<Self, ServerError> {
        Self::open_database_with(&Database::from_location(location), password)
    }

    /// Opens (creating if needed) and migrates `database`.
    pub fn open_database(database: &Database) -> Result<Self, ServerError> {
        Self::open_database_with(database, None)
    }

    /// [`Store::open_database`] with the PostgreSQL password given apart
    /// ([`Store::open_with_password`]).
    pub fn open_database_with(
        database: &Database,
        password: Option<&cardunlock_protocol::Secret>,
    ) -> Result<Self, ServerError> {
        Self::open_with_ca(database, password, None)
    }

    /// Opens (creating if needed) and migrates `database`, the PostgreSQL password given apart
    /// or not ([`Store::open_with_password`]); a PostgreSQL database over TLS when `db_ca_file`
    /// is given: the server's certificate must chain to a CA in that PEM file and name the
    /// URL's host (`sslmode=verify-full` semantics, no plain-text fallback). `db_ca_file` with
    /// a SQLite file is refused.
    pub fn open_with_ca(
        database: &Database,
        password: Option<&cardunlock_protocol::Secret>,
        db_ca_file: Option<&Path>,
    ) -> Result<Self, ServerError> {
        #[cfg(not(feature = "postgres"))]
        let _ = password;
        if db_ca_file.is_some() && matches!(database, Database::Sqlite(_)) {
            return Err(ServerError::InvalidInput(
                "a database CA file is for a PostgreSQL URL, not a SQLite file".into(),
            ));
        }
        let backend = match database {
            Database::Sqlite(path) => Backend::Sqlite(sqlite::SqliteDb::open(path)?),
            #[cfg(feature = "postgres")]
            Database::Postgres(url) => Backend::Postgres(pg::PgDb::open(
                url,
                password,
                default_pool_size(),
                db_ca_file,
            )?),
            #[cfg(not(feature = "postgres"))]
            Database::Postgres(_) => {
                return Err(ServerError::InvalidInput(
                    "this server was built without PostgreSQL (cargo feature `postgres`)".into(),
                ))
            }
        };
        Ok(Self {
            backend,
            audit_key: std::sync::OnceLock::new(),
            row_key: std::sync::OnceLock::new(),
            lanes: chain::lanes::Lanes::new(),
        })
    }

    /// `"sqlite"` or `"postgresql"`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => "postgresql",
        }
    }

    /// Statements this store has sent to its database so far: with PostgreSQL each is a network
    /// round trip (`BEGIN`, a statement's first `PREPARE` on a pooled connection, each
    /// statement, `COMMIT` or `ROLLBACK`); with SQLite each statement the connection ran,
    /// `BEGIN` and `COMMIT` included. Read it before and after some calls to count theirs.
    pub fn round_trips(&self) -> u64 {
        match &self.backend {
            Backend::Sqlite(db) => db.round_trips(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(db) => db.round_trips(),
        }
    }

    /// Runs `f` in one transaction: committed if it returns `Ok`, rolled back if not. `f` may
    /// run more than once (PostgreSQL retries a deadlocked transaction): no side effects
    /// outside `tx`.
    pub(crate) fn transact<R>(
        &self,
        f: impl FnMut(&mut dyn Tx) -> Result<R, ServerError>,
    ) -> Result<R, ServerError> {
        self.call(false, f)
    }

    /// Runs `f`, which only reads, without a transaction where the backend allows it
    /// (PostgreSQL: no `BEGIN`/`COMMIT` round trips; SQLite: one transaction as
    /// [`Store::transact`]). Each of its statements must be consistent on its own: what
    /// is cross-checked is read in one statement.
    pub(crate) fn read<R>(
        &self,
        f: impl FnMut(&mut dyn Tx) -> Result<R, ServerError>,
    ) -> Result<R, ServerError> {
        self.call(true, f)
    }

    fn call<R>(
        &self,
        read_only: bool,
        mut f: impl FnMut(&mut dyn Tx) -> Result<R, ServerError>,
    ) -> Result<R, ServerError> {
        let started = std::time::Instant::now();
        let mut scope = chain::lanes::Scope::enter(self.audit_key.get(), &self.lanes);
        let row_key = self.row_key.get();
        let mut attempt = |tx: &mut dyn Tx| {
            if let Some(lane) = tx.lane() {
                lane.attempt();
            }
            match row_key {
                Some(key) => f(&mut mac::guard::MacTx::new(tx, key)),
                None => f(tx),
            }
        };
        let result = self.run(read_only, scope.current(), &mut attempt);
        if result.is_ok() {
            scope.committed();
        }
        drop(scope);
        if let Err(ServerError::Tampered(why)) = &result {
            self.alert(why);
        }
        crate::metrics::METRICS.store_round_trip(started.elapsed());
        result
    }

    /// Runs `f` in a transaction of the backend (a read without one where it can), which
    /// appends its audit rows to `lane`'s chain.
    fn run<R>(
        &self,
        read_only: bool,
        lane: Option<&mut chain::lanes::Current>,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, ServerError>,
    ) -> Result<R, ServerError> {
        #[cfg(not(feature = "postgres"))]
        let _ = read_only;
        match &self.backend {
            Backend::Sqlite(db) => db.transact_in(lane, f),
            #[cfg(feature = "postgres")]
            Backend::Postgres(db) if read_only => db.read(lane, f),
            #[cfg(feature = "postgres")]
            Backend::Postgres(db) => db.transact_in(lane, f),
        }
    }

    /// Raises the alarm about a store that was written outside the server: an error in the
    /// log and an alert ([`crate::alerts::raise`]: an `integrity` audit row at alert level, the
    /// alert counter and the webhook) in a transaction of its own (the refused one was rolled
    /// back).
    fn alert(&self, why: &str) {
        log::error!("ALERT store integrity: {why}; the request was refused");
        let note = AuditNote::server(None, "integrity", "tampered", why);
        if let Err(e) = self.transact(|tx| crate::alerts::raise(tx, &note)) {
            log::error!("ALERT store integrity: the alert's audit row failed: {e}");
        }
    }

    /// The card's record, or `None` if it is not enrolled.
    pub fn card(
        &self,
        profile: &str,
        identity_hex: &str,
    ) -> Result<Option<CardRecord>, ServerError> {
        let (profile, identity) = parse_card(profile, identity_hex)?;
        self.read(|tx| tx.read_card((profile, &identity)))
    }

    /// The whole audit log, oldest first.
    pub fn audit(&self) -> Result<Vec<AuditEntry>, ServerError> {
        self.transact(|tx| tx.audit_log())
    }

    /// Writes one audit row on its own (for refusals that change nothing).
    pub(crate) fn record(&self, note: &AuditNote<'_>) -> Result<(), ServerError> {
        self.transact(|tx| tx.insert_audit(note, now_ms()))
    }

    /// The session, if it is live.
    pub(crate) fn session(
        &self,
        token_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<Session>, ServerError> {
        self.read(|tx| tx.live_session(token_hash, now))
    }

    /// The live session with its card and the card's questions, read ahead of `answers`'
    /// transaction ([`joined::answer_view`]: one statement on PostgreSQL, every row's MAC
    /// checked).
    pub(crate) fn answer_view(
        &self,
        token_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<joined::AnswerView>, ServerError> {
        self.read(|tx| joined::answer_view(tx, token_hash, now))
    }
}

/// A Card Authentication public key as the store keeps it: an uncompressed P-256 point in
/// lowercase hex, checked to be on the curve.
pub(crate) fn card_auth_key_hex(key: &[u8]) -> Result<String, ServerError> {
    let bad =
        || ServerError::InvalidInput("card_auth_key is not an uncompressed P-256 point".into());
    let key = cardunlock_protocol::CardAuthKey::new(key).map_err(|_| bad())?;
    if key.as_bytes().first() != Some(&0x04) {
        return Err(bad());
    }
    p256::ecdsa::VerifyingKey::from_sec1_bytes(key.as_bytes()).map_err(|_| bad())?;
    Ok(key.to_hex())
}

/// The URL without its password, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".into();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

fn check_text(what: &str, text: &str, may_be_empty: bool) -> Result<(), ServerError> {
    if text.len() > MAX_TEXT || (!may_be_empty && text.trim().is_empty()) {
        return Err(ServerError::InvalidInput(format!(
            "{what} must be {} to {MAX_TEXT} bytes",
            u8::from(!may_be_empty)
        )));
    }
    Ok(())
}
