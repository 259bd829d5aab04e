//! TEST ONLY: the demo's card in a reader it can be pulled out of, for the front ends' tests of
//! "waiting for the card" and "card removed".

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cardunlock_core::{ErrorKind, Transport};

use super::{CardSource, INSERT_CARD};
use crate::demo::SharedCard;
use crate::failure::Failure;
use crate::link::{Closed, Reply, Report, WorkerEnd};

/// The demo's card in a reader: absent until [`DemoSlot::insert`], and failing like a pulled
/// card (`CardRemoved`) after [`DemoSlot::pull`]. Clones share the slot.
#[derive(Clone)]
pub struct DemoSlot {
    card: SharedCard,
    inserted: Arc<AtomicBool>,
}

impl DemoSlot {
    /// An empty slot for `card`.
    pub fn empty(card: SharedCard) -> Self {
        Self {
            card,
            inserted: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Puts the card in.
    pub fn insert(&self) {
        self.inserted.store(true, Ordering::SeqCst);
    }

    /// Pulls the card out: its next command fails.
    pub fn pull(&self) {
        self.inserted.store(false, Ordering::SeqCst);
    }

    fn inserted(&self) -> bool {
        self.inserted.load(Ordering::SeqCst)
    }
}

impl Transport for DemoSlot {
    type Error = ErrorKind;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
        if !self.inserted() {
            return Err(ErrorKind::CardRemoved);
        }
        self.card.transmit(command, response).await
    }
}

impl CardSource for DemoSlot {
    type Card = DemoSlot;
    type Error = ErrorKind;

    /// Says "Insert your card." once, then waits for [`DemoSlot::insert`] (or the front end's
    /// cancel).
    fn wait_for_card(&mut self, end: &WorkerEnd) -> Result<Option<DemoSlot>, Failure> {
        let mut told = false;
        while !self.inserted() {
            if !told {
                if end.report(Report::Waiting(INSERT_CARD.into())).is_err() {
                    return Ok(None);
                }
                told = true;
            }
            if let Ok(Some(Reply::Cancel)) | Err(Closed) = end.poll() {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(Some(self.clone()))
    }
}
