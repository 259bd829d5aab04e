//! Refusals cost nothing: a flood of bad requests writes no audit row one by one (they are
//! counted and summarised, a bounded number of rows), while a real unlock from the same client
//! completes; every request is rate limited per address before any other work.

mod common;

use std::time::{Duration, Instant};

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::{AuditEntry, Limits, Rate};
use common::*;
use serde_json::{json, Value};

/// The bad requests of the flood, in turn: malformed body, unknown session, unknown path,
/// wrong method, wrong media type.
fn bad_request(agent: &ureq::Agent, url: &str, i: usize) -> u16 {
    let unknown = "ab".repeat(32);
    let result = match i % 5 {
        0 => agent
            .post(&format!("{url}/v1/unlock/complete"))
            .set("Content-Type", "application/json")
            .send_string("{}"),
        1 => agent
            .post(&format!("{url}/v1/unlock/puk"))
            .set("Content-Type", "application/json")
            .send_json(json!({ "session": unknown })),
        2 => agent
            .post(&format!("{url}/v1/nothing/{i}"))
            .set("Content-Type", "application/json")
            .send_string("{}"),
        3 => agent.get(&format!("{url}/v1/unlock/start")).call(),
        _ => agent
            .post(&format!("{url}/v1/unlock/answers"))
            .set("Content-Type", "text/plain")
            .send_string("{}"),
    };
    match result {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(status, r)) => {
            // Read the body so the connection is kept alive for the next request.
            let _ = r.into_string();
            status
        }
        Err(e) => panic!("transport error: {e}"),
    }
}

/// The number in "N requests refused..." of a summary row.
fn refused_count(e: &AuditEntry) -> u64 {
    e.detail
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {:?}", e.detail))
}

backend_tests! {
    /// 5,000 bad requests over one kept-alive connection write no audit row until the summary,
    /// and then one per reason for this address (the summary's bound); a real unlock from the
    /// same test completes meanwhile and is audited as always.
    fn a_flood_of_refusals_writes_a_bounded_summary_while_an_unlock_completes() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server
            .enroll(&enrollment("piv", "c0ffee", Algorithm::TripleDes))
            .unwrap();
        let rows_before = env.server.store().audit().unwrap().len();
        let began = Instant::now();
        let flood = {
            let agent = agent(env.server.cert_pem());
            let url = env.url.clone();
            std::thread::spawn(move || {
                let mut statuses = std::collections::BTreeMap::new();
                for i in 0..5000 {
                    *statuses.entry(bad_request(&agent, &url, i)).or_insert(0u32) += 1;
                }
                statuses
            })
        };
        // The real unlock, while the flood runs.
        let session = env.verified_session("piv", "c0ffee");
        let (status, reply) = env.post("/v1/unlock/puk", &json!({ "session": session }));
        assert_eq!(status, 200, "{reply}");
        let (status, reply) = env.post(
            "/v1/unlock/complete",
            &json!({ "session": session, "outcome": "unlocked", "puk_rotated": true }),
        );
        assert_eq!(status, 200, "{reply}");
        let statuses = flood.join().unwrap();
        let took = began.elapsed();
        // About 5 s alone on 2 cores; the bound only catches a flood that got slow per request.
        assert!(took < Duration::from_secs(60), "the flood took {took:?}");
        let expected: std::collections::BTreeMap<u16, u32> =
            [(400, 1000), (401, 1000), (404, 1000), (405, 1000), (415, 1000)].into();
        assert_eq!(statuses, expected);

        // Only the unlock's own rows were written during the flood.
        let audit = env.server.store().audit().unwrap();
        let during: Vec<&AuditEntry> = audit.iter().skip(rows_before).collect();
        assert!(during.iter().all(|e| e.event != "refused"), "{during:#?}");
        assert!(during.len() < 10, "{during:#?}");
        assert!(during
            .iter()
            .any(|e| e.event == "complete" && e.outcome == "unlocked"));

        // The summary: one row per reason, for this address, counting every refusal.
        let written = env.server.flush_refusals().unwrap();
        assert_eq!(written, 5);
        let audit = env.server.store().audit().unwrap();
        let summary: Vec<&AuditEntry> = audit.iter().filter(|e| e.event == "refused").collect();
        assert_eq!(summary.len(), 5, "{summary:#?}");
        for outcome in [
            "bad_request",
            "unauthorized",
            "not_found",
            "method_not_allowed",
            "unsupported_media_type",
        ] {
            let row = summary.iter().find(|e| e.outcome == outcome).unwrap();
            assert_eq!(row.address.as_deref(), Some("127.0.0.1"));
            assert_eq!(refused_count(row), 1000, "{row:?}");
        }
        // Nothing more to summarise.
        assert_eq!(env.server.flush_refusals().unwrap(), 0);
        // The unlock's rows and the summary, written concurrently, chain one after the other.
        let report = env.server.store().verify_audit(&master(), &[]).unwrap();
        assert_eq!(report.problem, None);
    }

    /// Every path (unlock, operator API, console, unknown) shares one per-address budget,
    /// checked before any work: 429 with `Retry-After`, counted, not written one by one.
    fn every_request_is_rate_limited_per_address_before_any_work() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.limits = Limits::without_rate_limits();
        cfg.limits.requests_per_address = Rate::new(4, 1);
        let env = Env::start(&cfg);
        env.server
            .enroll(&enrollment("piv", "c0ffee", Algorithm::TripleDes))
            .unwrap();
        // Four requests of any kind take the burst (a PIV start and its proof are two).
        env.start_session("piv", "c0ffee");
        let _ = env.agent.get(&format!("{}/v1/operator/me", env.url)).call();
        assert_error(&env.post("/nowhere", &json!({})), 404, "not_found");
        let rows = env.server.store().audit().unwrap().len();
        for path in ["/v1/unlock/start", "/v1/operator/session", "/nowhere"] {
            let response = match env
                .agent
                .post(&format!("{}{path}", env.url))
                .set("Content-Type", "application/json")
                .send_json(card("piv", "c0ffee"))
            {
                Err(ureq::Error::Status(429, r)) => r,
                other => panic!("{path}: expected 429, got {other:?}"),
            };
            let retry: u64 = response.header("Retry-After").unwrap().parse().unwrap();
            assert!((1..=60).contains(&retry), "Retry-After {retry}");
            let body: Value = response.into_json().unwrap();
            assert_eq!(body["error"], "too_many_requests");
        }
        // The refused start never reached the endpoint: no session, no row.
        assert_eq!(env.server.store().audit().unwrap().len(), rows);
        env.server.flush_refusals().unwrap();
        let audit = env.server.store().audit().unwrap();
        let limited = audit
            .iter()
            .find(|e| e.event == "refused" && e.outcome == "too_many_requests")
            .unwrap();
        assert_eq!(refused_count(limited), 3);
    }
}
