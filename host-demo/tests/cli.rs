//! The command line itself, no card needed: each command shows only the options it uses,
//! plain-HTTP servers are refused, every error names what it is about, secrets have safe ways
//! in (standard input, private files) and unsafe files are refused before anything runs; the
//! operator commands take no master secret, database or raw key.

mod common;

use std::process::Command;

use common::{output_with_stdin, text, BIN};

fn run_with(args: &[&str], stdin: &str) -> (Option<i32>, String) {
    let out = output_with_stdin(
        Command::new(BIN)
            .args(args)
            .env_remove("CARDUNLOCK_TRANSPORT"),
        stdin,
    );
    let text = text(&out);
    (out.status.code(), text)
}

fn run(args: &[&str]) -> (Option<i32>, String) {
    run_with(args, "")
}

fn help(command: &str) -> String {
    let (code, text) = run(&[command, "--help"]);
    assert_eq!(code, Some(0), "{text}");
    text
}

#[test]
fn each_command_shows_only_the_options_it_uses() {
    let card_options = ["--reader", "--wait", "--transport", "--verbose"];
    let mut commands = vec!["lift-lock", "respond", "puk-readout", "sign-out"];
    if cfg!(feature = "demo") {
        commands.push("sim-card");
    }
    for command in commands {
        let text = help(command);
        for option in card_options {
            assert!(
                !text.contains(option),
                "`{command} --help` lists {option}:\n{text}"
            );
        }
    }
    for command in ["status", "unlock", "admin-auth", "enroll"] {
        let text = help(command);
        for option in [
            "--reader",
            "--wait",
            "--transport",
            "--iso-profiles",
            "--verbose",
        ] {
            assert!(
                text.contains(option),
                "`{command} --help` lacks {option}:\n{text}"
            );
        }
    }
    // Every secret has its safe ways in, listed where it is used.
    let unlock = help("unlock");
    for option in [
        "--puk-stdin",
        "--puk-file",
        "--new-pin-stdin",
        "--new-pin-file",
        "--admin-key-stdin",
        "--admin-key-file",
        "--answers-stdin",
        "--answers-file",
    ] {
        assert!(unlock.contains(option), "unlock lacks {option}:\n{unlock}");
    }
    let enroll = help("enroll");
    // The operator's commands sign in: password from standard input or a private file.
    for option in [
        "--answers-stdin",
        "--answers-file",
        "--password-stdin",
        "--password-file",
    ] {
        assert!(enroll.contains(option), "enroll lacks {option}:\n{enroll}");
    }
    for command in ["enroll", "lift-lock", "respond", "puk-readout"] {
        let text = help(command);
        for option in [
            "--server",
            "--cert",
            "--operator",
            "--password-file",
            "--totp",
        ] {
            assert!(text.contains(option), "{command} lacks {option}:\n{text}");
        }
        // No master secret, no database, no raw key at the workstation.
        for gone in ["--master-secret", "--db", "--key"] {
            assert!(!text.contains(gone), "{command} lists {gone}:\n{text}");
        }
    }
    assert!(help("lift-lock").contains("--reason"));
    assert!(help("respond").contains("--identity-checked"));
    assert!(help("admin-auth").contains("--key-stdin"));
    // `unblock` is `unlock`.
    let (code, text) = run(&["unblock", "--help"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("--offline") && text.contains("--puk-stdin"),
        "{text}"
    );
}

#[test]
fn a_plain_http_server_is_refused_before_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("server.crt");
    std::fs::write(&cert, "not needed").unwrap();
    let cert = cert.display().to_string();
    let (code, text) = run(&[
        "unlock",
        "--server",
        "http://127.0.0.1:1",
        "--server-cert",
        &cert,
        "--answer",
        "Rex",
        "--new-pin",
        "840259",
    ]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("error: --server: http://127.0.0.1:1 is plain HTTP"),
        "{text}"
    );
    assert!(text.contains("https://"), "{text}");
}

#[test]
fn errors_name_their_subject() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        // A PUK the card cannot take: checked before any reader is opened.
        (
            vec!["unlock", "--puk", "123", "--new-pin", "840259"],
            "error: PUK: it must be 6 to 8 characters long",
        ),
        (
            vec![
                "unlock",
                "--puk-file",
                "/nonexistent/puk",
                "--new-pin",
                "840259",
            ],
            "error: PUK: /nonexistent/puk: ",
        ),
        (
            vec![
                "respond",
                "--server",
                "https://127.0.0.1:1",
                "--cert",
                "c",
                "--identity",
                "0g",
                "--identity-checked",
                "badge",
                "D4BD",
            ],
            "error: card identity: ",
        ),
        (
            vec![
                "unlock",
                "--server",
                "ftp://x",
                "--server-cert",
                "c",
                "--new-pin",
                "1",
            ],
            "error: --server: ",
        ),
    ] {
        let (code, text) = run(&args);
        assert_eq!(code, Some(2), "{args:?}: {text}");
        assert!(text.contains(says), "{args:?}: {text}");
    }
    let _ = dir;
}

#[test]
fn secret_files_others_can_read_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("new-pin");
    std::fs::write(&file, "840259\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = file.display().to_string();
    let (code, text) = run(&["unlock", "--puk", "12345678", "--new-pin-file", &path]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("error: new PIN: "), "{text}");
    assert!(text.contains("chmod 600"), "{text}");
    assert!(!text.contains("840259"), "{text}");
}

#[test]
fn one_secret_at_most_comes_from_standard_input() {
    let (code, text) = run_with(
        &["unlock", "--puk-stdin", "--new-pin-stdin"],
        "12345678\n840259\n",
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("error: standard input: only one secret"),
        "{text}"
    );
    assert!(text.contains("PUK, new PIN"), "{text}");
    // Two values for one secret.
    let (code, text) = run_with(
        &[
            "unlock",
            "--puk",
            "12345678",
            "--puk-stdin",
            "--new-pin",
            "840259",
        ],
        "12345678\n",
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("PUK: give it one way"), "{text}");
}

#[test]
fn the_password_and_the_answers_cannot_both_come_from_standard_input() {
    let (code, text) = run_with(
        &[
            "enroll",
            "--server",
            "https://127.0.0.1:1",
            "--cert",
            "c",
            "--operator",
            "eve",
            "--password-stdin",
            "--name",
            "M",
            "--email",
            "m@x",
            "--question",
            "Q?",
            "--answers-stdin",
        ],
        "secret\nanswer\n",
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("error: standard input: only one secret"),
        "{text}"
    );
    assert!(!text.contains("secret\n"), "{text}");
}

/// `--algorithm` is read by the client's one reader of algorithm names: the spellings people
/// use pass the parser, an unknown one and `card` (the default already, no choice here) are
/// refused with exit code 2 and the accepted names.
#[test]
fn algorithm_names_are_read_by_the_clients_reader() {
    for bad in ["des", "card"] {
        let (code, text) = run_with(&["admin-auth", "--algorithm", bad], "");
        assert_eq!(code, Some(2), "{bad}: {text}");
        let says = format!("algorithm \"{bad}\": use 3des, aes128, aes192, aes256");
        assert!(text.contains(&says), "{bad}: {text}");
        assert!(!text.contains("or card"), "{bad}: {text}");
    }
    for good in ["AES-192", "tdes", "triple-des"] {
        let (_, text) = run_with(&["admin-auth", "--algorithm", good, "--help"], "");
        assert!(!text.contains("invalid value"), "{good}: {text}");
    }
}
