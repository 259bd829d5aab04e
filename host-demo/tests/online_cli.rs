//! Online unlock end to end through real pcscd: the unlock server (HTTPS, SQLite, in the test's
//! process) with an operator, `cardunlock sim-card` serving a blocked PIV / GIDS / ISO card,
//! `cardunlock enroll` (signed in as the operator) personalising it with the secrets the server
//! hands out, and `cardunlock unlock --server` unlocking it with the security questions.
#![cfg(feature = "pcsc")]

use std::path::Path;
use std::process::Output;

mod common;

use common::online::{enroll_with, enrolled, lift_piv, operator, serve};

use common::{assert_exit, cli, text, READER};

fn unlock(url: &str, cert: &Path, answers: &[&str], pin: &str) -> Output {
    let cert = cert.display().to_string();
    let mut args = vec![
        "--reader",
        READER,
        "unlock",
        "--server",
        url,
        "--server-cert",
        &cert,
        "--new-pin",
        pin,
    ];
    for a in answers {
        args.extend(["--answer", a]);
    }
    cli(&args)
}

const QUESTIONS: [(&str, &str); 2] = [("First pet?", "Rex"), ("City of birth?", "São Paulo")];

fn end_to_end(profile: &str, pin: &str) {
    let (_held, _server, url, cert) = enrolled(profile, &QUESTIONS);
    // Answers are normalised: case and spaces do not matter.
    let out = unlock(&url, &cert, &["  rex ", "SÃO   PAULO"], pin);
    assert!(out.status.success(), "{profile}: {}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("Michael Benson\nMichael.Benson@demo.local"),
        "{t}"
    );
    assert!(
        t.contains("The smart card has been unlocked successfully."),
        "{t}"
    );
    let status = text(&cli(&["--reader", READER, "status"]));
    assert!(status.contains("PIN tries left 3"), "{profile}: {status}");
}

#[test]
fn online_unlock_piv() {
    end_to_end("piv", "840259");
}

#[test]
fn online_unlock_gids() {
    end_to_end("gids", "Xk9w2");
}

#[test]
fn online_unlock_iso() {
    end_to_end("iso", "Tq83z");
}

#[test]
fn wrong_answers_count_down_then_lock_and_the_operator_lifts_it() {
    let (held, server, url, cert) = enrolled("piv", &QUESTIONS);
    let dir = &held.dir;
    for left in [2, 1] {
        let out = unlock(&url, &cert, &["Rex", "Rio"], "840259");
        assert_exit(&out, 1, &format!("{left} attempt"));
    }
    let out = unlock(&url, &cert, &["Rex", "Rio"], "840259");
    assert_eq!(out.status.code(), Some(1));
    // The lock survives a server restart.
    drop(server);
    let (server, url, cert) = serve(dir.path());
    let out = unlock(&url, &cert, &["Rex", "São Paulo"], "840259");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).to_lowercase().contains("lock"), "{}", text(&out));
    assert!(text(&cli(&["--reader", READER, "status"])).contains("PIN BLOCKED"));
    // The operator lifts it.
    let id = common::card_identity();
    // A reason is required (it goes to the audit log).
    let out = operator(&server, dir.path(), "lift-lock", &lift_piv(&id, " "));
    assert_exit(&out, 2, "reason: ");
    let out = operator(
        &server,
        dir.path(),
        "lift-lock",
        &lift_piv(&id, "called back on file"),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Online unlock lifted"),
        "{}",
        text(&out)
    );
    server.assert_audited("lift_lock", "called back on file");
    let out = unlock(&url, &cert, &["Rex", "São Paulo"], "840259");
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn no_questions_means_offline_only_and_unreachable_server_touches_nothing() {
    let (_held, server, url, cert) = enrolled("iso", &[]);
    let out = unlock(&url, &cert, &[], "Tq83z");
    assert_exit(&out, 1, "Online unlock is not available");
    assert!(text(&out).contains("--offline"), "{}", text(&out));
    drop(server);
    let out = unlock(&url, &cert, &["x"], "Tq83z");
    assert_exit(&out, 6, "The card was not touched");
    assert!(text(&cli(&["--reader", READER, "status"])).contains("PIN BLOCKED"));
}

#[test]
fn a_policy_violation_is_refused_before_the_card_is_touched() {
    let (_held, _server, url, cert) = enrolled("piv", &QUESTIONS);
    let out = unlock(&url, &cert, &["Rex", "São Paulo"], "123456");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let status = text(&cli(&["--reader", READER, "status"]));
    assert!(
        status.contains("PIN BLOCKED") && status.contains("PUK tries left 3"),
        "{status}"
    );
}

#[test]
fn enrollment_with_a_wrong_factory_puk_registers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url, cert) = serve(dir.path());
    let _card = common::SimCard::start("piv", true);
    let out = enroll_with(
        &server,
        dir.path(),
        &[("Q?", "A")],
        &["--factory-puk", "11111111"],
    );
    assert_exit(&out, 1, "changing the PUK: Wrong PUK. 2 tries left.");
    // Nothing was registered: the server does not know the card (and, PIV, says only that the
    // card could not be verified: the same as for every card before its proof).
    let out = unlock(&url, &cert, &["A"], "840259");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("could not be verified for online unlock"),
        "{}",
        text(&out)
    );
}

/// A PIV card's holder calls the help desk: the operator reads the PUK out of the server
/// (`cardunlock puk-readout`), and the holder unblocks the card with it.
#[test]
fn the_help_desk_reads_out_the_puk_and_it_unblocks_the_card() {
    let (held, server, _, _) = enrolled("piv", &QUESTIONS);
    let dir = &held.dir;
    let id = common::card_identity();
    let out = operator(
        &server,
        dir.path(),
        "puk-readout",
        &[
            "--identity",
            &id,
            "--identity-checked",
            "called back on the number on file",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let puk = text(&out)
        .lines()
        .find_map(|l| l.split_once("): ").map(|(_, p)| p.trim().to_string()))
        .unwrap_or_else(|| panic!("no PUK in {}", text(&out)));
    assert_eq!(puk.len(), 8, "{puk}");
    let out = cli(&[
        "--reader",
        READER,
        "unlock",
        "--puk",
        &puk,
        "--new-pin",
        "840259",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    // The read-out is audited with the operator and how the caller was identified.
    let audit = server.assert_audited("puk_readout", "called back");
    assert!(!format!("{audit:?}").contains(&puk));
}
