//! The four-eyes PUK read-out handlers: the list of open requests, approval and collection.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;

use super::TokenForm;
use crate::console::pages::puk_result;
use crate::console::readout_pages;
use crate::console::{html, see_other, Signed};
use crate::http::Shared;
use crate::operator;

/// `GET /console/puk-readouts`: the open requests (role `helpdesk`).
pub(crate) async fn puk_readouts(State(shared): State<Arc<Shared>>, signed: Signed) -> Response {
    match signed.run(&shared, operator::puk_readouts).await {
        Ok(list) => html(
            StatusCode::OK,
            readout_pages::list(&signed.nav, &list.requests),
        ),
        Err(page) => page,
    }
}

/// `POST /console/puk-readouts/{id}/approve`: back to the list.
pub(crate) async fn approve_puk_readout(
    State(shared): State<Arc<Shared>>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<TokenForm>,
) -> Response {
    let call = move |app: &_, actor: &_| operator::approve_puk_readout(app, actor, &id);
    match signed.run_form(&shared, &form.csrf, call).await {
        Ok(_) => see_other("/console/puk-readouts"),
        Err(page) => page,
    }
}

/// `POST /console/puk-readouts/{id}/collect`: the PUK, grouped for reading aloud.
pub(crate) async fn collect_puk_readout(
    State(shared): State<Arc<Shared>>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<TokenForm>,
) -> Response {
    let call = move |app: &_, actor: &_| operator::collect_puk_readout(app, actor, &id);
    match signed.run_form(&shared, &form.csrf, call).await {
        Ok((card, reply)) => html(StatusCode::OK, puk_result(&signed.nav, &card, &reply)),
        Err(page) => page,
    }
}
