//! The chains one store handle writes ("lanes"): each transaction takes a free lane for its
//! whole run (a new one when all are busy), appends to that lane's chain, and gives it back;
//! the lane's head advances only when the transaction commits. A lane is named
//! `INSTANCE.N`, INSTANCE being 16 random hex digits drawn when the store is opened, so no
//! two handles (instances, command-line tools) ever write one chain, and no append waits for
//! another's head.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use std::sync::mpsc::SyncSender;

use rand::RngCore;

use crate::alerts::Alert;

use super::{AuditHead, AuditKey, ChainHead};

/// One chain and its head as committed.
struct Lane {
    name: String,
    head: AuditHead,
}

/// A store handle's lanes.
pub(crate) struct Lanes {
    instance: String,
    /// Lanes no transaction holds.
    free: Mutex<Vec<Lane>>,
    /// Lanes made so far (names the next one).
    made: Mutex<u64>,
    /// Every lane's committed head, for the minute's log line.
    heads: Mutex<BTreeMap<String, AuditHead>>,
    /// Where committed alerts go ([`crate::alerts`]), if a webhook is set.
    sink: std::sync::OnceLock<SyncSender<Alert>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data behind these locks stays consistent whatever panicked while holding them.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Lanes {
    /// Lanes under a fresh random instance id.
    pub(crate) fn new() -> Self {
        let mut id = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut id);
        Self {
            instance: hex::encode(id),
            free: Mutex::new(Vec::new()),
            made: Mutex::new(0),
            heads: Mutex::new(BTreeMap::new()),
            sink: std::sync::OnceLock::new(),
        }
    }

    /// Sends this handle's committed alerts to `sink` (the first sink given stays).
    pub(crate) fn set_alert_sink(&self, sink: SyncSender<Alert>) {
        let _ = self.sink.set(sink);
    }

    fn take(&self) -> Lane {
        if let Some(lane) = lock(&self.free).pop() {
            return lane;
        }
        let mut made = lock(&self.made);
        let name = format!("{}.{}", self.instance, *made);
        *made += 1;
        Lane {
            name,
            head: AuditHead::START,
        }
    }

    /// Every lane's committed head (lanes that wrote at least one row).
    pub(crate) fn heads(&self) -> Vec<ChainHead> {
        lock(&self.heads)
            .iter()
            .map(|(name, head)| ChainHead {
                chain: Some(name.clone()),
                head: *head,
            })
            .collect()
    }
}

/// What one transaction appends with: the chain key, the lane it holds, and what the current
/// attempt appended. Owned by its [`Scope`] and reached through the transaction
/// ([`LaneTx::lane`]), never through the thread.
pub(crate) struct Current {
    key: AuditKey,
    lane: Lane,
    /// The head after this attempt's appends, until it commits.
    pending: Option<AuditHead>,
    /// The event and outcome of each row this attempt appended (for the metrics).
    rows: Vec<(String, String)>,
    /// The alerts this attempt raised.
    alerts: Vec<Alert>,
}

impl Current {
    /// A new attempt of the transaction begins (PostgreSQL retries a deadlocked one): what the
    /// rolled-back attempt appended is forgotten.
    pub(crate) fn attempt(&mut self) {
        self.pending = None;
        self.rows.clear();
        self.alerts.clear();
    }

    /// The key, lane name and head to append after.
    pub(super) fn link(&self) -> (AuditKey, String, AuditHead) {
        let head = self.pending.unwrap_or(self.lane.head);
        (self.key.clone(), self.lane.name.clone(), head)
    }

    /// A row `event`/`outcome` was appended: `head` is the lane's head once the transaction
    /// commits.
    pub(super) fn appended(&mut self, head: AuditHead, event: &str, outcome: &str) {
        self.pending = Some(head);
        self.rows.push((event.to_owned(), outcome.to_owned()));
    }

    /// An alert was raised in this transaction: sent to the webhook once it commits.
    pub(crate) fn raised(&mut self, alert: Alert) {
        self.alerts.push(alert);
    }
}

/// A transaction's way to its chain: the [`Current`] of the transaction it is, if its store
/// chains audit rows (every [`crate::store::Tx`] is one).
pub(crate) trait LaneTx {
    /// The chain this transaction appends to; `None` without a chain key.
    fn lane(&mut self) -> Option<&mut Current>;
}

/// The chain key and a lane of one transaction, until dropped: [`crate::store::Store`] hands
/// [`Scope::current`] to the transaction it runs.
pub(crate) struct Scope<'a> {
    lanes: &'a Lanes,
    current: Option<Current>,
    committed: bool,
}

impl<'a> Scope<'a> {
    /// Takes a lane of `lanes` if there is a key (else rows are written unchained).
    pub(crate) fn enter(key: Option<&AuditKey>, lanes: &'a Lanes) -> Self {
        let current = key.map(|key| Current {
            key: key.clone(),
            lane: lanes.take(),
            pending: None,
            rows: Vec::new(),
            alerts: Vec::new(),
        });
        Self {
            lanes,
            current,
            committed: false,
        }
    }

    /// What the transaction appends with, for [`LaneTx::lane`].
    pub(crate) fn current(&mut self) -> Option<&mut Current> {
        self.current.as_mut()
    }

    /// The transaction committed: its appends count.
    pub(crate) fn committed(&mut self) {
        self.committed = true;
    }
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        let Some(Current {
            mut lane,
            pending,
            rows,
            alerts,
            ..
        }) = self.current.take()
        else {
            return;
        };
        if self.committed {
            for (event, outcome) in &rows {
                crate::metrics::METRICS.audit_row(event, outcome);
            }
            if let Some(sink) = self.lanes.sink.get() {
                for alert in alerts {
                    crate::alerts::queue(sink, alert);
                }
            }
        }
        match pending {
            Some(head) if self.committed => {
                lane.head = head;
                lock(&self.lanes.heads).insert(lane.name.clone(), head);
            }
            // Rows appended, then an error: whether the database committed them (a connection
            // lost after COMMIT) is unknown, so the lane is retired; its chain ends at whichever
            // head the database kept, and a new lane takes over.
            Some(_) => return,
            None => {}
        }
        lock(&self.lanes.free).push(lane);
    }
}
