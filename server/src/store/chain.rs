//! The audit log as keyed hash chains: every row has a chain, a sequence number (1, 2, ...)
//! and an HMAC-SHA256 over its chain, sequence number, the previous row's MAC and its content,
//! under a key derived from the master secret ([`crate::kdf::audit_key`]).
//!
//! Each store handle writes chains of its own ([`lanes`]: one per transaction running at once,
//! named after a random instance id), so instances and concurrent requests never wait on one
//! another's head: a chain's head lives in the handle's memory and in `audit_heads`, updated in
//! the transaction that appends the row. Rows written before these chains existed form the one
//! global chain (no chain name, its head in the one-row `audit_head` table).
//!
//! Without the key, no one can remove, change, reorder, move between chains or insert a row
//! without [`verify`] naming it; a truncated tail is found against heads saved earlier (the
//! server logs its heads every minute).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::tx::Tx;
use super::{AuditEntry, AuditNote, Store};
use crate::ServerError;

pub(crate) mod lanes;
mod verify;

pub use verify::ChainReport;
pub(crate) use verify::{verify, ARCHIVE_EVENT};

/// The chain's key (32 bytes, from the master secret).
pub(crate) type AuditKey = Zeroizing<[u8; 32]>;

/// A row as the chain sees it: its database id, chain (`None`: the global chain of older
/// rows), sequence number and MAC (absent on a row written without the key) and its content.
pub(crate) struct ChainRow {
    pub id: i64,
    pub chain: Option<String>,
    pub seq: Option<i64>,
    pub mac: Option<Vec<u8>>,
    pub entry: AuditEntry,
}

/// A new row's place: its chain, sequence number and MAC.
pub(crate) struct Link<'a> {
    pub chain: Option<&'a str>,
    pub seq: i64,
    pub mac: &'a [u8; 32],
}

/// A chain's newest row's sequence number and MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

/// A head with the chain it belongs to, as logged, exported and given to `audit verify`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainHead {
    /// The chain's name (`None`: the global chain of rows written before instance chains).
    pub chain: Option<String>,
    /// Its head.
    pub head: AuditHead,
}

impl ChainHead {
    /// `CHAIN:SEQ:MAC-HEX` (`SEQ:MAC-HEX` for the global chain), as [`ChainHead::parse`] reads
    /// it back.
    pub fn to_text(&self) -> String {
        let head = format!("{}:{}", self.head.seq, hex::encode(self.head.mac));
        match &self.chain {
            Some(chain) => format!("{chain}:{head}"),
            None => head,
        }
    }

    /// Reads `CHAIN:SEQ:MAC-HEX` or `SEQ:MAC-HEX`.
    pub fn parse(text: &str) -> Result<Self, ServerError> {
        let bad = || {
            ServerError::InvalidInput("a head is CHAIN:SEQ:MAC or SEQ:MAC (64 hex digits)".into())
        };
        let parts: Vec<&str> = text.trim().split(':').collect();
        let (chain, seq, mac) = match parts.as_slice() {
            [seq, mac] => (None, seq, mac),
            [chain, seq, mac] if check_chain_name(chain) => (Some((*chain).to_owned()), seq, mac),
            _ => return Err(bad()),
        };
        let seq = seq.parse::<i64>().map_err(|_| bad())?;
        let mac: [u8; 32] = hex::decode(mac)
            .ok()
            .and_then(|m| m.try_into().ok())
            .ok_or_else(bad)?;
        Ok(Self {
            chain,
            head: AuditHead { seq, mac },
        })
    }
}

/// A chain name: 1 to 64 of `0-9 a-z . -`.
fn check_chain_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b == b'.' || b == b'-')
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

/// The MAC of row `seq` of `chain` with `content`, after the row whose MAC is `prev`: v1 (no
/// chain name) for the global chain, v2 (the chain's name first) for an instance chain, so a
/// row cannot be moved from one chain to another.
pub(crate) fn row_mac(
    key: &[u8; 32],
    chain: Option<&str>,
    seq: i64,
    prev: &[u8; 32],
    e: &AuditEntry,
) -> [u8; 32] {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        unreachable!("HMAC takes keys of any length");
    };
    match chain {
        None => mac.update(b"cardunlock audit v1"),
        Some(name) => {
            mac.update(b"cardunlock audit v2");
            field(&mut mac, Some(name));
        }
    }
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

/// Appends `note` to the chain this transaction holds ([`lanes::Scope`]); without a key (a
/// store opened without the master secret) the row is written unchained, and [`verify`] names
/// it.
pub(crate) fn append(tx: &mut dyn Tx, note: &AuditNote<'_>, now: i64) -> Result<(), ServerError> {
    let Some((key, chain, prev)) = tx.lane().map(|lane| lane.link()) else {
        log::warn!("audit row written without the chain key");
        return tx.insert_audit_row(note, now, None);
    };
    let seq = prev.seq + 1;
    let mac = row_mac(&key, Some(&chain), seq, &prev.mac, &entry_of(note, now));
    let link = Link {
        chain: Some(&chain),
        seq,
        mac: &mac,
    };
    // The row and its chain's new head, in one statement where the database allows it.
    tx.insert_audit_row(note, now, Some(link))?;
    if let Some(lane) = tx.lane() {
        lane.appended(AuditHead { seq, mac }, note.event, note.outcome);
    }
    Ok(())
}

/// Chains the rows written before the chain existed into the global chain, once (when
/// `audit_head` is still empty), and audits that it did (a new, empty store just gets its
/// head); returns how many rows it chained.
pub(crate) fn chain_existing(tx: &mut dyn Tx, key: &AuditKey) -> Result<u64, ServerError> {
    if tx.audit_head()?.is_some() {
        return Ok(0);
    }
    let mut head = AuditHead::START;
    let mut chained = 0;
    for row in tx.audit_chain_rows(true)? {
        if row.chain.is_some() {
            continue;
        }
        let seq = head.seq + 1;
        let mac = row_mac(key, None, seq, &head.mac, &row.entry);
        tx.set_audit_row_chain(row.id, seq, &mac)?;
        head = AuditHead { seq, mac };
        chained += 1;
    }
    tx.set_audit_head(&head)?;
    if chained == 0 {
        return Ok(0);
    }
    let detail = format!("{chained} existing rows chained");
    let note = AuditNote::server(None, "audit_chain", "chained", &detail);
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

/// The audit side of the store.
impl Store {
    /// Gives the store the audit chain's key (derived from `master`, [`crate::kdf::audit_key`]):
    /// from now on every audit row is chained. The first time a store is given a key, the rows
    /// written before are chained too (once, audited as `audit_chain`/`chained`); returns how
    /// many. It also gives the store its row-MAC key ([`crate::kdf::store_row_key`]): from
    /// now on every granting row is stamped on write and checked on read, and the rows written
    /// before get their MACs once (audited as `row_mac`/`stamped`). A store keeps the first
    /// keys it is given.
    pub fn set_audit_key(&self, master: &crate::MasterSecret) -> Result<u64, ServerError> {
        let key = self
            .audit_key
            .get_or_init(|| crate::kdf::audit_key(master))
            .clone();
        let chained = self.transact(|tx| chain_existing(tx, &key))?;
        // The row-MAC key ([`super::mac`]): rows written before get their MACs once, audited.
        let row_key = crate::kdf::store_row_key(master);
        let stamped = self.transact(|tx| super::mac::stamp_existing(tx, &row_key))?;
        if stamped > 0 {
            log::info!("store: {stamped} existing row(s) given MACs");
        }
        let _ = self.row_key.set(row_key);
        Ok(chained)
    }

    /// Walks every audit chain with the key derived from `master` and names the first row
    /// removed, changed, reordered, moved or inserted; `expected` are heads saved earlier
    /// (logged by the server, or from an export or archive), which must still be in their
    /// chains.
    pub fn verify_audit(
        &self,
        master: &crate::MasterSecret,
        expected: &[ChainHead],
    ) -> Result<ChainReport, ServerError> {
        self.verify_audit_archived(master, expected, &[])
    }

    /// [`Store::verify_audit`] after archiving: `archived` are the heads of the archive files
    /// ([`crate::audit_archive`]); each chain must start at (or pass) its archive's head.
    pub fn verify_audit_archived(
        &self,
        master: &crate::MasterSecret,
        expected: &[ChainHead],
        archived: &[ChainHead],
    ) -> Result<ChainReport, ServerError> {
        let key = crate::kdf::audit_key(master);
        self.transact(|tx| verify(tx, &key, expected, archived))
    }

    /// Sends committed alerts to the webhook's queue.
    pub(crate) fn set_alert_sink(&self, sink: std::sync::mpsc::SyncSender<crate::alerts::Alert>) {
        self.lanes.set_alert_sink(sink);
    }

    /// The heads of the chains this handle wrote (committed), as logged every minute.
    pub fn audit_heads(&self) -> Vec<ChainHead> {
        self.lanes.heads()
    }
}
