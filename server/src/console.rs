//! The help-desk web console at `/console/`: server-rendered HTML (maud, which escapes every
//! value), no script, one stylesheet served here, a strict Content-Security-Policy on every
//! page. The operator's session token lives in the cookie `__Host-cardunlock` (`HttpOnly;
//! Secure; SameSite=Strict; Path=/`); every form carries a token bound to that session
//! ([`csrf`]), and a form without it, or with another session's, is refused with 403. Every
//! action goes through the operator service layer ([`crate::operator`]), which checks roles and
//! writes the audit.

pub(crate) mod admin_pages;
mod csrf;
mod handlers;
pub(crate) mod layout;
mod pages;
mod readout_pages;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request};
use axum::http::header::{
    HeaderValue, CACHE_CONTROL, CONNECTION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, HOST,
    LOCATION, ORIGIN, SET_COOKIE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Extension, Router};
use maud::Markup;
use tower_http::set_header::SetResponseHeaderLayer;
use zeroize::Zeroizing;

use crate::http::{on_worker, read_body, BodyError, Peer, Shared};
use crate::operator::{self, Actor, OpError};
use crate::MasterSecret;

use csrf::CsrfKey;
use layout::{message, Nav};

/// The cookie holding the operator session token. The `__Host-` prefix makes browsers refuse
/// it unless it is `Secure`, host-only and `Path=/`.
pub(crate) const COOKIE_NAME: &str = "__Host-cardunlock";

/// The policy of every console page: nothing but this server's stylesheet and forms posting
/// back to it; no script, no frame, no base.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                              form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Largest console form body.
const MAX_FORM: usize = 16 * 1024;

/// The console's routes (full paths under `/console`), with its CSP, its form size limit,
/// `body_timeout` for a form's body to arrive and the form-token key derived from `master`.
pub(crate) fn routes(master: &MasterSecret, body_timeout: Duration) -> Router<Arc<Shared>> {
    use handlers as h;
    Router::new()
        .route("/console", get(h::to_console))
        .route("/console/", get(h::search))
        .route("/console/style.css", get(h::style))
        .route("/console/sign-in", get(h::sign_in_form).post(h::sign_in))
        .route("/console/sign-out", post(h::sign_out))
        .route("/console/cards/{profile}/{identity}", get(h::card))
        .route(
            "/console/cards/{profile}/{identity}/lift-lock",
            post(h::lift_lock),
        )
        .route(
            "/console/cards/{profile}/{identity}/offline-response",
            post(h::offline_response),
        )
        .route(
            "/console/cards/{profile}/{identity}/puk-readout",
            post(h::puk_readout),
        )
        .route("/console/puk-readouts", get(h::puk_readouts))
        .route(
            "/console/puk-readouts/{id}/approve",
            post(h::approve_puk_readout),
        )
        .route(
            "/console/puk-readouts/{id}/collect",
            post(h::collect_puk_readout),
        )
        .route("/console/audit", get(h::audit))
        .route("/console/audit.csv", get(h::audit_csv))
        .route(
            "/console/operators",
            get(h::operators).post(h::add_operator),
        )
        .route(
            "/console/operators/{name}/disable",
            post(h::disable_operator),
        )
        .route("/console/operators/{name}/reset-totp", post(h::reset_totp))
        .route("/console/{*rest}", any(h::not_found))
        .layer(middleware::from_fn(move |req, next| {
            guard_posts(body_timeout, req, next)
        }))
        .layer(DefaultBodyLimit::max(MAX_FORM))
        .layer(Extension(Arc::new(CsrfKey::derived(master))))
        .layer(SetResponseHeaderLayer::overriding(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
}

/// Whether a request comes from another site: its `Sec-Fetch-Site` says so (every current
/// browser sends it), or, without that header, its `Origin` is not this server's (`https://`
/// and the `Host` it was sent to). `Origin: null` is what a browser sends under our
/// `Referrer-Policy: no-referrer`, so it proves nothing either way.
fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("?"));
    if let Some(site) = text("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (text(ORIGIN.as_str()), text(HOST.as_str())) {
        (Some("null") | None, _) => false,
        (Some(origin), Some(host)) => origin.strip_prefix("https://") != Some(host),
        (Some(_), None) => true,
    }
}

/// Every console POST first has its whole body read (at most 16 KiB kept, within
/// `body_timeout`), so no answer, refusals included, leaves a body unread under the client;
/// then a POST from another site is refused (403) before anything else runs: with the
/// `SameSite` cookie and the form tokens, a second wall against forged forms, and the one that
/// guards the sign-in form (which has no session to bind a token to yet).
async fn guard_posts(body_timeout: Duration, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let refusal = |status, text: &str| {
        let mut page = html(status, message("Form refused", None, text));
        page.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        page
    };
    let body = match read_body(body, body_timeout).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form is larger than 16 KiB.",
            )
        }
        Err(BodyError::TimedOut) => {
            return refusal(
                StatusCode::REQUEST_TIMEOUT,
                "The form did not arrive in time.",
            )
        }
        Err(BodyError::Broken) => {
            return refusal(StatusCode::BAD_REQUEST, "The form could not be read.")
        }
    };
    if cross_site(&parts.headers) {
        log::debug!("console: cross-site POST {} refused", parts.uri.path());
        return html(
            StatusCode::FORBIDDEN,
            message(
                "Form refused",
                None,
                "This form was sent from another site.",
            ),
        );
    }
    next.run(Request::from_parts(parts, Body::from(body.to_vec())))
        .await
}

/// A page with a status.
pub(crate) fn html(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// `303 See Other` to `to`.
pub(crate) fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// The session cookie of `token` (or, with `None`, one that clears it).
pub(crate) fn session_cookie(token: Option<(&str, u64)>) -> HeaderValue {
    let value = match token {
        Some((token, max_age)) => Zeroizing::new(format!(
            "{COOKIE_NAME}={token}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={max_age}"
        )),
        None => Zeroizing::new(format!(
            "{COOKIE_NAME}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0"
        )),
    };
    let mut header = HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""));
    header.set_sensitive(true);
    header
}

/// The session token in the request's cookies, if any.
fn token_of(parts: &Parts) -> Option<Zeroizing<String>> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE_NAME && !value.is_empty()).then(|| Zeroizing::new(value.to_owned()))
        })
}

/// The error page of a refused or failed operator call, with its status.
pub(crate) fn refused(nav: Option<&Nav>, e: &OpError) -> Response {
    let body = e.body();
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let title = match status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        s if s.is_server_error() => "Server error",
        _ => "Refused",
    };
    html(status, message(title, nav, &body.message))
}

/// The page shown when the server could not run a request.
pub(crate) fn failed() -> Response {
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        message("Server error", None, "The server failed; try again later."),
    )
}

/// A signed-in operator: the request carried the cookie of a live session.
pub(crate) struct Signed {
    /// The operator, as the service layer authenticated it.
    pub actor: Actor,
    /// The navigation of its pages (name, roles, form token).
    pub nav: Nav,
    /// The session token.
    pub token: Zeroizing<String>,
    /// The form-token key.
    pub key: Arc<CsrfKey>,
}

impl Signed {
    /// The refusal (403) of a form whose token is not this session's; `None` when it is.
    pub(crate) fn form_refusal(&self, presented: &str) -> Option<Response> {
        if self.key.check(&self.token, presented) {
            None
        } else {
            log::debug!(
                "console: form refused for {}: bad form token",
                self.nav.name
            );
            Some(html(
                StatusCode::FORBIDDEN,
                message(
                    "Form refused",
                    Some(&self.nav),
                    "This form was not issued to your session (it is stale or comes from \
                     elsewhere). Load the page again and resubmit.",
                ),
            ))
        }
    }

    /// Runs one operator service call as this operator on a blocking thread: its value, or the
    /// page that answers it instead (the refusal, or the server's failure).
    pub(crate) async fn run<T, F>(&self, shared: &Arc<Shared>, call: F) -> Result<T, Response>
    where
        T: Send + 'static,
        F: FnOnce(&operator::AppState, &Actor) -> Result<T, OpError> + Send + 'static,
    {
        let actor = self.actor.clone();
        match on_worker(shared, move |app| call(app, &actor)).await {
            Some(Ok(value)) => Ok(value),
            Some(Err(e)) => Err(refused(Some(&self.nav), &e)),
            None => Err(failed()),
        }
    }

    /// [`Self::run`] for a posted form: first refuses a form token that is not this session's.
    pub(crate) async fn run_form<T, F>(
        &self,
        shared: &Arc<Shared>,
        csrf: &str,
        call: F,
    ) -> Result<T, Response>
    where
        T: Send + 'static,
        F: FnOnce(&operator::AppState, &Actor) -> Result<T, OpError> + Send + 'static,
    {
        if let Some(refusal) = self.form_refusal(csrf) {
            return Err(refusal);
        }
        self.run(shared, call).await
    }
}

impl FromRequestParts<Arc<Shared>> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        Self::of(parts, shared).await
    }
}

impl Signed {
    /// The signed-in operator of a request, or the answer to give instead (to the sign-in page
    /// without a live session).
    async fn of(parts: &Parts, shared: &Arc<Shared>) -> Result<Self, Response> {
        let key = parts
            .extensions
            .get::<Arc<CsrfKey>>()
            .cloned()
            .ok_or_else(failed)?;
        let peer = parts.extensions.get::<Peer>().map(|p| p.0);
        let Some(token) = token_of(parts) else {
            return Err(see_other("/console/sign-in"));
        };
        let presented = token.clone();
        let found = on_worker(shared, move |app| {
            operator::authenticate(app, &presented, peer)
        })
        .await
        .ok_or_else(failed)?;
        match found {
            Ok(actor) => {
                let nav = Nav {
                    name: actor.name().to_owned(),
                    roles: actor.roles().to_vec(),
                    csrf: key.token(&token),
                    four_eyes: shared.app.operators.four_eyes_puk_readout,
                };
                Ok(Self {
                    actor,
                    nav,
                    token,
                    key,
                })
            }
            Err(e) if e.status() == 401 => {
                // A stale cookie: clear it and ask for a sign-in.
                let mut to = see_other("/console/sign-in");
                to.headers_mut().insert(SET_COOKIE, session_cookie(None));
                Err(to)
            }
            Err(e) => Err(refused(None, &e)),
        }
    }
}

/// The stylesheet (the one asset of the console), cacheable for an hour.
pub(crate) fn stylesheet() -> Response {
    let mut response = include_str!("console/style.css").into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
    response
}
