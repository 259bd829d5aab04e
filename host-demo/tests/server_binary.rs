//! The workstation against the real server program, as an administrator runs it:
//! `cardunlock-server serve` in its own process, an operator made with `cardunlock-server
//! add-operator NAME --role ... --password-stdin`, its TOTP code computed from the printed
//! `otpauth://` secret, then `cardunlock` signing in and acting. The server binary is a sibling
//! of `cardunlock` in the target directory (`cargo test --workspace` builds it; alone:
//! `cargo build -p cardunlock-server`).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::online::lift_piv;
use common::{assert_exit, output_with_stdin, text, totp_now, write_private, BIN};

fn server_bin() -> PathBuf {
    let path =
        Path::new(BIN).with_file_name(format!("cardunlock-server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build -p cardunlock-server)",
        path.display()
    );
    path
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cardunlock lift-lock` of the card `00112233` as `alice`, signing in with `code`, the
/// operator's state in `dir/state`.
fn lift_lock(dir: &Path, url: &str, code: &str, reason: &str) -> Output {
    let cert = dir.join("server.crt");
    let password_file = dir.join("password");
    Command::new(BIN)
        .args([
            "lift-lock",
            "--server",
            url,
            "--cert",
            cert.to_str().unwrap(),
        ])
        .args(["--operator", "alice"])
        .args(["--password-file", password_file.to_str().unwrap()])
        .args(["--totp", code])
        .args(lift_piv("00112233", reason))
        .env("CARDUNLOCK_STATE_DIR", dir.join("state"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn an_operator_made_by_the_server_program_signs_in_from_the_workstation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let master = d.join("master.hex");
    write_private(&master, &"ab".repeat(32));
    let db = d.join("db.sqlite");
    let state = [
        "--db",
        db.to_str().unwrap(),
        "--master-secret-file",
        master.to_str().unwrap(),
    ];
    let mut serve = Command::new(server_bin())
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--state-dir",
            d.to_str().unwrap(),
        ])
        .args(state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = serve.stdout.take().unwrap();
    let server = Killed(serve);
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the server printed its address")
            .unwrap();
        if let Some((_, url)) = line.split_once("listening on ") {
            break url.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines.by_ref() {});

    let password = "an operator passphrase";
    let add = [
        "add-operator",
        "alice",
        "--role",
        "helpdesk",
        "--password-stdin",
    ];
    let added = output_with_stdin(
        Command::new(server_bin()).args(add).args(state),
        &format!("{password}\n"),
    );
    assert!(added.status.success(), "{}", text(&added));
    let printed = String::from_utf8_lossy(&added.stdout).to_string();
    let uri = printed
        .lines()
        .find(|l| l.starts_with("otpauth://"))
        .unwrap_or_else(|| panic!("no otpauth:// line in {printed}"));
    let code = totp_now(uri);

    write_private(&d.join("password"), &format!("{password}\n"));
    let out = lift_lock(d, &url, &code, "called back on the number on file");
    // Signed in (a refused sign-in would say so): the server does not know the card.
    assert_exit(&out, 1, "error: lift-lock: ");
    assert!(!text(&out).contains("sign-in"), "{}", text(&out));
    // The same code again is refused: each code signs in once.
    let out = lift_lock(d, &url, &code, "again");
    assert_exit(&out, 1, "error: sign-in: ");
    drop(server);
}
