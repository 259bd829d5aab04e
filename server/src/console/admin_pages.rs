//! The audit page (filters, rows, CSV download) and the operators page (admin only).

use maud::{html, Markup};

use cardunlock_protocol::operator::{AuditQuery, AuditRecord, OperatorList, Role};
use cardunlock_protocol::Secret;

use super::layout::{csrf_field, page, time, Nav};
use super::pages::timeline;

/// The audit filters as they were typed (text fields; dates as `YYYY-MM-DD`).
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub(crate) struct AuditFilters {
    /// Card identity (hex).
    #[serde(default)]
    pub card: String,
    /// Part of the holder's name or e-mail.
    #[serde(default)]
    pub user: String,
    /// Operator name.
    #[serde(default)]
    pub operator: String,
    /// Event name.
    #[serde(default)]
    pub event: String,
    /// From this day (UTC), `YYYY-MM-DD`.
    #[serde(default)]
    pub since: String,
    /// Up to and including this day (UTC), `YYYY-MM-DD`.
    #[serde(default)]
    pub until: String,
}

/// Days since the Unix epoch of a `YYYY-MM-DD` date.
pub(crate) fn days_from_civil(date: &str) -> Option<i64> {
    let mut parts = date.trim().splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

impl AuditFilters {
    /// The contract's query, or what is wrong with a date.
    pub(crate) fn query(&self) -> Result<AuditQuery, &'static str> {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let day = |s: &str, next: i64| -> Result<Option<i64>, &'static str> {
            match text(s) {
                None => Ok(None),
                Some(s) => days_from_civil(&s)
                    .map(|d| Some((d + next) * 86_400_000))
                    .ok_or("Dates are written YYYY-MM-DD."),
            }
        };
        Ok(AuditQuery {
            card: text(&self.card).map(|c| c.to_ascii_lowercase()),
            user: text(&self.user),
            operator: text(&self.operator),
            event: text(&self.event),
            since_ms: day(&self.since, 0)?,
            until_ms: day(&self.until, 1)?,
            limit: None,
        })
    }

    /// The filters as a query string (for the CSV link), each value URL-encoded.
    pub(crate) fn query_string(&self) -> String {
        let pairs = [
            ("card", &self.card),
            ("user", &self.user),
            ("operator", &self.operator),
            ("event", &self.event),
            ("since", &self.since),
            ("until", &self.until),
        ];
        let set: Vec<(&str, &str)> = pairs
            .iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        serde_urlencoded::to_string(set).unwrap_or_default()
    }
}

/// `text` as a QR code, drawn as one SVG path of its dark modules (no image, no script).
fn qr(text: &str) -> Markup {
    let Ok(code) = qrcode::QrCode::new(text.as_bytes()) else {
        return html! {};
    };
    let width = code.width();
    let mut d = String::new();
    for (i, colour) in code.to_colors().iter().enumerate() {
        if *colour == qrcode::Color::Dark {
            d.push_str(&format!("M{} {}h1v1h-1z", i % width + 4, i / width + 4));
        }
    }
    let side = width + 8;
    html! {
        svg.qr xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (side) " " (side) }
            width="232" height="232" role="img" aria-label="QR code of the URI"
            shape-rendering="crispEdges" {
            // Closed explicitly: in HTML's SVG a `<rect>` left open would swallow the path.
            rect width=(side) height=(side) fill="#fff" {}
            path d=(d) fill="#000" {}
        }
    }
}

/// The audit page: filters, then the rows (newest first).
pub(crate) fn audit(
    nav: &Nav,
    filters: &AuditFilters,
    rows: &[AuditRecord],
    error: Option<&str>,
) -> Markup {
    let field = |id: &str, label: &str, value: &str, kind: &str| {
        html! {
            span.field {
                label for=(id) { (label) }
                input id=(id) type=(kind) name=(id) value=(value);
            }
        }
    };
    page(
        "Audit",
        Some(nav),
        html! {
            form.filters method="get" action="/console/audit" {
                (field("card", "Card identity", &filters.card, "text"))
                (field("user", "Holder", &filters.user, "text"))
                (field("operator", "Operator", &filters.operator, "text"))
                (field("event", "Event", &filters.event, "text"))
                (field("since", "From (UTC)", &filters.since, "date"))
                (field("until", "To (UTC)", &filters.until, "date"))
                button type="submit" { "Filter" }
            }
            @if let Some(error) = error {
                p.notice role="alert" { (error) }
            } @else {
                p {
                    (rows.len()) " rows. "
                    a href={ "/console/audit.csv?" (filters.query_string()) } download {
                        "Download as CSV"
                    }
                }
                (timeline(rows))
            }
        },
    )
}

/// The operators page: the list with disable / reset-TOTP buttons, the add form, and after an
/// add or a reset the new authenticator URI (shown once).
pub(crate) fn operators(
    nav: &Nav,
    list: &OperatorList,
    enrolled: Option<(&str, &Secret)>,
    error: Option<&str>,
) -> Markup {
    page(
        "Operators",
        Some(nav),
        html! {
            @if let Some(error) = error {
                p.notice role="alert" { (error) }
            }
            @if let Some((name, uri)) = enrolled {
                section.enrolled aria-label="Authenticator set-up" {
                    p {
                        "Authenticator set-up for " strong { (name) }
                        ": scan this code (or type the URI) into their authenticator app now. It is shown only once."
                    }
                    (qr(uri.expose()))
                    p.uri.mono #totp-uri { (uri.expose()) }
                }
            }
            table {
                thead { tr {
                    th { "Name" } th { "Roles" } th { "State" } th { "Since" } th { "Actions" }
                } }
                tbody {
                    @for o in &list.operators {
                        tr {
                            td { (o.name) }
                            td {
                                @for (i, r) in o.roles.iter().enumerate() {
                                    @if i > 0 { ", " }
                                    (r.as_str())
                                }
                            }
                            td { @if o.disabled { strong.bad { "disabled" } } @else { "active" } }
                            td { (time(o.created_ms)) }
                            td.actions {
                                @if !o.disabled && o.name != nav.name {
                                    form method="post"
                                        action={ "/console/operators/" (o.name) "/disable" } {
                                        (csrf_field(&nav.csrf))
                                        button type="submit" { "Disable " (o.name) }
                                    }
                                }
                                @if !o.disabled {
                                    form method="post"
                                        action={ "/console/operators/" (o.name) "/reset-totp" } {
                                        (csrf_field(&nav.csrf))
                                        button type="submit" { "Reset TOTP of " (o.name) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Add an operator" }
            form.stack method="post" action="/console/operators" {
                (csrf_field(&nav.csrf))
                label for="new-name" { "Name (a-z, 0-9, . _ -)" }
                input #new-name type="text" name="name" required maxlength="64"
                    autocapitalize="none" spellcheck="false";
                fieldset {
                    legend { "Roles" }
                    @for role in Role::ALL {
                        label.check {
                            input type="checkbox" name={ "role_" (role.as_str()) } value="on";
                            " " (role.as_str())
                        }
                    }
                }
                label for="new-password" { "Initial password (at least 12 characters)" }
                input #new-password type="password" name="password" required minlength="12"
                    autocomplete="new-password";
                button type="submit" { "Add operator" }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_the_contract_query() {
        let f = AuditFilters {
            card: " 0A0B ".into(),
            since: "2026-12-07".into(),
            until: "2026-12-07".into(),
            ..AuditFilters::default()
        };
        let q = f.query().unwrap();
        assert_eq!(q.card.as_deref(), Some("0a0b"));
        assert_eq!(q.user, None);
        assert_eq!(q.since_ms, Some(1_796_601_600_000));
        assert_eq!(q.until_ms, Some(1_796_601_600_000 + 86_400_000));
        let bad = AuditFilters {
            since: "7/12/2026".into(),
            ..AuditFilters::default()
        };
        assert!(bad.query().is_err());
        assert_eq!(
            f.query_string(),
            "card=+0A0B+&since=2026-12-07&until=2026-12-07"
        );
    }
}
