//! Refused requests (malformed, unknown session or token, unknown path, wrong method, too
//! large, wrong media type, rate limited) are counted in memory, never written one by one: a
//! flood of them must cost no database work. Every minute (and on shutdown) the counts are
//! summarised into a bounded number of audit rows: per reason, one row for each of the
//! [`TOP`] addresses refused most and one row for all others.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use crate::store::AuditNote;
use crate::{ServerError, Store};

/// Addresses named per reason in each summary; the rest share one row.
pub(crate) const TOP: usize = 3;
/// Addresses counted one by one per reason between two summaries; beyond, they are counted
/// together (someone is inventing addresses: the summary still says how many requests).
const MAX_ADDRESSES: usize = 4096;

/// The refusal reasons counted, by HTTP status (the audit row's outcome).
const REASONS: [(u16, &str); 8] = [
    (400, "bad_request"),
    (401, "unauthorized"),
    (404, "not_found"),
    (405, "method_not_allowed"),
    (408, "request_timeout"),
    (413, "payload_too_large"),
    (415, "unsupported_media_type"),
    (429, "too_many_requests"),
];

/// Most audit rows one summary writes: [`TOP`] + 1 per reason.
pub(crate) const MAX_ROWS: usize = REASONS.len() * (TOP + 1);

/// The counts of one reason since the last summary.
#[derive(Debug, Default)]
struct Counts {
    per_address: HashMap<IpAddr, u64>,
    /// Requests from addresses beyond [`MAX_ADDRESSES`].
    overflow: u64,
}

/// Refusal counts since the last summary, per reason and client address.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    counts: Mutex<HashMap<u16, Counts>>,
}

/// The audit outcome of a refusal status; `None` for a status that is not a counted refusal.
pub(crate) fn reason(status: u16) -> Option<&'static str> {
    REASONS
        .iter()
        .find(|(s, _)| *s == status)
        .map(|(_, name)| *name)
}

/// One summary row about to be written.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SummaryRow {
    pub outcome: &'static str,
    pub address: Option<String>,
    pub detail: String,
}

impl Refusals {
    /// Counts a response with `status` to `address`, if that status is a refusal.
    pub(crate) fn note(&self, status: u16, address: IpAddr) {
        if reason(status).is_none() {
            return;
        }
        // Counting is not a defence: a poisoned lock's counts are still usable.
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let of_reason = counts.entry(status).or_default();
        let full = of_reason.per_address.len() >= MAX_ADDRESSES;
        match of_reason.per_address.get_mut(&address) {
            Some(n) => *n = n.saturating_add(1),
            None if full => of_reason.overflow = of_reason.overflow.saturating_add(1),
            None => {
                of_reason.per_address.insert(address, 1);
            }
        }
    }

    /// Takes the counts so far (resetting them) as at most [`MAX_ROWS`] summary rows.
    pub(crate) fn take(&self) -> Vec<SummaryRow> {
        let taken =
            std::mem::take(&mut *self.counts.lock().unwrap_or_else(PoisonError::into_inner));
        let mut rows = Vec::new();
        for (status, name) in REASONS {
            let Some(counts) = taken.get(&status) else {
                continue;
            };
            let mut ranked: Vec<(IpAddr, u64)> =
                counts.per_address.iter().map(|(a, n)| (*a, *n)).collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            for (address, n) in ranked.iter().take(TOP) {
                rows.push(SummaryRow {
                    outcome: name,
                    address: Some(address.to_string()),
                    detail: format!("{n} requests refused"),
                });
            }
            let rest = ranked.get(TOP..).unwrap_or_default();
            let others: u64 = rest
                .iter()
                .map(|(_, n)| *n)
                .fold(counts.overflow, u64::saturating_add);
            if others > 0 {
                let addresses = if counts.overflow > 0 {
                    format!("more than {}", rest.len())
                } else {
                    rest.len().to_string()
                };
                rows.push(SummaryRow {
                    outcome: name,
                    address: None,
                    detail: format!("{others} requests refused from {addresses} other addresses"),
                });
            }
        }
        rows.truncate(MAX_ROWS);
        rows
    }

    /// Writes the summary of the counts so far as audit rows (event `refused`); returns how
    /// many rows it wrote.
    pub(crate) fn flush(&self, store: &Store) -> Result<usize, ServerError> {
        let rows = self.take();
        for row in &rows {
            store.record(&AuditNote {
                card: None,
                session: None,
                event: "refused",
                outcome: row.outcome,
                detail: &row.detail,
                operator: None,
                role: None,
                address: row.address.as_deref(),
            })?;
        }
        Ok(rows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_the_top_addresses_and_sums_the_rest() {
        let refusals = Refusals::default();
        for i in 0..10u8 {
            for _ in 0..=i {
                refusals.note(404, IpAddr::from([10, 0, 0, i]));
            }
        }
        refusals.note(200, IpAddr::from([10, 0, 0, 1]));
        refusals.note(403, IpAddr::from([10, 0, 0, 1]));
        refusals.note(429, IpAddr::from([10, 0, 0, 1]));
        let rows = refusals.take();
        assert_eq!(rows.len(), TOP + 1 + 1, "{rows:?}");
        assert_eq!(rows[0].address.as_deref(), Some("10.0.0.9"));
        assert_eq!(rows[0].detail, "10 requests refused");
        assert_eq!(rows[2].address.as_deref(), Some("10.0.0.7"));
        // 1 + 2 + ... + 7 from the seven others.
        assert_eq!(rows[3].address, None);
        assert_eq!(rows[3].detail, "28 requests refused from 7 other addresses");
        assert_eq!(rows[4].outcome, "too_many_requests");
        // Taken: the next summary starts from zero.
        assert!(refusals.take().is_empty());
    }

    #[test]
    fn rows_stay_bounded_however_many_addresses_and_reasons() {
        let refusals = Refusals::default();
        for (status, _) in REASONS {
            for i in 0..5000u32 {
                refusals.note(status, IpAddr::from(i.to_be_bytes()));
            }
        }
        let rows = refusals.take();
        assert_eq!(rows.len(), MAX_ROWS);
        assert!(rows
            .iter()
            .any(|r| r.detail == "4997 requests refused from more than 4093 other addresses"));
    }
}
