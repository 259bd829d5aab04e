//! Prometheus metrics on their own address: scraped over HTTP after an unlock, every line in
//! the text format, and the counters moved by what happened.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;

use cardunlock_core::crypto::Algorithm;
use common::*;
use serde_json::json;

/// Scrapes `/metrics`: every sample line as name{labels} -> value.
fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let response = ureq::get(&format!("http://{addr}/metrics")).call().unwrap();
    assert!(response
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = response.into_string().unwrap();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("name value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        samples.insert(series.to_owned(), value);
    }
    samples
}

fn get(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

/// Proves the metrics listen only where asked, carry no card, answer or session, and count an unlock's rows, wrong answers,
/// refusals, request latency and store round trips (the counters are process-wide, so this
/// checks they moved).
#[test]
fn metrics_are_scraped_over_http_after_an_unlock() {
    let dir = tempfile::tempdir().unwrap();
    let plain = Env::start(&config(dir.path()));
    assert_eq!(plain.server.metrics_addr(), None);
    drop(plain);

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    let env = Env::start(&cfg);
    let addr = env.server.metrics_addr().expect("metrics address");
    let before = scrape(addr);
    env.server
        .enroll(&enrollment("piv", "c0ffee01", Algorithm::TripleDes))
        .unwrap();
    env.server
        .enroll(&enrollment("piv", "c0ffee02", Algorithm::TripleDes))
        .unwrap();
    env.verified_session("piv", "c0ffee01");
    let session = env.start_session("piv", "c0ffee02")["session"]
        .as_str()
        .unwrap()
        .to_owned();
    env.post(
        "/v1/unlock/answers",
        &json!({ "session": session, "answers": WRONG }),
    );
    env.post("/v1/no/such/path", &json!({}));
    let after = scrape(addr);
    let moved = |series: &str| get(&after, series) - get(&before, series);
    assert!(moved(r#"cardunlock_audit_rows_total{event="answers",outcome="verified"}"#) >= 1.0);
    assert!(moved("cardunlock_wrong_answers_total") >= 1.0);
    assert!(moved(r#"cardunlock_refused_requests_total{reason="not_found"}"#) >= 1.0);
    assert!(moved(r#"cardunlock_request_duration_seconds_count{route="start"}"#) >= 2.0);
    assert!(
        get(
            &after,
            r#"cardunlock_request_duration_seconds_bucket{route="start",le="+Inf"}"#
        ) >= 2.0
    );
    assert!(moved("cardunlock_store_transaction_seconds_count") >= 4.0);
    assert!(after.contains_key("cardunlock_argon2_queue_depth"));
    // Counts and timings only: no card, answer or session in the text.
    let text = ureq::get(&format!("http://{addr}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    for secret in ["c0ffee01", "c0ffee02", ANSWERS[0], WRONG[1], &session] {
        assert!(!text.contains(secret), "{secret}");
    }
    // Anything but /metrics is 404.
    let other = ureq::get(&format!("http://{addr}/")).call();
    assert!(matches!(other, Err(ureq::Error::Status(404, _))));
}
