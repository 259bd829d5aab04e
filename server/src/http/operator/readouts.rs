//! The PUK read-out routes: the read-out itself (200 with the PUK, or with four eyes on, 202
//! with a request id) and the four-eyes requests' list, approval and collection.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};

use cardunlock_protocol::operator::{paths, PukReadoutRequest};

use super::{as_operator, body, drain, json_response, rel, PeerOf, Shared_};
use crate::api::AppState;
use crate::http::{Peer, Shared};
use crate::operator::{self as op, Actor, OpError};

/// The read-out routes, relative to `/v1/operator`.
pub(super) fn router(router: Router<Arc<Shared>>) -> Router<Arc<Shared>> {
    router
        .route(rel(paths::PUK_READOUT), post(puk_readout))
        .route(rel(paths::PUK_READOUTS), get(list))
        .route(rel(paths::PUK_READOUT_APPROVE), post(approve))
        .route(rel(paths::PUK_READOUT_COLLECT), post(collect))
}

/// What a read-out gave: the PUK, or (four eyes) a request.
enum Outcome {
    Now(cardunlock_protocol::operator::PukReadoutReply),
    Pending(cardunlock_protocol::operator::PukReadoutPending),
}

async fn puk_readout(
    State(shared): Shared_,
    Extension(Peer(peer)): PeerOf,
    Path((profile, identity)): Path<(String, String)>,
    req: Request,
) -> Response {
    let headers = req.headers().clone();
    let result = async {
        let r: PukReadoutRequest = body(&shared, req).await?;
        as_operator(&shared, peer, &headers, move |app, a| {
            if app.operators.four_eyes_puk_readout {
                op::puk_readout_request(app, a, &profile, &identity, &r).map(Outcome::Pending)
            } else {
                op::puk_readout(app, a, &profile, &identity, &r).map(Outcome::Now)
            }
        })
        .await
    };
    match result.await {
        Ok(Outcome::Now(reply)) => json_response(Ok(reply)),
        Ok(Outcome::Pending(pending)) => {
            let mut response = json_response(Ok(pending));
            *response.status_mut() = StatusCode::ACCEPTED;
            response
        }
        Err(e) => json_response::<()>(Err::<(), OpError>(e)),
    }
}

async fn list(State(shared): Shared_, Extension(Peer(peer)): PeerOf, req: Request) -> Response {
    let headers = drain(&shared, req).await;
    json_response(as_operator(&shared, peer, &headers, op::puk_readouts).await)
}

async fn approve(
    State(shared): Shared_,
    Extension(Peer(peer)): PeerOf,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let headers = drain(&shared, req).await;
    let work = move |app: &AppState, a: &Actor| op::approve_puk_readout(app, a, &id);
    json_response(as_operator(&shared, peer, &headers, work).await)
}

async fn collect(
    State(shared): Shared_,
    Extension(Peer(peer)): PeerOf,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let headers = drain(&shared, req).await;
    let work =
        move |app: &AppState, a: &Actor| op::collect_puk_readout(app, a, &id).map(|(_, r)| r);
    json_response(as_operator(&shared, peer, &headers, work).await)
}
