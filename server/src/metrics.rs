//! Prometheus metrics (text exposition format 0.0.4), served on their own listen address
//! (`serve --metrics-bind ADDR`, plain HTTP, `GET /metrics`) so they can stay on an internal
//! network. The format is a few lines of text, written here by hand:
//!
//! - `cardunlock_audit_rows_total{event,outcome}`: audit rows committed, of which
//!   `cardunlock_unlock_sessions_total{outcome}` (`complete` rows), `cardunlock_wrong_answers_total`,
//!   `cardunlock_locks_total` and `cardunlock_alerts_total{event}` (rows at alert level);
//! - `cardunlock_refused_requests_total{reason}`: refused requests by reason (429s included);
//! - `cardunlock_request_duration_seconds{route}`: request latency histograms;
//! - `cardunlock_argon2_queue_depth`: requests waiting for a worker (Argon2 and the store run
//!   there);
//! - `cardunlock_store_transaction_seconds`: store round trips (one transaction each).
//!
//! The counters are process-wide ([`METRICS`]): several servers in one process share them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Upper bounds (seconds) of the histogram buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A histogram: counts per bucket (not cumulative), the sum in microseconds, the count.
#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum_us: u64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, took: Duration) {
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i] += 1;
        }
        self.sum_us = self
            .sum_us
            .saturating_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(self.buckets) {
            cumulative += n;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum_us as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// Every metric of the process.
#[derive(Default)]
pub struct Metrics {
    audit_rows: Mutex<BTreeMap<(String, String), u64>>,
    refused: Mutex<BTreeMap<&'static str, u64>>,
    requests: Mutex<BTreeMap<&'static str, Histogram>>,
    store: Mutex<Histogram>,
    queue: AtomicI64,
    scrapes: AtomicU64,
}

/// The process's metrics.
pub static METRICS: std::sync::LazyLock<Metrics> = std::sync::LazyLock::new(Metrics::default);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A label value as the format wants it (`\`, `"` and newlines escaped).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Distinct audit events and outcomes kept; rarer ones are counted as `other`.
const MAX_SERIES: usize = 512;

impl Metrics {
    /// An audit row `event`/`outcome` was committed.
    pub(crate) fn audit_row(&self, event: &str, outcome: &str) {
        let mut rows = lock(&self.audit_rows);
        let key = (event.to_owned(), outcome.to_owned());
        if rows.len() >= MAX_SERIES && !rows.contains_key(&key) {
            *rows.entry(("other".into(), "other".into())).or_default() += 1;
            return;
        }
        *rows.entry(key).or_default() += 1;
    }

    /// A request was refused with `status` (counted by reason).
    pub(crate) fn refused(&self, status: u16) {
        if let Some(reason) = crate::refusals::reason(status) {
            *lock(&self.refused).entry(reason).or_default() += 1;
        }
    }

    /// A request to `route` took `took`.
    pub(crate) fn request(&self, route: &'static str, took: Duration) {
        lock(&self.requests).entry(route).or_default().observe(took);
    }

    /// A store transaction took `took`.
    pub(crate) fn store_round_trip(&self, took: Duration) {
        lock(&self.store).observe(took);
    }

    /// A request starts (`1`) or stops (`-1`) waiting for a worker.
    pub(crate) fn queue(&self, delta: i64) {
        self.queue.fetch_add(delta, Ordering::Relaxed);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        self.scrapes.fetch_add(1, Ordering::Relaxed);
        let mut out = String::new();
        let rows = lock(&self.audit_rows).clone();
        let counter = |out: &mut String, name: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        };
        counter(
            &mut out,
            "cardunlock_audit_rows_total",
            "Audit rows committed.",
        );
        for ((event, outcome), n) in &rows {
            let _ = writeln!(
                out,
                "cardunlock_audit_rows_total{{event=\"{}\",outcome=\"{}\"}} {n}",
                label(event),
                label(outcome)
            );
        }
        counter(
            &mut out,
            "cardunlock_unlock_sessions_total",
            "Unlock sessions completed, by outcome.",
        );
        for ((_, outcome), n) in rows.iter().filter(|((e, _), _)| e == "complete") {
            let _ = writeln!(
                out,
                "cardunlock_unlock_sessions_total{{outcome=\"{}\"}} {n}",
                label(outcome)
            );
        }
        let count = |f: &dyn Fn(&str, &str) -> bool| -> u64 {
            rows.iter()
                .filter(|((e, o), _)| f(e, o))
                .map(|(_, n)| n)
                .sum()
        };
        counter(
            &mut out,
            "cardunlock_wrong_answers_total",
            "Wrong answer sets.",
        );
        let wrong = count(&|e, o| e == "answers" && o == "wrong_answers");
        let _ = writeln!(out, "cardunlock_wrong_answers_total {wrong}");
        counter(
            &mut out,
            "cardunlock_locks_total",
            "Cards locked after wrong answers.",
        );
        let locks = count(&|e, o| e == "lock" && o == "locked");
        let _ = writeln!(out, "cardunlock_locks_total {locks}");
        counter(
            &mut out,
            "cardunlock_alerts_total",
            "Audit rows at alert level, by event.",
        );
        for ((event, _), n) in rows.iter().filter(|((_, o), _)| o == "alert") {
            let _ = writeln!(
                out,
                "cardunlock_alerts_total{{event=\"{}\"}} {n}",
                label(event)
            );
        }
        counter(
            &mut out,
            "cardunlock_refused_requests_total",
            "Refused requests, by reason (429s as too_many_requests).",
        );
        for (reason, n) in lock(&self.refused).iter() {
            let _ = writeln!(
                out,
                "cardunlock_refused_requests_total{{reason=\"{reason}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP cardunlock_request_duration_seconds Request latency, by route.\n\
             # TYPE cardunlock_request_duration_seconds histogram"
        );
        for (route, h) in lock(&self.requests).iter() {
            h.write(
                &mut out,
                "cardunlock_request_duration_seconds",
                &format!("route=\"{route}\""),
            );
        }
        let _ = writeln!(
            out,
            "# HELP cardunlock_store_transaction_seconds Store round trips (one transaction each).\n\
             # TYPE cardunlock_store_transaction_seconds histogram"
        );
        lock(&self.store).write(&mut out, "cardunlock_store_transaction_seconds", "");
        let _ = writeln!(
            out,
            "# HELP cardunlock_argon2_queue_depth Requests waiting for a worker (Argon2, store).\n\
             # TYPE cardunlock_argon2_queue_depth gauge\ncardunlock_argon2_queue_depth {}",
            self.queue.load(Ordering::Relaxed).max(0)
        );
        out
    }
}

async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|&s| s).await;
}

/// Serves `GET /metrics` (plain HTTP/1.1) on `listener` until `stop` turns true.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use hyper::body::Incoming;
    use hyper::{Request, Response, StatusCode};
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    log::warn!("metrics accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => return,
        };
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                let (status, body) = if req.uri().path() == "/metrics" {
                    (StatusCode::OK, METRICS.render())
                } else {
                    (StatusCode::NOT_FOUND, "not found\n".to_owned())
                };
                Response::builder()
                    .status(status)
                    .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                    .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(io, service);
            if let Err(e) = conn.await {
                log::debug!("metrics connection: {e}");
            }
        });
    }
}
