//! Retention: archiving moves old rows into a file ending with each chain's head; the chains
//! then verify from there, and rows removed from a chain's new beginning are still found.

mod common;

use std::path::Path;

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::audit_archive::{archive, archive_heads};
use common::*;

fn tamper(location: &Path, sql: &str) {
    query_texts(location, sql);
}

/// A server with a few rows, all of them archived, then two more enrolments.
fn archived_store(dir: &Path) -> (Env, std::path::PathBuf, std::path::PathBuf, usize) {
    let cfg = config(dir);
    let location = cfg.db_path.clone();
    let env = Env::start(&cfg);
    for id in ["a1", "a2"] {
        env.server
            .enroll(&enrollment("piv", id, Algorithm::TripleDes))
            .unwrap();
    }
    env.start_session("piv", "a1");
    let before = env.server.store().audit().unwrap().len();
    let file = dir.join("archive.jsonl");
    let summary = archive(env.server.store(), &master(), i64::MAX, &file).unwrap();
    assert_eq!(summary.rows, before);
    for id in ["a3", "a4"] {
        env.server
            .enroll(&enrollment("piv", id, Algorithm::TripleDes))
            .unwrap();
    }
    (env, location, file, before)
}

backend_tests! {
    /// Proves archived rows leave the database for the file, and the chains verify from the
    /// archive's heads (with and without the file); a forged archive head is refused.
    fn archived_chains_verify_from_the_archive_head() {
        let dir = tempfile::tempdir().unwrap();
        let (env, _, file, archived) = archived_store(dir.path());
        let store = env.server.store();
        // Left: the archiving row and the two enrolments.
        let audit = store.audit().unwrap();
        assert_eq!(audit.len(), 3, "{audit:#?}");
        assert_eq!(audit[0].event, "audit_archive");
        assert!(audit[0].detail.starts_with(&format!("{archived} rows before ")), "{}", audit[0].detail);
        let text = std::fs::read_to_string(&file).unwrap();
        let rows = text.lines().filter(|l| l.contains(r#""type":"audit""#)).count();
        assert_eq!(rows, archived);
        let heads = archive_heads(&file).unwrap();
        assert_eq!(heads.len(), 1);
        assert_eq!(heads[0].head.seq, archived as i64);
        let report = store.verify_audit_archived(&master(), &[], &heads).unwrap();
        assert_eq!(report.problem, None);
        assert_eq!(store.verify_audit(&master(), &[]).unwrap().problem, None);
        // An archive head that is not where the chain starts is refused.
        let mut forged = heads[0].clone();
        forged.head.mac = [0; 32];
        let report = store.verify_audit_archived(&master(), &[], &[forged]).unwrap();
        let found = report.problem.unwrap();
        assert!(found.contains("not at the saved or archived head"), "{found}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the archive is owner-only");
        }
    }

    /// Proves a row removed from a chain's new beginning is found, also when its start is
    /// moved up to hide it (no archiving row names that start).
    fn rows_removed_after_an_archive_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let (env, location, _, archived) = archived_store(dir.path());
        let store = env.server.store();
        let first = "(SELECT min(id) FROM audit)";
        tamper(&location, &format!("DELETE FROM audit WHERE id = {first}"));
        let found = store.verify_audit(&master(), &[]).unwrap().problem.unwrap();
        assert!(found.contains(&format!("row seq {} was removed", archived + 1)), "{found}");

        let dir = tempfile::tempdir().unwrap();
        let (env, location, _, _) = archived_store(dir.path());
        let store = env.server.store();
        tamper(
            &location,
            &format!(
                "UPDATE audit_starts SET seq = seq + 1, \
                 mac = (SELECT mac FROM audit WHERE id = {first})"
            ),
        );
        tamper(&location, &format!("DELETE FROM audit WHERE id = {first}"));
        let found = store.verify_audit(&master(), &[]).unwrap().problem.unwrap();
        assert!(found.contains("no archiving row names that start"), "{found}");
    }
}
