use crate::store::mac::guard::MacTx;
use crate::store::mac::{Val, CARDS};
use crate::store::sqlite::SqliteDb;
use crate::store::tx::Tx;
use crate::store::Profile;
use crate::ServerError;

const KEY: [u8; 32] = [9; 32];
const CARD: (Profile, &str) = (Profile::Iso, "0a0b");

fn store() -> (tempfile::TempDir, SqliteDb) {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::open(&dir.path().join("s.db")).unwrap();
    db.transact(&mut |tx| {
        let mut m = MacTx::new(tx, &KEY);
        assert!(m.insert_card(CARD, "3des", "N", "n@x", 1)?);
        Ok(())
    })
    .unwrap();
    (dir, db)
}

fn key() -> Vec<Val> {
    vec![Val::text("iso"), Val::text("0a0b")]
}

/// Proves the write is guarded by the MAC that was checked (`... AND mac = <checked>`): a row
/// whose MAC another writer changed between this transaction's check and its write is not
/// overwritten with a fresh, valid MAC (which would bless it) but refused.
#[test]
fn a_row_changed_after_its_check_is_refused_not_blessed() {
    let (_dir, db) = store();
    let result = db.transact(&mut |tx| {
        let mut m = MacTx::new(tx, &KEY);
        assert!(m.read_card(CARD)?.is_some());
        m.inner.set_row_mac(&CARDS, &key(), &[0; 32])?;
        m.set_attempts(CARD, 3, false)
    });
    assert!(
        matches!(result, Err(ServerError::Tampered(_))),
        "{result:?}"
    );
}

/// Proves a write computes the MAC of the row it leaves: the next transaction's check passes
/// and reads what was written (a MAC computed over the wrong values would fail it).
#[test]
fn a_written_row_checks_and_reads_back() {
    let (_dir, db) = store();
    db.transact(&mut |tx| {
        let mut m = MacTx::new(tx, &KEY);
        m.set_attempts(CARD, 2, true)?;
        m.set_puk_gens(CARD, 4, Some(5))
    })
    .unwrap();
    let card = db
        .transact(&mut |tx| MacTx::new(tx, &KEY).read_card(CARD))
        .unwrap()
        .unwrap();
    assert_eq!((card.failed_attempts, card.locked), (2, true));
    assert_eq!((card.puk_gen, card.pending_puk_gen), (4, Some(5)));
    // A forged counter (the MAC left as it was) is refused.
    let forged = db.transact(&mut |tx| {
        tx.set_attempts(CARD, 0, false)?;
        MacTx::new(tx, &KEY).read_card(CARD)
    });
    assert!(
        matches!(forged, Err(ServerError::Tampered(_))),
        "{forged:?}"
    );
}

/// Proves a statement that reaches the guard's own `Exec` (what a shared default method of
/// `Tx` the guard forgot to override would do) is refused and changes nothing: without the
/// refusal it would reset the card's counters past their MAC, and the next checked read would
/// call the store tampered.
#[test]
fn a_statement_past_the_guard_is_refused_and_changes_nothing() {
    use crate::store::stmt::{sql, Arg, Exec};
    let (_dir, db) = store();
    db.transact(&mut |tx| MacTx::new(tx, &KEY).set_attempts(CARD, 2, true))
        .unwrap();
    let unguarded = db.transact(&mut |tx| {
        let mut m = MacTx::new(tx, &KEY);
        Exec::exec(
            &mut m,
            sql!("UPDATE cards SET failed_attempts = 0, locked = FALSE WHERE profile = $1"),
            &[Arg::Text("iso")],
        )
    });
    assert!(
        matches!(&unguarded, Err(ServerError::Runtime(m)) if m.contains("unchecked")),
        "{unguarded:?}"
    );
    let card = db
        .transact(&mut |tx| MacTx::new(tx, &KEY).read_card(CARD))
        .unwrap()
        .unwrap();
    assert_eq!((card.failed_attempts, card.locked), (2, true));
}
