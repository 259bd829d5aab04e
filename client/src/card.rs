//! The card, over PC/SC (the default) or straight over a USB CCID reader, for every program of
//! the workstation: the CLI opens one exclusive session per command ([`Card::session`]); the
//! window and the login tile send each APDU on its own ([`Card`] is a [`Transport`]), because
//! they wait for a person between commands. Reader choice and waiting for a card are here once
//! ([`Readers`]), so each works the same on both transports.

use std::fmt;
use std::time::Duration;

use cardunlock_core::{ErrorKind, Transport, TransportError};

use crate::{Failure, Kind};

#[cfg(feature = "ccid")]
pub mod ccid;

/// How card readers are reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TransportKind {
    /// PC/SC: pcscd on Linux and macOS, the smart-card service on Windows.
    #[default]
    Pcsc,
    /// USB CCID readers driven directly, without PC/SC (the reader must not be held by pcscd).
    Ccid,
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Pcsc => "PC/SC",
            Self::Ccid => "USB CCID",
        })
    }
}

/// What to leave on the card when a session ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Keep the card's security state (a read, a PIN unblock that left the PIN unverified).
    Leave,
    /// Reset the card: drop what the flow authenticated (admin key, management key).
    Reset,
}

/// A reader and whether it holds a card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderState {
    /// The reader's name.
    pub name: String,
    /// A card is in it and answered the reset.
    pub card_present: bool,
    /// A card is in it that does not answer (upside down, dirty contacts, not a smart card).
    pub mute: bool,
}

impl ReaderState {
    /// What the reader holds.
    pub fn held(&self) -> Held {
        Held::of(self.card_present, self.mute)
    }
}

/// What a reader holds, as far as choosing one goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// No card.
    Nothing,
    /// A card that answers.
    Card,
    /// A card that does not answer the reset.
    MuteCard,
}

impl Held {
    /// From a reader's state flags (a card present wins over a stale mute flag).
    pub fn of(card_present: bool, mute: bool) -> Self {
        match (card_present, mute) {
            (true, _) => Self::Card,
            (false, true) => Self::MuteCard,
            (false, false) => Self::Nothing,
        }
    }
}

/// The readers of one transport, and which of them to use.
#[derive(Clone, Debug, Default)]
pub struct Readers {
    /// The transport.
    pub transport: TransportKind,
    /// The reader: an index (in the listing's order), its name, or a unique part of it;
    /// `None`: the one reader holding a card.
    pub reader: Option<String>,
    /// Print each reader connected to on stderr (the CLI's `-v`).
    pub verbose: bool,
}

/// What the user has to do before a card can be used, while a
/// [`CardSource::wait_for_card`](crate::worker::CardSource::wait_for_card) waits.
pub const INSERT_CARD: &str = "Insert your card.";

/// What the user has to do when the card in the reader does not answer.
pub const MUTE_CARD: &str =
    "Your card does not answer: take it out and insert it again, chip first.";

impl Readers {
    /// Every reader of the transport. No reader, or PC/SC's service not running (Windows stops
    /// it when the last reader is removed), is an empty list: "connect a reader", not an error.
    pub fn list(&self) -> Result<Vec<ReaderState>, Failure> {
        match self.transport {
            #[cfg(feature = "pcsc")]
            TransportKind::Pcsc => {
                use cardunlock_pcsc::{Pcsc, PcscError};
                let listed = Pcsc::establish().and_then(|p| p.list_readers());
                match listed {
                    Ok(readers) => Ok(readers
                        .into_iter()
                        .map(|r| ReaderState {
                            name: r.name,
                            card_present: r.card_present,
                            mute: r.mute,
                        })
                        .collect()),
                    Err(PcscError::NoReaders | PcscError::NoService(_)) => Ok(Vec::new()),
                    Err(e) => Err(crate::failure::transport(&e)),
                }
            }
            #[cfg(feature = "ccid")]
            TransportKind::Ccid => ccid::list(),
            #[allow(unreachable_patterns)]
            other => Err(missing(other)),
        }
    }

    /// Connects to the card in the chosen reader, waiting up to `wait` for it (zero: fail at
    /// once); `notice` is told once what the user should do while it waits.
    pub fn connect(&self, wait: Duration, notice: &mut dyn FnMut(&str)) -> Result<Card, Failure> {
        let reader = self.reader.as_deref();
        match self.transport {
            #[cfg(feature = "pcsc")]
            TransportKind::Pcsc => {
                let t = pcsc_connect(reader, wait, self.verbose, notice)?;
                Ok(Card {
                    conn: Conn::Pcsc(t),
                })
            }
            #[cfg(feature = "ccid")]
            TransportKind::Ccid => {
                let card = ccid::connect(reader, wait, self.verbose, notice)?;
                Ok(Card {
                    conn: Conn::Ccid(Box::new(card)),
                })
            }
            #[allow(unreachable_patterns)]
            other => {
                let _ = (reader, wait, notice);
                Err(missing(other))
            }
        }
    }

    /// One look at the readers, for a program that waits for the card itself (the window, the
    /// login tile): the card if exactly one wanted reader holds one, or else what to tell the
    /// user ("insert your card", "connect a reader", "leave only yours").
    pub fn look(&self) -> Result<Result<Card, &'static str>, Failure> {
        let readers = self.list()?;
        let names = readers.iter().map(|r| (r.name.as_str(), r.held()));
        match pick_reader(names, self.reader.as_deref()) {
            ReaderPick::Card(one) => {
                let exact = Readers {
                    reader: Some(one.to_string()),
                    ..self.clone()
                };
                exact.connect(Duration::ZERO, &mut |_| {}).map(Ok)
            }
            other => Ok(Err(other.waiting())),
        }
    }
}

/// What one look at the readers found, for a program that waits for the card itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderPick<'a> {
    /// Exactly one wanted reader holds a card: this one.
    Card(&'a str),
    /// No wanted reader holds a card; `only`: the wanted reader, when there is just one (its
    /// insertion can be awaited).
    Insert {
        /// The one wanted reader, if only one is.
        only: Option<&'a str>,
    },
    /// No wanted reader holds a card that answers, and one holds a card that does not: it has
    /// to come out and go in again. `only`: that reader, when it is the only wanted one with
    /// such a card (its new insertion can be awaited).
    Mute {
        /// The one wanted reader with a mute card, if only one has one.
        only: Option<&'a str>,
    },
    /// No reader is wanted (or there is none).
    NoReader,
    /// Several wanted readers hold a card.
    Several,
}

impl ReaderPick<'_> {
    /// What to tell the user while no card can be used ("insert your card", "connect a
    /// reader", "leave only yours"); empty for [`ReaderPick::Card`].
    pub fn waiting(&self) -> &'static str {
        match self {
            Self::Card(_) => "",
            Self::Insert { .. } => INSERT_CARD,
            Self::Mute { .. } => MUTE_CARD,
            Self::NoReader => "Connect a smart-card reader.",
            Self::Several => "Several cards are inserted: leave only yours in a reader.",
        }
    }
}

/// Picks the reader among `readers` (name, what it holds) that `filter` (a reader name or a
/// part of it, any case; `None`: every reader) wants and that holds a card that answers.
pub fn pick_reader<'a>(
    readers: impl IntoIterator<Item = (&'a str, Held)>,
    filter: Option<&str>,
) -> ReaderPick<'a> {
    let part = filter.map(str::to_lowercase);
    let wanted: Vec<(&'a str, Held)> = readers
        .into_iter()
        .filter(|(name, _)| {
            part.as_ref()
                .is_none_or(|p| name.to_lowercase().contains(p.as_str()))
        })
        .collect();
    let holding = |held: Held| -> Vec<&'a str> {
        wanted
            .iter()
            .filter(|(_, h)| *h == held)
            .map(|(name, _)| *name)
            .collect()
    };
    let (with_card, mute) = (holding(Held::Card), holding(Held::MuteCard));
    match (with_card.as_slice(), mute.as_slice()) {
        ([one], _) => ReaderPick::Card(one),
        ([_, _, ..], _) => ReaderPick::Several,
        _ if wanted.is_empty() => ReaderPick::NoReader,
        ([], [one]) => ReaderPick::Mute { only: Some(one) },
        ([], [_, _, ..]) => ReaderPick::Mute { only: None },
        ([], []) => ReaderPick::Insert {
            only: match wanted.as_slice() {
                [(one, _)] => Some(one),
                _ => None,
            },
        },
    }
}

fn missing(kind: TransportKind) -> Failure {
    Failure::new(Kind::Usage, format!("this build has no {kind} transport"))
}

/// A connected card.
pub struct Card {
    conn: Conn,
}

enum Conn {
    #[cfg(feature = "pcsc")]
    Pcsc(cardunlock_pcsc::PcscTransport),
    #[cfg(feature = "ccid")]
    Ccid(Box<ccid::CcidCard>),
}

impl Card {
    /// Runs `f` over one exclusive session on the card, then ends the session as `end` says.
    /// Errors of ending the session after the flow are ignored: the card did what the flow
    /// asked, and a card that went away shows in the flow's own result.
    pub fn session<R>(
        &mut self,
        end: End,
        f: impl FnOnce(Link<'_, '_>) -> R,
    ) -> Result<R, Failure> {
        match &mut self.conn {
            #[cfg(feature = "pcsc")]
            Conn::Pcsc(transport) => {
                use cardunlock_pcsc::pcsc::Disposition;
                let mut session = transport
                    .begin()
                    .map_err(|e| crate::failure::transport(&e))?;
                let result = f(Link::Pcsc(&mut session));
                let _ = session.end(match end {
                    End::Leave => Disposition::LeaveCard,
                    End::Reset => Disposition::ResetCard,
                });
                Ok(result)
            }
            #[cfg(feature = "ccid")]
            Conn::Ccid(card) => {
                let result = f(Link::Ccid(card.session(), std::marker::PhantomData));
                if end == End::Reset {
                    card.reset();
                }
                Ok(result)
            }
            #[allow(unreachable_patterns)]
            _ => {
                let _ = (end, f);
                Err(Failure::new(
                    Kind::Usage,
                    "this build has no card transport",
                ))
            }
        }
    }
}

/// Each APDU on its own: over PC/SC in a transaction of its own (Windows resets a card whose
/// exclusive transaction stays idle for 5 s, and the window waits for a person between card
/// commands; the core's flows send the commands that belong together back to back), over CCID
/// on the powered slot.
impl Transport for Card {
    type Error = LinkError;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, LinkError> {
        match &mut self.conn {
            #[cfg(feature = "pcsc")]
            Conn::Pcsc(t) => t.transmit(command, response).await.map_err(LinkError::Pcsc),
            #[cfg(feature = "ccid")]
            Conn::Ccid(c) => c
                .session()
                .transmit(command, response)
                .await
                .map_err(LinkError::Ccid),
            #[allow(unreachable_patterns)]
            _ => {
                let _ = (command, response);
                Err(LinkError::None)
            }
        }
    }

    fn supports_extended_length(&self) -> bool {
        match &self.conn {
            #[cfg(feature = "pcsc")]
            Conn::Pcsc(t) => t.supports_extended_length(),
            #[cfg(feature = "ccid")]
            Conn::Ccid(c) => c.supports_extended_length(),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
}

/// What the connect path says while it waits for the card in `reader` that does not answer.
#[cfg(feature = "pcsc")]
fn mute_notice(reader: &str, wait: Duration) -> String {
    format!(
        "The card in {reader} does not answer: take it out and insert it again, chip first \
         (waiting up to {} s) ...",
        wait.as_secs()
    )
}

/// Connects to the card in the chosen PC/SC reader (waiting up to `wait` for it).
#[cfg(feature = "pcsc")]
fn pcsc_connect(
    reader: Option<&str>,
    wait: Duration,
    verbose: bool,
    notice: &mut dyn FnMut(&str),
) -> Result<cardunlock_pcsc::PcscTransport, Failure> {
    use crate::failure::transport as failure;
    use cardunlock_pcsc::{Pcsc, PcscError, ReaderChoice, ShareMode};

    let pcsc = Pcsc::establish().map_err(|e| failure(&e))?;
    let choice = reader
        .map(ReaderChoice::parse)
        .unwrap_or(ReaderChoice::WithCard);
    let name = match pcsc.find_reader(&choice) {
        Err(e @ (PcscError::NoCard { .. } | PcscError::MuteCard { .. })) if !wait.is_zero() => {
            notice(&match e {
                PcscError::MuteCard { reader } => mute_notice(&reader, wait),
                _ => format!(
                    "Insert the smart card (waiting up to {} s) ...",
                    wait.as_secs()
                ),
            });
            let deadline = std::time::Instant::now() + wait;
            loop {
                std::thread::sleep(Duration::from_millis(200));
                match pcsc.find_reader(&choice) {
                    Err(PcscError::NoCard { .. } | PcscError::MuteCard { .. })
                        if std::time::Instant::now() < deadline =>
                    {
                        continue
                    }
                    other => break other.map_err(|e| failure(&e))?,
                }
            }
        }
        other => other.map_err(|e| failure(&e))?,
    };
    let info = pcsc.reader_info(&name).ok();
    if !wait.is_zero() && !info.as_ref().is_some_and(|r| r.card_present) {
        // A reader named on the command line is found whether it holds a card or not.
        notice(&if info.is_some_and(|r| r.mute) {
            mute_notice(&name, wait)
        } else {
            format!(
                "Insert the smart card in {name} (waiting up to {} s) ...",
                wait.as_secs()
            )
        });
        let mute = |name: &str| pcsc.reader_info(name).is_ok_and(|r| r.mute);
        pcsc.wait_for_card(&name, wait).map_err(|e| match e {
            PcscError::Timeout if mute(&name) => failure(&PcscError::MuteCard {
                reader: name.clone(),
            }),
            PcscError::Timeout => Failure::new(
                Kind::NoCard,
                format!("no card was inserted in {name} within {} s", wait.as_secs()),
            ),
            e => failure(&e),
        })?;
    }
    let transport = pcsc
        .connect(&name, ShareMode::Shared)
        .map_err(|e| failure(&e))?;
    if verbose {
        eprintln!("reader: {name}");
    }
    Ok(transport)
}

/// The transport of one exclusive session, whichever way the card is reached.
pub enum Link<'a, 's> {
    /// An exclusive PC/SC transaction.
    #[cfg(feature = "pcsc")]
    Pcsc(&'a mut cardunlock_pcsc::PcscSession<'s>),
    /// A powered CCID slot.
    #[cfg(feature = "ccid")]
    Ccid(&'a mut ccid::Session, std::marker::PhantomData<&'s ()>),
    /// No transport in this build (never made).
    #[doc(hidden)]
    None(std::marker::PhantomData<(&'a (), &'s ())>),
}

/// A failure of either transport.
#[derive(Debug)]
#[non_exhaustive]
pub enum LinkError {
    /// PC/SC.
    #[cfg(feature = "pcsc")]
    Pcsc(cardunlock_pcsc::PcscError),
    /// USB CCID.
    #[cfg(feature = "ccid")]
    Ccid(ccid::SessionError),
    /// No transport in this build.
    None,
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(feature = "pcsc")]
            Self::Pcsc(e) => e.fmt(f),
            #[cfg(feature = "ccid")]
            Self::Ccid(e) => e.fmt(f),
            Self::None => f.write_str("this build has no card transport"),
        }
    }
}

/// The transport's own error is the source.
impl std::error::Error for LinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            #[cfg(feature = "pcsc")]
            Self::Pcsc(e) => Some(e),
            #[cfg(feature = "ccid")]
            Self::Ccid(e) => Some(e),
            Self::None => None,
        }
    }
}

impl TransportError for LinkError {
    fn kind(&self) -> ErrorKind {
        match self {
            #[cfg(feature = "pcsc")]
            Self::Pcsc(e) => e.kind(),
            #[cfg(feature = "ccid")]
            Self::Ccid(e) => e.kind(),
            Self::None => ErrorKind::Unavailable,
        }
    }
}

impl Transport for Link<'_, '_> {
    type Error = LinkError;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, LinkError> {
        match self {
            #[cfg(feature = "pcsc")]
            Self::Pcsc(s) => s.transmit(command, response).await.map_err(LinkError::Pcsc),
            #[cfg(feature = "ccid")]
            Self::Ccid(s, _) => s.transmit(command, response).await.map_err(LinkError::Ccid),
            Self::None(_) => {
                let _ = (command, response);
                Err(LinkError::None)
            }
        }
    }

    fn supports_extended_length(&self) -> bool {
        match self {
            #[cfg(feature = "pcsc")]
            Self::Pcsc(s) => s.supports_extended_length(),
            #[cfg(feature = "ccid")]
            Self::Ccid(s, _) => s.supports_extended_length(),
            Self::None(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{pick_reader, Held, ReaderPick};

    /// Proves a link failure's `source()` is the transport's own error (so a `Failure`'s chain
    /// reaches the PC/SC error, not only its text).
    #[cfg(feature = "pcsc")]
    #[test]
    fn a_link_error_keeps_the_transports_error_as_its_source() {
        use cardunlock_pcsc::PcscError;
        let e = super::LinkError::Pcsc(PcscError::NoReaders);
        let source = std::error::Error::source(&e).expect("the PC/SC error");
        assert_eq!(
            source.downcast_ref::<PcscError>(),
            Some(&PcscError::NoReaders)
        );
        assert!(std::error::Error::source(&super::LinkError::None).is_none());
    }

    /// The reader is matched by a part of its name in any case; a card in an unwanted reader
    /// is never taken, two cards are never guessed between, and the one empty wanted reader is
    /// named so its insertion can be awaited.
    #[test]
    fn the_wanted_reader_with_a_card_is_picked() {
        let (no, yes) = (Held::Nothing, Held::Card);
        let readers = [("Yubico YubiKey 00", no), ("ACS ACR39U 01", yes)];
        assert_eq!(
            pick_reader(readers, None),
            ReaderPick::Card("ACS ACR39U 01")
        );
        assert_eq!(
            pick_reader(readers, Some("acr39")),
            ReaderPick::Card("ACS ACR39U 01")
        );
        assert_eq!(
            pick_reader(readers, Some("YUBI")),
            ReaderPick::Insert {
                only: Some("Yubico YubiKey 00")
            }
        );
        assert_eq!(pick_reader(readers, Some("nope")), ReaderPick::NoReader);
        assert_eq!(pick_reader([], None), ReaderPick::NoReader);
        let two = [("A 00", yes), ("B 01", yes)];
        assert_eq!(pick_reader(two, None), ReaderPick::Several);
        assert_eq!(pick_reader(two, Some("b")), ReaderPick::Card("B 01"));
        let empty = [("A 00", no), ("B 01", no)];
        assert_eq!(pick_reader(empty, None), ReaderPick::Insert { only: None });
        assert_eq!(
            ReaderPick::Several.waiting(),
            "Several cards are inserted: leave only yours in a reader."
        );
    }

    /// Proves a card that does not answer is named as such (take it out, insert it again)
    /// instead of being taken for no card ("insert your card", which the user already did), and
    /// that an answering card elsewhere is still picked over it.
    #[test]
    fn a_mute_card_is_told_apart_from_no_card() {
        let (no, yes, mute) = (Held::Nothing, Held::Card, Held::MuteCard);
        let readers = [("A 00", no), ("B 01", mute)];
        let pick = pick_reader(readers, None);
        assert_eq!(pick, ReaderPick::Mute { only: Some("B 01") });
        assert_eq!(
            pick.waiting(),
            "Your card does not answer: take it out and insert it again, chip first."
        );
        assert_eq!(
            pick_reader(readers, Some("a 00")),
            ReaderPick::Insert { only: Some("A 00") }
        );
        assert_eq!(
            pick_reader([("A 00", mute), ("B 01", mute)], None),
            ReaderPick::Mute { only: None }
        );
        assert_eq!(
            pick_reader([("A 00", mute), ("B 01", yes)], None),
            ReaderPick::Card("B 01")
        );
        // A reader reporting a card present is a card, whatever a stale mute flag says.
        assert_eq!(Held::of(true, true), Held::Card);
        assert_eq!(Held::of(false, true), Held::MuteCard);
    }
}
