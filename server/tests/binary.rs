//! The `cardunlock-server` binary: `add-admin` / `add-operator` (password from standard input
//! or an owner-only file, the otpauth URI and QR code printed), then `serve`, and the printed
//! TOTP seed signs the operator in over HTTPS.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cardunlock_server::totp;
use common::operators::unix;
use common::*;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_cardunlock-server");

fn server_cmd(db: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("CARDUNLOCK_MASTER_SECRET", MASTER_HEX)
        .env("CARDUNLOCK_DB", db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn add_admin_then_serve_then_sign_in_with_the_printed_seed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cardunlock.db");
    let mut child = server_cmd(&db)
        .args(["add-admin", "root", "--password-stdin"])
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long admin password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains('█'), "no QR code: {stdout}");
    let uri = stdout
        .lines()
        .find(|l| l.starts_with("otpauth://"))
        .unwrap();
    let seed = totp::seed_from_uri(uri).unwrap();

    // Same name again: refused, exit 2.
    let mut again = server_cmd(&db)
        .args(["add-admin", "root", "--password-stdin"])
        .spawn()
        .unwrap();
    again
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long admin password\n")
        .unwrap();
    assert_eq!(again.wait_with_output().unwrap().status.code(), Some(2));
    // A password file open to others is refused.
    let file = dir.path().join("pw");
    std::fs::write(&file, "another long password\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let open = server_cmd(&db)
            .args([
                "add-operator",
                "hd",
                "--role",
                "helpdesk",
                "--password-file",
            ])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(open.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&open.stderr).contains("chmod 600"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let hd = server_cmd(&db)
        .args([
            "add-operator",
            "hd",
            "--role",
            "helpdesk",
            "--role",
            "auditor",
            "--password-file",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        hd.status.success(),
        "{}",
        String::from_utf8_lossy(&hd.stderr)
    );

    let state = dir.path().join("state");
    let mut server = server_cmd(&db)
        .args(["serve", "--bind", "127.0.0.1:0", "--state-dir"])
        .arg(&state)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first.rsplit(' ').next().unwrap().to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{first}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !state.join("server.crt").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let agent = agent(&std::fs::read_to_string(state.join("server.crt")).unwrap());
    let code = totp::code(&seed, unix());
    let (status, reply) = post(
        &agent,
        &url,
        "/v1/operator/session",
        &json!({"name": "root", "password": "a long admin password", "totp": code.as_str()}),
    );
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["operator"]["roles"], json!(["admin"]));
}

/// `audit verify`: exit 0 and the head on a whole chain; exit 3 naming the row once a row is
/// changed straight in the database; exit 3 against a saved head after the tail is cut.
#[test]
fn audit_verify_names_a_changed_row_and_a_cut_tail() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cardunlock.db");
    let store = cardunlock_server::Store::open(&db).unwrap();
    store.set_audit_key(&master()).unwrap();
    for id in ["c1", "c2", "c3"] {
        store
            .enroll(
                &enrollment("piv", id, cardunlock_core::crypto::Algorithm::TripleDes),
                &FAST,
            )
            .unwrap();
    }
    drop(store);
    let verify = |head: Option<&str>| {
        let mut cmd = server_cmd(&db);
        cmd.args(["audit", "verify"]);
        if let Some(h) = head {
            cmd.args(["--head", h]);
        }
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, stdout, stderr) = verify(None);
    assert_eq!(code, Some(0), "{stdout} {stderr}");
    assert!(
        // The row-MAC migration's `row_mac` row, then the three enrolments.
        stdout.contains("audit chains verified: 4 rows in 1 chains"),
        "{stdout}"
    );
    let head = stdout
        .lines()
        .find_map(|l| l.strip_prefix("head "))
        .unwrap()
        .to_owned();
    assert!(head.contains(":4:"), "{head}");

    // The tail cut and the stored head set back: only the saved head shows it.
    query_texts(&db, "DELETE FROM audit WHERE seq = 4");
    query_texts(
        &db,
        "UPDATE audit_heads SET seq = 3, mac = (SELECT mac FROM audit WHERE seq = 3)",
    );
    assert_eq!(verify(None).0, Some(0));
    let (code, _, stderr) = verify(Some(&head));
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("before the saved head seq 4"), "{stderr}");

    query_texts(&db, "UPDATE audit SET outcome = 'nothing' WHERE seq = 3");
    let (code, _, stderr) = verify(None);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("row seq 3 (id 3) was changed"), "{stderr}");
    // A malformed head is bad usage.
    assert_eq!(verify(Some("3:zz")).0, Some(2));
}

/// `audit export` writes an owner-only file of parseable lines ending with the heads;
/// `audit archive` moves the rows out and `audit verify --archive` verifies from its heads.
#[test]
fn audit_export_and_archive_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cardunlock.db");
    let store = cardunlock_server::Store::open(&db).unwrap();
    store.set_audit_key(&master()).unwrap();
    for id in ["c1", "c2"] {
        store
            .enroll(
                &enrollment("piv", id, cardunlock_core::crypto::Algorithm::TripleDes),
                &FAST,
            )
            .unwrap();
    }
    drop(store);
    let run = |args: &[&str]| {
        let out = server_cmd(&db)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (out.status.code(), text(out.stdout), text(out.stderr))
    };
    let export = dir.path().join("export.jsonl");
    let (code, _, stderr) = run(&["audit", "export", "--out", export.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let text = std::fs::read_to_string(&export).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The row-MAC migration's `row_mac` row and the two enrolments.
    assert_eq!(lines.iter().filter(|l| l["type"] == "audit").count(), 3);
    assert_eq!(lines.last().unwrap()["type"], "head");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&export).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0);
    }
    // An existing file is not overwritten.
    let (code, _, _) = run(&["audit", "export", "--out", export.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    let (code, stdout, stderr) = run(&["audit", "export", "--format", "syslog"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.lines().all(|l| l.starts_with("<8")), "{stdout}");

    let archive = dir.path().join("archive.jsonl");
    let archived = run(&[
        "audit",
        "archive",
        "--before",
        "2999-01-01",
        "--out",
        archive.to_str().unwrap(),
    ]);
    assert_eq!(archived.0, Some(0), "{}", archived.2);
    assert!(archived.1.contains("archived 3 rows"), "{}", archived.1);
    let (code, stdout, stderr) = run(&["audit", "verify", "--archive", archive.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout} {stderr}");
    assert_eq!(
        run(&["audit", "archive", "--before", "yesterday", "--out", "x"]).0,
        Some(2)
    );
}
