//! The four-eyes PUK read-out pages: the card page's section (request, waiting, collect), the
//! page after a request, and the list of requests where a second operator approves.

use maud::{html, Markup};

use cardunlock_protocol::operator::{PukReadoutPending, PukReadoutSummary};
use cardunlock_protocol::CardRef;

use super::layout::{csrf_field, page, time, Nav};
use super::pages::card_path;

/// The console path of a request's action (`approve` or `collect`).
fn action(id: &str, what: &str) -> String {
    format!("/console/puk-readouts/{id}/{what}")
}

fn collect_form(nav: &Nav, r: &PukReadoutSummary) -> Markup {
    html! {
        form.stack method="post" action=(action(&r.request, "collect")) {
            (csrf_field(&nav.csrf))
            button type="submit" { "Collect PUK" }
        }
    }
}

/// A PIV card's read-out section with four eyes on: the request form, then the operator's own
/// open requests of the card (waiting, or approved with a "Collect PUK" form).
pub(crate) fn card_section(nav: &Nav, base: &str, mine: &[PukReadoutSummary]) -> Markup {
    html! {
        h2 { "Read out the PUK" }
        p {
            "This server wants a second operator for each read-out: request it, have another \
             help-desk operator approve it under Pending approvals, then collect the PUK here."
        }
        @for r in mine {
            @if let Some(approver) = &r.approved_by {
                p { "Approved by " (approver) " (request " span.mono { (r.request) } ")." }
                (collect_form(nav, r))
            } @else {
                p.notice {
                    "Request " span.mono { (r.request) } " waits for a second operator's \
                     approval (until " (time(r.expires_ms)) " UTC)."
                }
            }
        }
        form.stack method="post" action={ (base) "/puk-readout" } {
            (csrf_field(&nav.csrf))
            label for="identity_checked" { "Identity checked how" }
            input #identity_checked type="text" name="identity_checked" required
                maxlength="500";
            button type="submit" { "Request read-out" }
        }
    }
}

/// After a request: it waits for a second operator.
pub(crate) fn requested(nav: &Nav, card: &CardRef, pending: &PukReadoutPending) -> Markup {
    page(
        "Read-out requested",
        Some(nav),
        html! {
            p.notice role="status" {
                "The read-out waits for a second operator: another help-desk operator approves \
                 it under Pending approvals, then you collect the PUK on the card's page."
            }
            p { "Request " span.mono { (pending.request) } ", open until "
                (time(pending.expires_ms)) " UTC." }
            p { a href=(card_path(card)) { "Back to the card" } }
        },
    )
}

/// The open requests: others' pending ones with an "Approve" form, the operator's own approved
/// ones with a "Collect PUK" form.
pub(crate) fn list(nav: &Nav, requests: &[PukReadoutSummary]) -> Markup {
    page(
        "Pending approvals",
        Some(nav),
        html! {
            @if requests.is_empty() {
                p { "No PUK read-out waits." }
            } @else {
                table {
                    thead { tr {
                        th { "Asked (UTC)" } th { "By" } th { "Holder" } th { "Card" }
                        th { "Identity checked" } th { "State" } th { "Action" }
                    } }
                    tbody {
                        @for r in requests {
                            tr {
                                td.mono { (time(r.created_ms)) }
                                td { (r.requester) }
                                td { a href=(card_path(&r.card)) { (r.user.name) } }
                                td.mono { (r.card.profile.as_str()) " " (r.card.identity) }
                                td { (r.identity_checked) }
                                td {
                                    @if let Some(a) = &r.approved_by { "approved by " (a) }
                                    @else { "waiting" }
                                }
                                td {
                                    @if r.requester == nav.name {
                                        @if r.approved_by.is_some() { (collect_form(nav, r)) }
                                        @else { "yours: another operator approves" }
                                    } @else if r.approved_by.is_none() {
                                        form.stack method="post"
                                            action=(action(&r.request, "approve")) {
                                            (csrf_field(&nav.csrf))
                                            button type="submit" { "Approve" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
