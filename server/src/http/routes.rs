//! The router: the five unlock endpoints, the places where the operator API
//! (`/v1/operator/*`) and the console (`/console/*`) are nested, the JSON 404 for every other
//! path, and the security headers on every reply.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header::{
    HeaderName, HeaderValue, CACHE_CONTROL, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, get};
use axum::{Extension, Router};
use tower_http::set_header::SetResponseHeaderLayer;

use super::unlock::{endpoint, method_not_allowed, not_found, respond};
use super::{Peer, Shared};
use crate::api::{address_key, too_many, Endpoint};
use crate::MasterSecret;

/// The operator JSON API, nested at `/v1/operator`.
pub(crate) fn operator_api() -> Router<Arc<Shared>> {
    super::operator::router()
}

/// The help-desk console: its routes under `/console` (with their own CSP and form limits).
pub(crate) fn console(master: &MasterSecret, body_timeout: Duration) -> Router<Arc<Shared>> {
    crate::console::routes(master, body_timeout)
}

/// Every route the server serves, with its state.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let mut unlock = Router::new();
    for which in Endpoint::ALL {
        unlock = unlock.route(
            &which.path(),
            any(
                move |state: State<Arc<Shared>>, peer: Extension<Peer>, req: Request| {
                    endpoint(which, state, peer, req)
                },
            ),
        );
    }
    unlock
        .route(
            cardunlock_protocol::operator::paths::OPENAPI,
            get(super::operator::openapi),
        )
        .nest("/v1/operator", operator_api())
        .merge(console(&shared.app.master, shared.limits.request_timeout))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Innermost of the layers below, outermost of the routes: every request, routed or
        // not, is rate limited and its refusal counted here.
        .layer(middleware::from_fn_with_state(shared.clone(), guard))
        .layer(header(
            STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ))
        .layer(header(X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(REFERRER_POLICY, "no-referrer"))
        .layer(header(X_FRAME_OPTIONS, "DENY"))
        // Replies carry personal data or secrets: no cache keeps them, unless a route says
        // otherwise (the console's stylesheet).
        .layer(header(CACHE_CONTROL, "no-store"))
        .with_state(shared)
}

/// The per-address limit on every request, checked before any other work (429 with
/// `Retry-After`, the rest of the connection closed as its body is left unread), and the count
/// of every refusal for the minute's audit summary ([`crate::refusals`]): refusals write no
/// row one by one.
async fn guard(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route_of(req.uri().path());
    let peer = req
        .extensions()
        .get::<Peer>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |p| address_key(p.0));
    let limited = shared
        .app
        .rates
        .requests_address
        .check(&peer, Instant::now());
    let response = match limited {
        Ok(()) => next.run(req).await,
        Err(wait) => respond(too_many("from this address", wait), true),
    };
    shared.refusals.note(response.status().as_u16(), peer);
    crate::metrics::METRICS.refused(response.status().as_u16());
    crate::metrics::METRICS.request(route, started.elapsed());
    response
}

/// The metrics label of a path: an unlock endpoint, `operator`, `console` or `other` (a
/// bounded set, whatever paths clients send).
fn route_of(path: &str) -> &'static str {
    if let Some(which) = Endpoint::ALL.iter().find(|e| e.path() == path) {
        return which.event();
    }
    if path.starts_with("/v1/operator") {
        "operator"
    } else if path.starts_with("/console") {
        "console"
    } else {
        "other"
    }
}

/// A layer setting `name: value` on every response that does not set it itself.
fn header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}
