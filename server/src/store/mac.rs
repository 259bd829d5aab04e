//! Row MACs: every store row that grants or limits something carries an HMAC-SHA256, under a
//! key derived from the master secret ([`crate::kdf::store_row_key`]), over a canonical,
//! length-prefixed encoding of its table's name, its primary key and its other columns. Whoever
//! can write the database but has not the master secret cannot forge a row, change one, or
//! copy one under another key (another user, another question, another operator): the MAC no
//! longer matches and the row is refused ([`ServerError::Tampered`]).
//!
//! What a MAC cannot see: a row deleted, or a whole row put back to an older state it once had
//! (a valid MAC of the past). The attempt counter and the lock are cross-checked against the
//! audit log for that ([`super::session`]); SECURITY.md states the rest.
//!
//! The tables and their columns are declared once here ([`TABLES`]); both backends read and
//! write them through two generic primitives ([`super::tx::Tx::mac_rows`],
//! [`super::tx::Tx::set_row_mac`]), and [`guard::MacTx`] stamps and checks them around every
//! primitive. Adding a column is one line in its table's list: a column whose value is its
//! default (`NULL`, or 0 / false for a column declared [`Omit::Zero`]) is left out of the
//! encoding, so a migration adding such a column keeps every existing MAC valid.

mod fused;
pub(crate) mod guard;
mod guard_ops;
mod guard_rules;
mod joined;
mod sql;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::ServerError;

pub(crate) use joined::{
    card_filter, decode_card, decode_questions, decode_session, decode_text, in_key_order,
    session_card,
};
pub(crate) use sql::{
    audit_counts_sql, card_counted_sql, delete_returning_sql, insert_sql, intern,
    select_locked_sql, select_sql, update_cols_sql, update_sql,
};

/// The row-MAC key (32 bytes, from the master secret).
pub(crate) type RowKey = Zeroizing<[u8; 32]>;

/// A column's type, as both backends read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An integer (SQLite INTEGER, PostgreSQL BIGINT).
    Int,
    /// A flag (SQLite 0/1, PostgreSQL BOOLEAN), encoded as the integer 0 or 1.
    Bool,
    /// Text.
    Text,
    /// Bytes (SQLite BLOB, PostgreSQL BYTEA).
    Blob,
    /// A float (SQLite REAL, PostgreSQL DOUBLE PRECISION), encoded as the integer of its IEEE
    /// 754 bits (never a key column).
    Real,
}

/// Which value of a column is left out of the encoding (its default, so adding the column
/// leaves existing MACs valid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Omit {
    /// Always encoded (key columns, and columns added with a non-zero default).
    Never,
    /// Left out when `NULL` (a nullable column).
    Null,
    /// Left out when 0 / false (`NOT NULL DEFAULT 0` or `DEFAULT FALSE`).
    Zero,
}

/// One column.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Col {
    pub name: &'static str,
    pub kind: Kind,
    pub omit: Omit,
}

const fn col(name: &'static str, kind: Kind, omit: Omit) -> Col {
    Col { name, kind, omit }
}

/// A table whose rows carry a MAC in their `mac` column.
#[derive(Debug)]
pub(crate) struct Table {
    pub name: &'static str,
    /// The primary key's columns.
    pub key: &'static [Col],
    /// Every other column the MAC covers.
    pub cols: &'static [Col],
}

impl Table {
    /// The kind of column `name` (text for a name the table does not have).
    pub(crate) fn kind_of(&self, name: &str) -> Kind {
        self.all()
            .find(|c| c.name == name)
            .map_or(Kind::Text, |c| c.kind)
    }

    /// The key columns, then the others.
    pub(crate) fn all(&self) -> impl Iterator<Item = &'static Col> {
        self.key.iter().chain(self.cols.iter())
    }
}

/// A value read from or bound to a column.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Val {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl Val {
    pub(crate) fn text(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

/// A row as [`super::tx::Tx::mac_rows`] returns it: the values of [`Table::all`] in order and
/// the stored MAC.
#[derive(Debug)]
pub(crate) struct MacRow {
    pub values: Vec<Val>,
    pub mac: Option<Vec<u8>>,
}

impl MacRow {
    /// The primary key's values.
    pub(crate) fn key(&self, table: &Table) -> Vec<Val> {
        self.values[..table.key.len()].to_vec()
    }
}

use Kind::{Blob, Bool, Int, Text};
use Omit::{Never, Null, Zero};

const CARD_KEY: &[Col] = &[col("profile", Text, Never), col("identity", Text, Never)];

/// Cards: generations, lock and attempt counter, user.
pub(crate) const CARDS: Table = Table {
    name: "cards",
    key: CARD_KEY,
    cols: &[
        col("algorithm", Text, Never),
        col("user_name", Text, Never),
        col("user_email", Text, Never),
        col("key_gen", Int, Zero),
        col("puk_gen", Int, Zero),
        col("pending_puk_gen", Int, Null),
        col("locked", Bool, Zero),
        col("failed_attempts", Int, Zero),
        col("enrolled_ms", Int, Never),
        col("pending_key_gen", Int, Null),
        col("puk_read_out", Bool, Zero),
        col("card_auth_key", Text, Null),
        col("backoff_until_ms", Int, Zero),
        col("iso_profile", Text, Null),
    ],
};

/// Security questions and their answer hashes.
pub(crate) const QUESTIONS: Table = Table {
    name: "questions",
    key: &[
        col("profile", Text, Never),
        col("identity", Text, Never),
        col("position", Int, Never),
    ],
    cols: &[
        col("question", Text, Never),
        col("answer_hash", Text, Never),
    ],
};

/// PUK generations reported "not rotated".
pub(crate) const PUK_DENIED: Table = Table {
    name: "puk_denied",
    key: &[
        col("profile", Text, Never),
        col("identity", Text, Never),
        col("gen", Int, Never),
    ],
    cols: &[],
};

/// Unlock sessions.
pub(crate) const SESSIONS: Table = Table {
    name: "sessions",
    key: &[col("token_hash", Blob, Never)],
    cols: &[
        col("profile", Text, Never),
        col("identity", Text, Never),
        col("created_ms", Int, Never),
        col("expires_ms", Int, Never),
        col("verified", Bool, Zero),
        col("puk_next_gen", Int, Null),
        col("admin_answers", Int, Zero),
        col("closed", Bool, Zero),
        col("gids_randoms", Text, Null),
        col("nonce", Text, Null),
        col("proven", Bool, Zero),
    ],
};

/// Card challenges answered once.
pub(crate) const USED_CHALLENGES: Table = Table {
    name: "used_challenges",
    key: &[
        col("profile", Text, Never),
        col("identity", Text, Never),
        col("kind", Text, Never),
        col("value", Text, Never),
    ],
    cols: &[col("used_ms", Int, Never)],
};

/// Operator accounts.
pub(crate) const OPERATORS: Table = Table {
    name: "operators",
    key: &[col("name", Text, Never)],
    cols: &[
        col("password_hash", Text, Never),
        col("totp_sealed", Blob, Never),
        col("totp_last_step", Int, Null),
        col("roles", Text, Never),
        col("disabled", Bool, Zero),
        col("created_ms", Int, Never),
    ],
};

/// Operator sessions.
pub(crate) const OPERATOR_SESSIONS: Table = Table {
    name: "operator_sessions",
    key: &[col("token_hash", Blob, Never)],
    cols: &[
        col("operator", Text, Never),
        col("created_ms", Int, Never),
        col("last_seen_ms", Int, Never),
        col("ended", Bool, Zero),
        col("address", Text, Null),
    ],
};

/// Sign-in failure counters and lock-outs.
pub(crate) const SIGN_IN_FAILURES: Table = Table {
    name: "sign_in_failures",
    key: &[col("key", Text, Never)],
    cols: &[
        col("failures", Int, Never),
        col("last_failure_ms", Int, Never),
        col("locked_until_ms", Int, Zero),
    ],
};

/// Operators' daily counters.
pub(crate) const OPERATOR_DAILY: Table = Table {
    name: "operator_daily",
    key: &[
        col("operator", Text, Never),
        col("day", Int, Never),
        col("kind", Text, Never),
    ],
    cols: &[col("count", Int, Never)],
};

/// Enrollments handed out (answer hashes, generations).
pub(crate) const ENROLLMENTS: Table = Table {
    name: "enrollments",
    key: &[col("id", Text, Never)],
    cols: &[
        col("profile", Text, Never),
        col("identity", Text, Never),
        col("operator", Text, Never),
        col("algorithm", Text, Never),
        col("user_name", Text, Never),
        col("user_email", Text, Never),
        col("questions", Text, Never),
        col("key_gen", Int, Never),
        col("puk_gen", Int, Never),
        col("created_ms", Int, Never),
        col("state", Text, Never),
    ],
};

/// PUK read-outs waiting for (or given) a second operator's approval.
pub(crate) const PUK_READOUTS: Table = Table {
    name: "puk_readouts",
    key: &[col("id", Text, Never)],
    cols: &[
        col("profile", Text, Never),
        col("identity", Text, Never),
        col("requester", Text, Never),
        col("identity_checked", Text, Never),
        col("created_ms", Int, Never),
        col("expires_ms", Int, Never),
        col("approver", Text, Null),
        col("state", Text, Never),
    ],
};

const CARD_KIND_KEY: &[Col] = &[
    col("profile", Text, Never),
    col("identity", Text, Never),
    col("kind", Text, Never),
];

/// The unlock rules' per-card token buckets.
pub(crate) const CARD_BUCKETS: Table = Table {
    name: "card_buckets",
    key: CARD_KIND_KEY,
    cols: &[col("tokens", Kind::Real, Never), col("last_ms", Int, Never)],
};

/// The unlock rules' per-card daily counters.
pub(crate) const CARD_DAILY: Table = Table {
    name: "card_daily",
    key: CARD_KIND_KEY,
    cols: &[col("day", Int, Never), col("count", Int, Never)],
};

/// Cards whose secrets diverged from the store.
pub(crate) const CARD_DIVERGED: Table = Table {
    name: "card_diverged",
    key: CARD_KEY,
    cols: &[col("reason", Text, Never), col("since_ms", Int, Never)],
};

/// The PUK generations each session released (the candidates, in order).
pub(crate) const RELEASED_PUKS: Table = Table {
    name: "released_puks",
    key: &[col("token_hash", Blob, Never)],
    cols: &[
        col("generations", Text, Never),
        col("created_ms", Int, Never),
    ],
};

/// Every MACed table (the one-time migration stamps them all).
pub(crate) const TABLES: &[&Table] = &[
    &CARDS,
    &QUESTIONS,
    &PUK_DENIED,
    &SESSIONS,
    &USED_CHALLENGES,
    &OPERATORS,
    &OPERATOR_SESSIONS,
    &SIGN_IN_FAILURES,
    &OPERATOR_DAILY,
    &ENROLLMENTS,
    &PUK_READOUTS,
    &CARD_BUCKETS,
    &CARD_DAILY,
    &CARD_DIVERGED,
    &RELEASED_PUKS,
];

fn bytes(mac: &mut Hmac<Sha256>, b: &[u8]) {
    mac.update(&(b.len() as u64).to_be_bytes());
    mac.update(b);
}

/// The MAC of a row of `table` with `values` (in [`Table::all`] order).
pub(crate) fn row_mac(key: &[u8; 32], table: &Table, values: &[Val]) -> [u8; 32] {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        unreachable!("HMAC takes keys of any length");
    };
    mac.update(b"cardunlock row v1");
    bytes(&mut mac, table.name.as_bytes());
    for (col, value) in table.all().zip(values) {
        if matches!(
            (col.omit, value),
            (Omit::Null, Val::Null) | (Omit::Zero, Val::Int(0))
        ) {
            continue;
        }
        bytes(&mut mac, col.name.as_bytes());
        match value {
            Val::Null => mac.update(&[0]),
            Val::Int(i) => {
                mac.update(&[1]);
                mac.update(&i.to_be_bytes());
            }
            Val::Text(t) => {
                mac.update(&[2]);
                bytes(&mut mac, t.as_bytes());
            }
            Val::Blob(b) => {
                mac.update(&[3]);
                bytes(&mut mac, b);
            }
        }
    }
    mac.finalize().into_bytes().into()
}

/// Whether the row's stored MAC is right (constant time).
pub(crate) fn row_ok(key: &[u8; 32], table: &Table, row: &MacRow) -> bool {
    let expect = row_mac(key, table, &row.values);
    row.mac
        .as_deref()
        .is_some_and(|stored| bool::from(stored.ct_eq(&expect[..])))
}

/// The error for a row that fails: names the table, never a value.
pub(crate) fn tampered(table: &Table) -> ServerError {
    ServerError::Tampered(format!(
        "a row of table {} fails its MAC (changed, copied or forged outside the server)",
        table.name
    ))
}

/// Refuses any row of `rows` whose MAC is wrong.
pub(crate) fn check_rows(
    key: &[u8; 32],
    table: &Table,
    rows: &[MacRow],
) -> Result<(), ServerError> {
    if rows.iter().all(|r| row_ok(key, table, r)) {
        Ok(())
    } else {
        Err(tampered(table))
    }
}

/// The one-time migration: gives every row of every MACed table its MAC, audited, the first
/// time a store is given its key; returns how many rows. Afterwards a row without a MAC is
/// refused like a wrong one. A store whose "done" mark was reset after the audited migration is
/// refused ([`ServerError::Tampered`]).
pub(crate) fn stamp_existing(
    tx: &mut dyn super::tx::Tx,
    key: &[u8; 32],
) -> Result<u64, ServerError> {
    let (done, audited) = tx.row_mac_state()?;
    if done {
        return Ok(0);
    }
    if audited {
        return Err(ServerError::Tampered(
            "the store's row-MAC migration mark was reset after the migration ran".into(),
        ));
    }
    let mut rows = 0u64;
    for table in TABLES {
        for r in tx.mac_rows(table, &[])? {
            let mac = row_mac(key, table, &r.values);
            tx.set_row_mac(table, &r.key(table), &mac)?;
            rows += 1;
        }
    }
    tx.set_row_mac_done()?;
    let detail = format!(
        "{rows} existing row(s) of {} table(s) given MACs",
        TABLES.len()
    );
    tx.insert_audit(
        &super::AuditNote::server(None, "row_mac", "stamped", &detail),
        super::now_ms(),
    )?;
    Ok(rows)
}

#[cfg(test)]
mod tests;
