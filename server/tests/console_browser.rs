//! The console in a real browser: headless Chromium driven over WebDriver (chromedriver).
//! Skipped, with a printed notice, only when `/usr/bin/chromedriver` is missing outside CI.
//!
//! With `CARDUNLOCK_COPY_SCREENSHOTS=1` the screenshots of each page are written to
//! `docs/screenshots/console-*.png`.

mod common;
#[path = "common/console.rs"]
mod console;
#[path = "common/webdriver.rs"]
mod webdriver;

use std::io::Write;

use cardunlock_client::api::Api;
use cardunlock_client::iso_profiles::{IsoProfileEntry, IsoProfiles};
use cardunlock_client::offline::{self, Challenge, OfflineUi};
use cardunlock_client::online::{self, Event, Person, Ui};
use cardunlock_client::Failure;
use cardunlock_core::crypto::Algorithm;
use cardunlock_core::driver::Driver;
use cardunlock_core::iso::IsoProfile;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock;
use cardunlock_server::kdf;
use cardunlock_server::protocol::operator::Role;
use cardunlock_sim::{Config as SimConfig, IsoConfig, SimCard};
use common::*;
use console::*;
use webdriver::{Browser, ENTER, TAB};
use zeroize::Zeroizing;

/// Screenshots taken so far: each must be a PNG and differ from the one before.
struct Shots {
    last: Vec<u8>,
    copy: bool,
}

impl Shots {
    fn new() -> Self {
        let copy = std::env::var("CARDUNLOCK_COPY_SCREENSHOTS").is_ok_and(|v| v == "1");
        Self {
            last: Vec::new(),
            copy,
        }
    }

    fn take(&mut self, browser: &Browser, name: &str) {
        let png = browser.screenshot();
        assert!(
            png.len() > 1000,
            "{name}: screenshot of {} bytes",
            png.len()
        );
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}: not a PNG");
        assert_ne!(png, self.last, "{name}: same picture as the previous page");
        if self.copy {
            let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/screenshots");
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(format!("{dir}/console-{name}.png"), &png).unwrap();
        }
        self.last = png;
    }
}

fn skipped() -> bool {
    match webdriver::skip_reason() {
        Some(why) => {
            let _ = writeln!(std::io::stderr(), "\n!!! {why} !!!");
            true
        }
        None => false,
    }
}

/// The expected offline response, from core's crypto and the server's key derivation.
fn expected_response(identity: &str, generation: u32, challenge: &[u8; 8]) -> String {
    let id = hex::decode(identity).unwrap();
    let key = kdf::admin_key(&master(), "iso", &id, Algorithm::TripleDes, generation);
    let mut block = *challenge;
    key.encrypt_ecb(&mut block).unwrap();
    let hex = hex::encode_upper(block);
    format!(
        "{} {} {} {}",
        &hex[..4],
        &hex[4..8],
        &hex[8..12],
        &hex[12..]
    )
}

/// The workstation's ISO profiles: the simulated card's (configured, as a real site's would be).
fn sim() -> IsoProfiles {
    let aid = hex::encode(cardunlock_sim::ISO_ADMIN_AID);
    let entry = IsoProfileEntry::new("cardunlock-sim", &aid, 0x01, 0x80, None).unwrap();
    IsoProfiles::from_entries(vec![entry]).unwrap()
}

#[test]
fn a_help_desk_day_in_the_browser() {
    if skipped() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&config(dir.path()));
    let record = locked_card(&env, "0d0d0d0d");
    let mut hostile = enrollment("gids", "0e0e", Algorithm::Aes128);
    hostile.name = "<script>alert(1)</script>".into();
    hostile.email = "x@example.invalid".into();
    env.server.enroll(&hostile).unwrap();
    let alice = Operator::add(&env, "alice", &[Role::Helpdesk, Role::Auditor, Role::Admin]);
    let hank = Operator::add(&env, "hank", &[Role::Helpdesk]);
    let browser = Browser::start();
    let mut shots = Shots::new();
    let url = |path: &str| format!("{}{path}", env.url);

    // Signed out, the console sends to the sign-in page; signing in takes only the keyboard.
    browser.go(&url("/console/"));
    assert!(
        browser.url().ends_with("/console/sign-in"),
        "{}",
        browser.url()
    );
    shots.take(&browser, "sign-in");
    assert_eq!(browser.focused().attr("id").as_deref(), Some("name"));
    browser.focused().keys(&format!("alice{TAB}"));
    assert_eq!(browser.focused().attr("id").as_deref(), Some("password"));
    browser.focused().keys(&format!("{PASSWORD}{TAB}"));
    assert_eq!(browser.focused().attr("id").as_deref(), Some("totp"));
    browser.focused().keys(&format!("{}{ENTER}", alice.code()));
    browser.wait_url("/console/");
    assert!(browser.find(".who").text().contains("alice"));

    // Find Michael Benson, whose card is locked, and lift the lock with a reason.
    browser.find("#q").keys(&format!("benson{ENTER}"));
    let hit = browser.wait_find("table a");
    assert_eq!(hit.text(), "Michael Benson");
    shots.take(&browser, "search");
    hit.click();
    browser.wait_url("/console/cards/iso/0d0d0d0d");
    assert!(browser.source().contains("locked"));
    shots.take(&browser, "card");
    browser
        .find("#reason")
        .keys("Caller identified by a call-back to the desk phone");
    browser.find("form[action$='/lift-lock'] button").click();
    browser.wait("the lock form to go", |b| b.all("#reason").is_empty());
    assert!(browser.url().ends_with("/console/cards/iso/0d0d0d0d"));
    env.start_session("iso", "0d0d0d0d");

    // An ISO challenge answered with the bytes core's crypto gives under the card's key.
    let challenge = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
    browser.find("#challenge").keys("0123 4567 89ab cdef");
    browser
        .find("#identity_checked")
        .keys("Badge photo on video call");
    browser
        .find("form[action$='/offline-response'] button")
        .click();
    let response = browser.wait_find("#response").text();
    assert_eq!(
        response,
        expected_response("0d0d0d0d", record.key_gen, &challenge)
    );
    shots.take(&browser, "offline-response");

    // A hostile holder name is shown as text: no script element anywhere in the DOM.
    browser.go(&url("/console/?q=script"));
    let cell = browser.find("table a");
    assert_eq!(cell.text(), "<script>alert(1)</script>");
    assert!(browser.all("script").is_empty());
    cell.click();
    browser.wait_url("/console/cards/gids/0e0e");
    assert_eq!(browser.find("h1").text(), "<script>alert(1)</script>");
    assert!(browser.all("script").is_empty());
    assert!(browser.source().contains("needs") || browser.source().contains("online unlock"));

    // The audit shows the lift and the offline response.
    browser.go(&url("/console/audit"));
    let audit = browser.find("table.audit").text();
    assert!(audit.contains("lift_lock"), "{audit}");
    assert!(audit.contains("offline_response"), "{audit}");
    let csv = browser.find("a[download]").attr("href").unwrap();
    assert!(csv.contains("/console/audit.csv"), "{csv}");
    shots.take(&browser, "audit");

    // Operators: add one, its authenticator URI shows once.
    browser.go(&url("/console/operators"));
    browser.find("#new-name").keys("carol");
    browser.find("input[name=role_helpdesk]").click();
    browser.find("#new-password").keys("another long password");
    browser
        .find("form[action='/console/operators'] button")
        .click();
    let uri = browser.wait_find("#totp-uri").text();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert_eq!(
        browser.all("svg.qr > path").len(),
        1,
        "the QR code is drawn"
    );
    assert!(browser.find("table").text().contains("carol"));
    shots.take(&browser, "operators");

    // Forms posted with the browser's cookie but without its token, or with another
    // session's token, are refused.
    let cookie = browser
        .cookie("__Host-cardunlock")
        .expect("the session cookie");
    let mut plain = Browserless::new(&env);
    plain.cookie = Some(cookie.clone());
    let mut other = Browserless::new(&env);
    other.sign_in(&hank);
    let hank_token = csrf_of(&other.get("/console/").body);
    let lift = "/console/cards/iso/0d0d0d0d/lift-lock";
    assert_eq!(plain.post_form(lift, &[("reason", "x")]).status, 403);
    let forged = plain.post_form(lift, &[("csrf", &hank_token), ("reason", "x")]);
    assert_eq!(forged.status, 403);
    let csp = plain.get("/console/").csp.unwrap();
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    assert!(directives.contains(&"default-src 'none'"), "{csp}");
    assert!(
        !csp.contains("script-src") && !csp.contains("unsafe-inline"),
        "{csp}"
    );

    // Sign out: the old cookie no longer opens anything.
    browser.go(&url("/console/"));
    browser.find(".signout button").click();
    browser.wait_url("/console/sign-in");
    let after = plain.get("/console/");
    assert_eq!(after.status, 303);
    assert_eq!(after.location.as_deref(), Some("/console/sign-in"));

    // A helpdesk operator is refused the operators page.
    browser.find("#name").keys("hank");
    browser.find("#password").keys(PASSWORD);
    browser
        .find("#totp")
        .keys(&format!("{}{ENTER}", next_code(&hank)));
    browser.wait_url("/console/");
    browser.go(&url("/console/operators"));
    assert_eq!(browser.find("h1").text(), "Not allowed");
    assert!(browser.all("#new-name").is_empty());
}

/// A code hank has not used yet: his first sign-in used the current step's.
fn next_code(op: &Operator) -> String {
    op.code_at_offset(30)
}

/// An enrolled ISO card whose PIN is blocked, holding the admin key the server derives for it
/// (serial `[serial; 16]` is its identity), behind a driver.
fn blocked_iso_card(env: &Env, serial: u8) -> (Driver<SimCard>, String) {
    let serial = [serial; 16];
    let identity = hex::encode(serial);
    let record = env
        .server
        .enroll(&enrollment("iso", &identity, Algorithm::TripleDes))
        .unwrap();
    let key = kdf::admin_key(
        &master(),
        "iso",
        &serial,
        Algorithm::TripleDes,
        record.key_gen,
    );
    let mut iso = IsoConfig::factory();
    iso.serial = serial;
    iso.admin_key = key.expose_bytes().to_vec();
    iso.pin_tries_left = 0;
    let mut driver = Driver::new(SimCard::new(SimConfig::Iso(iso)));
    assert_eq!(pin_tries_left(&mut driver), Some(0));
    (driver, identity)
}

fn pin_tries_left(driver: &mut Driver<SimCard>) -> Option<u8> {
    embassy_futures::block_on(unlock::read_status(driver, IsoProfile::SIM))
        .unwrap()
        .pin_tries_left
}

/// A browser signed in to the console as `op`.
fn signed_in(env: &Env, op: &Operator) -> Browser {
    let browser = Browser::start();
    browser.go(&format!("{}/console/sign-in", env.url));
    browser.find("#name").keys(&op.name);
    browser.find("#password").keys(PASSWORD);
    browser.find("#totp").keys(&format!("{}{ENTER}", op.code()));
    browser.wait_url("/console/");
    browser
}

const NEW_PIN: &str = "Kq7m2x";

/// The card holder at the workstation: types the answers given and the new PIN.
struct Holder {
    answers: [&'static str; 2],
}

impl Person for Holder {
    fn show(&mut self, _event: Event<'_>) {}

    fn can_retry(&self) -> bool {
        false
    }

    fn new_pin(
        &mut self,
        _policy: &PinPolicy<'_>,
    ) -> Result<(Zeroizing<String>, Zeroizing<String>), Failure> {
        Ok((
            Zeroizing::new(NEW_PIN.into()),
            Zeroizing::new(NEW_PIN.into()),
        ))
    }
}

impl Ui for Holder {
    fn answers(&mut self, _questions: &[String]) -> Result<Vec<Zeroizing<String>>, Failure> {
        Ok(self.answers.map(|a| Zeroizing::new(a.to_owned())).to_vec())
    }
}

/// The help desk at its console: answers the challenge the card holder reads out on the card's
/// page, and gives back the grouped response the page shows (what the holder then types).
struct HelpDesk<'b> {
    holder: Holder,
    browser: &'b Browser,
    challenges: Vec<String>,
}

impl Person for HelpDesk<'_> {
    fn show(&mut self, _event: Event<'_>) {}

    fn can_retry(&self) -> bool {
        false
    }

    fn new_pin(
        &mut self,
        policy: &PinPolicy<'_>,
    ) -> Result<(Zeroizing<String>, Zeroizing<String>), Failure> {
        self.holder.new_pin(policy)
    }
}

impl OfflineUi for HelpDesk<'_> {
    fn response(&mut self, challenge: Challenge<'_>) -> Result<Zeroizing<String>, Failure> {
        let Challenge::Admin { challenge_hex, .. } = challenge else {
            panic!("an ISO admin card gives a challenge");
        };
        self.challenges.push(challenge_hex.to_owned());
        answer_in_console(self.browser, challenge_hex);
        Ok(Zeroizing::new(self.browser.wait_find("#response").text()))
    }
}

fn answer_in_console(browser: &Browser, challenge_hex: &str) {
    browser.find("#challenge").keys(challenge_hex);
    browser
        .find("#identity_checked")
        .keys("Call-back to the desk phone on record");
    browser
        .find("form[action$='/offline-response'] button")
        .click();
}

/// The workstation's online unlock locked by three wrong answer sets, the lock lifted in the
/// console, and the next online unlock (the client code the CLI and the window run) unblocks the
/// card.
#[test]
fn a_lock_lifted_in_the_browser_lets_the_next_online_unlock_through() {
    if skipped() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&config(dir.path()));
    let (mut driver, identity) = blocked_iso_card(&env, 0x0b);
    let api = Api::new(&env.server.url(), env.server.cert_pem()).unwrap();
    for _ in 0..3 {
        let wrong = online::unlock_with(
            &mut driver,
            &api,
            &mut Holder { answers: WRONG },
            &sim(),
            None,
        );
        assert!(wrong.is_err());
    }
    let locked = online::unlock_with(
        &mut driver,
        &api,
        &mut Holder { answers: ANSWERS },
        &sim(),
        None,
    );
    let e = locked.unwrap_err();
    assert!(e.message.contains("locked"), "{e}");

    let hank = Operator::add(&env, "hank", &[Role::Helpdesk]);
    let browser = signed_in(&env, &hank);
    browser.go(&format!("{}/console/cards/iso/{identity}", env.url));
    browser
        .find("#reason")
        .keys("Caller identified on a video call");
    browser.find("form[action$='/lift-lock'] button").click();
    browser.wait("the lock form to go", |b| b.all("#reason").is_empty());

    online::unlock_with(
        &mut driver,
        &api,
        &mut Holder { answers: ANSWERS },
        &sim(),
        None,
    )
    .unwrap();
    assert_eq!(
        pin_tries_left(&mut driver),
        Some(3),
        "the card's PIN is unblocked"
    );
}

/// The offline path end to end: the client's offline unlock (the code the CLI and the window run)
/// reads a blocked ISO card's challenge, the help desk answers it on the console in the browser,
/// the holder types the response back, and the card takes it and the new PIN.
#[test]
fn offline_unlock_answered_in_the_browser() {
    if skipped() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&config(dir.path()));
    let (mut driver, identity) = blocked_iso_card(&env, 0x0c);
    let hank = Operator::add(&env, "hank", &[Role::Helpdesk]);
    let browser = signed_in(&env, &hank);
    browser.go(&format!("{}/console/cards/iso/{identity}", env.url));

    let mut desk = HelpDesk {
        holder: Holder { answers: ANSWERS },
        browser: &browser,
        challenges: Vec::new(),
    };
    offline::unlock_with(&mut driver, &mut desk, &sim(), None).unwrap();
    assert_eq!(desk.challenges.len(), 1, "one challenge, one response");
    assert_eq!(
        pin_tries_left(&mut driver),
        Some(3),
        "the card's PIN is unblocked"
    );

    // The same challenge is never answered twice.
    browser.go(&format!("{}/console/cards/iso/{identity}", env.url));
    answer_in_console(&browser, &desk.challenges[0]);
    browser.wait("the refusal", |b| {
        b.all("#response").is_empty() && b.source().contains("answered before")
    });
}
