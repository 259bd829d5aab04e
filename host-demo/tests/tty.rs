//! The interactive prompts in a real terminal: `cardunlock` runs in a detached tmux session
//! (a pseudo-terminal of fixed size), the test types with `tmux send-keys` and reads the screen
//! with `tmux capture-pane`, against simulated cards served through real pcscd + vpcd.
//!
//! What a user sees: the product's screen texts, hidden input for the PUK and the PIN (never on
//! the screen; the terminal's echo is checked to be off before anything is typed), the operator
//! response typed on a visible line, and the documented exit codes.
//!
//! Needs tmux (scripts/setup.sh installs it) and pcscd with vsmartcard-vpcd running
//! (scripts/start-pcscd.sh). The reader is shared with pcsc_cli.rs and peers/ci.sh through
//! `cardunlock_virtual_readers::ReaderLock` (see `common`).
#![cfg(feature = "pcsc")]

mod common;

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// Longest wait for something to appear on the screen.
const SCREEN_WAIT: Duration = Duration::from_secs(20);
const PUK: &str = "12345678";
const NEW_PIN: &str = "840259";

/// A tmux server of its own (own socket, no user configuration) with one detached 120x40
/// session running `cardunlock --reader "Virtual PCD 00 01" <args>`; killed when dropped.
struct Terminal {
    name: String,
}

impl Terminal {
    fn run(args: &[&str]) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "cardunlock-tty-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut words = vec![BIN, "--reader", READER];
        words.extend_from_slice(args);
        let command: Vec<String> = words.iter().map(|w| sh_quote(w)).collect();
        // The exit code goes on the screen; the pane stays for capture-pane until killed.
        let shell = format!("{}; echo \"[exit $?]\"; exec sleep 600", command.join(" "));
        let terminal = Terminal { name };
        let out = terminal
            .tmux()
            .args(["-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "120", "-y", "40"])
            .args(["-s", &terminal.name, &shell])
            .output()
            .unwrap_or_else(|e| panic!("tmux: {e} (install it: scripts/setup.sh)"));
        assert!(out.status.success(), "tmux new-session: {}", text(&out));
        terminal
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.name]);
        c
    }

    fn tmux_ok(&self, args: &[&str]) -> Output {
        let out = self.tmux().args(args).output().unwrap();
        assert!(out.status.success(), "tmux {args:?}: {}", text(&out));
        out
    }

    /// The whole screen (and scrollback), trailing blank lines removed.
    fn screen(&self) -> String {
        let out = self.tmux_ok(&["capture-pane", "-p", "-S", "-", "-t", &self.name]);
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// Polls the screen until `done` holds for it; returns it.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SCREEN_WAIT;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited {SCREEN_WAIT:?} for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the terminal echoes what is typed (`stty -a` of the pane's pseudo-terminal).
    fn echo_on(&self) -> bool {
        let out = self.tmux_ok(&["display-message", "-p", "-t", &self.name, "#{pane_tty}"]);
        let tty = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let out = Command::new("stty")
            .args(["-F", &tty, "-a"])
            .output()
            .unwrap();
        assert!(out.status.success(), "stty -F {tty}: {}", text(&out));
        let settings = String::from_utf8_lossy(&out.stdout).to_string();
        !settings.split_whitespace().any(|w| w == "-echo")
    }

    /// Types `pin` at the `n`-th "New PIN:" prompt and again at its confirmation, both hidden.
    fn enter_new_pin(&self, pin: &str, n: usize) {
        self.wait_hidden_prompt("New PIN:", n);
        self.type_line(pin);
        self.wait_hidden_prompt("Confirm new PIN:", n);
        self.type_line(pin);
    }

    /// Waits for the `n`-th line starting with `prompt` and for the echo to be off: the
    /// program is reading hidden input now (a key typed earlier could be echoed).
    fn wait_hidden_prompt(&self, prompt: &str, n: usize) {
        let deadline = Instant::now() + SCREEN_WAIT;
        self.wait_for(&format!("prompt {prompt:?} #{n}"), |s| {
            s.lines().filter(|l| l.starts_with(prompt)).count() >= n
        });
        while self.echo_on() {
            assert!(
                Instant::now() < deadline,
                "{prompt:?} shown but the terminal still echoes; the screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Types `text` and Enter.
    fn type_line(&self, text: &str) {
        self.tmux_ok(&["send-keys", "-t", &self.name, "-l", text]);
        self.tmux_ok(&["send-keys", "-t", &self.name, "Enter"]);
    }

    /// Waits for the program to end; its exit code and the screen.
    fn exit(&self) -> (i32, String) {
        let screen = self.wait_for("the program to exit", |s| s.contains("[exit "));
        let code = screen
            .rsplit("[exit ")
            .next()
            .and_then(|rest| rest.split(']').next())
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no exit code on the screen:\n{screen}"));
        (code, screen)
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
    }
}

/// Single-quoted for sh.
fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The last non-empty line before the `[exit N]` line.
fn last_message(screen: &str) -> &str {
    screen
        .lines()
        .take_while(|l| !l.starts_with("[exit "))
        .filter(|l| !l.trim().is_empty())
        .last()
        .unwrap_or("")
}

/// Asserts none of `secrets` is on the screen.
fn assert_hidden(screen: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !screen.contains(secret),
            "{secret:?} is on the screen:\n{screen}"
        );
    }
}

/// `cardunlock unblock` typing the PUK, the new PIN and `confirmation` at the hidden prompts.
fn unblock_typing(puk: &str, confirmation: &str) -> (i32, String) {
    let term = Terminal::run(&["unblock"]);
    term.wait_hidden_prompt("PUK:", 1);
    term.type_line(puk);
    term.wait_for("the new PIN screen", |s| {
        s.contains("Enter new PIN to unlock the smart card.")
    });
    term.wait_hidden_prompt("New PIN:", 1);
    term.type_line(NEW_PIN);
    term.wait_hidden_prompt("Confirm new PIN:", 1);
    term.type_line(confirmation);
    let (code, screen) = term.exit();
    assert_hidden(&screen, &[puk, NEW_PIN, confirmation]);
    (code, screen)
}

#[test]
fn unblock_at_the_hidden_prompts() {
    let _card = SimCard::start("piv", true);
    let (code, screen) = unblock_typing(PUK, NEW_PIN);
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("PIN BLOCKED, PUK tries left 3"), "{screen}");
    assert_eq!(
        last_message(&screen),
        "The smart card has been unlocked successfully.",
        "{screen}"
    );
    assert_eq!(status_json("pin_tries_left"), "3");
}

#[test]
fn confirmation_that_differs_is_refused_before_the_card() {
    let _card = SimCard::start("piv", true);
    let (code, screen) = unblock_typing(PUK, "840295");
    assert_eq!(code, 3, "{screen}");
    assert!(screen.contains("the card was not touched"), "{screen}");
    assert!(!screen.contains("unlocked successfully"), "{screen}");
    assert_eq!(status_json("puk_tries_left"), "3");
    assert_eq!(status_json("pin_blocked"), "true");
}

#[test]
fn wrong_puk_at_the_prompt_shows_the_tries_left() {
    let _card = SimCard::start("piv", true);
    let (code, screen) = unblock_typing("87654321", NEW_PIN);
    assert_eq!(code, 1, "{screen}");
    assert_eq!(
        last_message(&screen),
        "error: Wrong PUK. 2 tries left.",
        "{screen}"
    );
    assert_eq!(status_json("puk_tries_left"), "2");
    assert_eq!(status_json("pin_blocked"), "true");
}

/// Offline mode in a terminal: the new PIN at the hidden prompts, then the challenge read off
/// the screen, the operator's response (`cardunlock respond`) typed on a visible line.
#[test]
fn offline_unlock_reading_the_challenge_off_the_screen() {
    let _card = SimCard::start("iso", true);
    let pin = "Tq83z";
    let term = Terminal::run(&["unlock", "--offline"]);
    term.wait_for("the new PIN screen", |s| {
        s.contains("Enter new PIN to unlock the smart card.")
    });
    term.enter_new_pin(pin, 1);
    let screen = term.wait_for("the response prompt", |s| {
        s.lines().any(|l| l.starts_with("Response:"))
    });
    let challenge = screen
        .lines()
        .find_map(|l| l.strip_prefix("Challenge: "))
        .unwrap_or_else(|| panic!("no challenge on the screen:\n{screen}"))
        .trim()
        .to_string();
    // 16 hex digits in groups of four, to read out over the phone.
    assert_eq!(challenge.len(), 19, "{challenge}");
    let response = operator_response(&challenge);
    term.type_line(&response);
    let (code, screen) = term.exit();
    assert_eq!(code, 0, "{screen}");
    // The response is not a secret: the user sees what they typed.
    assert!(
        screen.contains(&format!("Response: {response}")),
        "{screen}"
    );
    assert_hidden(&screen, &[pin]);
    assert_eq!(
        last_message(&screen),
        "The smart card has been unlocked successfully.",
        "{screen}"
    );
    assert_eq!(status_json("pin_tries_left"), "3");
}

/// The README's first command as a person runs it: the product's three screens, a wrong answer
/// (attempts left shown, asked again), a PIN the policy refuses (asked again, card untouched),
/// hidden PIN entry, and the success screen.
#[test]
fn interactive_online_demo_shows_the_product_screens() {
    let term = Terminal::run(&["demo"]);
    let pet = "What was the name of your first pet?";
    let city = "In which city were you born?";
    term.wait_for("the first question", |s| s.contains(pet));
    // The server names the user only once the answers are verified (the demo's operator line
    // names the enrolled user, without the e-mail).
    assert!(
        !term.screen().contains("Michael.Benson@demo.local"),
        "{}",
        term.screen()
    );
    term.type_line("Fido");
    term.wait_for("the second question", |s| s.contains(city));
    term.type_line("Springfield");
    term.wait_for("wrong answers reported", |s| {
        s.contains("The answers are not correct. 2 attempts left")
    });
    term.wait_for("the first question again", |s| s.matches(pet).count() == 2);
    // Answers are normalised: case and spaces do not matter.
    term.type_line("  rex");
    term.wait_for("the second question again", |s| {
        s.matches(city).count() == 2
    });
    term.type_line("SPRINGFIELD ");
    let screen = term.wait_for("screen 2", |s| {
        s.contains("Enter new PIN to unlock the smart card.")
    });
    // Verified: the user, right above the new PIN screen.
    assert!(
        screen.contains("Michael Benson\nMichael.Benson@demo.local\nEnter new PIN"),
        "{screen}"
    );
    term.enter_new_pin("123456", 1);
    term.wait_for("the policy refusal", |s| {
        s.contains("The new PIN does not meet the PIN policy")
    });
    term.enter_new_pin(NEW_PIN, 2);
    let (code, screen) = term.exit();
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("The smart card has been unlocked successfully."),
        "{screen}"
    );
    assert!(screen.contains("PIN tries left 3"), "{screen}");
    assert!(
        screen.contains("PUK rotated to generation 1 (the card holds it"),
        "{screen}"
    );
    assert_hidden(&screen, &[NEW_PIN, "123456\n"]);
}

/// `cardunlock unlock --server` as a person runs it, against a GIDS card enrolled with the
/// server: the user, the question, the answer, the hidden PIN, the admin challenge answered by
/// the server, the success screen.
#[test]
fn interactive_online_unlock_of_an_admin_key_card() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url, cert) = common::online::serve(dir.path());
    let _card = SimCard::start("gids", true);
    let out = common::online::enroll(&server, dir.path(), &[("Favourite colour?", "Teal")]);
    assert!(out.status.success(), "{}", text(&out));
    let cert = cert.display().to_string();
    let term = Terminal::run(&["unlock", "--server", &url, "--server-cert", &cert]);
    term.wait_for("the question", |s| s.contains("Favourite colour?"));
    let screen = term.screen();
    assert!(!screen.contains("Michael Benson"), "{screen}");
    assert!(
        screen.contains("GIDS card") && screen.contains("PIN BLOCKED"),
        "{screen}"
    );
    term.type_line("teal");
    let screen = term.wait_for("screen 2", |s| {
        s.contains("Enter new PIN to unlock the smart card.")
    });
    assert!(
        screen.contains("Michael Benson\nMichael.Benson@demo.local\nEnter new PIN"),
        "{screen}"
    );
    term.enter_new_pin("Xk9w2", 1);
    let (code, screen) = term.exit();
    assert_eq!(code, 0, "{screen}");
    assert_eq!(
        last_message(&screen),
        "The smart card has been unlocked successfully.",
        "{screen}"
    );
    assert_hidden(&screen, &["Xk9w2"]);
    assert_eq!(status_json("pin_tries_left"), "3");
}

/// An operator command as a person runs it: the password and the authenticator code asked
/// hidden at the terminal (never echoed), then the server's verdict.
#[test]
fn the_operator_password_and_code_are_asked_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url, cert) = common::online::serve(dir.path());
    let identity = "00112233445566778899aabbccddeeff";
    server
        .handle
        .store()
        .enroll(
            &cardunlock_server::Enrollment {
                name: "Michael Benson".into(),
                email: "Michael.Benson@demo.local".into(),
                profile: "piv".into(),
                identity_hex: identity.into(),
                algorithm: cardunlock_core::crypto::Algorithm::TripleDes,
                questions: vec![("First pet?".into(), "Rex".into())],
                card_auth_key: None,
            },
            &cardunlock_server::Argon2Params::TEST_ONLY_FAST,
        )
        .unwrap();
    let cert = cert.display().to_string();
    let term = Terminal::run(&common::online::remote(
        "lift-lock",
        &url,
        &cert,
        &[
            ["--operator", common::online::OPERATOR].as_slice(),
            &common::online::lift_piv(identity, "called back on the number on file"),
        ]
        .concat(),
    ));
    let password = "correct horse battery staple";
    term.wait_hidden_prompt("password:", 1);
    term.type_line(password);
    let code = server.code();
    term.wait_hidden_prompt("TOTP code:", 1);
    term.type_line(&code);
    let (exit, screen) = term.exit();
    assert_eq!(exit, 0, "{screen}");
    assert!(
        screen.contains(&format!("Online unlock lifted for piv card {identity}.")),
        "{screen}"
    );
    assert_hidden(&screen, &[password, &code]);
}
