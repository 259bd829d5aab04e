//! The PostgreSQL connection pool, its transactions (and reads without one), the migration,
//! and [`PgTx`], the statements of one transaction counted as round trips.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, IsolationLevel, NoTls, Statement, Transaction};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{pgpass, tls};
use crate::store::chain::lanes::Current;
use crate::store::tx::Tx;
use crate::store::{redact_url, schema};
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
pub(in crate::store) struct PgDb {
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
    pub(in crate::store) fn open(
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
    #[cfg(test)]
    pub(in crate::store) fn transact<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, ServerError>,
    ) -> Result<R, ServerError> {
        self.transact_in(None, f)
    }

    /// [`PgDb::transact`], appending its audit rows to `lane`'s chain (unchained without).
    pub(in crate::store) fn transact_in<R>(
        &self,
        mut lane: Option<&mut Current>,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, ServerError>,
    ) -> Result<R, ServerError> {
        let mut conflicts = 0;
        let mut stale = 0;
        let mut hold_claims = true;
        loop {
            let mut conn = self
                .pool
                .get()
                .map_err(|e| ServerError::DatabaseUnavailable(e.to_string()))?;
            match run_once(&mut conn, self, (lane.as_deref_mut(), hold_claims), f) {
                // A held claim found its row there: nothing was committed; run again with
                // claims sent at once, so the logic sees the row as taken.
                Attempt::ClaimLost if hold_claims => hold_claims = false,
                Attempt::ClaimLost => {
                    return Err(ServerError::InvalidInput(
                        "a claim sent at once was reported lost".into(),
                    ))
                }
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
    pub(in crate::store) fn read<R>(
        &self,
        mut lane: Option<&mut Current>,
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
                pending: Vec::new(),
                hold_claims: false,
                claim_lost: false,
                lane: lane.as_deref_mut(),
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
    pub(in crate::store) fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }
}

/// How one try of a transaction ended.
enum Attempt<R> {
    /// `BEGIN` failed: nothing was sent after it, nothing happened.
    NotStarted(postgres::Error),
    /// The transaction ran: its result (committed only when `Ok`).
    Ran(Result<R, ServerError>),
    /// A held claim ([`super::defer`]) found its row there: rolled back, whatever `f` returned.
    ClaimLost,
}

fn run_once<R>(
    conn: &mut PgConn,
    db: &PgDb,
    (lane, hold_claims): (Option<&mut Current>, bool),
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
        pending: Vec::new(),
        hold_claims,
        claim_lost: false,
        lane,
    };
    // Writes still held back ([`super::defer`]) are sent before the commit.
    let result = f(&mut pg).and_then(|r| pg.flush().map(|()| r));
    // The commit, or the rollback when the transaction is dropped: one more round trip.
    trips.fetch_add(1, Ordering::Relaxed);
    if pg.claim_lost {
        // Never committed, even if `f` went on after the failed claim.
        return Attempt::ClaimLost;
    }
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
    for step in &schema::postgres()[version as usize..] {
        tx.batch_execute(step)?;
    }
    if version != known {
        tx.execute("UPDATE cardunlock_schema SET version = $1", &[&known])?;
    }
    tx.commit()?;
    Ok(())
}

/// Where a [`PgTx`]'s statements run.
pub(super) enum Conn<'a> {
    /// In one transaction.
    Tx(Transaction<'a>),
    /// Each on its own (autocommit), for reads that need no transaction ([`PgDb::read`]).
    Auto(&'a mut Client),
}

pub(super) struct PgTx<'a> {
    pub(super) tx: Conn<'a>,
    pub(super) statements: &'a mut HashMap<&'static str, Statement>,
    /// The store's round-trip counter.
    pub(super) trips: &'a AtomicU64,
    /// The store's last sweep of expired sessions.
    pub(super) last_sweep_ms: &'a AtomicI64,
    /// Writes held back to go with the next statement ([`super::defer`]).
    pub(super) pending: Vec<super::defer::Deferred>,
    /// Whether claims ([`Tx::claim_mac_row`]) may be held back (not on the run that follows a
    /// lost one).
    pub(super) hold_claims: bool,
    /// A held claim found its row there: the transaction must not commit.
    pub(super) claim_lost: bool,
    /// The chain its audit rows append to ([`crate::store::chain::lanes`]).
    pub(super) lane: Option<&'a mut Current>,
}

impl crate::store::chain::lanes::LaneTx for PgTx<'_> {
    fn lane(&mut self) -> Option<&mut Current> {
        self.lane.as_deref_mut()
    }
}

impl PgTx<'_> {
    pub(super) fn statement(&mut self, sql: &'static str) -> Result<Statement, ServerError> {
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

    /// Sends what is held back, then returns the prepared statement for `sql`, counting the
    /// round trip the caller makes with it.
    fn ready(&mut self, sql: &'static str) -> Result<Statement, ServerError> {
        self.flush()?;
        let s = self.statement(sql)?;
        self.trips.fetch_add(1, Ordering::Relaxed);
        Ok(s)
    }

    pub(super) fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, ServerError> {
        let s = self.ready(sql)?;
        Ok(match &mut self.tx {
            Conn::Tx(tx) => tx.execute(&s, params)?,
            Conn::Auto(client) => client.execute(&s, params)?,
        })
    }

    pub(super) fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, ServerError> {
        let s = self.ready(sql)?;
        Ok(match &mut self.tx {
            Conn::Tx(tx) => tx.query(&s, params)?,
            Conn::Auto(client) => client.query(&s, params)?,
        })
    }

    pub(super) fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<postgres::Row>, ServerError> {
        let s = self.ready(sql)?;
        Ok(match &mut self.tx {
            Conn::Tx(tx) => tx.query_opt(&s, params)?,
            Conn::Auto(client) => client.query_opt(&s, params)?,
        })
    }
}

impl PgTx<'_> {
    /// Deletes expired sessions, at most once per [`SWEEP_EVERY_MS`] per store handle.
    pub(super) fn sweep_expired(&mut self, now: i64) -> Result<(), ServerError> {
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
}
