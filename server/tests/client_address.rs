//! Every audit row of a request carries its client's address; behind a load balancer in
//! `--trusted-proxy` that is the client it names (PROXY protocol v1/v2, `X-Forwarded-For`'s
//! rightmost untrusted hop), and from any other peer the peer itself, whatever it sends.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use cardunlock_server::{Config, TrustedProxies};
use common::*;

/// `POST /v1/unlock/start` for an unknown card over a raw TLS connection, after `prefix`
/// (a PROXY header) and with `extra` header lines; the reply's status line, or `None` if the
/// connection failed.
fn start_raw(env: &Env, prefix: &[u8], extra: &str) -> Option<String> {
    let tls = cardunlock_server::pinned_client_config(env.server.cert_pem()).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(tls, name).unwrap();
    let mut tcp = std::net::TcpStream::connect(env.server.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(prefix).unwrap();
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    let body = serde_json::to_vec(&card("piv", "0bad")).unwrap();
    let head = format!(
        "POST /v1/unlock/start HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(&body).ok()?;
    stream.flush().ok()?;
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply).into_owned();
    text.lines()
        .next()
        .filter(|l| l.starts_with("HTTP/1.1"))
        .map(str::to_owned)
}

/// The address of the newest `start` audit row.
fn last_start_address(env: &Env) -> Option<String> {
    let audit = env.server.store().audit().unwrap();
    let row = audit
        .iter()
        .rev()
        .find(|e| e.event == "start")
        .expect("a start row");
    row.address.clone()
}

fn with_trusted(dir: &std::path::Path, cidrs: &str) -> Config {
    let mut c = config(dir);
    c.trusted_proxies = cidrs.parse::<TrustedProxies>().unwrap();
    c
}

/// A PROXY v2 header (PROXY command, TCP over IPv4) naming `source`.
fn proxy_v2(source: [u8; 4]) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&source);
    h.extend_from_slice(&[127, 0, 0, 1]);
    h.extend_from_slice(&4711u16.to_be_bytes());
    h.extend_from_slice(&443u16.to_be_bytes());
    h
}

/// Proves an unlock row names its client, and that a peer outside `--trusted-proxy` cannot
/// choose that address with a spoofed `X-Forwarded-For` (none trusted, or others trusted).
#[test]
fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    for trusted in ["", "10.0.0.0/8"] {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&with_trusted(dir.path(), trusted));
        let status = start_raw(&env, b"", "X-Forwarded-For: 198.51.100.9\r\n").unwrap();
        assert!(
            status.contains(" 404") || status.contains(" 200"),
            "{status}"
        );
        assert_eq!(last_start_address(&env).as_deref(), Some("127.0.0.1"));
    }
}

/// Proves a trusted proxy's `X-Forwarded-For` names the client by its rightmost untrusted hop
/// (the hop the client itself wrote on the left is not believed).
#[test]
fn a_trusted_proxy_names_the_client_by_the_rightmost_untrusted_hop() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&with_trusted(dir.path(), "127.0.0.0/8"));
    let xff = "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 198.51.100.9, 127.0.0.2\r\n";
    start_raw(&env, b"", xff).unwrap();
    assert_eq!(last_start_address(&env).as_deref(), Some("198.51.100.9"));
}

/// Proves the PROXY protocol (v1 and v2) from a trusted peer names the client.
#[test]
fn a_trusted_proxy_names_the_client_by_proxy_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&with_trusted(dir.path(), "127.0.0.1/32"));
    let v1 = b"PROXY TCP4 203.0.113.5 127.0.0.1 5555 443\r\n";
    start_raw(&env, v1, "").expect("served after a v1 header");
    assert_eq!(last_start_address(&env).as_deref(), Some("203.0.113.5"));
    start_raw(&env, &proxy_v2([192, 0, 2, 44]), "").expect("served after a v2 header");
    assert_eq!(last_start_address(&env).as_deref(), Some("192.0.2.44"));
    // No header from a trusted peer: the peer is the client.
    start_raw(&env, b"", "").expect("served without a header");
    assert_eq!(last_start_address(&env).as_deref(), Some("127.0.0.1"));
    // A malformed header closes the connection.
    assert_eq!(start_raw(&env, b"PROXY TCP4 nonsense\r\n", ""), None);
}

/// Proves a PROXY header from a peer that is not trusted is never read as an address: the
/// connection fails (its TLS handshake sees the header) and no row names the forged address.
#[test]
fn a_proxy_header_from_an_untrusted_peer_is_not_believed() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&with_trusted(dir.path(), "10.0.0.0/8"));
    let v1 = b"PROXY TCP4 203.0.113.5 127.0.0.1 5555 443\r\n";
    assert_eq!(start_raw(&env, v1, ""), None);
    let audit = env.server.store().audit().unwrap();
    assert!(
        audit
            .iter()
            .all(|e| e.address.as_deref() != Some("203.0.113.5")),
        "{audit:#?}"
    );
}
