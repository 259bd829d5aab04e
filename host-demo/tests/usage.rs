//! Bad input on the command line: a clear message and exit code 2, before any card, server or
//! database is touched (or, for the operator's database, a refusal that names the card).

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_cardunlock");

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out: Output = Command::new(BIN).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

const KEY: &str = "010203040506070801020304050607080102030405060708";

#[test]
fn respond_computes_the_design_vector_and_refuses_bad_input() {
    let (code, text) = run(&["respond", "--key", KEY, "D4BD 9B1D A5D2 6CDA"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("Response: B5A8 5C0F 0207 FCF1"), "{text}");
    let (code, text) = run(&["--json", "respond", "--key", KEY, "D4BD9B1DA5D26CDA"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("\"response\":\"B5A8 5C0F 0207 FCF1\""),
        "{text}"
    );
    // A challenge of the wrong length, non-hex, a short key, an unknown algorithm.
    for (args, says) in [
        (vec!["respond", "--key", KEY, "D4BD9B1D"], "16 hex digits"),
        (
            vec!["respond", "--key", KEY, "ZZZZZZZZZZZZZZZZ"],
            "challenge",
        ),
        (
            vec!["respond", "--key", "0102", "D4BD9B1DA5D26CDA"],
            "admin key",
        ),
        (
            vec![
                "respond",
                "--key",
                KEY,
                "--algorithm",
                "des",
                "D4BD9B1DA5D26CDA",
            ],
            "unknown algorithm",
        ),
        (vec!["respond", "D4BD9B1DA5D26CDA"], "--key"),
    ] {
        let (code, text) = run(&args);
        assert_eq!(code, Some(2), "{args:?}: {text}");
        assert!(text.contains(says), "{args:?}: {text}");
        assert!(!text.contains(KEY), "the key was echoed: {text}");
    }
}

#[test]
fn lift_lock_of_a_card_the_database_does_not_know() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite").display().to_string();
    let master = dir.path().join("master.hex");
    std::fs::write(&master, "cd".repeat(32)).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&master, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let master = master.display().to_string();
    let (code, text) = run(&[
        "lift-lock",
        "--db",
        &db,
        "--master-secret-file",
        &master,
        "--profile",
        "piv",
        "--identity",
        "00112233",
    ]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("lift-lock"), "{text}");
}

#[test]
fn serve_without_a_master_secret_says_where_to_put_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite").display().to_string();
    let out = Command::new(BIN)
        .args(["serve", "--db", &db, "--bind", "127.0.0.1:0"])
        .env_remove("CARDUNLOCK_MASTER_SECRET")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("master secret"), "{text}");
}

#[cfg(feature = "pcsc")]
#[test]
fn unlock_needs_a_mode_and_online_needs_the_pinned_certificate() {
    let (code, text) = run(&["unlock", "--new-pin", "Xk9w2"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("--server") && text.contains("--offline"),
        "{text}"
    );
    let (code, text) = run(&[
        "unlock",
        "--server",
        "https://127.0.0.1:1",
        "--new-pin",
        "Xk9w2",
    ]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("--server-cert"), "{text}");
}
