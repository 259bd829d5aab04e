//! The frame every console page shares (head, navigation, sign-out form), the hidden form-token
//! field and the small formatting helpers. All text goes through maud, which escapes it.

use maud::{html, Markup, DOCTYPE};

use cardunlock_protocol::operator::Role;

use super::csrf::Csrf;

/// Who is signed in, as the navigation shows it, with the form token of the session.
#[derive(Debug)]
pub(crate) struct Nav {
    /// The operator's name.
    pub name: String,
    /// Its roles.
    pub roles: Vec<Role>,
    /// The session's form token.
    pub csrf: Csrf,
    /// Whether PUK read-outs need a second operator (four eyes).
    pub four_eyes: bool,
}

impl Nav {
    /// Whether the operator holds `role`.
    pub(crate) fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether it may read the audit log.
    pub(crate) fn may_audit(&self) -> bool {
        self.has(Role::Auditor) || self.has(Role::Admin)
    }
}

/// The hidden form-token field.
pub(crate) fn csrf_field(csrf: &Csrf) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf.0); }
}

/// A whole page: `title`, the navigation when someone is signed in, then `body`.
pub(crate) fn page(title: &str, nav: Option<&Nav>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · cardunlock console" }
                link rel="stylesheet" href="/console/style.css";
                // No favicon request (an empty one, allowed by `img-src data:`).
                link rel="icon" href="data:,";
            }
            body {
                header.bar {
                    span.brand { "cardunlock" }
                    @if let Some(nav) = nav {
                        nav aria-label="Main" {
                            a href="/console/" { "Search" }
                            @if nav.may_audit() {
                                a href="/console/audit" { "Audit" }
                            }
                            @if nav.four_eyes && nav.has(Role::Helpdesk) {
                                a href="/console/puk-readouts" { "Pending approvals" }
                            }
                            @if nav.has(Role::Admin) {
                                a href="/console/operators" { "Operators" }
                            }
                        }
                        span.who {
                            (nav.name)
                            " ("
                            @for (i, role) in nav.roles.iter().enumerate() {
                                @if i > 0 { ", " }
                                (role.as_str())
                            }
                            ")"
                        }
                        form.signout method="post" action="/console/sign-out" {
                            (csrf_field(&nav.csrf))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A message page (refusals, errors): `title` and one paragraph.
pub(crate) fn message(title: &str, nav: Option<&Nav>, text: &str) -> Markup {
    page(
        title,
        nav,
        html! {
            p.notice role="alert" { (text) }
            p { a href="/console/" { "Back to search" } }
        },
    )
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS` UTC.
pub(crate) fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(time(0), "1970-01-01 00:00:00");
        assert_eq!(time(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(time(1_796_609_680_123), "2026-12-07 02:14:40");
        assert_eq!(time(-1000), "1969-12-31 23:59:59");
    }
}
