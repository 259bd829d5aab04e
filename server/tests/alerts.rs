//! Alerts reach someone: an alert-level audit row, the alert counter and an HTTPS webhook
//! (retried until the receiver takes it) carrying the kind, the card's id hash and the time,
//! never the identity, a name or a secret.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::alerts::AlertWebhook;
use cardunlock_server::protocol::Role;
use common::*;
use serde_json::{json, Value};
use sha2::Digest;

/// A local HTTPS receiver (self-signed certificate): answers the first request 503 and the
/// rest 200, and sends every request body it gets.
fn receiver() -> (String, String, mpsc::Receiver<Value>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_pem = certified.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://127.0.0.1:{}/hook",
        listener.local_addr().unwrap().port()
    );
    let (bodies, received) = mpsc::channel();
    std::thread::spawn(move || {
        for (n, tcp) in listener.incoming().enumerate() {
            let Ok(tcp) = tcp else { continue };
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut reader = BufReader::new(&mut tls);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let status = if n == 0 {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let _ = write!(
                tls,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = tls.flush();
            let _ = bodies.send(serde_json::from_slice(&body).unwrap());
        }
    });
    (url, cert_pem, received)
}

/// Proves an alert (re-enrolling an enrolled card) writes its alert-level row and reaches
/// the webhook after a failed first delivery, with the card's id hash and no identity,
/// name or secret in the body.
#[test]
fn an_alert_reaches_the_webhook_retried() {
    let (url, cert_pem, received) = receiver();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    let mut hook = AlertWebhook::new(&url).unwrap();
    hook.cert_pem = Some(cert_pem);
    hook.first_retry = Duration::from_millis(50);
    cfg.alert_webhook = Some(hook);
    let env = Env::start(&cfg);
    env.server
        .enroll(&enrollment("iso", "a1b2c3", Algorithm::TripleDes))
        .unwrap();
    let token = env.signed_in("station", &[Role::Enroller]);
    let request = json!({
        "card": {"profile": "iso", "identity": "a1b2c3"},
        "algorithm": "3des",
        "user": {"name": "Michael Benson", "email": "Michael.Benson@demo.local"},
        "questions": [
            {"question": "First pet?", "answer": ANSWERS[0]},
            {"question": "Born in?", "answer": ANSWERS[1]},
        ],
    });
    let (status, reply) = env.call("POST", "/v1/operator/enrollments", &token, Some(&request));
    assert_eq!(status, 200, "{reply}");
    let audit = env.server.store().audit().unwrap();
    assert!(audit
        .iter()
        .any(|e| e.event == "enroll_begin" && e.outcome == "alert"));

    // The first delivery was refused (503); the retry's body arrives.
    let first = received.recv_timeout(Duration::from_secs(10)).unwrap();
    let second = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(first, second);
    assert_eq!(second["kind"], "enroll_begin");
    let hash = hex::encode(sha2::Sha256::digest(b"iso:a1b2c3"));
    assert_eq!(second["card"], hash.as_str());
    assert!(second["time"].as_str().unwrap().ends_with('Z'));
    let text = second.to_string();
    for secret in ["a1b2c3", "Benson", ANSWERS[0], "station"] {
        assert!(!text.contains(secret), "{text}");
    }
    assert!(
        received.recv_timeout(Duration::from_millis(300)).is_err(),
        "sent once after success"
    );
}

#[test]
fn a_webhook_must_be_https() {
    assert!(AlertWebhook::new("http://example.com/hook").is_err());
    assert!(AlertWebhook::new("https://").is_err());
    assert!(AlertWebhook::new("https://siem.example/hook").is_ok());
}
