//! HTTPS serving: TLS handshakes, HTTP/1.1 (hyper), routing, the 16 KiB body limit and the
//! timeouts. The endpoints themselves ([`crate::api`]) run on blocking threads, as SQLite and
//! Argon2 are synchronous.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use zeroize::Zeroizing;

use crate::api::{dispatch, refusal, refuse_request, AppState, Endpoint, Reply};

/// Largest request body accepted (API.md): 16 KiB; 413 beyond.
pub(crate) const MAX_BODY: usize = 16 * 1024;
/// An oversized body is read and dropped up to this much, so the client gets its 413 instead of
/// a reset connection; beyond it the connection is simply closed.
const DRAIN_LIMIT: usize = 1024 * 1024;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
const MAX_CONNECTIONS: usize = 256;

/// The endpoints' state plus a bound on concurrent blocking work (Argon2 uses 19 MiB each).
pub(crate) struct Shared {
    pub app: AppState,
    pub work: Semaphore,
}

/// Accepts connections until `shutdown` turns true (or its sender is dropped), then lets open
/// connections finish their current request for up to 5 s.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = JoinSet::new();
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stopped(&mut shutdown) => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    log::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => break,
        };
        while tasks.try_join_next().is_some() {}
        let (acceptor, shared, stop) = (acceptor.clone(), shared.clone(), shutdown.clone());
        tasks.spawn(async move {
            serve_connection(stream, acceptor, shared, stop).await;
            drop(permit);
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

async fn serve_connection(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            log::debug!("TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            log::debug!("TLS handshake timed out");
            return;
        }
    };
    let service = service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(shared, req).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
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

enum BodyError {
    TooLarge,
    TimedOut,
    Broken,
}

/// Reads at most [`MAX_BODY`] bytes; past that, drains up to [`DRAIN_LIMIT`] and says so.
async fn read_body(mut body: Incoming) -> Result<Zeroizing<Vec<u8>>, BodyError> {
    let read = async {
        let mut buf = Zeroizing::new(Vec::new());
        let mut total = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| BodyError::Broken)?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            total = total.saturating_add(data.len());
            if total > DRAIN_LIMIT {
                break;
            }
            if total <= MAX_BODY {
                buf.extend_from_slice(&data);
            }
        }
        if total > MAX_BODY {
            Err(BodyError::TooLarge)
        } else {
            Ok(buf)
        }
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .unwrap_or(Err(BodyError::TimedOut))
}

fn is_json(value: &HeaderValue) -> bool {
    value.to_str().is_ok_and(|v| {
        let media = v.split(';').next().unwrap_or("").trim();
        media.eq_ignore_ascii_case("application/json")
    })
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let what = format!("{} {}", parts.method, parts.uri.path());
    let too_large = refusal(
        413,
        "payload_too_large",
        "The request body is larger than 16 KiB.",
    );
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > DRAIN_LIMIT as u64) {
        return refuse(&shared, what, too_large, true).await;
    }
    // Read (or drain) the body before any refusal, so the client always gets its answer.
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return refuse(&shared, what, too_large, true).await,
        Err(BodyError::TimedOut) => {
            let reply = refusal(
                408,
                "request_timeout",
                "The request body did not arrive in time.",
            );
            return refuse(&shared, what, reply, true).await;
        }
        Err(BodyError::Broken) => {
            let reply = refusal(400, "bad_request", "The request body could not be read.");
            return refuse(&shared, what, reply, true).await;
        }
    };
    let Some(endpoint) = Endpoint::from_path(parts.uri.path()) else {
        return refuse(
            &shared,
            what,
            refusal(404, "not_found", "No such endpoint."),
            false,
        )
        .await;
    };
    if parts.method != Method::POST {
        let reply = refusal(405, "method_not_allowed", "Use POST.");
        let mut response = refuse(&shared, what, reply, false).await;
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    if parts.headers.get(CONTENT_TYPE).is_some_and(|v| !is_json(v)) {
        let reply = refusal(
            415,
            "unsupported_media_type",
            "The body must be application/json.",
        );
        return refuse(&shared, what, reply, false).await;
    }
    let reply = blocking(&shared, move |app| dispatch(app, endpoint, &body)).await;
    respond(reply, false)
}

/// Audits a refusal (on a blocking thread) and turns it into a response.
async fn refuse(
    shared: &Arc<Shared>,
    what: String,
    reply: Reply,
    close: bool,
) -> Response<Full<Bytes>> {
    let reply = blocking(shared, move |app| refuse_request(app, &what, reply)).await;
    respond(reply, close)
}

/// Runs `work` on a blocking thread, within the concurrency bound.
async fn blocking<F>(shared: &Arc<Shared>, work: F) -> Reply
where
    F: FnOnce(&AppState) -> Reply + Send + 'static,
{
    let failed = || refusal(500, "internal_error", "The server failed; try again later.");
    let Ok(_permit) = shared.work.acquire().await else {
        return failed();
    };
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || work(&shared.app))
        .await
        .unwrap_or_else(|e| {
            log::error!("request handler failed: {e}");
            failed()
        })
}

fn respond(reply: Reply, close: bool) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&reply.body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if close {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
