//! Secrets around the `cardunlock-server` binary's start: the master secret and the database
//! URL given in the environment are gone from `/proc/PID/environ` while it serves; no
//! PostgreSQL password on the command line; the password files are checked.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::MASTER_HEX;

const BIN: &str = env!("CARGO_BIN_EXE_cardunlock-server");

/// A distinctive database path, to look for in the environment block.
const DB_NAME: &str = "environ-db-9f3a7c.db";

/// Proves the in-place wipe: while `serve` runs, its `/proc/PID/environ` (the block the kernel
/// keeps from the start) holds neither the master secret nor `CARDUNLOCK_DB`'s value, while a
/// variable the server does not take is still there (so the block was read). Without the
/// overwrite, removing the variables leaves both in that block.
#[cfg(target_os = "linux")]
#[test]
fn env_secrets_are_gone_from_proc_environ_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(DB_NAME);
    let mut child = Command::new(BIN)
        .env("CARDUNLOCK_MASTER_SECRET", MASTER_HEX)
        .env("CARDUNLOCK_DB", &db)
        .env("CARDUNLOCK_TEST_MARKER", "still-here-51c2")
        .args(["serve", "--bind", "127.0.0.1:0", "--state-dir"])
        .arg(dir.path().join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = lines.find_map(|l| l.ok().filter(|l| l.contains("listening on")));
    let environ = std::fs::read(format!("/proc/{}/environ", child.id()));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(listening.is_some(), "the server did not start");
    let environ = String::from_utf8_lossy(&environ.unwrap()).into_owned();
    assert!(environ.contains("still-here-51c2"), "{environ}");
    assert!(!environ.contains(MASTER_HEX), "master secret in {environ}");
    assert!(!environ.contains(DB_NAME), "CARDUNLOCK_DB in {environ}");
    assert!(db.exists(), "the server used CARDUNLOCK_DB");
}

fn run(args: &[&str], envs: &[(&str, &std::ffi::OsStr)]) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.env("CARDUNLOCK_MASTER_SECRET", MASTER_HEX)
        .env_remove("CARDUNLOCK_DB")
        .args(args)
        .stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Proves the argv rule: a `--db` URL carrying a password is refused (exit 2, the message says
/// where the password goes instead, and does not repeat it), before any connection.
#[test]
fn a_db_url_with_a_password_on_the_command_line_is_refused() {
    for url in [
        "postgres://app:hunter2-secret@127.0.0.1:1/cards",
        "postgresql://app@127.0.0.1:1/cards?password=hunter2-secret",
    ] {
        let (code, err) = run(&["audit", "verify", "--db", url], &[]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("--db-password-file"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}

/// Proves the password files are checked before use: a `--db-password-file` and a
/// `$PGPASSFILE` that others can read are refused (exit 2, with the fix).
#[cfg(unix)]
#[test]
fn password_files_others_can_read_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "127.0.0.1:1:cards:app:hunter2\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let url = "postgres://app@127.0.0.1:1/cards";
    let path = file.to_str().unwrap();
    let (code, err) = run(
        &["audit", "verify", "--db", url, "--db-password-file", path],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("chmod 600"), "{err}");
    let (code, err) = run(
        &["audit", "verify", "--db", url],
        &[("PGPASSFILE", file.as_os_str())],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("chmod 600") && !err.contains("hunter2"),
        "{err}"
    );
    // Owner-only: read, then the connection (to a closed port) fails: exit 6.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, err) = run(
        &["audit", "verify", "--db", url],
        &[("PGPASSFILE", file.as_os_str())],
    );
    assert_eq!(code, 6, "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

/// A stand-in PostgreSQL server on loopback: asks the first client for a cleartext password
/// and returns what it sent (then closes: the client fails to connect).
fn password_catcher() -> (u16, std::thread::JoinHandle<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut len = [0u8; 4];
        s.read_exact(&mut len).unwrap();
        let mut startup = vec![0u8; u32::from_be_bytes(len) as usize - 4];
        s.read_exact(&mut startup).unwrap();
        // AuthenticationCleartextPassword.
        s.write_all(b"R\0\0\0\x08\0\0\0\x03").unwrap();
        let mut tag = [0u8; 1];
        s.read_exact(&mut tag).unwrap();
        assert_eq!(tag[0], b'p');
        s.read_exact(&mut len).unwrap();
        let mut password = vec![0u8; u32::from_be_bytes(len) as usize - 4];
        s.read_exact(&mut password).unwrap();
        password.pop(); // NUL
        String::from_utf8(password).unwrap()
    });
    (port, handle)
}

/// Proves where the PostgreSQL password comes from: the first line of `--db-password-file`,
/// else the line of `$PGPASSFILE` matching host, port, database and user; a stand-in server
/// asking for a cleartext password receives exactly that.
#[cfg(unix)]
#[test]
fn the_password_from_a_file_or_pgpassfile_reaches_the_connection() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let private = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    let (port, caught) = password_catcher();
    let url = format!("postgres://app@127.0.0.1:{port}/cards");
    let file = private("pw", "from-the-file-7\nsecond line ignored\n");
    let (code, err) = run(
        &[
            "audit",
            "verify",
            "--db",
            &url,
            "--db-password-file",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 6, "{err}");
    assert_eq!(caught.join().unwrap(), "from-the-file-7");

    let (port, caught) = password_catcher();
    let url = format!("postgres://app@127.0.0.1:{port}/cards");
    let pgpass = private(
        "pgpass",
        &format!("127.0.0.1:{port}:other:app:wrong\n127.0.0.1:{port}:cards:app:from-pgpass-8\n"),
    );
    let (code, err) = run(
        &["audit", "verify", "--db", &url],
        &[("PGPASSFILE", pgpass.as_os_str())],
    );
    assert_eq!(code, 6, "{err}");
    assert!(!err.contains("from-pgpass-8"), "{err}");
    assert_eq!(caught.join().unwrap(), "from-pgpass-8");
}
