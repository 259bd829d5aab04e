//! The database going away: down at start is a clear error; PostgreSQL restarted in the middle
//! of a load run on two instances fails the requests in flight cleanly (a JSON 500, nothing
//! half-done), later requests succeed, and no counter goes backwards.
//!
//! The restart test runs its own throw-away cluster (`scripts/start-postgres.sh` with its own
//! data directory and port), so restarting it disturbs no other test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::{Config, Limits, Server, ServerError, Store};
use common::*;
use serde_json::{json, Value};

#[test]
fn a_database_down_at_start_is_a_clear_error_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there.
    let url = "postgres://cardunlock:s3cret-pw@127.0.0.1:1/cardunlock";
    let err = Store::open(url).unwrap_err();
    assert!(
        matches!(err, ServerError::DatabaseUnavailable(_)),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.starts_with("database unavailable: cannot connect to postgres://cardunlock:***@127.0.0.1:1/cardunlock"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    let config = Config::new(url, dir.path().join("state"), master());
    let err = Server::spawn(config).unwrap_err();
    assert!(matches!(err, ServerError::DatabaseUnavailable(_)), "{err}");
    // A malformed URL is bad input, not an outage.
    let err = Store::open("postgres://127.0.0.1:notaport/x").unwrap_err();
    assert!(matches!(err, ServerError::InvalidInput(_)), "{err:?}");
}

/// A cluster of this test's own, stopped and deleted at the end.
struct OwnCluster {
    dir: PathBuf,
    url: String,
}

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/start-postgres.sh");

fn script(dir: &Path, command: &str) -> String {
    let out = Command::new("bash")
        .arg(SCRIPT)
        .arg(command)
        .env("CARDUNLOCK_PG_DIR", dir)
        .env("CARDUNLOCK_PG_PORT", "54360")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "start-postgres.sh {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

impl OwnCluster {
    fn start() -> Self {
        let dir = PathBuf::from(format!("/tmp/cardunlock-pg-outage-{}", std::process::id()));
        let url = script(&dir, "start");
        Self { dir, url }
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(SCRIPT)
            .arg("stop")
            .env("CARDUNLOCK_PG_DIR", &self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One request as a client saw it: when it was sent, its status (0: no HTTP answer) and body.
struct Seen {
    at: Instant,
    status: u16,
    body: Value,
}

fn post_seen(env: &Env, log: &Mutex<Vec<Seen>>, path: &str, body: &Value) -> (u16, Value) {
    let at = Instant::now();
    let result = env
        .agent
        .post(&format!("{}{path}", env.url))
        .send_json(body);
    let (status, body) = match result {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(_) => (0, Value::Null),
    };
    log.lock().unwrap().push(Seen {
        at,
        status,
        body: body.clone(),
    });
    (status, body)
}

#[test]
fn postgres_restarted_mid_load_fails_in_flight_requests_cleanly_and_recovers() {
    if postgres_admin_url().is_none() {
        return;
    }
    let cluster = OwnCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::new(&cluster.url, dir.path().join("state"), master());
    cfg.argon2 = FAST;
    cfg.max_attempts = 10_000;
    cfg.blind_max_attempts = cfg.max_attempts;
    cfg.backoff_base = Duration::ZERO;
    cfg.limits = Limits::without_rate_limits();
    let servers = Arc::new(instances(&cfg, 2));
    for t in 0..4 {
        servers[0]
            .server
            .enroll(&enrollment("iso", &format!("f{t}"), Algorithm::TripleDes))
            .unwrap();
    }
    servers[0]
        .server
        .enroll(&enrollment("iso", "ee", Algorithm::TripleDes))
        .unwrap();
    let wrong_session = servers[0].start_session("iso", "ee")["session"]
        .as_str()
        .unwrap()
        .to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let completed = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let mut clients = Vec::new();
    for t in 0..4usize {
        let (servers, stop, log, completed) = (
            servers.clone(),
            stop.clone(),
            log.clone(),
            completed.clone(),
        );
        clients.push(std::thread::spawn(move || {
            let identity = format!("f{t}");
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                // Each step on the other instance than the one before.
                let env = |k: usize| &servers[(t + k) % 2];
                let (status, reply) =
                    post_seen(env(0), &log, "/v1/unlock/start", &card("iso", &identity));
                if status != 200 {
                    continue;
                }
                let s = reply["session"].as_str().unwrap().to_owned();
                let body = json!({ "session": s, "answers": ANSWERS });
                if post_seen(env(1), &log, "/v1/unlock/answers", &body).0 != 200 {
                    continue; // the session is abandoned: the client never touches the card
                }
                let block = hex::encode(((t as u64) << 48 | n).to_be_bytes());
                let req = json!({ "kind": "encrypt", "algorithm": "3des", "block": block });
                let body = json!({ "session": s, "request": req });
                if post_seen(env(0), &log, "/v1/unlock/admin", &body).0 != 200 {
                    continue;
                }
                let done = json!({ "session": s, "outcome": "unlocked", "puk_rotated": false, "detail": "" });
                if post_seen(env(1), &log, "/v1/unlock/complete", &done).0 == 200 {
                    completed.lock().unwrap().push(Instant::now());
                }
            }
        }));
    }
    // One client keeps sending wrong answers in one session (sessions live in the database,
    // so it survives the restart): the attempts left it is told may only go down.
    let wrong_log = Arc::new(Mutex::new(Vec::new()));
    let wrong = {
        let (servers, stop, wrong_log) = (servers.clone(), stop.clone(), wrong_log.clone());
        std::thread::spawn(move || {
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                let body = json!({ "session": wrong_session, "answers": WRONG });
                post_seen(&servers[k % 2], &wrong_log, "/v1/unlock/answers", &body);
            }
        })
    };

    std::thread::sleep(Duration::from_millis(1500));
    script(&cluster.dir, "stop");
    let down = Instant::now();
    // Longer than the pool's 3 s connection timeout: requests waiting for the database fail.
    std::thread::sleep(Duration::from_millis(3500));
    script(&cluster.dir, "start");
    let up = Instant::now();
    std::thread::sleep(Duration::from_millis(2500));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    wrong.join().unwrap();

    let log = log.lock().unwrap();
    let wrong_log = wrong_log.lock().unwrap();
    let all = || log.iter().chain(wrong_log.iter());
    // The servers always answered, with the contract's JSON: success, the expected refusal, or
    // a clean 500 internal_error.
    for seen in all() {
        match seen.status {
            200 | 403 => {}
            500 => assert_eq!(seen.body["error"], "internal_error", "{}", seen.body),
            other => panic!("unexpected {other}: {}", seen.body),
        }
    }
    let failed = all().filter(|s| s.status == 500).count();
    eprintln!(
        "outage run: {} requests, {failed} failed cleanly (500) during the restart, {} unlocks completed",
        all().count(),
        completed.lock().unwrap().len()
    );
    assert!(failed > 0, "the outage was not seen by any request");
    assert!(
        all()
            .filter(|s| s.status == 500)
            .all(|s| s.at + Duration::from_secs(4) > down && s.at < up),
        "a request failed outside the outage"
    );
    // After the restart (and a moment to reconnect) every request succeeded again.
    let settled = up + Duration::from_millis(500);
    let later: Vec<&Seen> = all().filter(|s| s.at > settled).collect();
    assert!(
        later.len() > 10,
        "too few requests after the restart: {}",
        later.len()
    );
    assert!(later.iter().all(|s| s.status == 200 || s.status == 403));
    let done = completed.lock().unwrap();
    assert!(
        done.iter().filter(|&&t| t > up).count() >= 4,
        "unlocks after the restart"
    );
    assert!(
        done.iter().filter(|&&t| t < down).count() >= 4,
        "unlocks before the restart"
    );

    // The wrong-answer counter never went backwards, before, across and after the restart.
    let left: Vec<u64> = wrong_log
        .iter()
        .filter(|s| s.status == 403)
        .map(|s| s.body["attempts_left"].as_u64().unwrap())
        .collect();
    assert!(left.len() > 10);
    assert!(
        left.windows(2).all(|w| w[1] < w[0]),
        "attempts_left went back up: {left:?}"
    );
    let card = servers[1]
        .server
        .store()
        .card("iso", "ee")
        .unwrap()
        .unwrap();
    let counted = u64::from(card.failed_attempts);
    let failed_wrong = wrong_log.iter().filter(|s| s.status == 500).count() as u64;
    // Every reported count was committed; at most the failed requests committed without a reply.
    assert!(counted >= 10_000 - left.last().unwrap());
    assert!(counted <= 10_000 - left.last().unwrap() + failed_wrong);
    // Every unlock a client saw completed has its audit row.
    let audit = servers[0].server.store().audit().unwrap();
    let unlocked = audit
        .iter()
        .filter(|e| e.event == "complete" && e.outcome == "unlocked")
        .count();
    assert!(unlocked >= done.len());
}
