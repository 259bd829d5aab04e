//! Alerts that reach someone. An alert is one call, `raise`: it writes the audit row at
//! alert level (outcome `alert`) in the caller's transaction; when that transaction commits,
//! the alert counter moves ([`crate::metrics`], `cardunlock_alerts_total`) and, with
//! `serve --alert-webhook URL`, the alert is queued for the webhook. A rolled-back transaction
//! raises nothing.
//!
//! The webhook is an HTTPS `POST` of `{"kind", "card", "time", "time_ms"}`: the event, the
//! SHA-256 of `profile:identity` (hex; never the identity itself, a name or any secret) and
//! when. A worker thread delivers the queue in order, retrying a failed delivery with
//! doubling delays; a full queue (1024) drops the newest alert (logged; the audit row and the
//! counter still have it).

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::store::{AuditNote, Tx};
use crate::ServerError;

/// The outcome of an audit row at alert level.
pub const ALERT: &str = "alert";

/// Where alerts are posted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertWebhook {
    /// The `https://` URL.
    pub url: String,
    /// The receiver's certificate (PEM) to pin, for a receiver with a private certificate;
    /// `None`: the public web PKI (webpki roots).
    pub cert_pem: Option<String>,
    /// The delay before the first retry; each further retry waits twice as long.
    pub first_retry: Duration,
    /// Deliveries tried per alert (at least 1).
    pub attempts: u32,
}

impl AlertWebhook {
    /// Posts to `url` (which must be `https://`), retrying 5 times from 1 s.
    pub fn new(url: &str) -> Result<Self, ServerError> {
        if !url.starts_with("https://") || url.len() <= "https://".len() {
            return Err(ServerError::InvalidInput(
                "the alert webhook must be an https:// URL".into(),
            ));
        }
        Ok(Self {
            url: url.to_owned(),
            cert_pem: None,
            first_retry: Duration::from_secs(1),
            attempts: 5,
        })
    }
}

/// One committed alert, as the webhook receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Alert {
    kind: String,
    card: Option<String>,
    time_ms: i64,
}

impl Alert {
    /// The alert of row `event` about `card` (`profile`, `identity`) at `time_ms`.
    pub(crate) fn new(event: &str, card: Option<(&str, &str)>, time_ms: i64) -> Self {
        let card = card.map(|(profile, identity)| {
            hex::encode(Sha256::digest(format!("{profile}:{identity}").as_bytes()))
        });
        Self {
            kind: event.to_owned(),
            card,
            time_ms,
        }
    }

    fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": self.kind,
            "card": self.card,
            "time": crate::audit_export::rfc3339(self.time_ms),
            "time_ms": self.time_ms,
        })
    }
}

/// Raises an alert: writes `note` as an audit row at alert level (its outcome becomes
/// [`ALERT`]) in `tx`; on commit the counter moves and the webhook gets it.
pub(crate) fn raise(tx: &mut dyn Tx, note: &AuditNote<'_>) -> Result<(), ServerError> {
    let note = AuditNote {
        outcome: ALERT,
        ..*note
    };
    let now = crate::store::now_ms();
    tx.insert_audit(&note, now)?;
    let card = note.card.map(|(p, i)| (p.as_str(), i));
    if let Some(lane) = crate::store::chain::lanes::LaneTx::lane(tx) {
        lane.raised(Alert::new(note.event, card, now));
    }
    Ok(())
}

/// Starts the webhook's delivery thread; alerts sent to the returned queue are posted.
pub(crate) fn start_webhook(hook: AlertWebhook) -> Result<SyncSender<Alert>, ServerError> {
    let mut builder = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .redirects(0);
    if let Some(pem) = &hook.cert_pem {
        builder = builder.tls_config(crate::pinned_client_config(pem)?);
    }
    let agent = builder.build();
    let (queue, alerts) = sync_channel(1024);
    std::thread::Builder::new()
        .name("cardunlock-alerts".into())
        .spawn(move || deliver(&agent, &hook, &alerts))
        .map_err(|e| ServerError::Runtime(format!("alert webhook thread: {e}")))?;
    Ok(queue)
}

/// Queues `alert` without waiting (dropped, and logged, if the queue is full).
pub(crate) fn queue(sink: &SyncSender<Alert>, alert: Alert) {
    match sink.try_send(alert) {
        Ok(()) => {}
        Err(TrySendError::Full(a)) => log::error!("alert webhook queue full: {} dropped", a.kind),
        Err(TrySendError::Disconnected(a)) => {
            log::error!("alert webhook stopped: {} not sent", a.kind);
        }
    }
}

/// Posts every alert in order until the queue's senders are gone.
fn deliver(agent: &ureq::Agent, hook: &AlertWebhook, alerts: &Receiver<Alert>) {
    let agent = Arc::new(agent.clone());
    while let Ok(alert) = alerts.recv() {
        let body = alert.body();
        let mut wait = hook.first_retry;
        for attempt in 1..=hook.attempts.max(1) {
            match agent.post(&hook.url).send_json(&body) {
                Ok(_) => break,
                Err(e) => {
                    // The URL may carry a token: name the alert and the status only.
                    let why = match &e {
                        ureq::Error::Status(code, _) => format!("status {code}"),
                        ureq::Error::Transport(t) => t.kind().to_string(),
                    };
                    log::warn!(
                        "alert webhook: {} not delivered ({why}), try {attempt}",
                        alert.kind
                    );
                    if attempt < hook.attempts {
                        std::thread::sleep(wait);
                        wait = wait.saturating_mul(2);
                    }
                }
            }
        }
    }
}
