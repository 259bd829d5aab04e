//! Load benchmark of the unlock server: concurrent full online-unlock sessions
//! (start -> answers -> admin encrypt -> complete) against a server on 127.0.0.1 with the
//! contract's default Argon2id parameters (m = 19456 KiB, t = 2, p = 1), each session on a fresh
//! HTTPS connection as a workstation would open it. Prints sessions/s and latency percentiles.
//!
//! `cargo bench -p cardunlock-server --bench unlock_load -- [--threads N] [--sessions N]
//! [--max-seconds N] [--db sqlite|postgres] [--instances N] [--matrix] [--cheap-argon2]`
//! (defaults 4 threads × 25 sessions, stopping early after 60 s, SQLite, one instance).
//! `--matrix` runs SQLite, PostgreSQL with one instance and PostgreSQL with two, one after the
//! other, each bounded by `--max-seconds`, and ends with a table of the three. Every run
//! reports the store's round trips per session ([`cardunlock_server::Store::round_trips`], all
//! instances' stores summed, divided by the sessions run).
//! `--db postgres` makes a fresh database (dropped at the end) on the server named by
//! `CARDUNLOCK_TEST_POSTGRES` (what `scripts/start-postgres.sh` prints). `--instances 2` runs two
//! servers on the one store; the clients take them in turn, one session each, as a round-robin
//! load balancer would. Traffic stays on loopback.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::{
    pinned_client_config, Argon2Params, Config, Enrollment, Limits, MasterSecret, Server,
};
use serde_json::{json, Value};

const QUESTIONS: [(&str, &str); 2] = [("First pet?", "Rex"), ("Born in?", "Springfield")];

struct Args {
    threads: usize,
    sessions: usize,
    max_seconds: u64,
    postgres: bool,
    instances: usize,
    /// Argon2id at m = 64 KiB, t = 1 (NOT the contract's cost): shows what bounds the server
    /// once Argon2 is out of the way (TLS, HTTP, the database).
    cheap_argon2: bool,
    /// SQLite, PostgreSQL × 1 and PostgreSQL × 2 in one run.
    matrix: bool,
}

/// What one run measured.
struct Summary {
    label: String,
    sessions_per_s: f64,
    p50_ms: f64,
    p95_ms: f64,
    round_trips: f64,
}

fn args() -> Args {
    let mut out = Args {
        threads: 4,
        sessions: 25,
        max_seconds: 60,
        postgres: false,
        instances: 1,
        cheap_argon2: false,
        matrix: false,
    };
    let argv: Vec<String> = std::env::args().collect();
    let value = |i: usize| argv.get(i + 1).and_then(|v| v.parse::<u64>().ok());
    for (i, arg) in argv.iter().enumerate() {
        match arg.as_str() {
            "--threads" => out.threads = value(i).map_or(out.threads, |v| v.clamp(1, 64) as usize),
            "--sessions" => {
                out.sessions = value(i).map_or(out.sessions, |v| v.clamp(1, 10_000) as usize)
            }
            "--max-seconds" => {
                out.max_seconds = value(i).map_or(out.max_seconds, |v| v.clamp(1, 600))
            }
            "--cheap-argon2" => out.cheap_argon2 = true,
            "--matrix" => out.matrix = true,
            "--db" => out.postgres = argv.get(i + 1).is_some_and(|v| v == "postgres"),
            "--instances" => {
                out.instances = value(i).map_or(out.instances, |v| v.clamp(1, 8) as usize)
            }
            _ => {}
        }
    }
    out
}

fn post(agent: &ureq::Agent, url: &str, path: &str, body: &Value) -> Result<Value, String> {
    match agent.post(&format!("{url}{path}")).send_json(body) {
        Ok(r) => r.into_json().map_err(|e| e.to_string()),
        Err(ureq::Error::Status(code, r)) => Err(format!(
            "{path}: {code} {}",
            r.into_string().unwrap_or_default()
        )),
        Err(e) => Err(format!("{path}: {e}")),
    }
}

/// One full unlock session on a new connection; returns the time of each of its four steps
/// (`start` includes the TLS handshake).
fn session(cert_pem: &str, url: &str, identity: &str, block: u64) -> Result<[Duration; 4], String> {
    let mut steps = [Duration::ZERO; 4];
    let mut clock = Instant::now();
    let mut lap = |i: usize| {
        steps[i] = clock.elapsed();
        clock = Instant::now();
    };
    let tls = pinned_client_config(cert_pem).map_err(|e| e.to_string())?;
    let agent = ureq::AgentBuilder::new()
        .tls_config(tls)
        .timeout(Duration::from_secs(30))
        .build();
    let start = post(
        &agent,
        url,
        "/v1/unlock/start",
        &json!({ "card": { "profile": "iso", "identity": identity } }),
    )?;
    lap(0);
    let token = start["session"].as_str().ok_or("no session")?.to_owned();
    let answers: Vec<&str> = QUESTIONS.iter().map(|(_, a)| *a).collect();
    post(
        &agent,
        url,
        "/v1/unlock/answers",
        &json!({ "session": token, "answers": answers }),
    )?;
    lap(1);
    let request = json!({ "kind": "encrypt", "algorithm": "3des", "block": hex::encode(block.to_be_bytes()) });
    let answer = post(
        &agent,
        url,
        "/v1/unlock/admin",
        &json!({ "session": token, "request": request }),
    )?;
    lap(2);
    if answer["answer"].as_str().map(str::len) != Some(16) {
        return Err(format!("bad admin answer {answer}"));
    }
    let done =
        json!({ "session": token, "outcome": "unlocked", "puk_rotated": false, "detail": "bench" });
    post(&agent, url, "/v1/unlock/complete", &done)?;
    lap(3);
    Ok(steps)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let args = args();
    let runs: Vec<(bool, usize)> = if args.matrix {
        vec![(false, 1), (true, 1), (true, 2)]
    } else {
        vec![(args.postgres, args.instances)]
    };
    let mut summaries = Vec::new();
    let mut failed = false;
    for (postgres, instances) in runs {
        let (summary, ok) = run(&args, postgres, instances);
        failed |= !ok;
        summaries.extend(summary);
    }
    println!("\n| store | sessions/s | p50 ms | p95 ms | round trips per session |");
    println!("|---|---|---|---|---|");
    for s in &summaries {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            s.label, s.sessions_per_s, s.p50_ms, s.p95_ms, s.round_trips
        );
    }
    if failed {
        std::process::exit(1);
    }
}

/// One run: `instances` servers on a fresh SQLite file or PostgreSQL database. Returns its
/// summary (none if no session completed) and whether every session succeeded.
fn run(args: &Args, postgres: bool, instances: usize) -> (Option<Summary>, bool) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let argon2 = if args.cheap_argon2 {
        Argon2Params {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        }
    } else {
        Argon2Params::default()
    };
    let pg = postgres.then(BenchDatabase::create);
    let location = match &pg {
        Some(db) => std::path::PathBuf::from(&db.url),
        None => dir.path().join("bench.db"),
    };
    let mut config = Config::new(location, dir.path().join("state"), MasterSecret::generate());
    config.argon2 = argon2;
    // One client address drives the whole load: the per-address rate limits would refuse it.
    config.limits = Limits::without_rate_limits();
    let servers: Vec<_> = (0..instances)
        .map(|_| Server::spawn(config.clone()).expect("server starts"))
        .collect();
    let urls: Arc<Vec<String>> = Arc::new(servers.iter().map(|s| s.url()).collect());
    assert!(
        urls.iter().all(|u| u.starts_with("https://127.0.0.1:")),
        "loopback only"
    );
    let server = &servers[0];
    for t in 0..args.threads {
        let e = Enrollment {
            name: format!("Bench User {t}"),
            email: format!("bench{t}@demo.local"),
            profile: "iso".into(),
            identity_hex: format!("be{t:04x}"),
            algorithm: Algorithm::TripleDes,
            questions: QUESTIONS
                .iter()
                .map(|(q, a)| (q.to_string(), a.to_string()))
                .collect(),
            card_auth_key: None,
        };
        server.enroll(&e).expect("enrolment");
    }
    println!(
        "unlock_load: {} on {} instance(s), {} threads x {} sessions (cap {} s), Argon2id m={} KiB t={} p={}, {} questions, {} cores",
        server.store().backend_name(),
        instances,
        args.threads,
        args.sessions,
        args.max_seconds,
        argon2.m_cost_kib,
        argon2.t_cost,
        argon2.p_cost,
        QUESTIONS.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );

    let trips = |servers: &[cardunlock_server::ServerHandle]| -> u64 {
        servers.iter().map(|s| s.store().round_trips()).sum()
    };
    let trips_before = trips(&servers);
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    let barrier = Arc::new(Barrier::new(args.threads));
    // Every instance has the same certificate (one state directory).
    let cert = Arc::new(server.cert_pem().to_owned());
    let began = Instant::now();
    let workers: Vec<_> = (0..args.threads)
        .map(|t| {
            let (barrier, cert, urls) = (barrier.clone(), cert.clone(), urls.clone());
            let sessions = args.sessions;
            std::thread::spawn(move || {
                let identity = format!("be{t:04x}");
                let mut latencies = Vec::with_capacity(sessions);
                let mut step_times: [Vec<Duration>; 4] = Default::default();
                let mut errors = 0usize;
                barrier.wait();
                for s in 0..sessions {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let began = Instant::now();
                    let url = &urls[(t + s) % urls.len()];
                    match session(&cert, url, &identity, ((t as u64) << 32) | s as u64) {
                        Ok(steps) => {
                            latencies.push(began.elapsed());
                            for (all, step) in step_times.iter_mut().zip(steps) {
                                all.push(step);
                            }
                        }
                        Err(e) => {
                            errors += 1;
                            eprintln!("session failed: {e}");
                        }
                    }
                }
                (latencies, step_times, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut step_times: [Vec<Duration>; 4] = Default::default();
    let mut errors = 0;
    for w in workers {
        let (l, steps, e) = w.join().expect("worker");
        latencies.extend(l);
        for (all, some) in step_times.iter_mut().zip(steps) {
            all.extend(some);
        }
        errors += e;
    }
    let elapsed = began.elapsed();
    let round_trips = trips(&servers) - trips_before;
    let label = format!("{} × {instances}", servers[0].store().backend_name());
    drop(servers);
    drop(pg);
    latencies.sort();
    if latencies.is_empty() {
        println!("no session completed ({errors} failed)");
        return (None, false);
    }
    let per_session = round_trips as f64 / (latencies.len() + errors) as f64;
    println!(
        "completed {} sessions ({} failed) in {:.2} s: {:.1} sessions/s",
        latencies.len(),
        errors,
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "session latency ms: p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 95.0)),
        ms(percentile(&latencies, 99.0)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
    );
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status
            .lines()
            .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
        {
            println!("  process (server + clients) {line}");
        }
    }
    let names = ["start (with TLS handshake)", "answers", "admin", "complete"];
    for (name, times) in names.iter().zip(step_times.iter_mut()) {
        times.sort();
        println!(
            "  {name:<27} p50 {:.1} ms  p95 {:.1} ms",
            ms(percentile(times, 50.0)),
            ms(percentile(times, 95.0))
        );
    }
    println!("  store round trips: {round_trips} in all, {per_session:.1} per session");
    let summary = Summary {
        label,
        sessions_per_s: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: ms(percentile(&latencies, 50.0)),
        p95_ms: ms(percentile(&latencies, 95.0)),
        round_trips: per_session,
    };
    (Some(summary), errors == 0)
}

/// A fresh PostgreSQL database for one run, dropped at the end.
struct BenchDatabase {
    admin: String,
    name: String,
    url: String,
}

impl BenchDatabase {
    fn create() -> Self {
        let admin = std::env::var("CARDUNLOCK_TEST_POSTGRES").expect(
            "--db postgres needs CARDUNLOCK_TEST_POSTGRES (export it from scripts/start-postgres.sh)",
        );
        let name = format!("cu_bench_{}", std::process::id());
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).expect("PostgreSQL");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        let base = admin.split('?').next().unwrap_or(&admin);
        let url = match base.rfind('/') {
            Some(i) if i > base.find("://").map_or(0, |j| j + 2) => {
                format!("{}/{name}", &base[..i])
            }
            _ => format!("{base}/{name}"),
        };
        Self { admin, name, url }
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}
