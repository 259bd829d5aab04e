//! The PUK read-out routes: the read-out itself (200 with the PUK, or with four eyes on, 202
//! with a request id) and the four-eyes requests' list, approval and collection.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use cardunlock_protocol::operator::{paths, PukReadoutRequest};

use super::call::{Call, Drained, JsonBody};
use super::{json_response, rel, Shared_};
use crate::api::AppState;
use crate::http::Shared;
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
    State(s): Shared_,
    Path((profile, identity)): Path<(String, String)>,
    call: Call<JsonBody<PukReadoutRequest>>,
) -> Response {
    let result = call
        .run(&s, move |app, a, JsonBody(r)| {
            if app.operators.four_eyes_puk_readout {
                op::puk_readout_request(app, a, &profile, &identity, &r).map(Outcome::Pending)
            } else {
                op::puk_readout(app, a, &profile, &identity, &r).map(Outcome::Now)
            }
        })
        .await;
    match result {
        Ok(Outcome::Now(reply)) => json_response(Ok(reply)),
        Ok(Outcome::Pending(pending)) => {
            let mut response = json_response(Ok(pending));
            *response.status_mut() = StatusCode::ACCEPTED;
            response
        }
        Err(e) => json_response::<()>(Err::<(), OpError>(e)),
    }
}

async fn list(State(s): Shared_, call: Call<Drained>) -> Response {
    json_response(call.run(&s, |app, a, _| op::puk_readouts(app, a)).await)
}

async fn approve(State(s): Shared_, Path(id): Path<String>, call: Call<Drained>) -> Response {
    json_response(
        call.run(&s, move |app, a, _| op::approve_puk_readout(app, a, &id))
            .await,
    )
}

async fn collect(State(s): Shared_, Path(id): Path<String>, call: Call<Drained>) -> Response {
    let work =
        move |app: &AppState, a: &Actor, _| op::collect_puk_readout(app, a, &id).map(|(_, r)| r);
    json_response(call.run(&s, work).await)
}
