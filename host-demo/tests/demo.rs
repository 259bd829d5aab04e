//! The README's first command, `cardunlock demo` (online unlock in-process), and the local demo.

mod common;

use std::process::Command;

/// Runs `cardunlock args`, asserts it succeeded, returns its standard output.
fn run_ok(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cardunlock"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn local_demo_unblocks_both_cards() {
    let stdout = run_ok(&["demo", "--local"]);
    assert_eq!(
        stdout
            .matches("The smart card has been unlocked successfully.")
            .count(),
        2,
        "{stdout}"
    );
    assert!(stdout.contains("Enter new PIN to unlock the smart card."));
    assert!(stdout.contains("PIV card, id "), "{stdout}");
    // The PIV card ends unblocked with its tries back.
    assert!(
        stdout.contains("PIN tries left 3, PUK tries left 3"),
        "{stdout}"
    );
    // The policy refusal is shown, and it happened before the card was touched.
    assert!(
        stdout.contains("New PIN refused before the card was touched"),
        "{stdout}"
    );
}

#[test]
fn verbose_local_demo_traces_apdus_with_secrets_redacted() {
    let out = Command::new(env!("CARGO_BIN_EXE_cardunlock"))
        .args(["-v", "demo", "--local"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(
        trace.contains("> 00 2C 00 80 <16 bytes redacted>"),
        "{trace}"
    );
    assert!(
        trace.contains("> 00 2C 02 80 <5 bytes redacted>"),
        "{trace}"
    );
    // Neither the PUK (31 32 33 ...) nor the new PIN bytes appear anywhere.
    assert!(!trace.contains("31 32 33 34 35 36 37 38"), "PUK leaked");
    assert!(!trace.contains("38 34 30 32 35 39"), "PIN leaked");
}

#[test]
fn online_demo_shows_the_product_screens_and_unlocks() {
    let stdout = run_ok(&["demo", "--non-interactive"]);
    // Screen 1: the user and the security questions.
    assert!(
        stdout.contains("Michael Benson\nMichael.Benson@demo.local"),
        "{stdout}"
    );
    assert!(
        stdout.contains("What was the name of your first pet?"),
        "{stdout}"
    );
    // Screen 2 and 3.
    assert!(
        stdout.contains("Enter new PIN to unlock the smart card."),
        "{stdout}"
    );
    assert!(
        stdout.contains("New PIN: ******\nConfirm new PIN: ******"),
        "{stdout}"
    );
    assert!(
        stdout.contains("The smart card has been unlocked successfully."),
        "{stdout}"
    );
    // Blocked before, unblocked after, PUK rotated.
    assert!(stdout.contains("PIN BLOCKED"), "{stdout}");
    assert!(stdout.contains("PIN tries left 3"), "{stdout}");
    assert!(stdout.contains("PUK rotated to generation 1"), "{stdout}");
    assert!(!stdout.contains("840259"), "the PIN was printed");
}

#[test]
fn the_readme_command_without_a_terminal_runs_the_scripted_demo() {
    let stdout = run_ok(&["demo"]);
    assert!(
        stdout.contains("standard input is not a terminal"),
        "{stdout}"
    );
    assert!(
        stdout.contains("The smart card has been unlocked successfully."),
        "{stdout}"
    );
}

/// The demo's help-desk side: the printed operator signs in to the demo's server (kept up with
/// `--keep-serving`) with the printed password and a code from the printed TOTP secret, and
/// lifts the card's lock with the printed command line.
#[test]
fn the_demo_operator_printed_signs_in_and_acts() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;

    let mut demo = Command::new(env!("CARGO_BIN_EXE_cardunlock"))
        .args(["demo", "--non-interactive", "--keep-serving"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let mut field = |name: &str| -> String {
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(v) = line.trim().strip_prefix(name) {
                return v.trim().to_string();
            }
        }
        panic!("the demo never printed {name}");
    };
    let console = field("help desk: operator console");
    let cert = field("server certificate:");
    let name = field("operator:");
    let password = field("password:");
    let uri = field("TOTP:");
    let url = field("e.g.: cardunlock lift-lock --server")
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let identity = field("--identity").split(' ').next().unwrap().to_string();
    assert_eq!(console, format!("{url}/console/"));
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    let code = common::totp_now(&uri);
    let state = tempfile::tempdir().unwrap();
    let out = common::output_with_stdin(
        Command::new(common::BIN)
            .args(common::online::remote(
                "lift-lock",
                &url,
                &cert,
                &["--operator", &name, "--password-stdin", "--totp", &code],
            ))
            .args(common::online::lift_piv(
                &identity,
                "called back on the number on file",
            ))
            .env("CARDUNLOCK_STATE_DIR", state.path()),
        &format!("{password}\n"),
    );
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Online unlock lifted for piv card"), "{text}");
    // Enter ends the demo.
    writeln!(demo.stdin.take().unwrap()).unwrap();
    for _ in lines {}
    assert!(demo.wait().unwrap().success());
}
