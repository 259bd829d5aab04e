//! TLS to PostgreSQL with `--db-ca-file` (`sslmode=verify-full` semantics), against a second
//! throw-away cluster that speaks TLS only (`scripts/start-postgres-tls.sh`: certificate for
//! `localhost`, issued by its own CA). Runs when `CARDUNLOCK_TEST_POSTGRES` is set (the machine
//! has PostgreSQL), like the other PostgreSQL tests.

#![cfg(feature = "postgres")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::{Database, ServerError, Store};
use common::*;

/// Starts (or finds) the TLS cluster; its URL (host `localhost`) and its directory.
fn tls_cluster() -> Option<(String, PathBuf)> {
    postgres_admin_url()?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/start-postgres-tls.sh");
    let out = Command::new("bash").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "start-postgres-tls.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let dir = std::env::var("CARDUNLOCK_PG_TLS_DIR").unwrap_or("/tmp/cardunlock-pg-tls".into());
    Some((url, PathBuf::from(dir)))
}

/// A fresh database on the TLS cluster (made over a verified connection).
fn fresh_database(url: &str, ca: &Path) -> String {
    let name = format!("cu_tls_{}_{}", std::process::id(), rand_suffix());
    let mut client = tls_client(url, ca);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    with_database(url, &name)
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_000_007
}

fn tls_client(url: &str, ca: &Path) -> postgres::Client {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut pg: postgres::Config = url.parse().unwrap();
    pg.ssl_mode(postgres::config::SslMode::Require);
    pg.connect(tokio_postgres_rustls::MakeRustlsConnect::new(config))
        .unwrap()
}

fn refused(result: Result<Store, ServerError>) -> String {
    match result {
        Ok(_) => panic!("the store opened"),
        Err(e) => e.to_string(),
    }
}

/// Proves the CA file is used and verified: the right CA and host name work (and the cluster
/// refuses plain connections, so it was TLS); a certificate from another CA, or one issued for
/// another name than the URL's host, is refused; `sslmode=disable` with a CA file is refused.
#[test]
fn the_store_reaches_postgres_over_verified_tls_only() {
    let Some((url, dir)) = tls_cluster() else {
        return;
    };
    let ca = dir.join("ca.crt");
    // The cluster takes TLS only: a plain client is turned away.
    assert!(postgres::Client::connect(&url, postgres::NoTls).is_err());

    let db = fresh_database(&url, &ca);
    let store = Store::open_with_ca(&Database::from_location(&db), None, Some(&ca)).unwrap();
    store.set_audit_key(&master()).unwrap();
    store
        .enroll(&enrollment("gids", "a0", Algorithm::TripleDes), &FAST)
        .unwrap();
    assert!(store.card("gids", "a0").unwrap().is_some());
    drop(store);

    // A server certificate this CA did not issue.
    let why = refused(Store::open_with_ca(
        &Database::from_location(&db),
        None,
        Some(&dir.join("other-ca.crt")),
    ));
    assert!(why.contains("certificate"), "{why}");
    // The right CA, but the certificate names `localhost`, not 127.0.0.1.
    let by_address = db.replace("@localhost:", "@127.0.0.1:");
    let why = refused(Store::open_with_ca(
        &Database::from_location(&by_address),
        None,
        Some(&ca),
    ));
    assert!(why.contains("certificate"), "{why}");
    // No silent downgrade.
    let why = refused(Store::open_with_ca(
        &Database::from_location(format!("{db}?sslmode=disable")),
        None,
        Some(&ca),
    ));
    assert!(why.contains("sslmode"), "{why}");
    // A CA file with a SQLite store is a mistake, said so.
    let tmp = tempfile::tempdir().unwrap();
    let why = refused(Store::open_with_ca(
        &Database::from_location(tmp.path().join("x.db")),
        None,
        Some(&ca),
    ));
    assert!(why.contains("PostgreSQL"), "{why}");

    // The whole server, configured with the CA file, serves an unlock from that store.
    let mut cfg = cardunlock_server::Config::new(db.clone(), tmp.path().join("state"), master());
    cfg.argon2 = FAST;
    cfg.limits = cardunlock_server::Limits::without_rate_limits();
    cfg.db_ca_file = Some(ca.clone());
    let env = Env::start(&cfg);
    env.verified_session("gids", "a0");
    drop(env);

    let mut client = tls_client(&url, &ca);
    let name = db.rsplit('/').next().unwrap().to_owned();
    let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}
