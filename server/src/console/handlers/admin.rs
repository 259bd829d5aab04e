//! The handlers of the audit (auditor, admin) and operator (admin) pages.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use cardunlock_protocol::operator::{AddOperatorRequest, Role};
use cardunlock_protocol::Secret;

use super::TokenForm;
use crate::console::admin_pages::{self, AuditFilters};
use crate::console::layout::message;
use crate::console::{failed, html, refused, see_other, Signed};
use crate::http::{on_worker, Shared};
use crate::operator;

/// `GET /console/audit?...`: the filters and the matching rows.
pub(crate) async fn audit(
    State(shared): State<Arc<Shared>>,
    signed: Signed,
    Query(filters): Query<AuditFilters>,
) -> Response {
    let query = match filters.query() {
        Ok(q) => q,
        Err(why) => {
            let page = admin_pages::audit(&signed.nav, &filters, &[], Some(why));
            return html(StatusCode::BAD_REQUEST, page);
        }
    };
    let found = signed.run(&shared, move |app, actor| {
        operator::audit_query(app, actor, &query)
    });
    match found.await {
        Ok(reply) => html(
            StatusCode::OK,
            admin_pages::audit(&signed.nav, &filters, &reply.entries, None),
        ),
        Err(page) => page,
    }
}

/// `GET /console/audit.csv?...`: the same rows as a CSV download.
pub(crate) async fn audit_csv(
    State(shared): State<Arc<Shared>>,
    signed: Signed,
    Query(filters): Query<AuditFilters>,
) -> Response {
    let Ok(query) = filters.query() else {
        return html(
            StatusCode::BAD_REQUEST,
            message(
                "Refused",
                Some(&signed.nav),
                "Dates are written YYYY-MM-DD.",
            ),
        );
    };
    let found = signed.run(&shared, move |app, actor| {
        operator::audit_csv(app, actor, &query)
    });
    match found.await {
        Ok(csv) => crate::http::operator::csv_download(csv),
        Err(page) => page,
    }
}

/// The operators page, with the authenticator URI of an operator just added or reset.
async fn operators_page(
    shared: &Arc<Shared>,
    signed: &Signed,
    enrolled: Option<(&str, &Secret)>,
    error: Option<(StatusCode, &str)>,
) -> Response {
    match signed.run(shared, operator::list_operators).await {
        Ok(list) => {
            let status = error.map_or(StatusCode::OK, |(s, _)| s);
            let page = admin_pages::operators(&signed.nav, &list, enrolled, error.map(|e| e.1));
            html(status, page)
        }
        Err(page) => page,
    }
}

/// `GET /console/operators` (admin only).
pub(crate) async fn operators(State(shared): State<Arc<Shared>>, signed: Signed) -> Response {
    operators_page(&shared, &signed, None, None).await
}

/// The add-operator form (one checkbox per role).
#[derive(Deserialize)]
pub(crate) struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    password: Secret,
    role_helpdesk: Option<String>,
    role_enroller: Option<String>,
    role_auditor: Option<String>,
    role_admin: Option<String>,
}

/// `POST /console/operators`: adds one and shows its authenticator URI once.
pub(crate) async fn add_operator(
    State(shared): State<Arc<Shared>>,
    signed: Signed,
    Form(form): Form<AddForm>,
) -> Response {
    if let Some(refusal) = signed.form_refusal(&form.csrf) {
        return refusal;
    }
    let roles: Vec<Role> = [
        (Role::Helpdesk, &form.role_helpdesk),
        (Role::Enroller, &form.role_enroller),
        (Role::Auditor, &form.role_auditor),
        (Role::Admin, &form.role_admin),
    ]
    .into_iter()
    .filter(|(_, on)| on.is_some())
    .map(|(r, _)| r)
    .collect();
    let name = form.name.trim().to_owned();
    let req = AddOperatorRequest {
        name: name.clone(),
        roles,
        password: form.password,
    };
    let actor = signed.actor.clone();
    match on_worker(&shared, move |app| {
        operator::add_operator(app, &actor, &req)
    })
    .await
    {
        Some(Ok(t)) => operators_page(&shared, &signed, Some((&name, &t.totp_uri)), None).await,
        Some(Err(e)) if e.status() < 500 && e.status() != 403 => {
            let why = e.body().message;
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            operators_page(&shared, &signed, None, Some((status, &why))).await
        }
        Some(Err(e)) => refused(Some(&signed.nav), &e),
        None => failed(),
    }
}

/// `POST /console/operators/{name}/disable`.
pub(crate) async fn disable_operator(
    State(shared): State<Arc<Shared>>,
    signed: Signed,
    Path(name): Path<String>,
    Form(form): Form<TokenForm>,
) -> Response {
    let done = signed.run_form(&shared, &form.csrf, move |app, actor| {
        operator::disable_operator(app, actor, &name)
    });
    match done.await {
        Ok(_) => see_other("/console/operators"),
        Err(page) => page,
    }
}

/// `POST /console/operators/{name}/reset-totp`: shows the new authenticator URI once.
pub(crate) async fn reset_totp(
    State(shared): State<Arc<Shared>>,
    signed: Signed,
    Path(name): Path<String>,
    Form(form): Form<TokenForm>,
) -> Response {
    let who = name.clone();
    let done = signed.run_form(&shared, &form.csrf, move |app, actor| {
        operator::reset_totp(app, actor, &who)
    });
    match done.await {
        Ok(t) => operators_page(&shared, &signed, Some((&name, &t.totp_uri)), None).await,
        Err(page) => page,
    }
}
