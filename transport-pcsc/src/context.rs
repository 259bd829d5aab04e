//! The PC/SC context: reader discovery, reader choice, waiting for a card.

use std::ffi::CString;
use std::time::{Duration, Instant};

use pcsc::{ReaderState, Scope, State};

use crate::{PcscError, PcscTransport, ShareMode};

/// A reader and what is in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderInfo {
    /// The reader name, as PC/SC spells it (`Virtual PCD 00 00`, `Yubico YubiKey OTP+FIDO+CCID 00 00`).
    pub name: String,
    /// Whether a card is in the reader (and answered reset).
    pub card_present: bool,
    /// Whether a card is in the reader but did not answer reset (PC/SC's "mute": inserted the
    /// wrong way round, dirty contacts, a dead card, or a reset that failed).
    pub mute: bool,
    /// Whether another application holds the card exclusively.
    pub exclusive: bool,
    /// The card's ATR, when a card is present.
    pub atr: Vec<u8>,
}

impl ReaderInfo {
    fn from_state(state: &ReaderState) -> Self {
        let event = state.event_state();
        let (card_present, mute) = card_of(event);
        Self {
            name: state.name().to_string_lossy().into_owned(),
            card_present,
            mute,
            exclusive: event.contains(State::EXCLUSIVE),
            atr: if card_present {
                state.atr().to_vec()
            } else {
                Vec::new()
            },
        }
    }
}

/// Whether a reader in state `event` holds a card that answered reset, and whether it holds one
/// that did not (mute).
fn card_of(event: State) -> (bool, bool) {
    let present = event.contains(State::PRESENT);
    let mute = present && event.contains(State::MUTE);
    (present && !mute, mute)
}

/// Whether a reader in state `event` holds a card that answers (`present`) or no card at all
/// (not `present`): a mute card is neither.
fn reached(event: State, present: bool) -> bool {
    match card_of(event) {
        (usable, _) if present => usable,
        (usable, mute) => !usable && !mute,
    }
}

/// Which reader to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReaderChoice {
    /// The only reader with a card in it (an error when there are several).
    WithCard,
    /// The reader at this position in [`Pcsc::list_readers`] (from 0).
    Index(usize),
    /// The reader with exactly this name, or else the one reader whose name contains this text
    /// (case-insensitive). Several matches are an error rather than a guess: unblocking the
    /// wrong card costs PUK tries.
    Name(String),
}

impl ReaderChoice {
    /// Parses a command-line value: a number is an index, anything else a name or name part.
    pub fn parse(value: &str) -> Self {
        match value.parse::<usize>() {
            Ok(i) => Self::Index(i),
            Err(_) => Self::Name(value.to_owned()),
        }
    }
}

/// A PC/SC context (`SCardEstablishContext`): lists readers, waits for cards, connects.
///
/// Every call blocks the calling thread (waiting calls up to their timeout).
#[derive(Clone)]
pub struct Pcsc {
    ctx: pcsc::Context,
}

impl core::fmt::Debug for Pcsc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pcsc").finish_non_exhaustive()
    }
}

impl Pcsc {
    /// Connects to the PC/SC service (user scope). Fails with [`PcscError::NoService`] when
    /// pcscd is not running.
    pub fn establish() -> Result<Self, PcscError> {
        let ctx = pcsc::Context::establish(Scope::User)
            .map_err(|e| PcscError::from_pcsc("SCardEstablishContext", e, ""))?;
        Ok(Self { ctx })
    }

    /// The underlying `pcsc` context.
    pub fn context(&self) -> &pcsc::Context {
        &self.ctx
    }

    /// The reader names, in PC/SC order. No reader is an empty list.
    pub fn reader_names(&self) -> Result<Vec<String>, PcscError> {
        match self.ctx.list_readers_owned() {
            Ok(names) => Ok(names
                .into_iter()
                .map(|n| n.to_string_lossy().into_owned())
                .collect()),
            Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
            Err(e) => Err(PcscError::from_pcsc("SCardListReaders", e, "")),
        }
    }

    /// The readers and whether each holds a card. No reader is an empty list.
    pub fn list_readers(&self) -> Result<Vec<ReaderInfo>, PcscError> {
        let names = self.reader_names()?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut states = names
            .iter()
            .map(|n| Ok(ReaderState::new(c_name(n)?, State::UNAWARE)))
            .collect::<Result<Vec<_>, PcscError>>()?;
        self.ctx
            .get_status_change(Duration::ZERO, &mut states)
            .map_err(|e| PcscError::from_pcsc("SCardGetStatusChange", e, ""))?;
        Ok(states.iter().map(ReaderInfo::from_state).collect())
    }

    /// Resolves `choice` to a reader name.
    pub fn find_reader(&self, choice: &ReaderChoice) -> Result<String, PcscError> {
        choose(&self.list_readers()?, choice)
    }

    /// The state of one reader.
    pub fn reader_info(&self, reader: &str) -> Result<ReaderInfo, PcscError> {
        let mut states = [ReaderState::new(c_name(reader)?, State::UNAWARE)];
        self.ctx
            .get_status_change(Duration::ZERO, &mut states)
            .map_err(|e| PcscError::from_pcsc("SCardGetStatusChange", e, reader))?;
        check_known(&states[0], reader)?;
        Ok(ReaderInfo::from_state(&states[0]))
    }

    /// Waits up to `timeout` until a card is in `reader` (returns at once if one is).
    /// [`PcscError::Timeout`] when none came.
    pub fn wait_for_card(&self, reader: &str, timeout: Duration) -> Result<ReaderInfo, PcscError> {
        self.wait_for(reader, timeout, true)
    }

    /// Waits up to `timeout` until `reader` is empty (returns at once if it is). A card that is
    /// in the reader but does not answer (PC/SC's "mute", e.g. after a reset that failed) is not
    /// gone: the reader is empty only once the reader's driver reports no card.
    pub fn wait_for_removal(
        &self,
        reader: &str,
        timeout: Duration,
    ) -> Result<ReaderInfo, PcscError> {
        self.wait_for(reader, timeout, false)
    }

    fn wait_for(
        &self,
        reader: &str,
        timeout: Duration,
        present: bool,
    ) -> Result<ReaderInfo, PcscError> {
        let deadline = Instant::now() + timeout;
        let mut states = [ReaderState::new(c_name(reader)?, State::UNAWARE)];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.ctx.get_status_change(left, &mut states) {
                Ok(()) => {}
                Err(pcsc::Error::Timeout) => return Err(PcscError::Timeout),
                Err(e) => return Err(PcscError::from_pcsc("SCardGetStatusChange", e, reader)),
            }
            check_known(&states[0], reader)?;
            if reached(states[0].event_state(), present) {
                return Ok(ReaderInfo::from_state(&states[0]));
            }
            if left.is_zero() {
                return Err(PcscError::Timeout);
            }
            states[0].sync_current_state();
        }
    }

    /// Connects to the card in `reader` (T=0 or T=1, whichever the card offers).
    pub fn connect(&self, reader: &str, share: ShareMode) -> Result<PcscTransport, PcscError> {
        PcscTransport::with_context(self.ctx.clone(), reader, share)
    }
}

/// The reader names and card presence, through a fresh context.
pub fn list_readers() -> Result<Vec<ReaderInfo>, PcscError> {
    Pcsc::establish()?.list_readers()
}

/// The reader of `readers` that `choice` names. With [`ReaderChoice::WithCard`] and no card
/// that answers, a mute card is named as such rather than reported as no card.
fn choose(readers: &[ReaderInfo], choice: &ReaderChoice) -> Result<String, PcscError> {
    if readers.is_empty() {
        return Err(PcscError::NoReaders);
    }
    let names = || readers.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
    match choice {
        ReaderChoice::Index(i) => {
            readers
                .get(*i)
                .map(|r| r.name.clone())
                .ok_or_else(|| PcscError::ReaderNotFound {
                    wanted: i.to_string(),
                    available: names(),
                })
        }
        ReaderChoice::Name(wanted) => {
            if let Some(r) = readers.iter().find(|r| &r.name == wanted) {
                return Ok(r.name.clone());
            }
            let needle = wanted.to_lowercase();
            let matching: Vec<String> = readers
                .iter()
                .filter(|r| r.name.to_lowercase().contains(&needle))
                .map(|r| r.name.clone())
                .collect();
            match matching.as_slice() {
                [one] => Ok(one.clone()),
                [] => Err(PcscError::ReaderNotFound {
                    wanted: wanted.clone(),
                    available: names(),
                }),
                _ => Err(PcscError::AmbiguousReader {
                    wanted: wanted.clone(),
                    matching,
                }),
            }
        }
        ReaderChoice::WithCard => {
            let with_card: Vec<String> = readers
                .iter()
                .filter(|r| r.card_present)
                .map(|r| r.name.clone())
                .collect();
            match with_card.as_slice() {
                [one] => Ok(one.clone()),
                [] => Err(match readers.iter().find(|r| r.mute) {
                    Some(r) => PcscError::MuteCard {
                        reader: r.name.clone(),
                    },
                    None => PcscError::NoCard {
                        reader: String::new(),
                    },
                }),
                _ => Err(PcscError::AmbiguousReader {
                    wanted: "a reader with a card".into(),
                    matching: with_card,
                }),
            }
        }
    }
}

pub(crate) fn c_name(reader: &str) -> Result<CString, PcscError> {
    CString::new(reader).map_err(|_| PcscError::ReaderNotFound {
        wanted: reader.to_owned(),
        available: Vec::new(),
    })
}

fn check_known(state: &ReaderState, reader: &str) -> Result<(), PcscError> {
    let s = state.event_state();
    if s.contains(State::UNKNOWN) {
        Err(PcscError::ReaderNotFound {
            wanted: reader.to_owned(),
            available: Vec::new(),
        })
    } else if s.contains(State::UNAVAILABLE) {
        Err(PcscError::ReaderUnavailable {
            reader: reader.to_owned(),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(name: &str, card_present: bool, mute: bool) -> ReaderInfo {
        ReaderInfo {
            name: name.into(),
            card_present,
            mute,
            exclusive: false,
            atr: Vec::new(),
        }
    }

    #[test]
    fn a_mute_card_is_in_the_reader_but_not_usable() {
        assert_eq!(card_of(State::EMPTY), (false, false));
        assert_eq!(card_of(State::PRESENT), (true, false));
        assert_eq!(card_of(State::PRESENT | State::INUSE), (true, false));
        assert_eq!(card_of(State::PRESENT | State::MUTE), (false, true));
    }

    #[test]
    fn a_mute_card_is_neither_an_answering_card_nor_an_empty_reader() {
        let mute = State::PRESENT | State::MUTE;
        assert!(!reached(mute, true));
        assert!(!reached(mute, false));
        assert!(reached(State::EMPTY, false));
        assert!(reached(State::PRESENT, true));
        assert!(!reached(State::PRESENT, false));
    }

    #[test]
    fn with_card_names_a_mute_card_instead_of_saying_there_is_none() {
        let mute = [reader("A", false, false), reader("B", false, true)];
        assert_eq!(
            choose(&mute, &ReaderChoice::WithCard),
            Err(PcscError::MuteCard { reader: "B".into() })
        );
        let none = [reader("A", false, false)];
        assert_eq!(
            choose(&none, &ReaderChoice::WithCard),
            Err(PcscError::NoCard {
                reader: String::new()
            })
        );
        // A card that answers wins over a mute one in another reader.
        let both = [reader("A", true, false), reader("B", false, true)];
        assert_eq!(choose(&both, &ReaderChoice::WithCard), Ok("A".into()));
        assert_eq!(
            choose(&[], &ReaderChoice::WithCard),
            Err(PcscError::NoReaders)
        );
    }
}
