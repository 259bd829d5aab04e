//! The security headers every reply carries (set by one layer of the router), on endpoint
//! replies, refusals and unknown paths alike.

mod common;

use common::*;
use serde_json::json;

const EXPECTED: [(&str, &str); 5] = [
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cache-control", "no-store"),
];

fn check(response: &ureq::Response, what: &str) {
    for (name, value) in EXPECTED {
        assert_eq!(response.header(name), Some(value), "{name} on {what}");
    }
}

#[test]
fn every_reply_carries_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&config(dir.path()));
    let ok = env
        .agent
        .post(&format!("{}/v1/unlock/start", env.url))
        .send_json(json!({ "profile": "iso", "identity": "0101" }));
    let (status, response) = match ok {
        Ok(r) => (r.status(), r),
        Err(ureq::Error::Status(code, r)) => (code, r),
        Err(e) => panic!("transport: {e}"),
    };
    assert!(status < 500, "start: {status}");
    check(&response, "start");
    for (method, path) in [
        ("GET", "/v1/unlock/start"),
        ("POST", "/nowhere"),
        ("GET", "/"),
    ] {
        match env
            .agent
            .request(method, &format!("{}{path}", env.url))
            .call()
        {
            Err(ureq::Error::Status(code, r)) => {
                assert!((400..500).contains(&code), "{method} {path}: {code}");
                check(&r, &format!("{method} {path}"));
            }
            other => panic!("{method} {path}: expected a refusal, got {other:?}"),
        }
    }
}

/// A method a path does not take gets 405 with `Allow` after its body is read, so the
/// connection carries the next request (an unread body used to close it under the client).
#[test]
fn a_refused_method_leaves_the_connection_usable() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&config(dir.path()));
    let body = vec![b'x'; 4096];
    for _ in 0..30 {
        for path in ["/v1/openapi.json", "/console/style.css"] {
            match env
                .agent
                .post(&format!("{}{path}", env.url))
                .set("Content-Type", "application/json")
                .send_bytes(&body)
            {
                Err(ureq::Error::Status(405, r)) => {
                    assert!(
                        r.header("allow").is_some_and(|a| a.contains("GET")),
                        "{path}"
                    );
                    let reply: serde_json::Value = r.into_json().unwrap();
                    assert_eq!(reply["error"], "method_not_allowed");
                }
                other => panic!("POST {path}: {other:?}"),
            }
            let next = env.agent.get(&format!("{}{path}", env.url)).call();
            assert!(next.is_ok(), "GET {path} after a 405: {next:?}");
        }
    }
}
