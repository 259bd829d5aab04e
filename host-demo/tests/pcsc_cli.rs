//! The `cardunlock` binary through real pcscd + vpcd against the simulated cards it serves itself
//! (`cardunlock sim-card`): what a user types, what they see, the exit codes, and the card's
//! counters afterwards (read back with `cardunlock --json status`).
//!
//! Needs pcscd running with vsmartcard-vpcd (`scripts/start-pcscd.sh`; `scripts/test.sh` does it).
//! Every test that puts a card into reader 1 holds `cardunlock_virtual_readers::ReaderLock` of it (see
//! `common`), so these tests, `tty.rs` and `peers/ci.sh` never share the reader, whatever process
//! they run in.
#![cfg(feature = "pcsc")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use common::*;

#[test]
fn piv_unblock_through_pcscd_with_failures_first() {
    let _card = SimCard::start("piv", true);
    assert_eq!(status_json("pin_blocked"), "true");
    assert_eq!(status_json("puk_tries_left"), "3");

    // A policy violation: exit 3, the card untouched.
    let out = on_reader(&["unblock", "--puk", "12345678", "--new-pin", "111111"]);
    assert_exit(&out, 3, "the card was not touched");
    assert_eq!(status_json("puk_tries_left"), "3");

    // A wrong PUK: exit 1, exactly one try gone, reported.
    let out = on_reader(&["unblock", "--puk", "87654321", "--new-pin", "840259"]);
    assert_exit(&out, 1, "Wrong PUK. 2 tries left.");
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
    let _card = SimCard::start("gids", true);
    let wrong = "0102030405060708010203040506070801020304050607FF";
    let out = on_reader(&["unlock", "--admin-key", wrong, "--new-pin", "Xk9w2"]);
    assert_exit(&out, 1, "not accepted");
    assert_eq!(status_json("pin_blocked"), "true");
    let out = on_reader(&["unlock", "--admin-key", ADMIN_KEY, "--new-pin", "Xk9w2"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(status_json("pin_tries_left"), "3");
}

/// Runs `unlock --offline`, reads the challenge it shows, and types `respond(challenge)` back.
fn offline_unlock(respond: impl FnOnce(&str) -> String) -> (Option<i32>, String) {
    let mut child: Child = Command::new(BIN)
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
    let _card = SimCard::start("iso", true);
    // A mistyped response: refused, PIN still blocked.
    let (code, out) = offline_unlock(|_| "0000 0000 0000 0000".into());
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(status_json("pin_blocked"), "true");
    // The operator computes the response with `cardunlock respond`.
    let (code, out) = offline_unlock(operator_response);
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
    assert_exit(&out, 4, "No Such Reader");
}

/// The PUK's tries through the CLI: each wrong PUK costs exactly one try and says how many are
/// left; the last one blocks the PUK; then the CLI sees the PUK blocked in the card's status and
/// refuses without sending RESET RETRY COUNTER, even with the right PUK.
#[test]
fn piv_puk_blocked_through_the_cli() {
    let _card = SimCard::start("piv", true);
    let wrong = ["unblock", "--puk", "87654321", "--new-pin", "840259"];
    for (left, message) in [
        ("2", "Wrong PUK. 2 tries left."),
        ("1", "Wrong PUK. 1 try left before the PUK is blocked."),
        // The card answers 69 83 (a YubiKey 63 C0) to the try that blocks its PUK.
        ("0", "The PUK is blocked"),
    ] {
        let out = on_reader(&wrong);
        assert_exit(&out, 1, message);
        assert_eq!(status_json("puk_tries_left"), left);
        assert_eq!(status_json("pin_blocked"), "true");
    }
    let out = on_reader(&["-v", "unblock", "--puk", "12345678", "--new-pin", "840259"]);
    let trace = text(&out);
    assert_eq!(out.status.code(), Some(1), "{trace}");
    assert!(
        trace.contains("The PUK is blocked: this card cannot be unblocked with a PUK any more."),
        "{trace}"
    );
    // The status queries went out (the trace works), RESET RETRY COUNTER did not.
    assert!(trace.contains("> 00 F7 00 81"), "{trace}");
    assert!(
        !trace.contains("> 00 2C"),
        "RESET RETRY COUNTER sent: {trace}"
    );
    assert_eq!(status_json("puk_tries_left"), "0");
    assert_eq!(status_json("pin_blocked"), "true");
}

/// The card leaves the reader while `unlock --offline` waits for the operator's response: once
/// the user types it, the CLI says the card was removed and exits 5 (communication failure in the
/// middle of a flow); nothing was changed. The card comes back with its PIN still blocked.
#[test]
fn card_removed_while_waiting_for_the_operator() {
    let mut card = SimCard::start("iso", true);
    let (code, out) = offline_unlock(|challenge| {
        card.pull();
        operator_response(challenge)
    });
    assert_eq!(code, Some(5), "{out}");
    assert!(out.contains("error: the card was removed"), "{out}");
    assert!(!out.contains("unlocked successfully"), "{out}");
    drop(card);
    let _card = SimCard::start("iso", true);
    assert_eq!(status_json("pin_blocked"), "true");
}

/// No PC/SC service: the CLI is pointed at a socket nobody listens on (pcsc-lite takes its
/// socket path from `PCSCLITE_CSOCK_NAME`), so the real pcscd stays up for the other tests.
/// Exit 4 with a message that says the service is not running, for every command that needs it.
#[test]
fn pcscd_not_running_is_a_clear_error() {
    let socket =
        std::env::temp_dir().join(format!("cardunlock-no-pcscd-{}.comm", std::process::id()));
    assert!(!socket.exists());
    for args in [
        &["readers"][..],
        &["--reader", READER, "status"],
        &[
            "--reader",
            READER,
            "unblock",
            "--puk",
            "12345678",
            "--new-pin",
            "840259",
        ],
        &["--json", "status"],
    ] {
        let out = Command::new(BIN)
            .args(args)
            .env("PCSCLITE_CSOCK_NAME", &socket)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(4), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("the PC/SC service is not running"),
            "{args:?}: {}",
            text(&out)
        );
    }
    // The same command without the variable reaches the real pcscd: the variable made the
    // difference.
    let out = cli(&["readers"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// After enrollment only the server knows the ISO card's admin key: the operator signs in and
/// asks it for the offline response (`cardunlock respond`), giving the card identity, the
/// challenge and how the caller was identified; nothing is computed at the workstation.
#[test]
fn offline_response_from_the_server_after_enrollment() {
    let (held, server, _, _) = common::online::enrolled("iso", &[("Q?", "A")]);
    let dir = &held.dir;
    let identity = common::card_identity();
    // The factory key no longer answers.
    let (code, _) = offline_unlock(operator_response);
    assert_eq!(code, Some(1));
    let (code, screen) = offline_unlock(|challenge| {
        let out = common::online::operator(
            &server,
            dir.path(),
            "respond",
            &[
                "--identity",
                &identity,
                "--identity-checked",
                "called back on the number on file",
                challenge,
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .strip_prefix("Response: ")
            .unwrap()
            .to_string()
    });
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        screen.contains("The smart card has been unlocked successfully."),
        "{screen}"
    );
}

/// `--wait`: the CLI waits for the card to be inserted (and gives up after the time given).
#[test]
fn waits_for_the_card_to_be_inserted() {
    let lock =
        cardunlock_virtual_readers::ReaderLock::acquire(1, std::time::Duration::from_secs(300))
            .unwrap();
    let out = cli(&["--reader", READER, "--wait", "1", "status"]);
    assert_exit(&out, 4, "Insert the smart card");
    let waiting = Command::new(BIN)
        .args(["--reader", READER, "--wait", "20", "status"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    drop(lock);
    let _card = SimCard::start("piv", true);
    let out = waiting.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("PIN BLOCKED"), "{}", text(&out));
}

/// An ISO card on a vendor's AID (not the simulator's) through pcscd: without a configured
/// profile `status` and `unlock` refuse with a clear "no configured ISO profile" message and the
/// card is untouched; with `--iso-profiles FILE` naming the AID it is found and unblocked; a
/// malformed file is refused naming its line. Fails if the simulator's AID were still the
/// default or the file were not read.
#[test]
fn iso_card_on_a_vendor_aid_is_found_only_when_configured() {
    let _card = SimCard::start_with("iso", true, &["--iso-aid", "A0 00 00 01 23 45"]);
    let out = on_reader(&["status"]);
    assert_exit(&out, 1, "no configured ISO profile");
    let unlock = ["unlock", "--admin-key", ADMIN_KEY, "--new-pin", "Xk9w2"];
    let out = on_reader(&unlock);
    assert_exit(&out, 1, "no configured ISO profile");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("iso-profiles.toml");
    let path = file.to_str().unwrap();
    write_private(
        &file,
        "[[profile]]\nname = \"acme\"\naid = \"A0 00 00 01 23 45\"\nadmin-key-ref = 0x01\n\
         pin-ref = 0x80\nalgorithm = \"3des\"\n",
    );
    let out = on_reader(&["status", "--iso-profiles", path]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("ISO card"), "{}", text(&out));
    assert!(text(&out).contains("PIN BLOCKED"), "{}", text(&out));

    let mut configured = unlock.to_vec();
    configured.extend(["--iso-profiles", path]);
    let out = on_reader(&configured);
    assert!(out.status.success(), "{}", text(&out));
    let out = on_reader(&["--json", "status", "--iso-profiles", path]);
    assert!(
        text(&out).contains("\"pin_tries_left\":3"),
        "{}",
        text(&out)
    );

    write_private(
        &file,
        "[[profile]]\nname = \"acme\"\naid = \"\"\nadmin-key-ref = 1\npin-ref = 0x80\n",
    );
    let out = on_reader(&["status", "--iso-profiles", path]);
    assert_exit(&out, 2, "line 3");
}
