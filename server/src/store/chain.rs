//! The audit log as a keyed hash chain: every row has a sequence number (1, 2, ...) and an
//! HMAC-SHA256 over its sequence number, the previous row's MAC and its content, under a key
//! derived from the master secret ([`crate::kdf::audit_key`]). The newest row's sequence
//! number and MAC (the head) are kept in the one-row `audit_head` table, read with the
//! database's write lock held (SQLite `BEGIN IMMEDIATE`, PostgreSQL `SELECT ... FOR UPDATE`)
//! in the transaction that appends the row, so concurrent appends (from any instance) chain
//! one after the other.
//!
//! Without the key, no one can remove, change, reorder or insert a row without
//! [`verify`] naming it; a truncated tail is found against a head saved earlier (the server
//! logs its head every minute).

use std::cell::RefCell;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::tx::Tx;
use super::{AuditEntry, AuditNote};
use crate::ServerError;

/// The chain's key (32 bytes, from the master secret).
pub(crate) type AuditKey = Zeroizing<[u8; 32]>;

/// A row as the chain sees it: its database id, sequence number and MAC (absent on a row
/// written without the key) and its content.
pub(crate) struct ChainRow {
    pub id: i64,
    pub seq: Option<i64>,
    pub mac: Option<Vec<u8>>,
    pub entry: AuditEntry,
}

/// The newest row's sequence number and MAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditHead {
    /// Its sequence number (0: no row yet).
    pub seq: i64,
    /// Its MAC (32 zero bytes before the first row).
    pub mac: [u8; 32],
}

impl AuditHead {
    /// Before the first row.
    pub const START: Self = Self {
        seq: 0,
        mac: [0; 32],
    };

    /// `SEQ:MAC-HEX`, as [`AuditHead::parse`] reads it back.
    pub fn to_text(&self) -> String {
        format!("{}:{}", self.seq, hex::encode(self.mac))
    }

    /// Reads `SEQ:MAC-HEX`.
    pub fn parse(text: &str) -> Result<Self, ServerError> {
        let bad = || ServerError::InvalidInput("a head is SEQ:MAC (64 hex digits)".into());
        let (seq, mac) = text.trim().split_once(':').ok_or_else(bad)?;
        let seq = seq.parse::<i64>().map_err(|_| bad())?;
        let mac: [u8; 32] = hex::decode(mac)
            .ok()
            .and_then(|m| m.try_into().ok())
            .ok_or_else(bad)?;
        Ok(Self { seq, mac })
    }
}

thread_local! {
    /// The chain key of the transaction running on this thread ([`KeyScope`]).
    static KEY: RefCell<Option<AuditKey>> = const { RefCell::new(None) };
}

/// Makes `key` the chain key of the transaction this thread runs, until dropped
/// ([`super::Store::transact`] runs a transaction start to end on one thread).
pub(crate) struct KeyScope;

impl KeyScope {
    pub(crate) fn set(key: Option<&AuditKey>) -> Self {
        KEY.with(|k| *k.borrow_mut() = key.cloned());
        Self
    }
}

impl Drop for KeyScope {
    fn drop(&mut self) {
        KEY.with(|k| *k.borrow_mut() = None);
    }
}

fn field(mac: &mut Hmac<Sha256>, value: Option<&str>) {
    match value {
        None => mac.update(&[0]),
        Some(v) => {
            mac.update(&[1]);
            mac.update(&(v.len() as u64).to_be_bytes());
            mac.update(v.as_bytes());
        }
    }
}

/// The MAC of row `seq` with `content`, after the row whose MAC is `prev`.
pub(crate) fn row_mac(key: &[u8; 32], seq: i64, prev: &[u8; 32], e: &AuditEntry) -> [u8; 32] {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        unreachable!("HMAC takes keys of any length");
    };
    mac.update(b"cardunlock audit v1");
    mac.update(&seq.to_be_bytes());
    mac.update(prev);
    mac.update(&e.time_ms.to_be_bytes());
    for value in [
        e.profile.as_deref(),
        e.identity_hex.as_deref(),
        e.session.as_deref(),
        Some(e.event.as_str()),
        Some(e.outcome.as_str()),
        Some(e.detail.as_str()),
        e.operator.as_deref(),
        e.role.as_deref(),
        e.address.as_deref(),
    ] {
        field(&mut mac, value);
    }
    mac.finalize().into_bytes().into()
}

/// The row `note` becomes, as it reads back.
fn entry_of(note: &AuditNote<'_>, now: i64) -> AuditEntry {
    AuditEntry {
        time_ms: now,
        profile: note.card.map(|(p, _)| p.as_str().to_owned()),
        identity_hex: note.card.map(|(_, i)| i.to_owned()),
        session: note.session.map(str::to_owned),
        event: note.event.to_owned(),
        outcome: note.outcome.to_owned(),
        detail: note.detail.to_owned(),
        operator: note.operator.map(str::to_owned),
        role: note.role.map(|r| r.as_str().to_owned()),
        address: note.address.map(str::to_owned),
    }
}

/// Appends `note` to the chain inside `tx` (the head read under the write lock); without a
/// key (a store opened without the master secret) the row is written unchained, and
/// [`verify`] names it.
pub(crate) fn append(tx: &mut dyn Tx, note: &AuditNote<'_>, now: i64) -> Result<(), ServerError> {
    let key = KEY.with(|k| k.borrow().clone());
    let Some(key) = key else {
        log::warn!("audit row written without the chain key");
        return tx.insert_audit_row(note, now, None);
    };
    let head = tx.audit_head()?.unwrap_or(AuditHead::START);
    let seq = head.seq + 1;
    let mac = row_mac(&key, seq, &head.mac, &entry_of(note, now));
    tx.insert_audit_row(note, now, Some((seq, &mac)))?;
    tx.set_audit_head(&AuditHead { seq, mac })
}

/// Chains the rows written before the chain existed, once (when `audit_head` is still empty),
/// and audits that it did (a new, empty store just gets its head); returns how many rows it
/// chained.
pub(crate) fn chain_existing(tx: &mut dyn Tx, key: &AuditKey) -> Result<u64, ServerError> {
    if tx.audit_head()?.is_some() {
        return Ok(0);
    }
    let mut head = AuditHead::START;
    let mut chained = 0;
    for row in tx.audit_chain_rows(true)? {
        let seq = head.seq + 1;
        let mac = row_mac(key, seq, &head.mac, &row.entry);
        tx.set_audit_row_chain(row.id, seq, &mac)?;
        head = AuditHead { seq, mac };
        chained += 1;
    }
    tx.set_audit_head(&head)?;
    if chained == 0 {
        return Ok(0);
    }
    let detail = format!("{chained} existing rows chained");
    let note = AuditNote {
        card: None,
        session: None,
        event: "audit_chain",
        outcome: "chained",
        detail: &detail,
        operator: None,
        role: None,
        address: None,
    };
    let _scope = KeyScope::set(Some(key));
    append(tx, &note, super::now_ms())?;
    Ok(chained)
}

/// A stored head (its MAC must be 32 bytes); `None` for the "not chained yet" marker (seq -1).
pub(super) fn head_of(seq: i64, mac: &[u8]) -> Result<Option<AuditHead>, ServerError> {
    if seq < 0 {
        return Ok(None);
    }
    let mac: [u8; 32] = mac
        .try_into()
        .map_err(|_| ServerError::InvalidInput("the stored audit head is malformed".into()))?;
    Ok(Some(AuditHead { seq, mac }))
}

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    /// The last row that verified (its sequence number and MAC).
    pub head: AuditHead,
    /// The head the store says it has (`audit_head`), if any.
    pub stored_head: Option<AuditHead>,
    /// The first problem, naming its row; `None` if the chain is whole.
    pub problem: Option<String>,
}

/// Walks the chain in row order and names the first row removed, changed, reordered or
/// inserted; `expected` is a head saved earlier, which must still be in the chain (else the
/// tail was truncated or rewritten).
pub(crate) fn verify(
    tx: &mut dyn Tx,
    key: &AuditKey,
    expected: Option<&AuditHead>,
) -> Result<ChainReport, ServerError> {
    let rows = tx.audit_chain_rows(false)?;
    let stored_head = tx.audit_head()?;
    let present: std::collections::HashSet<i64> = rows.iter().filter_map(|r| r.seq).collect();
    let mut head = AuditHead::START;
    let mut problem = None;
    let mut saw_expected = expected.is_none_or(|h| h.seq == 0);
    for row in &rows {
        let want = head.seq + 1;
        let (Some(seq), Some(mac)) = (row.seq, row.mac.as_deref()) else {
            problem = Some(format!(
                "row id {} was inserted: it has no place in the chain (after seq {})",
                row.id, head.seq
            ));
            break;
        };
        if seq != want {
            problem = Some(if seq > want && !present.contains(&want) {
                format!(
                    "row seq {want} was removed (seq {seq}, id {}, follows seq {})",
                    row.id, head.seq
                )
            } else if seq > want {
                format!(
                    "row seq {want} was moved out of order (row seq {seq}, id {}, follows seq {})",
                    row.id, head.seq
                )
            } else {
                format!(
                    "row seq {seq} (id {}) is out of order or repeated: it follows seq {}",
                    row.id, head.seq
                )
            });
            break;
        }
        let computed = row_mac(key, seq, &head.mac, &row.entry);
        if !bool::from(computed.ct_eq(mac)) {
            problem = Some(format!(
                "row seq {seq} (id {}) was changed or inserted: its MAC does not verify",
                row.id
            ));
            break;
        }
        head = AuditHead { seq, mac: computed };
        if let Some(h) = expected {
            if h.seq == seq {
                if !bool::from(h.mac.ct_eq(&computed)) {
                    problem = Some(format!(
                        "row seq {seq} (id {}) is not the row of the saved head",
                        row.id
                    ));
                    break;
                }
                saw_expected = true;
            }
        }
    }
    if problem.is_none() {
        if let Some(h) = expected.filter(|_| !saw_expected) {
            problem = Some(format!(
                "the chain ends at seq {} before the saved head seq {}: rows were truncated",
                head.seq, h.seq
            ));
        } else if let Some(stored) = stored_head.as_ref().filter(|s| **s != head) {
            problem = Some(format!(
                "the chain ends at seq {} but the stored head is seq {}: rows were truncated \
                 or the head rewritten",
                head.seq, stored.seq
            ));
        }
    }
    Ok(ChainReport {
        head,
        stored_head,
        problem,
    })
}
