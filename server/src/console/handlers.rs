//! The console's request handlers: each authenticates the cookie ([`Signed`]), checks the form
//! token of a form, runs one operator service call on a blocking thread and renders its page.
//! The audit and operator pages are in [`admin`].

mod admin;
mod readouts;

pub(crate) use admin::{add_operator, audit, audit_csv, disable_operator, operators, reset_totp};
pub(crate) use readouts::{approve_puk_readout, collect_puk_readout, puk_readouts};

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use serde::Deserialize;

use cardunlock_protocol::operator::{
    LiftLockRequest, OfflineRequest, PukReadoutRequest, SignInRequest,
};
use cardunlock_protocol::{CardRef, Challenge, Profile, Role, Secret};

use super::layout::message;
use super::pages::{self, card_path};
use super::readout_pages;
use super::{failed, html, see_other, session_cookie, stylesheet, Signed};
use crate::http::{on_worker, Peer, Shared};
use crate::operator::{self, Actor, OpError};

/// `GET /console`: to `/console/`.
pub(crate) async fn to_console() -> Response {
    see_other("/console/")
}

/// `GET /console/style.css`.
pub(crate) async fn style() -> Response {
    stylesheet()
}

/// Any other path under `/console/`: a 404 page.
pub(crate) async fn not_found() -> Response {
    html(
        StatusCode::NOT_FOUND,
        message("Not found", None, "There is no such console page."),
    )
}

/// `GET /console/sign-in`.
pub(crate) async fn sign_in_form() -> Response {
    html(StatusCode::OK, pages::sign_in(None))
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    name: String,
    password: Secret,
    totp: Secret,
}

/// `POST /console/sign-in`: password and TOTP; on success the session cookie and the search.
pub(crate) async fn sign_in(
    State(shared): State<Arc<Shared>>,
    Extension(Peer(peer)): Extension<Peer>,
    Form(form): Form<SignInForm>,
) -> Response {
    let req = SignInRequest {
        name: form.name.trim().to_owned(),
        password: form.password,
        totp: form.totp,
    };
    let Some(result) =
        on_worker(&shared, move |app| operator::sign_in(app, &req, Some(peer))).await
    else {
        return failed();
    };
    match result {
        Ok((token, reply)) => {
            let mut to = see_other("/console/");
            to.headers_mut().insert(
                SET_COOKIE,
                session_cookie(Some((token.expose(), reply.expires_in_s))),
            );
            to
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
            html(status, pages::sign_in(Some(&e.body().message)))
        }
    }
}

/// A form that carries only the form token.
#[derive(Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /console/sign-out`: ends the session, clears the cookie.
pub(crate) async fn sign_out(
    State(shared): State<Arc<Shared>>,
    signed: Signed,
    Form(form): Form<TokenForm>,
) -> Response {
    let done = signed.run_form(&shared, &form.csrf, operator::sign_out);
    match done.await {
        Ok(_) => {
            let mut to = see_other("/console/sign-in");
            to.headers_mut().insert(SET_COOKIE, session_cookie(None));
            to
        }
        Err(page) => page,
    }
}

/// The search box.
#[derive(Deserialize)]
pub(crate) struct SearchForm {
    #[serde(default)]
    q: String,
}

/// `GET /console/?q=`: the search page, with results when `q` is given.
pub(crate) async fn search(
    State(shared): State<Arc<Shared>>,
    signed: Signed,
    Query(form): Query<SearchForm>,
) -> Response {
    let q = form.q.trim().to_owned();
    if q.is_empty() {
        return html(StatusCode::OK, pages::search(&signed.nav, "", None));
    }
    let query = q.clone();
    match signed
        .run(&shared, move |app, actor| {
            operator::search(app, actor, &query)
        })
        .await
    {
        Ok(reply) => html(StatusCode::OK, pages::search(&signed.nav, &q, Some(&reply))),
        Err(page) => page,
    }
}

/// `GET /console/cards/{profile}/{identity}`.
pub(crate) async fn card(
    State(shared): State<Arc<Shared>>,
    signed: Signed,
    Path((profile, identity)): Path<(String, String)>,
) -> Response {
    let found = signed.run(&shared, move |app, actor| {
        let detail = operator::card_detail(app, actor, &profile, &identity)?;
        // With four eyes on, the helpdesk operator's own open read-outs of this card.
        let mine = if app.operators.four_eyes_puk_readout && actor.has(Role::Helpdesk) {
            let mut list = operator::puk_readouts(app, actor)?.requests;
            list.retain(|r| r.card == detail.card && r.requester == actor.name());
            list
        } else {
            Vec::new()
        };
        Ok((detail, mine))
    });
    match found.await {
        Ok((detail, mine)) => html(StatusCode::OK, pages::card(&signed.nav, &detail, &mine)),
        Err(page) => page,
    }
}

/// The card a console path names, when its profile is one of ours.
fn card_ref(profile: &str, identity: &str) -> Option<CardRef> {
    Some(CardRef {
        profile: profile.parse::<Profile>().ok()?,
        identity: identity.parse().ok()?,
    })
}

/// A form posted on a card's page: refuses a form token that is not this session's, then a
/// profile that is not one of ours (404), then runs `call` on the card as the signed-in operator
/// and answers with `page` of the card and the call's value (or with the refusal).
async fn on_card<T, F>(
    shared: &Arc<Shared>,
    signed: &Signed,
    csrf: &str,
    (profile, identity): (String, String),
    call: F,
    page: impl FnOnce(&CardRef, T) -> Response,
) -> Response
where
    T: Send + 'static,
    F: FnOnce(&operator::AppState, &Actor, &str, &str) -> Result<T, OpError> + Send + 'static,
{
    if let Some(refusal) = signed.form_refusal(csrf) {
        return refusal;
    }
    let Some(card) = card_ref(&profile, &identity) else {
        return html(
            StatusCode::NOT_FOUND,
            message("Not found", Some(&signed.nav), "No such card profile."),
        );
    };
    let done = signed.run(shared, move |app, actor| {
        call(app, actor, &profile, &identity)
    });
    match done.await {
        Ok(value) => page(&card, value),
        Err(refusal) => refusal,
    }
}

/// The lift-lock form.
#[derive(Deserialize)]
pub(crate) struct LiftLockForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// `POST .../lift-lock`: back to the card page.
pub(crate) async fn lift_lock(
    State(shared): State<Arc<Shared>>,
    signed: Signed,
    Path(card): Path<(String, String)>,
    Form(form): Form<LiftLockForm>,
) -> Response {
    let req = LiftLockRequest {
        reason: form.reason,
    };
    let call = move |app: &_, actor: &_, p: &_, i: &_| operator::lift_lock(app, actor, p, i, &req);
    on_card(&shared, &signed, &form.csrf, card, call, |card, _| {
        see_other(&card_path(card))
    })
    .await
}

/// The offline-response and PUK read-out forms.
#[derive(Deserialize)]
pub(crate) struct OfflineForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    challenge: String,
    #[serde(default)]
    identity_checked: String,
}

/// `POST .../offline-response`: the response, grouped for reading aloud.
pub(crate) async fn offline_response(
    State(shared): State<Arc<Shared>>,
    signed: Signed,
    Path(card): Path<(String, String)>,
    Form(form): Form<OfflineForm>,
) -> Response {
    // Decoded as the JSON API decodes it; refused (400) after the form token and the sign-in
    // are checked, before the role, as a malformed JSON body is.
    let challenge = form.challenge.parse::<Challenge>();
    let identity_checked = form.identity_checked;
    let call = move |app: &_, actor: &_, p: &_, i: &_| {
        let req = OfflineRequest {
            challenge: challenge.map_err(|e| OpError::bad(format!("Bad request: {e}.")))?,
            identity_checked,
        };
        operator::offline_response(app, actor, p, i, &req)
    };
    on_card(&shared, &signed, &form.csrf, card, call, |card, reply| {
        html(
            StatusCode::OK,
            pages::offline_result(&signed.nav, card, &reply),
        )
    })
    .await
}

/// `POST .../puk-readout`: the PIV card's PUK, grouped for reading aloud; with four eyes on,
/// the request's page (it waits for a second operator).
pub(crate) async fn puk_readout(
    State(shared): State<Arc<Shared>>,
    signed: Signed,
    Path(card): Path<(String, String)>,
    Form(form): Form<OfflineForm>,
) -> Response {
    let req = PukReadoutRequest {
        identity_checked: form.identity_checked,
    };
    let call = move |app: &operator::AppState, actor: &_, p: &_, i: &_| {
        if app.operators.four_eyes_puk_readout {
            operator::puk_readout_request(app, actor, p, i, &req).map(Err)
        } else {
            operator::puk_readout(app, actor, p, i, &req).map(Ok)
        }
    };
    on_card(&shared, &signed, &form.csrf, card, call, |card, outcome| {
        let page = match outcome {
            Ok(reply) => pages::puk_result(&signed.nav, card, &reply),
            Err(pending) => readout_pages::requested(&signed.nav, card, &pending),
        };
        html(StatusCode::OK, page)
    })
    .await
}
