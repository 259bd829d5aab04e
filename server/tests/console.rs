//! The console over plain HTTPS (no browser): session cookie, form tokens bound to the
//! session, roles, sign-out, escaping and the Content-Security-Policy.

mod common;
#[path = "common/console.rs"]
mod console;

use cardunlock_server::protocol::operator::Role;
use common::*;
use console::*;

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[test]
fn pages_need_a_session_and_carry_the_csp() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&config(dir.path()));
    let mut web = Browserless::new(&env);
    for path in [
        "/console/",
        "/console/audit",
        "/console/operators",
        "/console/cards/iso/0a",
    ] {
        let r = web.get(path);
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(r.location.as_deref(), Some("/console/sign-in"), "{path}");
    }
    // A form posted without a session is sent to sign in, and the connection stays sound.
    let long = "x".repeat(12 * 1024);
    for _ in 0..20 {
        let form = web.post_form("/console/cards/iso/0a/lift-lock", &[("reason", &long)]);
        assert_eq!(form.status, 303);
        assert_eq!(web.get("/console/style.css").status, 200);
    }
    let page = web.get("/console/sign-in");
    assert_eq!(page.status, 200);
    assert_eq!(page.csp.as_deref(), Some(CSP));
    assert!(!page.body.contains("<script"), "{}", page.body);

    // A wrong code is refused, with the form again.
    let alice = Operator::add(&env, "alice", &[Role::Helpdesk, Role::Admin]);
    let wrong = web.post_form(
        "/console/sign-in",
        &[
            ("name", "alice"),
            ("password", PASSWORD),
            ("totp", "000000"),
        ],
    );
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong.set_cookie.is_none());

    // A form over 16 KiB is refused whole.
    let big = "x".repeat(17 * 1024);
    let large = web.post_form(
        "/console/sign-in",
        &[("name", "alice"), ("password", &big), ("totp", "000000")],
    );
    assert_eq!(large.status, 413, "{}", large.body);

    web.sign_in(&alice);
    let search = web.get("/console/");
    assert_eq!(search.status, 200, "{}", search.body);
    assert_eq!(search.csp.as_deref(), Some(CSP));
    assert!(search.body.contains("alice"));
    let missing = web.get("/console/no/such/page");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.csp.as_deref(), Some(CSP));
    assert!(missing.body.contains("no such console page"));
    let css = web.get("/console/style.css");
    assert_eq!(css.status, 200);
    assert!(css.body.contains(":focus-visible"));
}

#[test]
fn forms_without_or_with_another_sessions_token_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&config(dir.path()));
    locked_card(&env, "0b0b");
    let (alice, hank) = (
        Operator::add(&env, "alice", &[Role::Helpdesk]),
        Operator::add(&env, "hank", &[Role::Helpdesk]),
    );
    let (mut a, mut h) = (Browserless::new(&env), Browserless::new(&env));
    a.sign_in(&alice);
    h.sign_in(&hank);
    let card = "/console/cards/iso/0b0b";
    let a_token = csrf_of(&a.get(card).body);
    let h_token = csrf_of(&h.get(card).body);
    assert_ne!(a_token, h_token);
    let lift = format!("{card}/lift-lock");

    let none = a.post_form(&lift, &[("reason", "caller verified")]);
    assert_eq!(none.status, 403, "{}", none.body);
    let other = a.post_form(&lift, &[("csrf", &h_token), ("reason", "caller verified")]);
    assert_eq!(other.status, 403, "{}", other.body);
    let (status, reply) = env.post("/v1/unlock/start", &card_json("0b0b"));
    assert_eq!(status, 423, "still locked: {reply}");

    let own = a.post_form(&lift, &[("csrf", &a_token), ("reason", "caller verified")]);
    assert_eq!(own.status, 303, "{}", own.body);
    assert_eq!(own.location.as_deref(), Some(card));
    env.start_session("iso", "0b0b");
}

/// Proves the console decodes the challenge as the JSON API does: a malformed one is a 400
/// page naming the rule and not the value (and nothing is answered), a good one (spaces
/// allowed) gets its grouped response.
#[test]
fn a_malformed_challenge_in_the_console_is_a_bad_request() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&config(dir.path()));
    locked_card(&env, "0c0c");
    let alice = Operator::add(&env, "alice", &[Role::Helpdesk]);
    let mut a = Browserless::new(&env);
    a.sign_in(&alice);
    let card = "/console/cards/iso/0c0c";
    let token = csrf_of(&a.get(card).body);
    let path = format!("{card}/offline-response");
    for bad in ["D4BD 9B1D A5D2", "quitesecretvalue"] {
        let form = [
            ("csrf", token.as_str()),
            ("challenge", bad),
            ("identity_checked", "badge"),
        ];
        let page = a.post_form(&path, &form);
        assert_eq!(page.status, 400, "{}", page.body);
        assert!(page.body.contains("16 hex digits, 3DES"), "{}", page.body);
        assert!(!page.body.contains(bad), "{}", page.body);
    }
    let form = [
        ("csrf", token.as_str()),
        ("challenge", "d4bd 9b1d a5d2 6cda"),
        ("identity_checked", "badge"),
    ];
    let page = a.post_form(&path, &form);
    assert_eq!(page.status, 200, "{}", page.body);
}

fn card_json(identity: &str) -> serde_json::Value {
    card("iso", identity)
}

#[test]
fn a_helpdesk_cookie_on_the_operators_page_is_forbidden() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&config(dir.path()));
    let hank = Operator::add(&env, "hank", &[Role::Helpdesk]);
    let mut h = Browserless::new(&env);
    h.sign_in(&hank);
    let r = h.get("/console/operators");
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!h.get("/console/").body.contains("/console/operators"));
    let token = csrf_of(&h.get("/console/").body);
    let add = h.post_form(
        "/console/operators",
        &[
            ("csrf", &token),
            ("name", "mallory"),
            ("password", PASSWORD),
            ("role_admin", "on"),
        ],
    );
    assert_eq!(add.status, 403, "{}", add.body);
}

#[test]
fn a_cookie_after_sign_out_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&config(dir.path()));
    let alice = Operator::add(&env, "alice", &[Role::Helpdesk]);
    let mut a = Browserless::new(&env);
    a.sign_in(&alice);
    let token = csrf_of(&a.get("/console/").body);
    let out = a.post_form("/console/sign-out", &[("csrf", &token)]);
    assert_eq!(out.status, 303, "{}", out.body);
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
    // The browser would drop the cookie; a copy of it must not work either.
    let again = a.get("/console/");
    assert_eq!(again.status, 303);
    assert_eq!(again.location.as_deref(), Some("/console/sign-in"));
}

#[test]
fn a_hostile_name_is_shown_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&config(dir.path()));
    let mut e = enrollment("iso", "0c0c", cardunlock_core::crypto::Algorithm::TripleDes);
    e.name = "<script>alert(1)</script>".into();
    e.questions[0].0 = "<img src=x onerror=alert(2)>?".into();
    env.server.enroll(&e).unwrap();
    let alice = Operator::add(&env, "alice", &[Role::Helpdesk]);
    let mut a = Browserless::new(&env);
    a.sign_in(&alice);
    let found = a.get("/console/?q=script");
    assert!(
        found.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        found.body
    );
    let page = a.get("/console/cards/iso/0c0c");
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.body.contains("&lt;img src=x onerror=alert(2)&gt;?"));
    assert!(!page.body.contains("<script") && !page.body.contains("<img"));
}

#[test]
fn posts_from_another_site_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&config(dir.path()));
    locked_card(&env, "0f0f");
    let alice = Operator::add(&env, "alice", &[Role::Helpdesk]);
    let mut a = Browserless::new(&env);
    let host = env.url.strip_prefix("https://").unwrap().to_owned();
    let sign_in = |headers: &[(&str, &str)]| {
        a.post_form_with(
            "/console/sign-in",
            headers,
            &[
                ("name", "alice"),
                ("password", PASSWORD),
                ("totp", &alice.code()),
            ],
        )
    };
    // Login forgery: refused before the password is even looked at.
    let evil = sign_in(&[("Origin", "https://evil.example")]);
    assert_eq!(evil.status, 403, "{}", evil.body);
    assert!(evil.set_cookie.is_none());
    let fetch = sign_in(&[("Sec-Fetch-Site", "cross-site")]);
    assert_eq!(fetch.status, 403, "{}", fetch.body);
    let own_origin = format!("https://{host}");
    let ok = sign_in(&[("Origin", &own_origin), ("Sec-Fetch-Site", "same-origin")]);
    assert_eq!(ok.status, 303, "{}", ok.body);
    a.sign_in_from(ok);

    // A forged lift-lock with the right cookie and token still fails from another origin.
    let card = "/console/cards/iso/0f0f";
    let token = csrf_of(&a.get(card).body);
    let lift = format!("{card}/lift-lock");
    let fields = [("csrf", token.as_str()), ("reason", "forged")];
    let forged = a.post_form_with(&lift, &[("Origin", "https://evil.example")], &fields);
    assert_eq!(forged.status, 403, "{}", forged.body);
    let (status, _) = env.post("/v1/unlock/start", &card_json("0f0f"));
    assert_eq!(status, 423, "still locked");
    let own = a.post_form_with(&lift, &[("Origin", &own_origin)], &fields);
    assert_eq!(own.status, 303, "{}", own.body);
}

#[test]
fn a_form_body_that_never_comes_is_cut_off() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.limits.request_timeout = Duration::from_secs(1);
    let env = Env::start(&c);
    let tls = cardunlock_server::pinned_client_config(env.server.cert_pem()).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(tls, name).unwrap();
    let tcp = std::net::TcpStream::connect(env.server.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    let started = Instant::now();
    // The headers promise 100 bytes; 5 come, then nothing.
    stream
        .write_all(
            b"POST /console/sign-in HTTP/1.1\r\nHost: localhost\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nname=",
        )
        .unwrap();
    stream.flush().unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let waited = started.elapsed();
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 4"), "{text}");
    assert!(waited < Duration::from_secs(5), "cut off after {waited:?}");
}

#[test]
fn a_piv_puk_is_read_out_grouped_and_the_card_marked() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&config(dir.path()));
    let record = env
        .server
        .enroll(&enrollment(
            "piv",
            "5001",
            cardunlock_core::crypto::Algorithm::TripleDes,
        ))
        .unwrap();
    let alice = Operator::add(&env, "alice", &[Role::Helpdesk]);
    let mut a = Browserless::new(&env);
    a.sign_in(&alice);
    let card = "/console/cards/piv/5001";
    let page = a.get(card);
    assert!(page.body.contains("/puk-readout") && !page.body.contains("offline-response"));
    let token = csrf_of(&page.body);
    let missing = a.post_form(&format!("{card}/puk-readout"), &[("csrf", &token)]);
    assert_eq!(
        missing.status, 400,
        "identity_checked is required: {}",
        missing.body
    );
    let shown = a.post_form(
        &format!("{card}/puk-readout"),
        &[
            ("csrf", &token),
            ("identity_checked", "Known voice, call-back"),
        ],
    );
    assert_eq!(shown.status, 200, "{}", shown.body);
    let puk = cardunlock_server::kdf::piv_puk(&master(), &[0x50, 0x01], record.puk_gen);
    let grouped = format!("{} {}", &puk[..4], &puk[4..]);
    assert!(shown.body.contains(&grouped), "{}", shown.body);
    assert!(a.get(card).body.contains("yes, until the next rotation"));
}

#[test]
fn the_audit_filters_and_downloads_as_csv_for_auditors_only() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&config(dir.path()));
    locked_card(&env, "0a1a");
    let (ann, hank) = (
        Operator::add(&env, "ann", &[Role::Auditor]),
        Operator::add(&env, "hank", &[Role::Helpdesk]),
    );
    let (mut a, mut h) = (Browserless::new(&env), Browserless::new(&env));
    a.sign_in(&ann);
    h.sign_in(&hank);
    let page = a.get("/console/audit?card=0A1A&event=answers");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("3 rows."), "{}", page.body);
    assert!(page
        .body
        .contains("/console/audit.csv?card=0A1A&amp;event=answers"));
    let csv = a.get("/console/audit.csv?card=0A1A&event=answers");
    assert_eq!(csv.status, 200);
    assert_eq!(csv.content_type.as_deref(), Some("text/csv; charset=utf-8"));
    assert!(csv
        .disposition
        .as_deref()
        .is_some_and(|d| d.starts_with("attachment;")));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 4, "a header and three rows: {}", csv.body);
    assert!(lines[1..].iter().all(|l| l.contains("answers")));
    let bad = a.get("/console/audit?since=yesterday");
    assert_eq!(bad.status, 400);
    assert_eq!(h.get("/console/audit").status, 403);
    assert_eq!(h.get("/console/audit.csv").status, 403);
}

#[test]
fn an_admin_disables_an_operator_and_resets_a_totp() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&config(dir.path()));
    let (root, hank, ivy) = (
        Operator::add(&env, "root", &[Role::Admin]),
        Operator::add(&env, "hank", &[Role::Helpdesk]),
        Operator::add(&env, "ivy", &[Role::Helpdesk]),
    );
    let (mut r, mut h) = (Browserless::new(&env), Browserless::new(&env));
    r.sign_in(&root);
    h.sign_in(&hank);
    let token = csrf_of(&r.get("/console/operators").body);

    let disabled = r.post_form("/console/operators/hank/disable", &[("csrf", &token)]);
    assert_eq!(disabled.status, 303, "{}", disabled.body);
    assert!(r.get("/console/operators").body.contains("disabled"));
    assert_eq!(h.get("/console/").status, 303, "hank's session ended");

    let reset = r.post_form("/console/operators/ivy/reset-totp", &[("csrf", &token)]);
    assert_eq!(reset.status, 200, "{}", reset.body);
    let at = reset.body.find("otpauth://totp/").expect("the new URI");
    let uri = &reset.body[at..at + reset.body[at..].find('<').unwrap()];
    let fresh = Operator::with_uri("ivy", &uri.replace("&amp;", "&"));
    let mut i = Browserless::new(&env);
    let old = i.post_form(
        "/console/sign-in",
        &[
            ("name", "ivy"),
            ("password", PASSWORD),
            ("totp", &ivy.code()),
        ],
    );
    assert_eq!(old.status, 401, "the old seed no longer works");
    i.sign_in(&fresh);

    let added = r.post_form(
        "/console/operators",
        &[
            ("csrf", &token),
            ("name", "bad name"),
            ("password", PASSWORD),
            ("role_helpdesk", "on"),
        ],
    );
    assert_eq!(added.status, 400, "{}", added.body);
    assert!(added.body.contains("operator name"), "{}", added.body);
}

#[test]
fn a_form_from_one_instance_is_accepted_by_another() {
    let dir = tempfile::tempdir().unwrap();
    let envs = instances(&config(dir.path()), 2);
    locked_card(&envs[0], "0a2a");
    let alice = Operator::add(&envs[0], "alice", &[Role::Helpdesk]);
    let mut first = Browserless::new(&envs[0]);
    first.sign_in(&alice);
    let card = "/console/cards/iso/0a2a";
    let token = csrf_of(&first.get(card).body);
    let mut second = Browserless::new(&envs[1]);
    second.cookie = first.cookie.clone();
    let lifted = second.post_form(
        &format!("{card}/lift-lock"),
        &[("csrf", &token), ("reason", "caller verified")],
    );
    assert_eq!(lifted.status, 303, "{}", lifted.body);
}

#[test]
fn four_eyes_a_second_operator_approves_in_the_console_and_the_requester_collects() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.operators.four_eyes_puk_readout = true;
    let env = Env::start(&c);
    let record = env
        .server
        .enroll(&enrollment(
            "piv",
            "5002",
            cardunlock_core::crypto::Algorithm::TripleDes,
        ))
        .unwrap();
    let puk = cardunlock_server::kdf::piv_puk(&master(), &[0x50, 0x02], record.puk_gen);
    let grouped = format!("{} {}", &puk[..4], &puk[4..]);
    let mut a = Browserless::new(&env);
    a.sign_in(&Operator::add(&env, "alice", &[Role::Helpdesk]));
    let mut b = Browserless::new(&env);
    b.sign_in(&Operator::add(&env, "bob", &[Role::Helpdesk]));
    // Alice requests: no PUK, a page saying it waits.
    let card = "/console/cards/piv/5002";
    let page = a.get(card);
    assert!(page.body.contains("Pending approvals"), "{}", page.body);
    assert!(page.body.contains("Request read-out"), "{}", page.body);
    let token = csrf_of(&page.body);
    let asked = a.post_form(
        &format!("{card}/puk-readout"),
        &[("csrf", &token), ("identity_checked", "Known <voice>")],
    );
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert!(
        asked.body.contains("waits for a second operator"),
        "{}",
        asked.body
    );
    assert!(!asked.body.contains(&grouped) && !asked.body.contains(puk.as_str()));
    assert!(!a.get(card).body.contains("Collect PUK"));
    // Alice's list has no approve form for her own request.
    let mine = a.get("/console/puk-readouts");
    assert!(!mine.body.contains("/approve"), "{}", mine.body);
    // Bob sees it (escaped) and approves it with his form token; without one, refused.
    let list = b.get("/console/puk-readouts");
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("Known &lt;voice&gt;"), "{}", list.body);
    let at = list.body.find("/console/puk-readouts/").unwrap();
    let approve = list.body[at..at + list.body[at..].find('"').unwrap()].to_owned();
    assert!(approve.ends_with("/approve"), "{approve}");
    let forged = b.post_form(&approve, &[("csrf", "forged")]);
    assert_eq!(forged.status, 403, "{}", forged.body);
    // Alice cannot approve her own request.
    let own = a.post_form(&approve, &[("csrf", &token)]);
    assert_eq!(own.status, 403, "{}", own.body);
    assert!(
        own.body.contains("You asked for this read-out"),
        "{}",
        own.body
    );
    let done = b.post_form(&approve, &[("csrf", &csrf_of(&list.body))]);
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(b
        .get("/console/puk-readouts")
        .body
        .contains("approved by bob"));
    // Alice's card page now has the Collect PUK form; she collects once.
    let page = a.get(card);
    assert!(page.body.contains("Collect PUK"), "{}", page.body);
    let collect = approve.replace("/approve", "/collect");
    assert!(page.body.contains(&collect), "{}", page.body);
    let shown = a.post_form(&collect, &[("csrf", &csrf_of(&page.body))]);
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(shown.body.contains(&grouped), "{}", shown.body);
    let again = a.post_form(&collect, &[("csrf", &csrf_of(&page.body))]);
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(a.get(card).body.contains("yes, until the next rotation"));
}
