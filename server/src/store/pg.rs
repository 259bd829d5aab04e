//! The PostgreSQL backend, for several server instances sharing one store.
//!
//! Client: the synchronous `postgres` crate. The endpoints are synchronous functions that the
//! HTTP layer already runs on tokio's blocking threads (Argon2 and SQLite are synchronous too),
//! so a blocking client fits without making the store async; at most `2 × cores` requests run
//! at once, and the pool ([`r2d2`]) holds about that many connections. Each pooled connection
//! keeps its own prepared statements, so a statement costs one round trip after its first use.
//!
//! Isolation: every transaction runs at READ COMMITTED and takes row locks: the session row
//! (`SELECT ... FOR UPDATE`), then the card row (`FOR UPDATE`), before reading what it changes.
//! A concurrent transaction on the same card waits for the lock and then reads the committed
//! row, so no update is lost (the wrong-answer counter counts every attempt exactly once, the
//! lock is set at exactly N, a PUK is released once per session, generations only move as the
//! logic says). One-answer-per-challenge is the `used_challenges` primary key with
//! `INSERT ... ON CONFLICT DO NOTHING`: of two racing inserts, one inserts and the other waits
//! for it, then inserts nothing. A deadlock or serialization failure (not expected with this
//! lock order) is retried a few times.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, IsolationLevel, NoTls, Statement, Transaction};
use tokio_postgres_rustls::MakeRustlsConnect;

mod audit;
mod mac;
mod ops;
mod pgpass;
mod readouts;
mod rules;
mod tls;

use super::chain::{self, AuditHead, ChainRow};
use super::mac::{MacRow, Table, Val};
use super::redact_url;
use super::sqlite::CardRow;
use super::tx::{CardKey, Counted, Tx};
use super::{schema, AuditEntry, AuditNote, CardRecord, Profile, Session};
use crate::ServerError;

/// How long a request waits for a pooled connection (and a new connection for its handshake)
/// before it fails with "database unavailable".
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often (at most) a store handle deletes expired sessions.
const SWEEP_EVERY_MS: i64 = 30_000;
/// Tries of a transaction that hit a deadlock or a serialization failure.
const TRIES: u32 = 5;
/// Key of the advisory lock that serializes migrations of concurrently starting instances.
const MIGRATION_LOCK: i64 = 0x6361_7264_756e_6c6b; // "cardunlk"

/// A pooled connection with its prepared statements.
pub(super) struct PgConn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

/// Opens connections for the pool.
struct Manager {
    config: postgres::Config,
    /// TLS verified against the `--db-ca-file` CA, or plain (no CA file given).
    tls: Option<MakeRustlsConnect>,
}

impl Manager {
    fn connect_with(
        config: &postgres::Config,
        tls: Option<&MakeRustlsConnect>,
    ) -> Result<Client, postgres::Error> {
        match tls {
            Some(tls) => config.connect(tls.clone()),
            None => config.connect(NoTls),
        }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        Ok(PgConn {
            client: Self::connect_with(&self.config, self.tls.as_ref())?,
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        // Not called on checkout (that would cost a round trip per transaction): a dropped
        // connection is caught at `BEGIN` instead ([`PgDb::transact`]).
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client.is_closed()
    }
}

/// Logs pool errors without the URL (it may carry a password).
#[derive(Debug)]
struct PoolErrors;

impl r2d2::HandleError<postgres::Error> for PoolErrors {
    fn handle_error(&self, error: postgres::Error) {
        log::warn!("database connection: {}", with_causes(&error));
    }
}

/// A pool of connections to one PostgreSQL database.
pub(super) struct PgDb {
    pool: r2d2::Pool<Manager>,
    /// Statements sent to the database by [`PgDb::transact`] (each a round trip: `BEGIN`,
    /// a statement's first `PREPARE` on a connection, every statement, `COMMIT`/`ROLLBACK`).
    round_trips: AtomicU64,
    /// When this handle last deleted expired sessions (ms since the Unix epoch).
    last_sweep_ms: AtomicI64,
}

/// Whether an error means the database cannot be reached (down, restarting, connection lost),
/// rather than that it refused a statement.
fn is_unavailable(e: &postgres::Error) -> bool {
    match e.code() {
        None => true,
        Some(code) => [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::CONNECTION_FAILURE,
            SqlState::CONNECTION_EXCEPTION,
            SqlState::TOO_MANY_CONNECTIONS,
        ]
        .contains(code),
    }
}

/// The error with its causes ("error connecting to server: Connection refused (os error 111)").
fn with_causes(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

impl From<postgres::Error> for ServerError {
    fn from(e: postgres::Error) -> Self {
        if is_unavailable(&e) {
            ServerError::DatabaseUnavailable(with_causes(&e))
        } else {
            ServerError::Postgres(e)
        }
    }
}

impl PgDb {
    /// Connects (once, to check the database is there and migrate it), then makes the pool;
    /// over TLS verified against `ca_file` when one is given ([`tls::config`]).
    pub(super) fn open(
        url: &str,
        password: Option<&cardunlock_protocol::Secret>,
        pool_size: u32,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self, ServerError> {
        let mut config = postgres::Config::from_str(url).map_err(|e| {
            ServerError::InvalidInput(format!("database URL {}: {e}", redact_url(url)))
        })?;
        match password {
            Some(p) => {
                config.password(p.expose());
            }
            None if config.get_password().is_none() => {
                if let Some(p) = pgpass::lookup(&config)? {
                    config.password(p.as_bytes());
                }
            }
            None => {}
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("cardunlock-server");
        let tls = ca_file.map(|f| tls::config(&mut config, f)).transpose()?;
        let mut client = Manager::connect_with(&config, tls.as_ref()).map_err(|e| {
            ServerError::DatabaseUnavailable(format!(
                "cannot connect to {}: {}",
                redact_url(url),
                with_causes(&e)
            ))
        })?;
        migrate(&mut client)?;
        drop(client);
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            .min_idle(Some(0))
            .connection_timeout(CONNECT_TIMEOUT)
            .test_on_check_out(false)
            .error_handler(Box::new(PoolErrors))
            .build_unchecked(Manager { config, tls });
        Ok(Self {
            pool,
            round_trips: AtomicU64::new(0),
            last_sweep_ms: AtomicI64::new(0),
        })
    }

    /// Runs `f` in one READ COMMITTED transaction (committed on `Ok`, rolled back on `Err`),
    /// retried on a deadlock or serialization failure. A pooled connection the server dropped
    /// (PostgreSQL restarted) fails at `BEGIN`, before anything ran: it is discarded and the
    /// transaction starts again on another, so pooled connections need no check round trip.
    pub(super) fn transact<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, ServerError>,
    ) -> Result<R, ServerError> {
        let mut conflicts = 0;
        let mut stale = 0;
        loop {
            let mut conn = self
                .pool
                .get()
                .map_err(|e| ServerError::DatabaseUnavailable(e.to_string()))?;
            match run_once(&mut conn, self, f) {
                Attempt::NotStarted(e) if stale <= self.pool.max_size() => {
                    stale += 1;
                    log::warn!("database connection lost ({e}); trying another");
                }
                Attempt::NotStarted(e) => return Err(e.into()),
                Attempt::Ran(Err(ServerError::Postgres(e)))
                    if conflicts + 1 < TRIES
                        && [
                            SqlState::T_R_DEADLOCK_DETECTED,
                            SqlState::T_R_SERIALIZATION_FAILURE,
                        ]
                        .iter()
                        .any(|c| e.code() == Some(c)) =>
                {
                    conflicts += 1;
                    log::warn!("database: {e}; retrying the transaction");
                }
                Attempt::Ran(result) => return result,
            }
        }
    }

    /// Runs `f`, which only reads, without a transaction: each statement commits on its own,
    /// so no `BEGIN` and no `COMMIT` round trip. For reads whose each statement is consistent
    /// on its own (a row with what is checked against it, in one statement): a writing
    /// transaction reads again under its row locks. A pooled connection the server dropped is
    /// discarded and `f` runs again on another (`f` may run more than once).
    pub(super) fn read<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, ServerError>,
    ) -> Result<R, ServerError> {
        let mut stale = 0;
        loop {
            let mut conn = self
                .pool
                .get()
                .map_err(|e| ServerError::DatabaseUnavailable(e.to_string()))?;
            let PgConn { client, statements } = &mut *conn;
            let mut pg = PgTx {
                tx: Conn::Auto(client),
                statements,
                trips: &self.round_trips,
                last_sweep_ms: &self.last_sweep_ms,
            };
            let result = f(&mut pg);
            drop(pg);
            match result {
                Err(ServerError::DatabaseUnavailable(e))
                    if conn.client.is_closed() && stale <= self.pool.max_size() =>
                {
                    stale += 1;
                    log::warn!("database connection lost ({e}); trying another");
                }
                result => return result,
            }
        }
    }

    /// Round trips to the database so far, by every transaction of this store.
    pub(super) fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }
}

/// How one try of a transaction ended.
enum Attempt<R> {
    /// `BEGIN` failed: nothing was sent after it, nothing happened.
    NotStarted(postgres::Error),
    /// The transaction ran: its result (committed only when `Ok`).
    Ran(Result<R, ServerError>),
}

fn run_once<R>(
    conn: &mut PgConn,
    db: &PgDb,
    f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, ServerError>,
) -> Attempt<R> {
    let PgConn { client, statements } = conn;
    let trips = &db.round_trips;
    trips.fetch_add(1, Ordering::Relaxed);
    let tx = match client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
    {
        Ok(tx) => tx,
        Err(e) => return Attempt::NotStarted(e),
    };
    let mut pg = PgTx {
        tx: Conn::Tx(tx),
        statements,
        trips,
        last_sweep_ms: &db.last_sweep_ms,
    };
    let result = f(&mut pg);
    // The commit, or the rollback when the transaction is dropped: one more round trip.
    trips.fetch_add(1, Ordering::Relaxed);
    Attempt::Ran(result.and_then(|result| {
        if let Conn::Tx(tx) = pg.tx {
            tx.commit()?;
        }
        Ok(result)
    }))
}

/// Creates or upgrades the schema in one transaction, under an advisory lock so instances
/// starting together migrate once; refuses a newer database.
fn migrate(client: &mut Client) -> Result<(), ServerError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    // Created only when missing: a server role without CREATE on the schema (the audit role
    // split, scripts/postgres-audit-roles.sql) opens a migrated database.
    let exists: bool = tx
        .query_one("SELECT to_regclass('cardunlock_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        tx.batch_execute("CREATE TABLE cardunlock_schema (version BIGINT NOT NULL)")?;
    }
    let version: Option<i64> = tx
        .query_opt("SELECT version FROM cardunlock_schema", &[])?
        .map(|r| r.get(0));
    let known = schema::version();
    let version = match version {
        Some(v) => v,
        None => {
            tx.execute("INSERT INTO cardunlock_schema (version) VALUES (0)", &[])?;
            0
        }
    };
    if version > known || version < 0 {
        return Err(ServerError::SchemaVersion(version));
    }
    for step in &schema::POSTGRES[version as usize..] {
        tx.batch_execute(step)?;
    }
    if version != known {
        tx.execute("UPDATE cardunlock_schema SET version = $1", &[&known])?;
    }
    tx.commit()?;
    Ok(())
}

/// Where a [`PgTx`]'s statements run.
enum Conn<'a> {
    /// In one transaction.
    Tx(Transaction<'a>),
    /// Each on its own (autocommit), for reads that need no transaction ([`PgDb::read`]).
    Auto(&'a mut Client),
}

struct PgTx<'a> {
    tx: Conn<'a>,
    statements: &'a mut HashMap<&'static str, Statement>,
    /// The store's round-trip counter.
    trips: &'a AtomicU64,
    /// The store's last sweep of expired sessions.
    last_sweep_ms: &'a AtomicI64,
}

impl PgTx<'_> {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, ServerError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        self.trips.fetch_add(1, Ordering::Relaxed);
        let s = match &mut self.tx {
            Conn::Tx(tx) => tx.prepare(sql)?,
            Conn::Auto(client) => client.prepare(sql)?,
        };
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, ServerError> {
        let s = self.statement(sql)?;
        self.trips.fetch_add(1, Ordering::Relaxed);
        Ok(match &mut self.tx {
            Conn::Tx(tx) => tx.execute(&s, params)?,
            Conn::Auto(client) => client.execute(&s, params)?,
        })
    }

    fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, ServerError> {
        let s = self.statement(sql)?;
        self.trips.fetch_add(1, Ordering::Relaxed);
        Ok(match &mut self.tx {
            Conn::Tx(tx) => tx.query(&s, params)?,
            Conn::Auto(client) => client.query(&s, params)?,
        })
    }

    fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<postgres::Row>, ServerError> {
        let s = self.statement(sql)?;
        self.trips.fetch_add(1, Ordering::Relaxed);
        Ok(match &mut self.tx {
            Conn::Tx(tx) => tx.query_opt(&s, params)?,
            Conn::Auto(client) => client.query_opt(&s, params)?,
        })
    }
}

/// A stored generation or count (BIGINT) as the `u32` the logic uses.
fn small(v: i64) -> Result<u32, ServerError> {
    u32::try_from(v)
        .map_err(|_| ServerError::InvalidInput(format!("stored value {v} out of range")))
}

impl Tx for PgTx<'_> {
    fn read_card(
        &mut self,
        (profile, identity): CardKey<'_>,
    ) -> Result<Option<CardRecord>, ServerError> {
        let row = self.query_opt(
            "SELECT algorithm, key_gen, puk_gen, pending_puk_gen, locked, failed_attempts,
                    user_name, user_email, pending_key_gen, puk_read_out, enrolled_ms,
                    card_auth_key, backoff_until_ms
             FROM cards WHERE profile = $1 AND identity = $2 FOR UPDATE",
            &[&profile.as_str(), &identity],
        )?;
        let Some(r) = row else {
            return Ok(None);
        };
        card_row(&r)?.into_record(profile, identity).map(Some)
    }

    fn insert_card(
        &mut self,
        (profile, identity): CardKey<'_>,
        algorithm: &str,
        name: &str,
        email: &str,
        now: i64,
    ) -> Result<bool, ServerError> {
        let n = self.execute(
            "INSERT INTO cards (profile, identity, algorithm, user_name, user_email, enrolled_ms)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[
                &profile.as_str(),
                &identity,
                &algorithm,
                &name,
                &email,
                &now,
            ],
        )?;
        Ok(n == 1)
    }

    fn update_card_user(
        &mut self,
        (profile, identity): CardKey<'_>,
        algorithm: &str,
        name: &str,
        email: &str,
    ) -> Result<(), ServerError> {
        self.execute(
            "UPDATE cards SET algorithm = $3, user_name = $4, user_email = $5
             WHERE profile = $1 AND identity = $2",
            &[&profile.as_str(), &identity, &algorithm, &name, &email],
        )?;
        Ok(())
    }

    fn set_attempts(
        &mut self,
        (profile, identity): CardKey<'_>,
        failed: u32,
        locked: bool,
    ) -> Result<(), ServerError> {
        self.execute(
            "UPDATE cards SET failed_attempts = $3, locked = $4,
                 backoff_until_ms = CASE WHEN $5 THEN 0 ELSE backoff_until_ms END
             WHERE profile = $1 AND identity = $2",
            &[
                &profile.as_str(),
                &identity,
                &i64::from(failed),
                &locked,
                &(failed == 0 && !locked),
            ],
        )?;
        Ok(())
    }

    fn set_puk_gens(
        &mut self,
        (profile, identity): CardKey<'_>,
        puk_gen: u32,
        pending: Option<u32>,
    ) -> Result<(), ServerError> {
        self.execute(
            "UPDATE cards SET puk_gen = $3, pending_puk_gen = $4,
                 puk_read_out = CASE WHEN puk_gen = $3 THEN puk_read_out ELSE FALSE END
             WHERE profile = $1 AND identity = $2",
            &[
                &profile.as_str(),
                &identity,
                &i64::from(puk_gen),
                &pending.map(i64::from),
            ],
        )?;
        Ok(())
    }

    fn delete_questions(&mut self, (profile, identity): CardKey<'_>) -> Result<(), ServerError> {
        self.execute(
            "DELETE FROM questions WHERE profile = $1 AND identity = $2",
            &[&profile.as_str(), &identity],
        )?;
        Ok(())
    }

    fn insert_question(
        &mut self,
        (profile, identity): CardKey<'_>,
        position: u32,
        question: &str,
        answer_hash: &str,
    ) -> Result<(), ServerError> {
        self.execute(
            "INSERT INTO questions (profile, identity, position, question, answer_hash)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &profile.as_str(),
                &identity,
                &i64::from(position),
                &question,
                &answer_hash,
            ],
        )?;
        Ok(())
    }

    fn questions(
        &mut self,
        (profile, identity): CardKey<'_>,
    ) -> Result<Vec<(String, String)>, ServerError> {
        let rows = self.query(
            "SELECT question, answer_hash FROM questions WHERE profile = $1 AND identity = $2
             ORDER BY position",
            &[&profile.as_str(), &identity],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn puk_denied(&mut self, (profile, identity): CardKey<'_>) -> Result<Vec<u32>, ServerError> {
        let rows = self.query(
            "SELECT gen FROM puk_denied WHERE profile = $1 AND identity = $2",
            &[&profile.as_str(), &identity],
        )?;
        rows.iter().map(|r| small(r.get(0))).collect()
    }

    fn deny_puk(
        &mut self,
        (profile, identity): CardKey<'_>,
        generation: u32,
    ) -> Result<(), ServerError> {
        self.execute(
            "INSERT INTO puk_denied (profile, identity, gen) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&profile.as_str(), &identity, &i64::from(generation)],
        )?;
        Ok(())
    }

    fn clear_denied_upto(
        &mut self,
        (profile, identity): CardKey<'_>,
        generation: u32,
    ) -> Result<(), ServerError> {
        self.execute(
            "DELETE FROM puk_denied WHERE profile = $1 AND identity = $2 AND gen <= $3",
            &[&profile.as_str(), &identity, &i64::from(generation)],
        )?;
        Ok(())
    }

    fn delete_expired_sessions(&mut self, now: i64) -> Result<(), ServerError> {
        // Housekeeping, not a rule (an expired session is refused by its expiry): at most
        // once per SWEEP_EVERY_MS per store handle, not a round trip on every `start`.
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        if (last..last.saturating_add(SWEEP_EVERY_MS)).contains(&now) {
            return Ok(());
        }
        self.last_sweep_ms.store(now, Ordering::Relaxed);
        // SKIP LOCKED: never wait for (or deadlock with) a transaction holding such a row.
        self.execute(
            "DELETE FROM sessions WHERE token_hash IN
                 (SELECT token_hash FROM sessions WHERE expires_ms <= $1 FOR UPDATE SKIP LOCKED)",
            &[&now],
        )?;
        Ok(())
    }

    fn insert_session(
        &mut self,
        token_hash: &[u8; 32],
        (profile, identity): CardKey<'_>,
        now: i64,
        expires: i64,
    ) -> Result<(), ServerError> {
        self.execute(
            "INSERT INTO sessions (token_hash, profile, identity, created_ms, expires_ms)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &&token_hash[..],
                &profile.as_str(),
                &identity,
                &now,
                &expires,
            ],
        )?;
        Ok(())
    }

    fn live_session(
        &mut self,
        token_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<Session>, ServerError> {
        let row = self.query_opt(
            "SELECT profile, identity, verified, puk_next_gen, admin_answers, gids_randoms,
                    nonce, proven
             FROM sessions WHERE token_hash = $1 AND NOT closed AND expires_ms > $2 FOR UPDATE",
            &[&&token_hash[..], &now],
        )?;
        let Some(r) = row else {
            return Ok(None);
        };
        let Some(profile) = Profile::parse(r.get(0)) else {
            return Ok(None);
        };
        Ok(Some(Session {
            profile,
            identity: r.get(1),
            verified: r.get(2),
            puk_next_gen: r.get::<_, Option<i64>>(3).map(small).transpose()?,
            admin_answers: small(r.get(4))?,
            gids_randoms: r.get(5),
            nonce: r.get(6),
            proven: r.get(7),
        }))
    }

    fn set_session_nonce(&mut self, token_hash: &[u8; 32], nonce: &str) -> Result<(), ServerError> {
        self.execute(
            "UPDATE sessions SET nonce = $2 WHERE token_hash = $1",
            &[&&token_hash[..], &nonce],
        )?;
        Ok(())
    }

    fn set_session_proven(&mut self, token_hash: &[u8; 32]) -> Result<(), ServerError> {
        self.execute(
            "UPDATE sessions SET proven = TRUE WHERE token_hash = $1",
            &[&&token_hash[..]],
        )?;
        Ok(())
    }

    fn set_card_auth_key(
        &mut self,
        (profile, identity): CardKey<'_>,
        key: Option<&str>,
    ) -> Result<(), ServerError> {
        self.execute(
            "UPDATE cards SET card_auth_key = $3 WHERE profile = $1 AND identity = $2",
            &[&profile.as_str(), &identity, &key],
        )?;
        Ok(())
    }

    fn set_backoff(
        &mut self,
        (profile, identity): CardKey<'_>,
        backoff_until_ms: i64,
    ) -> Result<(), ServerError> {
        self.execute(
            "UPDATE cards SET backoff_until_ms = $3 WHERE profile = $1 AND identity = $2",
            &[&profile.as_str(), &identity, &backoff_until_ms],
        )?;
        Ok(())
    }

    fn set_session_verified(&mut self, token_hash: &[u8; 32]) -> Result<(), ServerError> {
        self.execute(
            "UPDATE sessions SET verified = TRUE WHERE token_hash = $1",
            &[&&token_hash[..]],
        )?;
        Ok(())
    }

    fn set_session_puk_next(
        &mut self,
        token_hash: &[u8; 32],
        generation: u32,
    ) -> Result<(), ServerError> {
        self.execute(
            "UPDATE sessions SET puk_next_gen = $2 WHERE token_hash = $1",
            &[&&token_hash[..], &i64::from(generation)],
        )?;
        Ok(())
    }

    fn set_session_gids(
        &mut self,
        token_hash: &[u8; 32],
        randoms: Option<&str>,
    ) -> Result<(), ServerError> {
        self.execute(
            "UPDATE sessions SET gids_randoms = $2 WHERE token_hash = $1",
            &[&&token_hash[..], &randoms],
        )?;
        Ok(())
    }

    fn close_card_sessions(&mut self, (profile, identity): CardKey<'_>) -> Result<(), ServerError> {
        self.execute(
            "UPDATE sessions SET closed = TRUE WHERE profile = $1 AND identity = $2 AND NOT closed",
            &[&profile.as_str(), &identity],
        )?;
        Ok(())
    }

    fn count_admin_answer(&mut self, token_hash: &[u8; 32]) -> Result<(), ServerError> {
        self.execute(
            "UPDATE sessions SET admin_answers = admin_answers + 1 WHERE token_hash = $1",
            &[&&token_hash[..]],
        )?;
        Ok(())
    }

    fn close_session(&mut self, token_hash: &[u8; 32]) -> Result<(), ServerError> {
        self.execute(
            "UPDATE sessions SET closed = TRUE WHERE token_hash = $1",
            &[&&token_hash[..]],
        )?;
        Ok(())
    }

    fn use_challenge(
        &mut self,
        (profile, identity): CardKey<'_>,
        kind: &str,
        value: &str,
        now: i64,
    ) -> Result<bool, ServerError> {
        let n = self.execute(
            "INSERT INTO used_challenges (profile, identity, kind, value, used_ms)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[&profile.as_str(), &identity, &kind, &value, &now],
        )?;
        Ok(n == 1)
    }

    fn insert_audit(&mut self, note: &AuditNote<'_>, now: i64) -> Result<(), ServerError> {
        chain::append(self, note, now)
    }

    fn insert_audit_row(
        &mut self,
        note: &AuditNote<'_>,
        now: i64,
        link: Option<crate::store::chain::Link<'_>>,
    ) -> Result<(), ServerError> {
        self.insert_row(note, now, link)
    }

    fn audit_head(&mut self) -> Result<Option<AuditHead>, ServerError> {
        self.head()
    }

    fn set_audit_head(&mut self, head: &AuditHead) -> Result<(), ServerError> {
        self.write_head(head)
    }

    fn lane_heads(&mut self) -> Result<Vec<(String, AuditHead)>, ServerError> {
        self.lane_heads()
    }

    fn audit_starts(&mut self) -> Result<Vec<(Option<String>, AuditHead)>, ServerError> {
        self.starts()
    }

    fn set_audit_start(
        &mut self,
        chain: Option<&str>,
        head: &AuditHead,
    ) -> Result<(), ServerError> {
        self.set_start(chain, head)
    }

    fn delete_audit_rows(&mut self, ids: &[i64]) -> Result<(), ServerError> {
        self.delete_rows(ids)
    }

    fn audit_chain_rows(&mut self, unchained_only: bool) -> Result<Vec<ChainRow>, ServerError> {
        self.chain_rows(unchained_only)
    }

    fn set_audit_row_chain(
        &mut self,
        id: i64,
        seq: i64,
        mac: &[u8; 32],
    ) -> Result<(), ServerError> {
        self.set_row_chain(id, seq, mac)
    }

    fn audit_log(&mut self) -> Result<Vec<AuditEntry>, ServerError> {
        let rows = self.query(
            "SELECT time_ms, profile, identity, session, event, outcome, detail,
                    operator, role, address
             FROM audit ORDER BY id",
            &[],
        )?;
        Ok(rows.iter().map(audit_row).collect())
    }

    fn card_audit_counts(&mut self, card: CardKey<'_>) -> Result<(u32, u32), ServerError> {
        self.card_audit_counts_pg(card)
    }

    fn card_mac_row_counted(&mut self, card: CardKey<'_>) -> Result<Counted<MacRow>, ServerError> {
        self.card_mac_row_counted_pg(card)
    }

    fn last_card_audit_detail(
        &mut self,
        (profile, identity): CardKey<'_>,
        event: &str,
        outcome: &str,
    ) -> Result<Option<String>, ServerError> {
        self.last_card_audit_detail_pg((profile, identity), event, outcome)
    }

    fn mac_rows(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        self.mac_rows_pg(table, filter, false)
    }

    fn mac_rows_locked(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        self.mac_rows_pg(table, filter, true)
    }

    fn delete_mac_rows(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        self.delete_mac_rows_pg(table, filter)
    }

    fn insert_mac_row(
        &mut self,
        table: &'static Table,
        values: &[Val],
        mac: &[u8; 32],
        or_nothing: bool,
    ) -> Result<u64, ServerError> {
        self.insert_mac_row_pg(table, values, mac, or_nothing)
    }

    fn update_mac_row(
        &mut self,
        table: &'static Table,
        key: &[Val],
        sets: &[(&'static str, Val)],
        mac: &[u8; 32],
        old_mac: &[u8],
    ) -> Result<u64, ServerError> {
        self.update_mac_row_pg(table, key, sets, mac, old_mac)
    }

    fn set_row_mac(
        &mut self,
        table: &'static Table,
        key: &[Val],
        mac: &[u8; 32],
    ) -> Result<(), ServerError> {
        self.set_row_mac_pg(table, key, mac)
    }

    fn row_mac_state(&mut self) -> Result<(bool, bool), ServerError> {
        self.row_mac_state_pg()
    }

    fn set_row_mac_done(&mut self) -> Result<(), ServerError> {
        self.set_row_mac_done_pg()
    }
}

/// A `cards` row from the columns `algorithm, key_gen, puk_gen, pending_puk_gen, locked,
/// failed_attempts, user_name, user_email, pending_key_gen, puk_read_out, enrolled_ms`.
fn card_row(r: &postgres::Row) -> Result<CardRow, ServerError> {
    Ok(CardRow {
        algorithm: r.get(0),
        key_gen: small(r.get(1))?,
        puk_gen: small(r.get(2))?,
        pending_puk_gen: r.get::<_, Option<i64>>(3).map(small).transpose()?,
        locked: r.get(4),
        failed_attempts: small(r.get(5))?,
        user_name: r.get(6),
        user_email: r.get(7),
        pending_key_gen: r.get::<_, Option<i64>>(8).map(small).transpose()?,
        puk_read_out: r.get(9),
        enrolled_ms: r.get(10),
        card_auth_key: r.get(11),
        backoff_until_ms: r.get(12),
    })
}

/// An audit row from the columns `time_ms, profile, identity, session, event, outcome, detail,
/// operator, role, address`.
pub(super) fn audit_row(r: &postgres::Row) -> AuditEntry {
    AuditEntry {
        time_ms: r.get(0),
        profile: r.get(1),
        identity_hex: r.get(2),
        session: r.get(3),
        event: r.get(4),
        outcome: r.get(5),
        detail: r.get(6),
        operator: r.get(7),
        role: r.get(8),
        address: r.get(9),
    }
}
