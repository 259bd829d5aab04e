//! The PostgreSQL role split of `scripts/postgres-audit-roles.sql`: with the tables owned by an
//! admin role, the server's role serves unlocks but cannot change or delete audit rows, and the
//! reader role reads them. Runs when `CARDUNLOCK_TEST_POSTGRES` is set.

#![cfg(feature = "postgres")]

mod common;

use std::path::Path;

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::Store;
use common::*;

/// `url` with its user replaced.
fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}@{host}")
}

/// Proves the split: if the script granted UPDATE or DELETE on `audit` to the server's role,
/// or the server needed them for an unlock, this fails.
#[test]
fn the_server_role_may_only_add_to_the_audit_log() {
    common::run_on(Backend::Postgres, body);
}

fn body() {
    let admin_db = new_postgres_database();
    // The admin creates and migrates the schema.
    let admin_store = Store::open(&admin_db).unwrap();
    admin_store.set_audit_key(&master()).unwrap();
    drop(admin_store);

    let role = format!("cu_server_{}", std::process::id());
    let mut admin = postgres::Client::connect(&admin_db, postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN"
        ))
        .unwrap();
    let script = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres-audit-roles.sql"),
    )
    .unwrap()
    .replace(":\"server_role\"", &format!("\"{role}\""));
    admin.batch_execute(&script).unwrap();

    // The server, as its own role, serves a whole unlock (and writes its audit rows).
    let server_db = as_user(&admin_db, &role);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg =
        cardunlock_server::Config::new(server_db.clone(), dir.path().join("state"), master());
    cfg.argon2 = FAST;
    cfg.limits = cardunlock_server::Limits::without_rate_limits();
    let env = Env::start(&cfg);
    env.server
        .enroll(&enrollment("gids", "ab", Algorithm::TripleDes))
        .unwrap();
    env.verified_session("gids", "ab");
    let rows = env.server.store().audit().unwrap().len();
    assert!(rows >= 3, "{rows}");
    drop(env);

    // It cannot rewrite or remove audit rows, nor grant itself the right.
    let mut server = postgres::Client::connect(&server_db, postgres::NoTls).unwrap();
    // A GRANT by a role without the grant option only warns ("no privileges were granted").
    let _ = server.batch_execute("GRANT UPDATE, DELETE ON audit TO PUBLIC");
    for sql in [
        "UPDATE audit SET detail = 'x'",
        "DELETE FROM audit",
        "TRUNCATE audit",
    ] {
        let err = server.batch_execute(sql).unwrap_err();
        let text = format!("{err:?}");
        assert!(
            text.contains("permission denied") || text.contains("InsufficientPrivilege"),
            "{sql}: {text}"
        );
    }
    drop(server);
    // The reader role reads the log, and nothing else.
    admin
        .batch_execute("SET ROLE cardunlock_audit_reader")
        .unwrap();
    let n: i64 = admin
        .query_one("SELECT count(*) FROM audit", &[])
        .unwrap()
        .get(0);
    assert_eq!(n as usize, rows);
    assert!(admin.query("SELECT * FROM cards", &[]).is_err());
    admin
        .batch_execute(&format!(
            "RESET ROLE; DROP OWNED BY {role}; DROP ROLE {role}"
        ))
        .unwrap();
}
