//! The operator JSON API (`/v1/operator/*`, API.md "Operator API") as axum handlers over the
//! service functions of [`crate::operator`]. Every call but sign-in carries
//! `Authorization: Bearer <token>`; the token check and the call run together on a blocking
//! thread (the store and Argon2 are synchronous). Bodies are read into wiped buffers, at most
//! 16 KiB, and parsed without quoting their content in errors (a password can be in them).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::header::{
    HeaderValue, AUTHORIZATION, CONTENT_DISPOSITION, CONTENT_TYPE, WWW_AUTHENTICATE,
};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;

use cardunlock_protocol::operator::{
    paths, AddOperatorRequest, AuditQuery, EnrollDone, EnrollRequest, LiftLockRequest,
    OfflineRequest, SearchQuery, SetPasswordRequest, SignInRequest,
};
use cardunlock_protocol::{ChallengeError, ErrorBody, ErrorCode};

mod call;
mod readouts;

use call::{Call, Drained, JsonBody};

use super::unlock::{read_body, respond, BodyError};
use super::{Peer, Shared};
use crate::api::{AppState, Reply};
use crate::operator::{self as op, Actor, OpError};
use crate::reply_body::JsonBody as ReplyJson;

/// The operator routes, relative to `/v1/operator` (where [`super::routes`] nests them).
pub(crate) fn router() -> Router<Arc<Shared>> {
    readouts::router(Router::new())
        .route(rel(paths::SESSION), post(sign_in).delete(sign_out))
        .route(rel(paths::SEARCH), get(search))
        .route(rel(paths::CARD), get(card_detail))
        .route(rel(paths::LIFT_LOCK), post(lift_lock))
        .route(rel(paths::OFFLINE_RESPONSE), post(offline_response))
        .route(rel(paths::ENROLLMENTS), post(enroll_begin))
        .route(rel(paths::ENROLLMENT), post(enroll_done))
        .route(rel(paths::AUDIT), get(audit))
        .route(rel(paths::AUDIT_CSV), get(audit_csv))
        .route(
            rel(paths::OPERATORS),
            get(list_operators).post(add_operator),
        )
        .route(rel(paths::OPERATOR_DISABLE), post(disable_operator))
        .route(rel(paths::OPERATOR_RESET_TOTP), post(reset_totp))
        .route(rel(paths::OPERATOR_PASSWORD), post(set_password))
        .method_not_allowed_fallback(method_not_allowed)
}

/// `p` relative to `/v1/operator`.
fn rel(p: &'static str) -> &'static str {
    p.strip_prefix("/v1/operator").unwrap_or(p)
}

fn refused(code: ErrorCode, message: &str) -> OpError {
    OpError::Refused(ErrorBody::new(code, message))
}

fn error_reply(e: &OpError) -> Reply {
    let body = e.body();
    Reply {
        status: e.status(),
        retry_after: body.retry_after,
        body: ReplyJson::of(&body),
    }
}

fn json_response<T: Serialize>(result: Result<T, OpError>) -> Response {
    let reply = match result {
        Ok(value) => Reply {
            status: 200,
            body: ReplyJson::of(&value),
            retry_after: None,
        },
        Err(e) => error_reply(&e),
    };
    let unauthorized = reply.status == 401;
    let mut response = respond(reply, false);
    if unauthorized {
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

async fn method_not_allowed(State(shared): Shared_, req: Request) -> Response {
    drain(&shared, req).await;
    json_response::<()>(Err(refused(
        ErrorCode::MethodNotAllowed,
        "This method is not allowed on this path.",
    )))
}

/// The bearer token of the request, if any.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// Runs `work` on a blocking thread within the server's concurrency bound.
async fn blocking<T: Send + 'static>(
    shared: &Arc<Shared>,
    work: impl FnOnce(&AppState) -> Result<T, OpError> + Send + 'static,
) -> Result<T, OpError> {
    let failed = || {
        refused(
            ErrorCode::InternalError,
            "The server failed; try again later.",
        )
    };
    crate::metrics::METRICS.queue(1);
    let permit = shared.work.acquire().await;
    crate::metrics::METRICS.queue(-1);
    let Ok(_permit) = permit else {
        return Err(failed());
    };
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || work(&shared.app))
        .await
        .unwrap_or_else(|e| {
            log::error!("operator handler failed: {e}");
            Err(failed())
        })
}

/// Reads and drops the request's body (so the connection stays usable).
async fn drain(shared: &Shared, req: Request) {
    let _ = read_body(req.into_body(), shared.limits.request_timeout).await;
}

/// The request's JSON body as `R` (refusals never quote the body).
async fn body<R: DeserializeOwned>(
    shared: &Shared,
    headers: &HeaderMap,
    body: Body,
) -> Result<R, OpError> {
    if let Some(ct) = headers.get(CONTENT_TYPE) {
        let media = ct
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim();
        if !media.eq_ignore_ascii_case("application/json") {
            return Err(refused(
                ErrorCode::UnsupportedMediaType,
                "The body must be application/json.",
            ));
        }
    }
    let bytes = read_body(body, shared.limits.request_timeout)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => refused(
                ErrorCode::PayloadTooLarge,
                "The request body is larger than 16 KiB.",
            ),
            BodyError::TimedOut => refused(
                ErrorCode::RequestTimeout,
                "The request body did not arrive in time.",
            ),
            BodyError::Broken => {
                refused(ErrorCode::BadRequest, "The request body could not be read.")
            }
        })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        // serde's own messages may quote the value (a password can be in the body): only a
        // rule of the contract's own types is named, never the text serde wrote.
        if e.to_string().starts_with(&ChallengeError.to_string()) {
            return OpError::bad(format!("Bad request: {ChallengeError}."));
        }
        let what = match e.classify() {
            serde_json::error::Category::Data => {
                "a field is missing or has the wrong type or value"
            }
            _ => "the body is not valid JSON",
        };
        OpError::bad(format!(
            "Bad request: {what} (line {}, column {}).",
            e.line(),
            e.column()
        ))
    })
}

type Shared_ = State<Arc<Shared>>;
type PeerOf = Extension<Peer>;
/// An operator call without a body.
type Bare = Call<Drained>;
/// An operator call with a JSON body `R`.
type With<R> = Call<JsonBody<R>>;

async fn sign_in(State(shared): Shared_, Extension(Peer(peer)): PeerOf, req: Request) -> Response {
    let result = async {
        let r: SignInRequest = body(&shared, &req.headers().clone(), req.into_body()).await?;
        blocking(&shared, move |app| {
            op::sign_in(app, &r, Some(peer)).map(|(_, reply)| reply)
        })
        .await
    };
    json_response(result.await)
}

async fn sign_out(State(s): Shared_, call: Bare) -> Response {
    json_response(call.run(&s, |app, a, _| op::sign_out(app, a)).await)
}

type QueryOf<Q> = Result<Query<Q>, axum::extract::rejection::QueryRejection>;

async fn search(State(s): Shared_, query: QueryOf<SearchQuery>, call: Bare) -> Response {
    let Ok(Query(q)) = query else {
        return json_response::<()>(Err(OpError::bad("Bad request: give ?q=text.")));
    };
    json_response(
        call.run(&s, move |app, a, _| op::search(app, a, &q.q))
            .await,
    )
}

type CardPath = Path<(String, String)>;

async fn card_detail(State(s): Shared_, Path((p, i)): CardPath, call: Bare) -> Response {
    json_response(
        call.run(&s, move |app, a, _| op::card_detail(app, a, &p, &i))
            .await,
    )
}

async fn lift_lock(
    State(s): Shared_,
    Path((p, i)): CardPath,
    call: With<LiftLockRequest>,
) -> Response {
    json_response(
        call.run(&s, move |app, a, JsonBody(r)| {
            op::lift_lock(app, a, &p, &i, &r)
        })
        .await,
    )
}

async fn offline_response(
    State(s): Shared_,
    Path((p, i)): CardPath,
    call: With<OfflineRequest>,
) -> Response {
    let work =
        move |app: &AppState, a: &Actor, JsonBody(r)| op::offline_response(app, a, &p, &i, &r);
    json_response(call.run(&s, work).await)
}

async fn enroll_begin(State(s): Shared_, call: With<EnrollRequest>) -> Response {
    json_response(
        call.run(&s, |app, a, JsonBody(r)| op::enroll_begin(app, a, &r))
            .await,
    )
}

async fn enroll_done(
    State(s): Shared_,
    Path(id): Path<String>,
    call: With<EnrollDone>,
) -> Response {
    json_response(
        call.run(&s, move |app, a, JsonBody(r)| {
            op::enroll_done(app, a, &id, &r)
        })
        .await,
    )
}

fn bad_filter() -> Response {
    json_response::<()>(Err(OpError::bad(
        "Bad request: a filter has the wrong form.",
    )))
}

async fn audit(State(s): Shared_, q: QueryOf<AuditQuery>, call: Bare) -> Response {
    let Ok(Query(q)) = q else {
        return bad_filter();
    };
    json_response(
        call.run(&s, move |app, a, _| op::audit_query(app, a, &q))
            .await,
    )
}

async fn audit_csv(State(s): Shared_, q: QueryOf<AuditQuery>, call: Bare) -> Response {
    let Ok(Query(q)) = q else {
        return bad_filter();
    };
    match call
        .run(&s, move |app, a, _| op::audit_csv(app, a, &q))
        .await
    {
        Err(e) => json_response::<()>(Err(e)),
        Ok(csv) => csv_download(csv),
    }
}

/// The audit as a CSV download (the API's `audit.csv` and the console's CSV link).
pub(crate) fn csv_download(csv: String) -> Response {
    let mut response = Response::new(Body::from(csv));
    let h = response.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"cardunlock-audit.csv\""),
    );
    response
}

async fn list_operators(State(s): Shared_, call: Bare) -> Response {
    json_response(call.run(&s, |app, a, _| op::list_operators(app, a)).await)
}

async fn add_operator(State(s): Shared_, call: With<AddOperatorRequest>) -> Response {
    json_response(
        call.run(&s, |app, a, JsonBody(r)| op::add_operator(app, a, &r))
            .await,
    )
}

async fn disable_operator(State(s): Shared_, Path(name): Path<String>, call: Bare) -> Response {
    json_response(
        call.run(&s, move |app, a, _| op::disable_operator(app, a, &name))
            .await,
    )
}

async fn reset_totp(State(s): Shared_, Path(name): Path<String>, call: Bare) -> Response {
    json_response(
        call.run(&s, move |app, a, _| op::reset_totp(app, a, &name))
            .await,
    )
}

async fn set_password(
    State(s): Shared_,
    Path(name): Path<String>,
    call: With<SetPasswordRequest>,
) -> Response {
    let work = move |app: &AppState, a: &Actor, JsonBody(r)| op::set_password(app, a, &name, &r);
    json_response(call.run(&s, work).await)
}

/// `GET /v1/openapi.json`: the OpenAPI 3.1 document of the whole server.
pub(crate) async fn openapi() -> Response {
    let mut response = Response::new(Body::from(OPENAPI));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `server/openapi.json`.
pub(crate) const OPENAPI: &str = include_str!("../../openapi.json");
