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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::csrf::CsrfKey;
    use cardunlock_protocol::{Profile, Role, User};

    fn request(id: &str, requester: &str, approved_by: Option<&str>) -> PukReadoutSummary {
        PukReadoutSummary {
            request: id.into(),
            card: CardRef {
                profile: Profile::Piv,
                identity: "0a0b".parse().unwrap(),
            },
            user: User {
                name: "Ann <b>Bold</b>".into(),
                email: "ann@example.invalid".into(),
            },
            requester: requester.into(),
            identity_checked: "call-back <i>desk</i>".into(),
            created_ms: 0,
            expires_ms: 900_000,
            approved_by: approved_by.map(Into::into),
        }
    }

    #[test]
    fn others_requests_get_approve_forms_own_approved_ones_collect_forms_all_with_the_token() {
        let nav = Nav {
            name: "alice".into(),
            roles: vec![Role::Helpdesk],
            csrf: CsrfKey::random().token("session"),
            four_eyes: true,
        };
        let requests = [
            request("aa", "bob", None),
            request("bb", "alice", None),
            request("cc", "alice", Some("bob")),
            request("dd", "carol", Some("bob")),
        ];
        let page = list(&nav, &requests).into_string();
        assert!(page.contains("/console/puk-readouts/aa/approve"));
        assert!(
            !page.contains("/console/puk-readouts/bb/"),
            "own request: no form"
        );
        assert!(page.contains("/console/puk-readouts/cc/collect"));
        assert!(
            !page.contains("/console/puk-readouts/dd/"),
            "approved, not ours: no form"
        );
        let forms = page.matches("<form").count();
        let tokens = page
            .matches(&format!("name=\"csrf\" value=\"{}\"", nav.csrf.0))
            .count();
        assert_eq!(forms, tokens, "{page}");
        assert!(page.contains("Ann &lt;b&gt;Bold&lt;/b&gt;"));
        assert!(page.contains("call-back &lt;i&gt;desk&lt;/i&gt;"));
        assert!(!page.contains("<b>") && !page.contains("<i>"));
        assert!(page.contains("href=\"/console/puk-readouts\""), "nav link");
        let section = card_section(&nav, "/console/cards/piv/0a0b", &requests[1..3]).into_string();
        assert!(section.contains("waits for a second operator"));
        assert!(section.contains("/console/puk-readouts/cc/collect"));
        assert!(section.contains("Request read-out") && !section.contains("Show PUK"));
    }
}
