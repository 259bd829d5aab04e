//! The operator's commands on the command line, against the unlock server (in this process):
//! bad input refused with exit code 2 before anything is sent, sign-in refusals with exit code
//! 1 and nothing kept, the kept session reused then ended by `sign-out`, refusals that name
//! what they are about, and `serve` gone from the workstation program.

mod common;

use std::path::Path;
use std::process::Output;

use common::online::{cli_in, lift_piv, operator, remote, serve, OPERATOR};
use common::{assert_exit, text};

fn session_file(dir: &Path) -> std::path::PathBuf {
    dir.join("state").join("operator-session.json")
}

/// `--profile piv --identity 0011 --reason x`: a lift-lock of a card the server does not know.
const LIFT_0011: [&str; 6] = lift_piv("0011", "x");

/// `cardunlock lift-lock` of the card `0011` on the server at `url`, signed in by the kept
/// session alone (no operator options).
fn lift_lock_kept(dir: &Path, url: &str, cert: &str) -> Output {
    cli_in(dir, &remote("lift-lock", url, cert, &LIFT_0011))
}

#[test]
fn serve_is_not_a_workstation_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli_in(dir.path(), &["serve", "--bind", "127.0.0.1:0"]);
    assert_exit(&out, 2, "unrecognized subcommand");
}

#[test]
fn bad_input_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("server.crt");
    std::fs::write(&cert, "unused").unwrap();
    let cert = cert.display().to_string();
    let offline = "https://127.0.0.1:1";
    let respond = ["--identity-checked", "badge"];
    for (list, says) in [
        (
            remote(
                "lift-lock",
                "http://127.0.0.1:1",
                &cert,
                &lift_piv("00112233", "x"),
            ),
            "error: --server: http://127.0.0.1:1 is plain HTTP",
        ),
        (
            [
                remote("respond", offline, &cert, &respond),
                vec!["--identity", "../admin", "D4BD9B1DA5D26CDA"],
            ]
            .concat(),
            "error: card identity: ",
        ),
        (
            remote("lift-lock", offline, "/nonexistent.pem", &LIFT_0011),
            "error: server certificate /nonexistent.pem: ",
        ),
        (
            [
                remote("respond", offline, &cert, &respond),
                vec!["--identity", "0011"],
            ]
            .concat(),
            "error: challenge: ",
        ),
        (
            vec!["lift-lock", "--profile", "piv", "--identity", "0011"],
            "--reason",
        ),
        (
            vec!["respond", "--key", "0102", "D4BD9B1DA5D26CDA"],
            "unexpected argument '--key'",
        ),
    ] {
        let out = cli_in(dir.path(), &list);
        assert_eq!(out.status.code(), Some(2), "{list:?}: {}", text(&out));
        assert!(text(&out).contains(says), "{list:?}: {}", text(&out));
    }
}

#[test]
fn a_wrong_password_keeps_nothing_and_a_password_file_must_be_private() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url, cert) = serve(dir.path());
    let cert = cert.display().to_string();
    let wrong = dir.path().join("wrong-password");
    common::write_private(&wrong, "not the password at all\n");
    let wrong = wrong.display().to_string();
    let code_now = server.code();
    let base = remote(
        "lift-lock",
        &url,
        &cert,
        &[
            "--operator",
            OPERATOR,
            "--totp",
            &code_now,
            "--keep-session",
        ],
    );
    let base = [base, LIFT_0011.to_vec()].concat();
    let mut list = base.to_vec();
    list.extend(["--password-file", &wrong]);
    let out = cli_in(dir.path(), &list);
    assert_exit(&out, 1, "error: sign-in: ");
    assert!(!text(&out).contains("not the password"), "{}", text(&out));
    assert!(!session_file(dir.path()).exists());
    // A password file others can read is refused before sign-in.
    let open = dir.path().join("open-password");
    std::fs::write(&open, "x").unwrap();
    let open = open.display().to_string();
    let mut list = base.to_vec();
    list.extend(["--password-file", &open]);
    let out = cli_in(dir.path(), &list);
    assert_exit(&out, 2, "error: password: ");
    assert!(text(&out).contains("chmod 600"), "{}", text(&out));
    // Without a terminal and without the option, the TOTP code is not guessed.
    let right = dir.path().join("operator-password").display().to_string();
    let operator_opts = ["--operator", OPERATOR, "--password-file", &right];
    let list = [
        remote("lift-lock", &url, &cert, &operator_opts),
        LIFT_0011.to_vec(),
    ]
    .concat();
    let out = cli_in(dir.path(), &list);
    assert_exit(&out, 2, "TOTP code: ");
}

#[test]
fn one_sign_in_serves_several_commands_until_sign_out() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url, cert) = serve(dir.path());
    // An unknown card: the server's refusal names the command; the sign-in is kept.
    let out = operator(
        &server,
        dir.path(),
        "lift-lock",
        &lift_piv("00112233", "called back"),
    );
    assert_exit(&out, 1, "error: lift-lock: ");
    let file = session_file(dir.path());
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The next command reuses it: no password, no code (the same code would be refused).
    let cert = cert.display().to_string();
    let respond = ["--identity", "00112233", "--identity-checked", "badge"];
    let list = [
        remote("respond", &url, &cert, &respond),
        vec!["D4BD9B1DA5D26CDA"],
    ]
    .concat();
    let out = cli_in(dir.path(), &list);
    assert_exit(&out, 1, "error: offline response: ");
    let sign_ins = server
        .handle
        .store()
        .audit()
        .unwrap()
        .iter()
        .filter(|e| e.event == "sign_in")
        .count();
    assert_eq!(sign_ins, 1);
    // Sign-out ends it on the server and deletes the file.
    let out = cli_in(dir.path(), &remote("sign-out", &url, &cert, &[]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("Signed out {OPERATOR}")),
        "{}",
        text(&out)
    );
    assert!(!file.exists());
    let out = lift_lock_kept(dir.path(), &url, &cert);
    assert_exit(&out, 2, "--operator");
}

#[test]
fn a_kept_session_the_server_no_longer_takes_is_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url, cert) = serve(dir.path());
    let out = operator(&server, dir.path(), "lift-lock", &LIFT_0011);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let file = session_file(dir.path());
    // A token the server never issued (as after the server ended the session).
    let saved = std::fs::read_to_string(&file).unwrap();
    let token = common::json_string(&saved, "token");
    std::fs::write(&file, saved.replace(&token, &"0".repeat(token.len()))).unwrap();
    let cert = cert.display().to_string();
    let out = lift_lock_kept(dir.path(), &url, &cert);
    assert_exit(&out, 1, "the kept session ended and was forgotten");
    assert!(!file.exists());
}
