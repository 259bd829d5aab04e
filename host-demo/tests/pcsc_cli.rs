//! The `cardunlock` binary through real pcscd + vpcd against the simulated cards it serves itself
//! (`cardunlock sim-card`): what a user types, what they see, the exit codes, and the card's
//! counters afterwards (read back with `cardunlock --json status`).
//!
//! Needs pcscd running with vsmartcard-vpcd (`scripts/start-pcscd.sh`; `scripts/test.sh` does it).
#![cfg(feature = "pcsc")]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cardunlock");
/// Reader 1 ("Virtual PCD 00 01", port 35964): the transport tests use reader 0.
const READER: &str = "Virtual PCD 00 01";
const PORT: &str = "35964";
static SERIAL: Mutex<()> = Mutex::new(());

struct SimCard(Child);

impl SimCard {
    fn start(profile: &str, blocked: bool) -> Self {
        let mut args = vec!["sim-card", "--profile", profile, "--port", PORT];
        if blocked {
            args.push("--blocked");
        }
        let child = Command::new(BIN)
            .args(&args)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let card = SimCard(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = cli(&["--json", "readers"]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            if text.contains(&format!("\"name\":\"{READER}\",\"card\":true")) {
                return card;
            }
            assert!(
                Instant::now() < deadline,
                "the simulated card never showed up in {READER}: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for SimCard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        // Let pcscd notice the card is gone before the next test serves another.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let out = cli(&["--json", "readers"]);
            if String::from_utf8_lossy(&out.stdout)
                .contains(&format!("\"name\":\"{READER}\",\"card\":false"))
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn on_reader(args: &[&str]) -> Output {
    let mut all = vec!["--reader", READER];
    all.extend_from_slice(args);
    cli(&all)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn status_json(field: &str) -> String {
    let out = on_reader(&["--json", "status"]);
    assert!(out.status.success(), "{}", text(&out));
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    let key = format!("\"{field}\":");
    let start = s
        .find(&key)
        .unwrap_or_else(|| panic!("{field} missing in {s}"))
        + key.len();
    s[start..].split([',', '}']).next().unwrap().to_string()
}

#[test]
fn piv_unblock_through_pcscd_with_failures_first() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _card = SimCard::start("piv", true);
    assert_eq!(status_json("pin_blocked"), "true");
    assert_eq!(status_json("puk_tries_left"), "3");

    // A policy violation: exit 3, the card untouched.
    let out = on_reader(&["unblock", "--puk", "12345678", "--new-pin", "111111"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("the card was not touched"),
        "{}",
        text(&out)
    );
    assert_eq!(status_json("puk_tries_left"), "3");

    // A wrong PUK: exit 1, exactly one try gone, reported.
    let out = on_reader(&["unblock", "--puk", "87654321", "--new-pin", "840259"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("Wrong PUK. 2 tries left."),
        "{}",
        text(&out)
    );
    assert_eq!(status_json("puk_tries_left"), "2");

    // The right PUK.
    let out = on_reader(&["unblock", "--puk", "12345678", "--new-pin", "840259"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("The smart card has been unlocked successfully."));
    assert_eq!(status_json("pin_tries_left"), "3");
    assert_eq!(status_json("puk_tries_left"), "3");
}

#[test]
fn gids_unlock_with_the_admin_key_through_pcscd() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _card = SimCard::start("gids", true);
    let wrong = "0102030405060708010203040506070801020304050607FF";
    let out = on_reader(&["unlock", "--admin-key", wrong, "--new-pin", "Xk9w2"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not accepted"), "{}", text(&out));
    assert_eq!(status_json("pin_blocked"), "true");
    let key = "010203040506070801020304050607080102030405060708";
    let out = on_reader(&["unlock", "--admin-key", key, "--new-pin", "Xk9w2"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(status_json("pin_tries_left"), "3");
}

/// Runs `unlock --offline`, reads the challenge it shows, and types `respond(challenge)` back.
fn offline_unlock(respond: impl Fn(&str) -> String) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args([
            "--reader",
            READER,
            "unlock",
            "--offline",
            "--new-pin",
            "Tq83z",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let challenge = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "no challenge shown: {seen}"
        );
        seen += &line;
        if let Some(c) = line.strip_prefix("Challenge: ") {
            break c.trim().to_string();
        }
    };
    // Grouped hex for reading out: 16 hex digits in groups of four for 3DES.
    assert_eq!(challenge.len(), 19, "{challenge}");
    let response = respond(&challenge);
    writeln!(child.stdin.take().unwrap(), "{response}").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        seen + &rest + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn iso_offline_unlock_with_the_operator_response() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _card = SimCard::start("iso", true);
    // A mistyped response: refused, PIN still blocked.
    let (code, out) = offline_unlock(|_| "0000 0000 0000 0000".into());
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(status_json("pin_blocked"), "true");
    // The operator computes the response with `cardunlock respond`.
    let (code, out) = offline_unlock(|challenge| {
        let key = "010203040506070801020304050607080102030405060708";
        let out = cli(&["respond", "--key", key, challenge]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .strip_prefix("Response: ")
            .unwrap()
            .to_string()
    });
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("The smart card has been unlocked successfully."),
        "{out}"
    );
    assert_eq!(status_json("pin_tries_left"), "3");
}

#[test]
fn no_such_reader_is_a_clear_error() {
    let out = cli(&["--reader", "No Such Reader", "status"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("No Such Reader"), "{}", text(&out));
}
