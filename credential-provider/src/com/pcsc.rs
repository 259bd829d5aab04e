//! Cards in WinSCard readers.
//!
//! The same WinSCard handling as the window (`gui/src/worker.rs`, `PcscReaders`): readers
//! matched by name part, "no readers" and "no service" are waits, not errors, and each APDU is
//! sent on its own (Windows resets a card whose exclusive transaction idles for 5 s while a
//! person types). With one reader to watch, the insertion is awaited with
//! `SCardGetStatusChange` (in slices of `poll`, so a released tile is noticed); otherwise the
//! reader list is polled. A removal shows as the card failing mid-unlock (the "card removed"
//! form).

use cardunlock_client::card::{pick_reader, Held, ReaderPick};
use cardunlock_client::failure::{Failure, Kind};

use crate::link::{Closed, Reply, Report, WorkerEnd};
use crate::worker::CardSource;

/// Cards in WinSCard readers.
pub struct PcscReaders {
    /// A reader name or name part to use (`None`: the reader holding a card).
    pub reader: Option<String>,
    /// How often to look again while waiting.
    pub poll: std::time::Duration,
}

impl CardSource for PcscReaders {
    type Card = cardunlock_pcsc::PcscTransport;
    type Error = cardunlock_pcsc::PcscError;

    fn wait_for_card(&mut self, end: &WorkerEnd) -> Result<Option<Self::Card>, Failure> {
        use cardunlock_pcsc::{Pcsc, PcscError, ShareMode};
        let mut shown = String::new();
        loop {
            match end.poll() {
                Ok(Some(Reply::Cancel)) | Err(Closed) => return Ok(None),
                _ => {}
            }
            let mut watch = None;
            let waiting = match Pcsc::establish() {
                Err(PcscError::NoService(_)) => {
                    "The smart-card service is not running. Connect a reader.".to_string()
                }
                Err(e) => return Err(Failure::new(Kind::NoCard, format!("PC/SC: {e}"))),
                Ok(pcsc) => match pcsc.list_readers() {
                    Err(PcscError::NoReaders) => "Connect a smart-card reader.".to_string(),
                    Err(e) => return Err(Failure::new(Kind::NoCard, format!("PC/SC: {e}"))),
                    Ok(readers) => {
                        let names = readers
                            .iter()
                            .map(|r| (r.name.as_str(), Held::of(r.card_present, r.mute)));
                        match pick_reader(names, self.reader.as_deref()) {
                            ReaderPick::Card(one) => {
                                return pcsc
                                    .connect(one, ShareMode::Shared)
                                    .map(Some)
                                    .map_err(|e| Failure::new(Kind::NoCard, format!("{one}: {e}")))
                            }
                            other => {
                                // One reader to watch: for a card, or for the mute one
                                // to come out and go in again.
                                if let ReaderPick::Insert { only: Some(one) }
                                | ReaderPick::Mute { only: Some(one) } = other
                                {
                                    watch = Some((one.to_string(), pcsc));
                                }
                                other.waiting().to_string()
                            }
                        }
                    }
                },
            };
            if waiting != shown {
                if end.report(Report::Waiting(waiting.clone())).is_err() {
                    return Ok(None);
                }
                shown = waiting;
            }
            match watch {
                // Wakes at the insertion (or after `poll`, to look at the tile again).
                Some((name, pcsc)) => {
                    let _ = pcsc.wait_for_card(&name, self.poll);
                }
                None => std::thread::sleep(self.poll),
            }
        }
    }
}
