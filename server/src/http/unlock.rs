//! The five `POST /v1/unlock/*` endpoints as axum handlers, and the JSON refusals every other
//! path gets: the body is read (or drained) before any answer, so a client always gets its
//! reply instead of a reset connection; then the endpoint runs on a blocking thread.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{
    HeaderValue, ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER,
};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::Extension;
use http_body_util::BodyExt;
use zeroize::Zeroizing;

use cardunlock_protocol::ErrorCode;

use super::{Peer, Shared};
use crate::api::{dispatch, refusal, AppState, Endpoint, Reply};

/// Largest request body accepted (API.md): 16 KiB; 413 beyond.
const MAX_BODY: usize = 16 * 1024;
/// An oversized body is read and dropped up to this much, so the client gets its 413 instead of
/// a reset connection; beyond it the connection is simply closed.
const DRAIN_LIMIT: usize = 1024 * 1024;

pub(crate) enum BodyError {
    TooLarge,
    TimedOut,
    Broken,
}

/// Reads at most [`MAX_BODY`] bytes; past that, drains up to [`DRAIN_LIMIT`] and says so.
pub(crate) async fn read_body(
    mut body: Body,
    timeout: Duration,
) -> Result<Zeroizing<Vec<u8>>, BodyError> {
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
                cardunlock_protocol::body::extend_wiped(&mut buf, &data);
            }
        }
        if total > MAX_BODY {
            Err(BodyError::TooLarge)
        } else {
            Ok(buf)
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(BodyError::TimedOut))
}

fn is_json(value: &HeaderValue) -> bool {
    value.to_str().is_ok_and(|v| {
        let media = v.split(';').next().unwrap_or("").trim();
        media.eq_ignore_ascii_case("application/json")
    })
}

/// The route of one endpoint: `POST` runs it, any other method is refused with 405 and
/// `Allow: POST`.
pub(crate) async fn endpoint(
    endpoint: Endpoint,
    State(shared): State<Arc<Shared>>,
    Extension(Peer(peer)): Extension<Peer>,
    req: Request,
) -> Response {
    handle(shared, peer, Some(endpoint), req).await
}

/// Any path no route serves: 404 with the contract's JSON error body (counted).
pub(crate) async fn not_found(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    // The peer only matters to an endpoint that runs; the router counts the refusal by it.
    handle(shared, IpAddr::from([0, 0, 0, 0]), None, req).await
}

/// A path served only for other methods (the router adds `Allow`): 405 with the contract's
/// JSON body (counted), after the body is read, so the connection stays usable.
pub(crate) async fn method_not_allowed(
    State(shared): State<Arc<Shared>>,
    req: Request,
) -> Response {
    let what = format!("{} {}", req.method(), req.uri().path());
    let (_, body) = req.into_parts();
    let drained = read_body(body, shared.limits.request_timeout).await.is_ok();
    let reply = refusal(
        ErrorCode::MethodNotAllowed,
        "This path does not take that method.",
    );
    refuse(&shared, what, reply, !drained).await
}

async fn handle(
    shared: Arc<Shared>,
    peer: IpAddr,
    endpoint: Option<Endpoint>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let what = format!("{} {}", parts.method, parts.uri.path());
    let too_large = refusal(
        ErrorCode::PayloadTooLarge,
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
    let body = match read_body(body, shared.limits.request_timeout).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return refuse(&shared, what, too_large, true).await,
        Err(BodyError::TimedOut) => {
            let reply = refusal(
                ErrorCode::RequestTimeout,
                "The request body did not arrive in time.",
            );
            return refuse(&shared, what, reply, true).await;
        }
        Err(BodyError::Broken) => {
            let reply = refusal(ErrorCode::BadRequest, "The request body could not be read.");
            return refuse(&shared, what, reply, true).await;
        }
    };
    let Some(endpoint) = endpoint else {
        let reply = refusal(ErrorCode::NotFound, "No such endpoint.");
        return refuse(&shared, what, reply, false).await;
    };
    if parts.method != Method::POST {
        let reply = refusal(ErrorCode::MethodNotAllowed, "Use POST.");
        let mut response = refuse(&shared, what, reply, false).await;
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    if parts.headers.get(CONTENT_TYPE).is_some_and(|v| !is_json(v)) {
        let reply = refusal(
            ErrorCode::UnsupportedMediaType,
            "The body must be application/json.",
        );
        return refuse(&shared, what, reply, false).await;
    }
    let reply = blocking(&shared, move |app| dispatch(app, endpoint, peer, &body)).await;
    respond(reply, false)
}

/// A refusal before any endpoint ran, as a response: no database work (the router counts it
/// for the minute's summary, [`crate::refusals`]).
async fn refuse(_shared: &Arc<Shared>, what: String, reply: Reply, close: bool) -> Response {
    log::debug!("refused {what}: {}", reply.status);
    respond(reply, close)
}

/// Runs `work` on a blocking thread, within the concurrency bound; `None` if it could not run
/// or failed (logged).
pub(crate) async fn on_worker<T, F>(shared: &Arc<Shared>, work: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce(&AppState) -> T + Send + 'static,
{
    crate::metrics::METRICS.queue(1);
    let permit = shared.work.acquire().await;
    crate::metrics::METRICS.queue(-1);
    let _permit = permit.ok()?;
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || work(&shared.app))
        .await
        .map_err(|e| log::error!("request handler failed: {e}"))
        .ok()
}

/// Runs an endpoint's `work` on a blocking thread, within the concurrency bound.
async fn blocking<F>(shared: &Arc<Shared>, work: F) -> Reply
where
    F: FnOnce(&AppState) -> Reply + Send + 'static,
{
    on_worker(shared, work).await.unwrap_or_else(|| {
        refusal(
            ErrorCode::InternalError,
            "The server failed; try again later.",
        )
    })
}

/// A reply as a JSON response (`Connection: close` when the rest of the request was not read).
pub(crate) fn respond(reply: Reply, close: bool) -> Response {
    let mut response = Response::new(reply.body.into_body());
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if close {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some(secs) = reply.retry_after {
        if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
            headers.insert(RETRY_AFTER, value);
        }
    }
    response
}
