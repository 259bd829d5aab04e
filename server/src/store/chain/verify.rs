//! Walking the chains: every chain's rows in id order, each MAC recomputed, each chain ending
//! at its stored head and holding every head saved earlier.

use std::collections::{BTreeMap, HashSet};

use subtle::ConstantTimeEq;

use super::{row_mac, AuditHead, AuditKey, ChainHead, ChainRow};
use crate::store::tx::Tx;
use crate::ServerError;

/// What `audit verify` ([`crate::Store::verify_audit`]) found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    /// Every chain's last row that verified (the global chain first, if it has rows), up to
    /// the first problem.
    pub chains: Vec<ChainHead>,
    /// The first problem, naming its chain and row; `None` if every chain is whole.
    pub problem: Option<String>,
}

impl ChainReport {
    /// Rows verified in all chains.
    pub fn rows(&self) -> i64 {
        self.chains.iter().map(|c| c.head.seq).sum()
    }
}

/// The event of the row that records an archiving; its detail ends with `heads: ` and every
/// chain's start after it (`CHAIN:SEQ:MAC`, space-separated).
pub(crate) const ARCHIVE_EVENT: &str = "audit_archive";

/// Walks every chain, from where archiving left it, and names the first row removed,
/// changed, reordered, moved between chains or inserted; `expected` are heads saved earlier,
/// which must still be in their chains (else a tail was truncated or rewritten); `archived`
/// are the heads of archive files, where the chains must now start (or pass).
pub(crate) fn verify(
    tx: &mut dyn Tx,
    key: &AuditKey,
    expected: &[ChainHead],
    archived: &[ChainHead],
) -> Result<ChainReport, ServerError> {
    let starts: BTreeMap<Option<String>, AuditHead> = tx.audit_starts()?.into_iter().collect();
    let rows = tx.audit_chain_rows(false)?;
    let mut stored: BTreeMap<Option<String>, AuditHead> = tx
        .lane_heads()?
        .into_iter()
        .map(|(chain, head)| (Some(chain), head))
        .collect();
    if let Some(global) = tx.audit_head()? {
        stored.insert(None, global);
    }
    let mut chains: BTreeMap<Option<String>, Vec<&ChainRow>> = BTreeMap::new();
    for row in &rows {
        chains.entry(row.chain.clone()).or_default().push(row);
    }
    for name in stored
        .keys()
        .chain(starts.keys())
        .chain(expected.iter().map(|e| &e.chain))
    {
        chains.entry(name.clone()).or_default();
    }
    let mut report = ChainReport {
        chains: Vec::new(),
        problem: None,
    };
    for (name, rows) in &chains {
        let start = starts.get(name).copied().unwrap_or(AuditHead::START);
        // An archive's head at or past the start must be in the chain; older archives came
        // before the one the chain starts from.
        let saved: Vec<&AuditHead> = expected
            .iter()
            .chain(archived.iter().filter(|a| a.head.seq >= start.seq))
            .filter(|e| e.chain == *name)
            .map(|e| &e.head)
            .collect();
        let walk = walk(key, name.as_deref(), rows, start, stored.get(name), &saved);
        if name.is_some() || walk.head.seq > 0 {
            report.chains.push(ChainHead {
                chain: name.clone(),
                head: walk.head,
            });
        }
        if let Some(problem) = walk.problem {
            report.problem = Some(match name {
                Some(chain) => format!("chain {chain}: {problem}"),
                None => problem,
            });
            break;
        }
    }
    if report.problem.is_none() {
        report.problem = check_starts(&rows, &starts);
    }
    Ok(report)
}

/// Every chain's start must be the one the newest archiving row (verified, so written with
/// the key) names: else rows were removed from a chain's beginning and its start moved up.
fn check_starts(rows: &[ChainRow], starts: &BTreeMap<Option<String>, AuditHead>) -> Option<String> {
    let mut named: BTreeMap<Option<String>, AuditHead> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.entry.event == ARCHIVE_EVENT) {
        let Some((_, list)) = row.entry.detail.split_once("heads: ") else {
            continue;
        };
        named.clear();
        for head in list
            .split_whitespace()
            .filter_map(|h| ChainHead::parse(h).ok())
        {
            named.insert(head.chain, head.head);
        }
    }
    starts
        .iter()
        .filter(|(_, start)| start.seq > 0)
        .find(|(chain, start)| named.get(*chain) != Some(*start))
        .map(|(chain, start)| {
            format!(
                "chain {} starts at seq {}, but no archiving row names that start: rows were \
                 removed from its beginning",
                chain.as_deref().unwrap_or("(global)"),
                start.seq
            )
        })
}

struct Walk {
    head: AuditHead,
    problem: Option<String>,
}

/// Walks one chain's rows (id order).
fn walk(
    key: &AuditKey,
    chain: Option<&str>,
    rows: &[&ChainRow],
    start: AuditHead,
    stored: Option<&AuditHead>,
    expected: &[&AuditHead],
) -> Walk {
    let present: HashSet<i64> = rows.iter().filter_map(|r| r.seq).collect();
    let mut head = start;
    let mut seen = vec![false; expected.len()];
    for (i, saved) in expected.iter().enumerate() {
        if saved.seq == start.seq {
            if **saved != start {
                return Walk {
                    head,
                    problem: Some(format!(
                        "the chain starts at seq {} but not at the saved or archived head",
                        start.seq
                    )),
                };
            }
            seen[i] = true;
        }
    }
    for row in rows {
        let want = head.seq + 1;
        let problem = |p: String| Walk {
            head,
            problem: Some(p),
        };
        let (Some(seq), Some(mac)) = (row.seq, row.mac.as_deref()) else {
            return problem(format!(
                "row id {} was inserted: it has no place in the chain (after seq {})",
                row.id, head.seq
            ));
        };
        if seq != want {
            return problem(if seq > want && !present.contains(&want) {
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
        }
        let computed = row_mac(key, chain, seq, &head.mac, &row.entry);
        if !bool::from(computed.ct_eq(mac)) {
            return problem(format!(
                "row seq {seq} (id {}) was changed or inserted: its MAC does not verify",
                row.id
            ));
        }
        head = AuditHead { seq, mac: computed };
        for (i, saved) in expected.iter().enumerate() {
            if saved.seq == seq {
                if !bool::from(saved.mac.ct_eq(&computed)) {
                    return Walk {
                        head,
                        problem: Some(format!(
                            "row seq {seq} (id {}) is not the row of the saved head",
                            row.id
                        )),
                    };
                }
                seen[i] = true;
            }
        }
    }
    let missed = expected
        .iter()
        .zip(&seen)
        .find(|(saved, seen)| !**seen && saved.seq > 0);
    let problem = if let Some((saved, _)) = missed {
        Some(format!(
            "the chain ends at seq {} before the saved head seq {}: rows were truncated",
            head.seq, saved.seq
        ))
    } else {
        stored.filter(|s| **s != head).map(|s| {
            format!(
                "the chain ends at seq {} but the stored head is seq {}: rows were truncated \
                 or the head rewritten",
                head.seq, s.seq
            )
        })
    };
    Walk { head, problem }
}
