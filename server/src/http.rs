//! HTTPS serving: TLS handshakes, HTTP/1.1 (hyper), routing, the 16 KiB body limit and the
//! timeouts. The endpoints themselves ([`crate::api`]) run on blocking threads, as SQLite and
//! Argon2 are synchronous.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::api::{address_key, AppState};
use crate::Limits;

pub(crate) mod operator;
mod routes;
mod unlock;

pub(crate) use unlock::{on_worker, read_body, BodyError};

const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The endpoints' state, a bound on concurrent blocking work (Argon2 uses 19 MiB each) and the
/// connection limits.
pub(crate) struct Shared {
    pub app: AppState,
    /// Refused requests, counted for the minute's audit summary.
    pub refusals: Arc<crate::refusals::Refusals>,
    pub work: Semaphore,
    pub limits: Limits,
    /// Peers whose PROXY header and `X-Forwarded-For` name the client ([`crate::proxy`]).
    pub trusted: crate::TrustedProxies,
}

/// The client address of a request (a request extension): the connection's peer, or behind a
/// trusted proxy the client it names ([`crate::proxy`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer(pub IpAddr);

/// Open connections: in all, per client address, and those still in their TLS handshake
/// (oldest first, each with the switch that closes it).
#[derive(Default)]
struct Connections {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
    handshaking: BTreeMap<u64, oneshot::Sender<()>>,
    next_id: u64,
}

/// Why a new connection was not admitted.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    PerAddress,
    Full,
}

impl Connections {
    /// Admits a connection from `address` (already [`address_key`]ed), closing the oldest
    /// connection still in its handshake when all `max` places are taken.
    /// A trusted proxy (`per_address` false) carries many clients' connections: it is bound
    /// by `max_connections` only.
    fn admit(
        &mut self,
        address: IpAddr,
        per_address: bool,
        limits: &Limits,
    ) -> Result<(u64, oneshot::Receiver<()>), Refused> {
        let from_address = self.per_address.get(&address).copied().unwrap_or(0);
        if per_address && from_address >= limits.max_connections_per_address {
            return Err(Refused::PerAddress);
        }
        if self.total >= limits.max_connections && !self.evict_oldest_handshake() {
            return Err(Refused::Full);
        }
        self.total += 1;
        *self.per_address.entry(address).or_insert(0) += 1;
        let id = self.next_id;
        self.next_id += 1;
        let (close, closed) = oneshot::channel();
        self.handshaking.insert(id, close);
        Ok((id, closed))
    }

    /// Closes the connection that has been in its handshake the longest; `false` if none is.
    fn evict_oldest_handshake(&mut self) -> bool {
        match self.handshaking.pop_first() {
            Some((_, close)) => {
                let _ = close.send(());
                true
            }
            None => false,
        }
    }

    fn release(&mut self, id: u64, address: IpAddr) {
        self.handshaking.remove(&id);
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.per_address.get_mut(&address) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_address.remove(&address);
            }
        }
    }
}

/// One admitted connection's place; given back on drop.
struct Place {
    connections: Arc<Mutex<Connections>>,
    id: u64,
    address: IpAddr,
}

impl Place {
    fn handshake_done(&self) {
        if let Ok(mut c) = self.connections.lock() {
            c.handshaking.remove(&self.id);
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Ok(mut c) = self.connections.lock() {
            c.release(self.id, self.address);
        }
    }
}

/// Whether an accept error means "out of file descriptors" (EMFILE, ENFILE).
fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24))
}

/// Accepts connections until `shutdown` turns true (or its sender is dropped), then lets open
/// connections finish their current request for up to 5 s.
///
/// Slow and idle clients cannot starve others: each address holds at most
/// `max_connections_per_address` connections, a handshake must finish within
/// `handshake_timeout`, and when all `max_connections` places are taken (or the process runs
/// out of file descriptors) the connection that has waited longest in its handshake is closed
/// for the new one. A real client's handshake takes milliseconds, so it is never the oldest.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let connections = Arc::new(Mutex::new(Connections::default()));
    let router = routes::router(shared.clone());
    let mut tasks = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    let evicted = out_of_descriptors(&e)
                        && connections.lock().is_ok_and(|mut c| c.evict_oldest_handshake());
                    log::warn!("accept: {e}");
                    // Give the evicted connection's task a moment to close its socket.
                    let pause = if evicted { 1 } else { 50 };
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => break,
        };
        while tasks.try_join_next().is_some() {}
        let address = address_key(peer.ip());
        let per_address = !shared.trusted.contains(peer.ip());
        let admitted = match connections.lock() {
            Ok(mut c) => c.admit(address, per_address, &shared.limits),
            Err(_) => Err(Refused::Full),
        };
        let (id, closed) = match admitted {
            Ok(pair) => pair,
            Err(why) => {
                log::debug!("connection from {address} closed on accept: {why:?}");
                drop(stream);
                continue;
            }
        };
        let place = Place {
            connections: connections.clone(),
            id,
            address,
        };
        let (acceptor, shared, stop) = (acceptor.clone(), shared.clone(), shutdown.clone());
        let router = router.clone();
        tasks.spawn(async move {
            let peer = peer.ip();
            serve_connection(
                stream, peer, acceptor, router, &shared, stop, closed, &place,
            )
            .await;
            drop(place);
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        tasks.abort_all();
    }
}

/// Resolves once a stop is asked for (or nobody can ask any more).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|&stop| stop).await;
}

/// The connection's client: `peer`, or for a trusted peer the source its PROXY protocol
/// header names (read within the handshake deadline); `None` to close the connection (a
/// malformed or late header).
async fn proxied_peer(stream: &mut TcpStream, peer: IpAddr, shared: &Shared) -> Option<IpAddr> {
    if !shared.trusted.contains(peer) {
        return Some(peer);
    }
    let header = crate::proxy::read_proxy_header(stream);
    match tokio::time::timeout(shared.limits.handshake_timeout, header).await {
        Ok(Ok(source)) => Some(source.unwrap_or(peer)),
        Ok(Err(e)) => {
            log::debug!("PROXY header from {peer}: {e}");
            None
        }
        Err(_) => {
            log::debug!("PROXY header from {peer} timed out");
            None
        }
    }
}

/// Serves one connection: the TLS handshake (within its deadline, unless evicted), then HTTP/1.1
/// with every request handed to the router.
#[allow(clippy::too_many_arguments)]
async fn serve_connection(
    mut stream: TcpStream,
    peer: IpAddr,
    acceptor: TlsAcceptor,
    router: Router,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
    evicted: oneshot::Receiver<()>,
    place: &Place,
) {
    let _ = stream.set_nodelay(true);
    let peer = match proxied_peer(&mut stream, peer, shared).await {
        Some(client) => client,
        None => return,
    };
    let trusted = shared.trusted.clone();
    let handshake = tokio::time::timeout(shared.limits.handshake_timeout, acceptor.accept(stream));
    let tls = tokio::select! {
        result = handshake => match result {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                log::debug!("TLS handshake failed: {e}");
                return;
            }
            Err(_) => {
                log::debug!("TLS handshake timed out");
                return;
            }
        },
        Ok(()) = evicted => {
            log::debug!("connection closed in its handshake to make room");
            return;
        }
        _ = stopped(&mut shutdown) => return,
    };
    place.handshake_done();
    let body_timeout = shared.limits.request_timeout;
    let service = service_fn(move |mut req: Request<Incoming>| {
        let client = crate::proxy::forwarded_client(peer, &trusted, req.headers());
        req.extensions_mut().insert(Peer(client));
        router.clone().oneshot(req)
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(body_timeout)
        .max_buf_size(64 * 1024);
    let conn = builder.serve_connection(TokioIo::new(tls), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                log::debug!("connection: {e}");
            }
        }
        _ = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn.as_mut()).await;
        }
    }
}
