//! What every authenticated operator call shares, once: the [`Call`] extractor (the caller's
//! address, bearer token and body, read or drained before anything is refused so the
//! connection stays usable) and [`Call::run`], the one hop to a blocking thread where the token
//! is checked and the work done as that operator.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use cardunlock_protocol::ErrorCode;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use super::{bearer, blocking, body, json_response, refused};
use crate::api::AppState;
use crate::http::unlock::read_body;
use crate::http::{Peer, Shared};
use crate::operator::{self as op, Actor, OpError};

/// The body of an operator call: read before the token is checked.
pub(crate) trait CallBody: Sized + Send + 'static {
    /// Reads (or drains) the body of a request with these headers.
    fn read(
        shared: &Shared,
        headers: &HeaderMap,
        body: Body,
    ) -> impl Future<Output = Result<Self, OpError>> + Send;
}

/// No body: whatever came is read and dropped.
pub(crate) struct Drained;

impl CallBody for Drained {
    async fn read(shared: &Shared, _: &HeaderMap, body: Body) -> Result<Self, OpError> {
        let _ = read_body(body, shared.limits.request_timeout).await;
        Ok(Self)
    }
}

/// A JSON body of the contract (its refusals never quote it).
pub(crate) struct JsonBody<R>(pub R);

impl<R: DeserializeOwned + Send + 'static> CallBody for JsonBody<R> {
    async fn read(shared: &Shared, headers: &HeaderMap, b: Body) -> Result<Self, OpError> {
        body(shared, headers, b).await.map(Self)
    }
}

/// An operator call, before its token is checked: who sent it (address, bearer token) and its
/// body. A body that cannot be read is refused here, as before any token check.
pub(crate) struct Call<B> {
    peer: IpAddr,
    token: Option<Zeroizing<String>>,
    body: B,
}

impl<B: CallBody> FromRequest<Arc<Shared>> for Call<B> {
    type Rejection = Response;

    async fn from_request(req: Request, shared: &Arc<Shared>) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let Some(Peer(peer)) = parts.extensions.get::<Peer>().cloned() else {
            return Err(json_response::<()>(Err(refused(
                ErrorCode::InternalError,
                "The server failed; try again later.",
            ))));
        };
        let token = bearer(&parts.headers).map(Zeroizing::new);
        match B::read(shared, &parts.headers, body).await {
            Ok(body) => Ok(Self { peer, token, body }),
            Err(e) => Err(json_response::<()>(Err(e)).into_response()),
        }
    }
}

impl<B: CallBody> Call<B> {
    /// Checks the token and runs `work` as that operator, together on one blocking thread
    /// (the store and Argon2 are synchronous) within the server's concurrency bound.
    pub(crate) async fn run<T: Send + 'static>(
        self,
        shared: &Arc<Shared>,
        work: impl FnOnce(&AppState, &Actor, B) -> Result<T, OpError> + Send + 'static,
    ) -> Result<T, OpError> {
        let Self { peer, token, body } = self;
        let Some(token) = token else {
            return Err(refused(
                ErrorCode::Unauthorized,
                "Sign in first: send Authorization: Bearer <token>.",
            ));
        };
        blocking(shared, move |app| {
            let actor = op::authenticate(app, &token, Some(peer))?;
            work(app, &actor, body)
        })
        .await
    }
}
