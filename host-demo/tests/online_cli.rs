//! Online unlock end to end through real pcscd: `cardunlock serve` (HTTPS, SQLite) in its own
//! process, `cardunlock sim-card` serving a blocked PIV / GIDS / ISO card, `cardunlock enroll`
//! personalising it, and `cardunlock unlock --server` unlocking it with the security questions.
#![cfg(feature = "pcsc")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

mod common;

use common::{BIN, READER};
const MASTER: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A server in its own process on a fresh database; returns it with its URL and cert path.
fn serve(dir: &Path) -> (Proc, String, PathBuf) {
    let secret = dir.join("master.hex");
    if !secret.exists() {
        std::fs::write(&secret, MASTER).unwrap();
    }
    let mut child = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0", "--db"])
        .arg(dir.join("cardunlock.db"))
        .arg("--master-secret-file")
        .arg(&secret)
        .arg("--state-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first.rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("https://127.0.0.1:"), "{first}");
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (Proc(child), url, dir.join("server.crt"))
}

fn sim_card(profile: &str) -> common::SimCard {
    common::SimCard::start(profile, true)
}

fn enroll(dir: &Path, questions: &[(&str, &str)]) -> Output {
    let mut args: Vec<String> = vec![
        "--reader".into(),
        READER.into(),
        "enroll".into(),
        "--db".into(),
    ];
    args.push(dir.join("cardunlock.db").display().to_string());
    args.extend([
        "--master-secret-file".into(),
        dir.join("master.hex").display().to_string(),
    ]);
    args.extend([
        "--name".into(),
        "Michael Benson".into(),
        "--email".into(),
        "Michael.Benson@demo.local".into(),
    ]);
    for (q, a) in questions {
        args.extend([
            "--question".into(),
            q.to_string(),
            "--answer".into(),
            a.to_string(),
        ]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    cli(&refs)
}

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
    let dir = tempfile::tempdir().unwrap();
    let (_server, url, cert) = serve(dir.path());
    let _card = sim_card(profile);
    let out = enroll(dir.path(), &QUESTIONS);
    assert!(out.status.success(), "{}", text(&out));
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
    let dir = tempfile::tempdir().unwrap();
    let (server, url, cert) = serve(dir.path());
    let _card = sim_card("piv");
    assert!(enroll(dir.path(), &QUESTIONS).status.success());
    for left in [2, 1] {
        let out = unlock(&url, &cert, &["Rex", "Rio"], "840259");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            text(&out).contains(&format!("{left} attempt")),
            "{}",
            text(&out)
        );
    }
    let out = unlock(&url, &cert, &["Rex", "Rio"], "840259");
    assert_eq!(out.status.code(), Some(1));
    // The lock survives a server restart.
    drop(server);
    let (_server, url, cert) = serve(dir.path());
    let out = unlock(&url, &cert, &["Rex", "São Paulo"], "840259");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).to_lowercase().contains("lock"), "{}", text(&out));
    assert!(text(&cli(&["--reader", READER, "status"])).contains("PIN BLOCKED"));
    // The operator lifts it.
    let status =
        String::from_utf8_lossy(&cli(&["--reader", READER, "--json", "status"]).stdout).to_string();
    let id = status
        .split("\"identity\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let db = dir.path().join("cardunlock.db").display().to_string();
    let master = dir.path().join("master.hex").display().to_string();
    let out = cli(&[
        "lift-lock",
        "--db",
        &db,
        "--master-secret-file",
        &master,
        "--profile",
        "piv",
        "--identity",
        &id,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = unlock(&url, &cert, &["Rex", "São Paulo"], "840259");
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn no_questions_means_offline_only_and_unreachable_server_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url, cert) = serve(dir.path());
    let _card = sim_card("iso");
    assert!(enroll(dir.path(), &[]).status.success());
    let out = unlock(&url, &cert, &[], "Tq83z");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("Online unlock is not available"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("--offline"), "{}", text(&out));
    drop(server);
    let out = unlock(&url, &cert, &["x"], "Tq83z");
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(
        text(&out).contains("The card was not touched"),
        "{}",
        text(&out)
    );
    assert!(text(&cli(&["--reader", READER, "status"])).contains("PIN BLOCKED"));
}

#[test]
fn a_policy_violation_is_refused_before_the_card_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url, cert) = serve(dir.path());
    let _card = sim_card("piv");
    assert!(enroll(dir.path(), &QUESTIONS).status.success());
    let out = unlock(&url, &cert, &["Rex", "São Paulo"], "123456");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let status = text(&cli(&["--reader", READER, "status"]));
    assert!(
        status.contains("PIN BLOCKED") && status.contains("PUK tries left 3"),
        "{status}"
    );
}
