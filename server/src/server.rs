//! Starting and stopping the server: async ([`Server::start`]), on its own runtime thread for
//! synchronous callers ([`Server::spawn`]), or in the foreground until Ctrl-C ([`run_blocking`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::api::{AppState, Rates};
use crate::http::{accept_loop, Shared};
use crate::refusals::Refusals;
use crate::store::duration_ms;
use crate::tls::{Identity, CERT_FILE};
use crate::{Argon2Params, CardRecord, Config, Enrollment, ServerError, Store};

/// Starts servers.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Opens the store, loads (or makes) the certificate, binds and starts serving on the current
    /// tokio runtime (multi-threaded). Returns once the socket listens.
    pub async fn start(config: Config) -> Result<RunningServer, ServerError> {
        if config.max_attempts == 0 {
            return Err(ServerError::InvalidInput(
                "max_attempts must be at least 1".into(),
            ));
        }
        if config.blind_max_attempts < config.max_attempts {
            return Err(ServerError::InvalidInput(
                "blind_max_attempts must be at least max_attempts".into(),
            ));
        }
        if config.session_ttl.is_zero() {
            return Err(ServerError::InvalidInput(
                "session_ttl must not be zero".into(),
            ));
        }
        config.argon2.check()?;
        let limits = &config.limits;
        if limits.max_connections == 0
            || limits.max_connections_per_address == 0
            || limits.handshake_timeout.is_zero()
            || limits.request_timeout.is_zero()
            || limits.piv_puk_tries == 0
        {
            return Err(ServerError::InvalidInput(
                "limits: connections, timeouts and PUK tries must not be zero".into(),
            ));
        }
        let ops = &config.operators;
        if ops.idle_timeout.is_zero()
            || ops.session_lifetime.is_zero()
            || ops.failures_per_operator == 0
            || ops.failures_per_address == 0
        {
            return Err(ServerError::InvalidInput(
                "operators: session limits and failure counts must not be zero".into(),
            ));
        }
        // Opening may connect to PostgreSQL with a blocking client: not on a runtime thread.
        let db_path = config.db_path.clone();
        let db_password = config.db_password.clone();
        let db_ca_file = config.db_ca_file.clone();
        let master = config.master.clone();
        let store = tokio::task::spawn_blocking(move || {
            let store = Store::open_with_ca(
                &crate::Database::from_location(&db_path),
                db_password.as_ref(),
                db_ca_file.as_deref(),
            )?;
            let chained = store.set_audit_key(&master)?;
            if chained > 0 {
                log::info!("audit: {chained} existing rows chained");
            }
            Ok::<_, ServerError>(store)
        })
        .await
        .map_err(|e| ServerError::Runtime(e.to_string()))??;
        if let Some(hook) = config.alert_webhook.clone() {
            store.set_alert_sink(crate::alerts::start_webhook(hook)?);
        }
        let store = Arc::new(store);
        let identity = Identity::load(&config.state_dir, config.tls_files.as_ref())?;
        let acceptor = TlsAcceptor::from(identity.server_config()?);
        let listener = listen(config.bind)?;
        let addr = listener.local_addr()?;
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let refusals = Arc::new(Refusals::default());
        let shared = Arc::new(Shared {
            refusals: refusals.clone(),
            app: AppState {
                store: store.clone(),
                master: config.master,
                max_attempts: config.max_attempts,
                blind: crate::api::Blind {
                    max_attempts: config.blind_max_attempts,
                    backoff_base_ms: duration_ms(config.backoff_base),
                },
                session_ttl_ms: duration_ms(config.session_ttl),
                puk_tries: config.limits.piv_puk_tries,
                admin_answers_per_day: config.limits.admin_answers_per_card_per_day,
                rates: Rates::new(&config.limits),
                argon2: config.argon2,
                operators: config.operators,
            },
            work: Semaphore::new((2 * workers).max(4)),
            limits: config.limits,
            trusted: config.trusted_proxies,
        });
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(summarise_refusals(
            refusals.clone(),
            store.clone(),
            config.audit_heads_file.clone(),
            stop_rx.clone(),
        ));
        let metrics_addr = match config.metrics_bind {
            Some(bind) => {
                let metrics = TcpListener::bind(bind).await?;
                let bound = metrics.local_addr()?;
                tokio::spawn(crate::metrics::serve(metrics, stop_rx.clone()));
                log::info!("metrics on http://{bound}/metrics");
                Some(bound)
            }
            None => None,
        };
        let task = tokio::spawn(accept_loop(listener, acceptor, shared, stop_rx));
        log::info!(
            "cardunlock server listening on {addr} ({} store)",
            store.backend_name()
        );
        Ok(RunningServer {
            heads_file: config.audit_heads_file,
            addr,
            metrics_addr,
            cert_pem: identity.cert_pem,
            cert_path: config
                .tls_files
                .as_ref()
                .map_or_else(|| config.state_dir.join(CERT_FILE), |f| f.cert.clone()),
            store,
            argon2: config.argon2,
            refusals,
            stop,
            task,
        })
    }

    /// [`Server::start`] on a runtime of its own, on a background thread: for synchronous
    /// callers (the CLI, the demo). The server stops on [`ServerHandle::shutdown`] or drop.
    pub fn spawn(config: Config) -> Result<ServerHandle, ServerError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("cardunlock-server".into())
            .spawn(move || {
                let runtime = match runtime() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match Server::start(config).await {
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                        Ok(running) => {
                            let info = Info::of(&running);
                            let _ = ready_tx.send(Ok(info));
                            let _ = stop_rx.await;
                            running.shutdown().await;
                        }
                    }
                });
            })?;
        match ready_rx.recv() {
            Ok(Ok(info)) => Ok(ServerHandle {
                info,
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(ServerError::Runtime(
                    "the server thread ended before starting".into(),
                ))
            }
        }
    }
}

/// How often the refused requests are summarised into the audit.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Writes the refusal summary every [`SUMMARY_EVERY`] until the server stops (the last one is
/// written by [`RunningServer::shutdown`]).
async fn summarise_refusals(
    refusals: Arc<Refusals>,
    store: Arc<Store>,
    heads_file: Option<PathBuf>,
    mut stop: watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(SUMMARY_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => {
                if let Err(e) = flush_refusals(refusals.clone(), store.clone()).await {
                    log::error!("refusal summary: {e}");
                }
                // The heads, for a later `audit verify --head` to find a truncated tail.
                for head in store.audit_heads() {
                    log::info!("audit head {}", head.to_text());
                }
                write_heads(&store, heads_file.as_deref());
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow_and_update() {
                    return;
                }
            }
        }
    }
}

/// Appends the store's chain heads to `file`, if one is set (errors are logged).
fn write_heads(store: &Store, file: Option<&Path>) {
    if let Some(path) = file {
        if let Err(e) = crate::audit_export::append_heads(&store.audit_heads(), path) {
            log::error!("audit heads file {}: {e}", path.display());
        }
    }
}

/// One refusal summary, on a blocking thread (the store is synchronous).
async fn flush_refusals(refusals: Arc<Refusals>, store: Arc<Store>) -> Result<usize, ServerError> {
    tokio::task::spawn_blocking(move || refusals.flush(&store))
        .await
        .map_err(|e| ServerError::Runtime(e.to_string()))?
}

/// Accept-queue length: a burst of connections waits in the kernel instead of being dropped
/// (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: u32 = 4096;

/// A listening socket with a long accept queue (tokio's default is 1024).
fn listen(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket.listen(BACKLOG)?)
}

fn runtime() -> Result<tokio::runtime::Runtime, ServerError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("cardunlock-server-rt")
        .enable_all()
        .build()
        .map_err(|e| ServerError::Runtime(e.to_string()))
}

/// The URL clients use: the bound address, with a wildcard address replaced by loopback.
fn url_of(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("https://{}", SocketAddr::new(ip, addr.port()))
}

/// What a running server tells its callers.
#[derive(Clone, Debug)]
struct Info {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    cert_pem: String,
    cert_path: PathBuf,
    store: Arc<Store>,
    argon2: Argon2Params,
    refusals: Arc<Refusals>,
}

impl Info {
    fn of(s: &RunningServer) -> Self {
        Self {
            addr: s.addr,
            metrics_addr: s.metrics_addr,
            cert_pem: s.cert_pem.clone(),
            cert_path: s.cert_path.clone(),
            store: s.store.clone(),
            argon2: s.argon2,
            refusals: s.refusals.clone(),
        }
    }
}

/// A server serving on a tokio runtime. Dropping it stops the server too (without waiting).
#[derive(Debug)]
pub struct RunningServer {
    heads_file: Option<PathBuf>,
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    cert_pem: String,
    cert_path: PathBuf,
    store: Arc<Store>,
    argon2: Argon2Params,
    refusals: Arc<Refusals>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// The address it listens on (the real port when the configuration said 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT` (a wildcard bind address is shown as loopback).
    pub fn url(&self) -> String {
        url_of(self.addr)
    }

    /// Where the metrics are served, if [`crate::Config::metrics_bind`] asked for them.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The certificate (PEM) clients pin, with [`crate::pinned_client_config`].
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Where that certificate is stored (`state_dir/server.crt`).
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The store it serves from (enrol cards, lift locks, read the audit log).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Enrols a card with the configuration's Argon2 parameters ([`Store::enroll`]).
    pub fn enroll(&self, enrollment: &Enrollment) -> Result<CardRecord, ServerError> {
        self.store.enroll(enrollment, &self.argon2)
    }

    /// Writes the summary of the requests refused since the last one now (as the server does
    /// every minute and on shutdown); returns how many audit rows it wrote.
    pub async fn flush_refusals(&self) -> Result<usize, ServerError> {
        flush_refusals(self.refusals.clone(), self.store.clone()).await
    }

    /// Stops accepting, lets open requests finish (up to 5 s), writes the summary of the
    /// refused requests and returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        if let Err(e) = flush_refusals(self.refusals, self.store.clone()).await {
            log::error!("refusal summary: {e}");
        }
        write_heads(&self.store, self.heads_file.as_deref());
    }
}

/// A server on its own runtime thread, usable from synchronous code ([`Server::spawn`]).
/// Dropping it shuts the server down and waits for the thread.
#[derive(Debug)]
pub struct ServerHandle {
    info: Info,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.info.addr
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        url_of(self.info.addr)
    }

    /// Where the metrics are served, if asked for.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.info.metrics_addr
    }

    /// The certificate (PEM) clients pin.
    pub fn cert_pem(&self) -> &str {
        &self.info.cert_pem
    }

    /// Where that certificate is stored.
    pub fn cert_path(&self) -> &Path {
        &self.info.cert_path
    }

    /// The store it serves from.
    pub fn store(&self) -> &Arc<Store> {
        &self.info.store
    }

    /// Enrols a card with the configuration's Argon2 parameters ([`Store::enroll`]).
    pub fn enroll(&self, enrollment: &Enrollment) -> Result<CardRecord, ServerError> {
        self.info.store.enroll(enrollment, &self.info.argon2)
    }

    /// Writes the summary of the requests refused since the last one now (as the server does
    /// every minute and on shutdown); returns how many audit rows it wrote.
    pub fn flush_refusals(&self) -> Result<usize, ServerError> {
        self.info.refusals.flush(&self.info.store)
    }

    /// Stops the server and waits for its thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// `cardunlock serve`: starts the server on a new runtime, prints its URL and certificate path,
/// and serves until Ctrl-C.
pub fn run_blocking(config: Config) -> Result<(), ServerError> {
    runtime()?.block_on(async move {
        let server = Server::start(config).await?;
        println!("cardunlock server listening on {}", server.url());
        println!(
            "certificate (clients pin it): {}",
            server.cert_path().display()
        );
        println!("press Ctrl-C to stop");
        let signal = tokio::signal::ctrl_c().await;
        server.shutdown().await;
        signal.map_err(ServerError::Io)
    })
}
