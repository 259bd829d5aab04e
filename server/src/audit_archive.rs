//! Retention: `cardunlock-server audit archive --before DATE --out FILE` moves the rows older
//! than a date out of the database into a JSON-lines file (the export's format), ending with
//! each chain's last archived head. The chains then start from those heads (`audit_starts`),
//! an audited row (`audit_archive`, chained like any other) names every chain's start, and
//! `audit verify` walks from there: with `--archive FILE` it checks each chain starts at (or
//! passes) the archive's head; without it, that every start is the one the newest archiving
//! row names, so rows removed from a chain's beginning are still found.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::audit_export::{write_all, ExportFormat};
use crate::store::chain::{AuditHead, ChainHead, ChainRow, ARCHIVE_EVENT};
use crate::store::AuditNote;
use crate::{MasterSecret, ServerError, Store};

/// What [`archive`] moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// Rows moved into the file.
    pub rows: usize,
    /// Each archived chain's last archived head (where it now starts).
    pub heads: Vec<ChainHead>,
}

/// Milliseconds since the Unix epoch of `YYYY-MM-DD` 00:00 UTC.
pub fn date_ms(date: &str) -> Result<i64, ServerError> {
    crate::console::admin_pages::days_from_civil(date)
        .map(|days| days * 86_400_000)
        .ok_or_else(|| ServerError::InvalidInput("a date is YYYY-MM-DD".into()))
}

/// Moves every chain's rows older than `before_ms` (a prefix of each chain: a chain's rows
/// stop being archived at its first newer row) into a new, owner-only file `out`, then
/// deletes them and records where each chain now starts. Refuses if the chains do not verify
/// (nothing tampered is archived as if it were whole).
pub fn archive(
    store: &Store,
    master: &MasterSecret,
    before_ms: i64,
    out: &Path,
) -> Result<ArchiveSummary, ServerError> {
    store.set_audit_key(master)?;
    if let Some(problem) = store.verify_audit(master, &[])?.problem {
        return Err(ServerError::InvalidInput(format!(
            "the audit chain does not verify, nothing archived: {problem}"
        )));
    }
    let (rows, starts) = store.transact(|tx| {
        let starts: BTreeMap<Option<String>, AuditHead> = tx.audit_starts()?.into_iter().collect();
        Ok((tx.audit_chain_rows(false)?, starts))
    })?;
    let (chosen, heads) = choose(rows, &starts, before_ms);
    if chosen.is_empty() {
        return Ok(ArchiveSummary {
            rows: 0,
            heads: Vec::new(),
        });
    }
    write_file(out, &chosen, &heads, &starts)?;
    let ids: Vec<i64> = chosen.iter().map(|r| r.id).collect();
    store.transact(|tx| {
        let now: BTreeMap<Option<String>, AuditHead> = tx.audit_starts()?.into_iter().collect();
        if now != starts {
            return Err(ServerError::InvalidInput(
                "another archive ran at the same time; delete the file and try again".into(),
            ));
        }
        tx.delete_audit_rows(&ids)?;
        for head in &heads {
            tx.set_audit_start(head.chain.as_deref(), &head.head)?;
        }
        let all: Vec<String> = tx
            .audit_starts()?
            .into_iter()
            .filter(|(_, h)| h.seq > 0)
            .map(|(chain, head)| ChainHead { chain, head }.to_text())
            .collect();
        let detail = format!(
            "{} rows before {} archived; heads: {}",
            ids.len(),
            crate::audit_export::rfc3339(before_ms),
            all.join(" ")
        );
        tx.insert_audit(
            &AuditNote {
                card: None,
                session: None,
                event: ARCHIVE_EVENT,
                outcome: "archived",
                detail: &detail,
                operator: None,
                role: None,
                address: None,
            },
            crate::store::now_ms(),
        )
    })?;
    Ok(ArchiveSummary {
        rows: ids.len(),
        heads,
    })
}

/// Each chain's prefix of rows before `before_ms`, and the head each prefix ends at.
fn choose(
    rows: Vec<ChainRow>,
    starts: &BTreeMap<Option<String>, AuditHead>,
    before_ms: i64,
) -> (Vec<ChainRow>, Vec<ChainHead>) {
    let mut chains: BTreeMap<Option<String>, Vec<ChainRow>> = BTreeMap::new();
    for row in rows {
        chains.entry(row.chain.clone()).or_default().push(row);
    }
    let mut chosen = Vec::new();
    let mut heads = Vec::new();
    for (chain, rows) in chains {
        let mut head = starts.get(&chain).copied().unwrap_or(AuditHead::START);
        let mut moved = false;
        for row in rows {
            let (Some(seq), Some(mac)) = (row.seq, row.mac.as_deref()) else {
                break;
            };
            let Ok(mac) = <[u8; 32]>::try_from(mac) else {
                break;
            };
            if row.entry.time_ms >= before_ms || seq != head.seq + 1 {
                break;
            }
            head = AuditHead { seq, mac };
            moved = true;
            chosen.push(row);
        }
        if moved {
            heads.push(ChainHead { chain, head });
        }
    }
    chosen.sort_by_key(|r| r.id);
    (chosen, heads)
}

/// The archive file: the rows and heads as [`crate::audit_export`] writes JSON lines, after a
/// `start` line for each chain (where the archived rows begin), written and synced before any
/// row is deleted.
fn write_file(
    out: &Path,
    rows: &[ChainRow],
    heads: &[ChainHead],
    starts: &BTreeMap<Option<String>, AuditHead>,
) -> Result<(), ServerError> {
    let failed = |e: std::io::Error| {
        ServerError::InvalidInput(format!("cannot write the archive {}: {e}", out.display()))
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(out).map_err(failed)?;
    let mut w = std::io::BufWriter::new(file);
    for head in heads {
        let start = starts.get(&head.chain).copied().unwrap_or(AuditHead::START);
        let line = serde_json::json!({
            "type": "start",
            "chain": head.chain,
            "seq": start.seq,
            "mac": hex::encode(start.mac),
        });
        writeln!(w, "{line}").map_err(failed)?;
    }
    write_all(rows, heads, ExportFormat::JsonLines, "-", &mut w).map_err(failed)?;
    let file = w.into_inner().map_err(|e| failed(e.into_error()))?;
    file.sync_all().map_err(failed)
}

/// The heads an archive file ends with (its `"type":"head"` lines).
pub fn archive_heads(path: &Path) -> Result<Vec<ChainHead>, ServerError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ServerError::InvalidInput(format!("cannot read the archive {}: {e}", path.display()))
    })?;
    let mut heads = Vec::new();
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line).map_err(|_| {
            ServerError::InvalidInput(format!("{} is not an audit archive", path.display()))
        })?;
        if value["type"] == "head" {
            let head = value["head"].as_str().unwrap_or_default();
            heads.push(ChainHead::parse(head)?);
        }
    }
    Ok(heads)
}
