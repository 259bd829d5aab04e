//! The help-desk pages, as pure functions of the operator contract's reply types: sign in,
//! search, a card (state, questions, timeline, and the actions its profile allows) and the
//! results of an offline response or a PUK read-out.

use maud::{html, Markup};

use cardunlock_protocol::operator::{
    AuditRecord, CardDetail, OfflineReply, PukReadoutReply, PukReadoutSummary, Role, SearchReply,
};
use cardunlock_protocol::{CardRef, Profile};

use super::layout::{csrf_field, page, time, Nav};

/// The console path of a card's page.
pub(crate) fn card_path(card: &CardRef) -> String {
    format!("/console/cards/{}/{}", card.profile.as_str(), card.identity)
}

/// The sign-in form; `error` above it after a refused attempt.
pub(crate) fn sign_in(error: Option<&str>) -> Markup {
    page(
        "Sign in",
        None,
        html! {
            @if let Some(error) = error {
                p.notice role="alert" { (error) }
            }
            form.stack method="post" action="/console/sign-in" {
                label for="name" { "Operator name" }
                input #name type="text" name="name" required autofocus autocomplete="username"
                    maxlength="64" autocapitalize="none" spellcheck="false";
                label for="password" { "Password" }
                input #password type="password" name="password" required
                    autocomplete="current-password";
                label for="totp" { "Authenticator code" }
                input #totp type="text" name="totp" required inputmode="numeric"
                    autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6";
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// The search form and, after a query, its results.
pub(crate) fn search(nav: &Nav, q: &str, results: Option<&SearchReply>) -> Markup {
    page(
        "Search cards",
        Some(nav),
        html! {
            form.row method="get" action="/console/" role="search" {
                label for="q" { "Name, e-mail or card identity" }
                input #q type="search" name="q" value=(q) autofocus maxlength="128";
                button type="submit" { "Search" }
            }
            @if let Some(results) = results {
                @if results.cards.is_empty() {
                    p { "No card matches." }
                } @else {
                    table {
                        thead { tr {
                            th { "Holder" } th { "E-mail" } th { "Card" } th { "State" }
                            th { "Enrolled" }
                        } }
                        tbody {
                            @for c in &results.cards {
                                tr {
                                    td { a href=(card_path(&c.card)) { (c.user.name) } }
                                    td { (c.user.email) }
                                    td.mono { (c.card.profile.as_str()) " " (c.card.identity) }
                                    td { @if c.locked { strong.bad { "locked" } } @else { "ok" } }
                                    td { (time(c.enrolled_ms)) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// A card: holder, state, enrolled questions (never answers), the actions its profile allows
/// and its audit timeline; with four eyes on, `mine` are the operator's open read-out requests
/// of the card.
pub(crate) fn card(nav: &Nav, d: &CardDetail, mine: &[PukReadoutSummary]) -> Markup {
    let base = card_path(&d.card);
    let helpdesk = nav.has(Role::Helpdesk);
    page(
        &d.user.name,
        Some(nav),
        html! {
            dl.facts {
                dt { "Holder" } dd { (d.user.name) }
                dt { "E-mail" } dd { (d.user.email) }
                dt { "Card" } dd.mono { (d.card.profile.as_str()) " " (d.card.identity) }
                dt { "Algorithm" } dd { (d.algorithm.as_str()) }
                dt { "Online unlock" } dd {
                    @if d.locked { strong.bad { "locked" } } @else { "open" }
                }
                @if let Some(why) = &d.diverged {
                    dt { "Card secrets" } dd {
                        strong.bad { "diverged: online unlock stopped until the card is enrolled again" }
                        " (" (why) ")"
                    }
                }
                dt { "Attempts left" } dd { (d.attempts_left) }
                dt { "Key generation" } dd {
                    (d.key_generation)
                    @if let Some(p) = d.pending_key_generation { " (pending " (p) ")" }
                }
                @if d.card.profile == Profile::Piv {
                    dt { "PUK generation" } dd {
                        (d.puk_generation)
                        @if let Some(p) = d.pending_puk_generation { " (pending " (p) ")" }
                    }
                    dt { "PUK read out" } dd {
                        @if d.puk_read_out { strong.bad { "yes, until the next rotation" } }
                        @else { "no" }
                    }
                }
                dt { "Enrolled" } dd { (time(d.enrolled_ms)) }
            }
            h2 { "Security questions" }
            @if d.questions.is_empty() {
                p { "None enrolled: online unlock is unavailable for this card." }
            } @else {
                ol { @for q in &d.questions { li { (q) } } }
            }
            @if helpdesk {
                @if d.locked {
                    h2 { "Lift the lock" }
                    form.stack method="post" action={ (base) "/lift-lock" } {
                        (csrf_field(&nav.csrf))
                        label for="reason" { "Reason (goes to the audit)" }
                        input #reason type="text" name="reason" required maxlength="500";
                        button type="submit" { "Lift lock" }
                    }
                }
                (offline_section(nav, d, &base, mine))
            }
            h2 { "Timeline" }
            (timeline(&d.timeline))
            @if nav.may_audit() {
                p {
                    a href={ "/console/audit?card=" (d.card.identity) } {
                        "Every audit row of this card"
                    }
                }
            }
        },
    )
}

fn offline_section(nav: &Nav, d: &CardDetail, base: &str, mine: &[PukReadoutSummary]) -> Markup {
    html! {
        @match d.card.profile {
            Profile::Iso => {
                h2 { "Offline response" }
                form.stack method="post" action={ (base) "/offline-response" } {
                    (csrf_field(&nav.csrf))
                    label for="challenge" { "Challenge the user reads out (hex)" }
                    input #challenge.mono type="text" name="challenge" required
                        autocomplete="off" spellcheck="false" maxlength="64";
                    label for="identity_checked" { "Identity checked how" }
                    input #identity_checked type="text" name="identity_checked" required
                        maxlength="500";
                    button type="submit" { "Compute response" }
                }
            }
            Profile::Gids => {
                h2 { "Offline response" }
                p.notice {
                    "GIDS cards unlock by mutual authentication with the admin key: there is no \
                     challenge to read out. Ask the user to run the online unlock (cardunlock \
                     unlock --server), after lifting the lock if it is locked."
                }
            }
            Profile::Piv if nav.four_eyes => {
                (super::readout_pages::card_section(nav, base, mine))
            }
            Profile::Piv => {
                h2 { "Read out the PUK" }
                p { "The PUK stays known outside the server until the card's next rotation." }
                form.stack method="post" action={ (base) "/puk-readout" } {
                    (csrf_field(&nav.csrf))
                    label for="identity_checked" { "Identity checked how" }
                    input #identity_checked type="text" name="identity_checked" required
                        maxlength="500";
                    button type="submit" { "Show PUK" }
                }
            }
        }
    }
}

/// Audit rows as a table (the card timeline and the audit page).
pub(crate) fn timeline(rows: &[AuditRecord]) -> Markup {
    html! {
        @if rows.is_empty() {
            p { "Nothing recorded." }
        } @else {
            table.audit {
                thead { tr {
                    th { "Time (UTC)" } th { "Event" } th { "Outcome" } th { "Operator" }
                    th { "Address" } th { "Card" } th { "Detail" }
                } }
                tbody {
                    @for r in rows {
                        tr {
                            td.mono { (time(r.time_ms)) }
                            td { (r.event) }
                            td { (r.outcome) }
                            td {
                                @if let Some(o) = &r.operator { (o) }
                                @if let Some(role) = r.role { " (" (role.as_str()) ")" }
                            }
                            td.mono { @if let Some(a) = &r.address { (a) } }
                            td.mono {
                                @if let Some(c) = &r.card {
                                    (c.profile.as_str()) " " (c.identity)
                                }
                            }
                            td { (r.detail) }
                        }
                    }
                }
            }
        }
    }
}

/// The response to an offline challenge, grouped for reading aloud.
pub(crate) fn offline_result(nav: &Nav, card: &CardRef, reply: &OfflineReply) -> Markup {
    page(
        "Offline response",
        Some(nav),
        html! {
            p { "Read this to the user, group by group; they type it on their workstation." }
            p.readout #response aria-label="Response" { (reply.grouped.expose()) }
            p { a href=(card_path(card)) { "Back to the card" } }
        },
    )
}

/// A PIV card's PUK, grouped for reading aloud, with the alternative if there is one.
pub(crate) fn puk_result(nav: &Nav, card: &CardRef, reply: &PukReadoutReply) -> Markup {
    let grouped = cardunlock_protocol::operator::group_for_reading(reply.puk.expose());
    page(
        "PUK read-out",
        Some(nav),
        html! {
            p { "PUK of generation " (reply.generation) ":" }
            p.readout #puk aria-label="PUK" { (grouped.expose()) }
            @if let Some(alt) = &reply.alternative {
                @let alt = cardunlock_protocol::operator::group_for_reading(alt.expose());
                p { "Only if the card refuses it, try this one:" }
                p.readout #puk-alternative aria-label="Alternative PUK" { (alt.expose()) }
            }
            p { a href=(card_path(card)) { "Back to the card" } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::csrf::CsrfKey;
    use cardunlock_protocol::operator::{AuditRecord, CardDetail};
    use cardunlock_protocol::{AlgorithmName, User};

    fn nav(roles: &[Role]) -> Nav {
        Nav {
            name: "alice".into(),
            roles: roles.to_vec(),
            csrf: CsrfKey::random().token("session"),
            four_eyes: false,
        }
    }

    fn detail(profile: Profile, locked: bool) -> CardDetail {
        CardDetail {
            card: CardRef {
                profile,
                identity: "0a0b".parse().unwrap(),
            },
            user: User {
                name: "Ann <b>Bold</b>".into(),
                email: "ann@example.invalid".into(),
            },
            algorithm: AlgorithmName::TripleDes,
            locked,
            attempts_left: 0,
            key_generation: 2,
            pending_key_generation: None,
            puk_generation: 1,
            pending_puk_generation: Some(2),
            puk_read_out: true,
            diverged: None,
            questions: vec!["Pet & \"name\"?".into()],
            enrolled_ms: 0,
            timeline: vec![AuditRecord {
                time_ms: 0,
                operator: Some("bob".into()),
                role: Some(Role::Helpdesk),
                address: Some("127.0.0.1".into()),
                card: None,
                session: None,
                event: "lift_lock".into(),
                outcome: "lifted".into(),
                detail: "reason: <i>call-back</i>".into(),
            }],
        }
    }

    #[test]
    fn each_profile_offers_its_own_offline_path() {
        let helpdesk = nav(&[Role::Helpdesk]);
        let iso = card(&helpdesk, &detail(Profile::Iso, true), &[]).into_string();
        assert!(iso.contains("/console/cards/iso/0a0b/offline-response"));
        assert!(iso.contains("/console/cards/iso/0a0b/lift-lock"));
        assert!(!iso.contains("puk-readout"));
        let gids = card(&helpdesk, &detail(Profile::Gids, false), &[]).into_string();
        assert!(gids.contains("needs") || gids.contains("online unlock"));
        assert!(!gids.contains("offline-response") && !gids.contains("lift-lock"));
        let piv = card(&helpdesk, &detail(Profile::Piv, false), &[]).into_string();
        assert!(piv.contains("/console/cards/piv/0a0b/puk-readout"));
        assert!(piv.contains("PUK read out") && piv.contains("(pending 2)"));
        // Someone without the helpdesk role sees the card but no action.
        let auditor = card(&nav(&[Role::Auditor]), &detail(Profile::Iso, true), &[]).into_string();
        assert!(!auditor.contains("<form method=\"post\" action=\"/console/cards"));
    }

    #[test]
    fn every_form_carries_the_session_token_and_data_is_escaped() {
        let n = nav(&[Role::Helpdesk]);
        let page = card(&n, &detail(Profile::Iso, true), &[]).into_string();
        let forms = page.matches("<form").count();
        let tokens = page
            .matches(&format!("name=\"csrf\" value=\"{}\"", n.csrf.0))
            .count();
        assert_eq!(forms, tokens, "{page}");
        assert!(page.contains("Ann &lt;b&gt;Bold&lt;/b&gt;"));
        assert!(page.contains("Pet &amp; &quot;name&quot;?"));
        assert!(page.contains("reason: &lt;i&gt;call-back&lt;/i&gt;"));
        assert!(!page.contains("<b>") && !page.contains("<i>"));
    }
}
