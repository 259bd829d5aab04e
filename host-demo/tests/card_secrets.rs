//! Secrets and safety at the card, through real pcscd + vpcd against `cardunlock sim-card`:
//! the PUK and new PIN from standard input or private files, PIV `--offline` explained before
//! anything is asked, online unlock stopping before the last PUK try, enrollment checking the
//! management key (and its algorithm, read from the card) before spending a PUK try, and
//! `admin-auth` reading the algorithm from the card.
#![cfg(feature = "pcsc")]

mod common;

use std::process::{Command, Output};

use common::online::{enroll, enroll_with, serve};
use common::*;

const PIV_OFFLINE: &str = "This is a PIV card: PIV has no offline challenge.";

/// Runs the CLI on reader 1 with `stdin` as standard input.
fn on_reader_with(args: &[&str], stdin: &str) -> Output {
    output_with_stdin(
        Command::new(BIN).args(["--reader", READER]).args(args),
        stdin,
    )
}

fn private_file(dir: &std::path::Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    write_private(&path, content);
    path.display().to_string()
}

#[test]
fn the_puk_from_standard_input_and_the_new_pin_from_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let _card = SimCard::start("piv", true);
    let pin_file = private_file(dir.path(), "pin", "840259\n");
    let out = on_reader_with(
        &["unlock", "--puk-stdin", "--new-pin-file", &pin_file],
        "12345678\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("The smart card has been unlocked successfully."));
    assert!(!text(&out).contains("12345678") && !text(&out).contains("840259"));
    assert_eq!(status_json("pin_tries_left"), "3");
}

#[test]
fn piv_offline_is_explained_before_anything_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let _card = SimCard::start("piv", true);
    // No terminal and no PUK: the explanation, then a clear stop; no PIN asked, no try spent.
    let out = on_reader_with(&["unlock", "--offline"], "");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains(PIV_OFFLINE), "{t}");
    assert!(t.contains("error: PUK: "), "{t}");
    assert!(!t.contains("New PIN"), "{t}");
    assert_eq!(status_json("puk_tries_left"), "3");
    // With the PUK the operator read out: the explanation comes before the new PIN.
    let puk = private_file(dir.path(), "puk", "12345678\n");
    let out = on_reader_with(
        &["unlock", "--offline", "--puk-file", &puk, "--new-pin-stdin"],
        "840259\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    let told = t.find(PIV_OFFLINE).unwrap_or_else(|| panic!("{t}"));
    let asked = t.find("Enter new PIN").unwrap_or_else(|| panic!("{t}"));
    assert!(told < asked, "{t}");
    assert!(
        t.contains("The smart card has been unlocked successfully."),
        "{t}"
    );
    assert_eq!(status_json("pin_tries_left"), "3");
}

#[test]
fn online_unlock_stops_before_the_last_puk_try() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url, cert) = serve(dir.path());
    let _card = SimCard::start("piv", true);
    assert!(enroll(&server, dir.path(), &[("First pet?", "Rex")])
        .status
        .success());
    // Two wrong PUKs typed at the workstation leave one try.
    for _ in 0..2 {
        let out = on_reader(&["unlock", "--puk", "00000000", "--new-pin", "840259"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    }
    assert_eq!(status_json("puk_tries_left"), "1");
    let cert = cert.display().to_string();
    let answers = private_file(dir.path(), "answers", "Rex\n");
    let out = on_reader(&[
        "unlock",
        "--server",
        &url,
        "--server-cert",
        &cert,
        "--answers-file",
        &answers,
        "--new-pin",
        "840259",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("error: PUK: the card has 1 PUK try left"), "{t}");
    assert!(t.contains("Contact your administrator"), "{t}");
    assert_eq!(status_json("puk_tries_left"), "1");
    assert_eq!(status_json("pin_blocked"), "true");
}

#[test]
fn enrollment_checks_the_management_key_before_the_puk() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _url, _cert) = serve(dir.path());
    let _card = SimCard::start("piv", true);
    let out = enroll_with(
        &server,
        dir.path(),
        &[("Q?", "A")],
        &[
            "--factory-admin-key",
            "0807060504030201080706050403020108070605040302010",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("factory admin key"), "{}", text(&out));
    let out = enroll_with(
        &server,
        dir.path(),
        &[("Q?", "A")],
        &[
            "--factory-admin-key",
            "080706050403020108070605040302010807060504030201",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("management key: the card accepted none of the known ones"),
        "{}",
        text(&out)
    );
    // No PUK try spent, the factory PUK still works.
    assert_eq!(status_json("puk_tries_left"), "3");
    let out = on_reader(&["unlock", "--puk", "12345678", "--new-pin", "840259"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// A YubiKey 5.7 leaves the factory with an AES-192 management key (the same 24 bytes).
fn start_aes192_card() -> SimCard {
    SimCard::start_with("piv", true, &["--mgmt-aes192"])
}

#[test]
fn the_management_key_algorithm_is_read_from_the_card() {
    let dir = tempfile::tempdir().unwrap();
    let _card = start_aes192_card();
    assert_eq!(status_json("admin_algorithm"), "\"AES-192\"");
    let key = private_file(dir.path(), "key", &format!("{ADMIN_KEY}\n"));
    let out = on_reader(&["admin-auth", "--key-file", &key]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Management key accepted (AES-192"),
        "{}",
        text(&out)
    );
    // Enrollment authenticates with it too, without being told the algorithm.
    let (server, _url, _cert) = serve(dir.path());
    let out = enroll(&server, dir.path(), &[("First pet?", "Rex")]);
    assert!(out.status.success(), "{}", text(&out));
}
