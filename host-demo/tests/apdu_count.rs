//! How many APDUs each card command of the CLI sends, counted from its own `-v` trace (one
//! `    > ` line per command APDU) through real pcscd + vpcd against `cardunlock sim-card`. The
//! counts are the ones `BENCHMARKS.md` ("APDU audit") explains; these tests keep them from
//! growing back. `-v` also prints `reader: <name>` once per connection.
#![cfg(feature = "pcsc")]

mod common;

use std::process::Output;

use common::online::{enroll, serve};
use common::*;

/// The command APDUs of a `-v` trace, as their hex text.
fn commands(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("    > "))
        .map(str::to_string)
        .collect()
}

fn connections(out: &Output) -> usize {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("reader: "))
        .count()
}

fn starts(cmds: &[String]) -> Vec<&str> {
    cmds.iter().map(|c| &c[..11.min(c.len())]).collect()
}

#[test]
fn piv_unblock_is_three_apdus_on_one_connection() {
    let _card = SimCard::start("piv", true);

    // Policy violation: the card is not sent a single APDU.
    let out = on_reader(&["-v", "unblock", "--puk", "12345678", "--new-pin", "111111"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(commands(&out), Vec::<String>::new(), "{}", text(&out));

    // Wrong PUK: SELECT, GET METADATA (PUK), RESET RETRY COUNTER; the answer tells the tries.
    let out = on_reader(&["-v", "unblock", "--puk", "87654321", "--new-pin", "840259"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("Wrong PUK. 2 tries left."),
        "{}",
        text(&out)
    );
    assert_eq!(
        starts(&commands(&out)),
        ["00 A4 04 00", "00 F7 00 81", "00 2C 00 80"],
        "{}",
        text(&out)
    );
    assert_eq!(connections(&out), 1, "{}", text(&out));

    // The unblock: the same three APDUs, one connection, PIN set and tries back.
    let out = on_reader(&["-v", "unblock", "--puk", "12345678", "--new-pin", "840259"]);
    assert!(out.status.success(), "{}", text(&out));
    let cmds = commands(&out);
    assert!(cmds.len() <= 3, "more than 3 APDUs: {}", text(&out));
    assert_eq!(
        starts(&cmds),
        ["00 A4 04 00", "00 F7 00 81", "00 2C 00 80"],
        "{}",
        text(&out)
    );
    assert_eq!(connections(&out), 1, "{}", text(&out));
    assert_eq!(status_json("pin_tries_left"), "3");
    assert_eq!(status_json("puk_tries_left"), "3");
}

#[test]
fn a_gids_card_given_to_unblock_is_named_in_the_same_session() {
    let _card = SimCard::start("gids", true);
    let out = on_reader(&["-v", "unblock", "--puk", "12345678", "--new-pin", "840259"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("this is a GIDS card"), "{}", text(&out));
    assert_eq!(connections(&out), 1, "{}", text(&out));
    assert!(
        !commands(&out).iter().any(|c| c.starts_with("00 2C")),
        "{}",
        text(&out)
    );
}

#[test]
fn status_apdus() {
    let _card = SimCard::start("piv", true);
    let out = on_reader(&["-v", "status"]);
    assert!(out.status.success(), "{}", text(&out));
    // SELECT, GET DATA CHUID, VERIFY (no data), GET METADATA PUK, GET METADATA 9B.
    assert_eq!(
        starts(&commands(&out)),
        [
            "00 A4 04 00",
            "00 CB 3F FF",
            "00 20 00 80",
            "00 F7 00 81",
            "00 F7 00 9B"
        ],
        "{}",
        text(&out)
    );
    assert_eq!(connections(&out), 1);
}

/// An admin-key unlock (`-v`) of a `profile` card in the reader setting `new_pin`: it succeeds
/// in 9 APDUs over one connection and leaves the PIN with 3 tries; `count_selects` counts the
/// SELECTs the profile expects among the commands, which must be `selects`.
fn admin_unlock_in_nine_apdus(
    profile: &str,
    new_pin: &str,
    count_selects: impl Fn(&String) -> bool,
    selects: usize,
) {
    let _card = SimCard::start(profile, true);
    let out = on_reader(&[
        "-v",
        "unlock",
        "--admin-key",
        ADMIN_KEY,
        "--new-pin",
        new_pin,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let cmds = commands(&out);
    assert_eq!(cmds.len(), 9, "{}", text(&out));
    let counted = cmds.iter().filter(|c| count_selects(c)).count();
    assert_eq!(counted, selects, "{}", text(&out));
    assert_eq!(connections(&out), 1);
    assert_eq!(status_json("pin_tries_left"), "3");
}

/// Status: SELECT PIV (not there), SELECT GIDS, GET DATA (PIN), GET DATA (serial); unblock:
/// MSE SET, 2x GENERAL AUTHENTICATE, RESET RETRY COUNTER, VERIFY. GIDS is selected once.
#[test]
fn gids_admin_unlock_selects_once() {
    let gids_select = |c: &String| c.starts_with("00 A4 04 00 09 A0 00 00 03 97");
    admin_unlock_in_nine_apdus("gids", "Xk9w2", gids_select, 1);
}

/// Status: SELECT PIV, SELECT GIDS (neither there), SELECT ISO, VERIFY (no data), GET DATA
/// (serial); unblock: GET CHALLENGE, EXTERNAL AUTHENTICATE, RESET RETRY COUNTER, VERIFY: three
/// SELECTs in all.
#[test]
fn iso_admin_unlock_selects_once() {
    admin_unlock_in_nine_apdus("iso", "Tq83z", |c| c.starts_with("00 A4"), 3);
}

#[test]
fn online_piv_unlock_apdus() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url, cert) = serve(dir.path());
    let _card = SimCard::start("piv", true);
    let out = enroll(&server, dir.path(), &[("First pet?", "Rex")]);
    assert!(out.status.success(), "{}", text(&out));
    let cert = cert.display().to_string();
    let out = on_reader(&[
        "-v",
        "unlock",
        "--server",
        &url,
        "--server-cert",
        &cert,
        "--answer",
        "rex",
        "--new-pin",
        "840259",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let cmds = commands(&out);
    eprintln!("online PIV unlock: {} APDUs: {cmds:#?}", cmds.len());
    assert_eq!(connections(&out), 1);
    // The PUK rotation after the unblock must be there; no more than one SELECT per step.
    assert!(
        cmds.iter().any(|c| c.starts_with("00 24 00 81")),
        "{cmds:?}"
    );
    // Pinned: status (SELECT, CHUID, PIN status, PUK metadata: an unlock never uses the admin
    // key, so no 9B metadata), the presence proof
    // (exactly one GENERAL AUTHENTICATE with 9E, before any secret reaches the card), the
    // unblock (SELECT, RESET RETRY COUNTER: no VERIFY after it) and the PUK rotation (CHANGE,
    // on the application the unblock selected: no second SELECT).
    let heads: Vec<&str> = cmds.iter().map(|c| &c[..c.len().min(11)]).collect();
    assert_eq!(
        heads,
        [
            "00 A4 04 00",
            "00 CB 3F FF",
            "00 20 00 80",
            "00 F7 00 81",
            "00 87 11 9E",
            "00 A4 04 00",
            "00 2C 00 80",
            "00 24 00 81",
        ],
        "{}",
        text(&out)
    );
}
