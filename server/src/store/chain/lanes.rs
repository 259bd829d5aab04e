//! The chains one store handle writes ("lanes"): each transaction takes a free lane for its
//! whole run (a new one when all are busy), appends to that lane's chain, and gives it back;
//! the lane's head advances only when the transaction commits. A lane is named
//! `INSTANCE.N`, INSTANCE being 16 random hex digits drawn when the store is opened, so no
//! two handles (instances, command-line tools) ever write one chain, and no append waits for
//! another's head.

use std::cell::RefCell;
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

/// What the transaction running on this thread appends with.
struct Current {
    key: AuditKey,
    lane: Lane,
    /// The head after this attempt's appends, until it commits.
    pending: Option<AuditHead>,
    /// The event and outcome of each row this attempt appended (for the metrics).
    rows: Vec<(String, String)>,
    /// The alerts this attempt raised.
    alerts: Vec<Alert>,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// The chain key and a lane of the transaction this thread runs, until dropped
/// ([`crate::store::Store::transact`] runs a transaction start to end on one thread).
pub(crate) struct Scope<'a> {
    lanes: &'a Lanes,
    outer: Option<Current>,
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
        let outer = CURRENT.with(|c| c.replace(current));
        Self {
            lanes,
            outer,
            committed: false,
        }
    }

    /// A new attempt of the transaction begins (PostgreSQL retries a deadlocked one): what the
    /// rolled-back attempt appended is forgotten.
    pub(crate) fn attempt() {
        CURRENT.with(|c| {
            if let Some(current) = c.borrow_mut().as_mut() {
                current.pending = None;
                current.rows.clear();
                current.alerts.clear();
            }
        });
    }

    /// The transaction committed: its appends count.
    pub(crate) fn committed(&mut self) {
        self.committed = true;
    }
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        let current = CURRENT.with(|c| c.replace(self.outer.take()));
        let Some(Current {
            mut lane,
            pending,
            rows,
            alerts,
            ..
        }) = current
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

/// The key, lane name and head to append after, if this transaction chains its rows.
pub(super) fn current() -> Option<(AuditKey, String, AuditHead)> {
    CURRENT.with(|c| {
        c.borrow().as_ref().map(|cur| {
            let head = cur.pending.unwrap_or(cur.lane.head);
            (cur.key.clone(), cur.lane.name.clone(), head)
        })
    })
}

/// A row `event`/`outcome` was appended: `head` is the lane's head once the transaction
/// commits.
pub(super) fn appended(head: AuditHead, event: &str, outcome: &str) {
    CURRENT.with(|c| {
        if let Some(current) = c.borrow_mut().as_mut() {
            current.pending = Some(head);
            current.rows.push((event.to_owned(), outcome.to_owned()));
        }
    });
}

/// An alert was raised in this transaction: sent to the webhook once it commits.
pub(crate) fn raised(alert: Alert) {
    CURRENT.with(|c| {
        if let Some(current) = c.borrow_mut().as_mut() {
            current.alerts.push(alert);
        }
    });
}
