//! Opening the card the user chose, over PC/SC (the default) or straight over a USB CCID reader
//! (`--transport ccid`), and running flows on it inside one exclusive session. Every card
//! command of the CLI goes through here, so each works the same on both transports.

use std::fmt;
use std::sync::OnceLock;

use cardunlock_core::driver::Driver;
use cardunlock_core::{ErrorKind, Transport, TransportError};

use crate::trace::Traced;
use crate::Failure;

/// How the CLI reaches card readers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TransportKind {
    /// PC/SC: pcscd on Linux and macOS, the smart-card service on Windows.
    #[default]
    Pcsc,
    /// USB CCID readers driven directly, without PC/SC (the reader must not be held by pcscd).
    Ccid,
}

/// The transport chosen with `--transport`.
pub static TRANSPORT: OnceLock<TransportKind> = OnceLock::new();

fn transport_kind() -> TransportKind {
    TRANSPORT.get().copied().unwrap_or_default()
}

/// What to leave on the card when the session ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Keep the card's security state (a read, a PIN unblock that left the PIN unverified).
    Leave,
    /// Reset the card: drop what the flow authenticated (admin key, management key).
    Reset,
}

/// A connected card.
pub struct Card {
    conn: Conn,
}

enum Conn {
    #[cfg(feature = "pcsc")]
    Pcsc(cardunlock_pcsc::PcscTransport),
    #[cfg(feature = "ccid")]
    Ccid(Box<crate::ccid::CcidCard>),
}

/// The driver every command runs its flows with.
pub type CardDriver<'a, 's> = Driver<Traced<Link<'a, 's>>>;

impl Card {
    /// Connects to the card in the chosen reader (waiting for it with `--wait`).
    pub fn connect(reader: Option<&str>, verbose: bool) -> Result<Card, Failure> {
        match transport_kind() {
            #[cfg(feature = "pcsc")]
            TransportKind::Pcsc => {
                let (transport, _) = crate::reader::connect(reader, verbose)?;
                Ok(Card {
                    conn: Conn::Pcsc(transport),
                })
            }
            #[cfg(feature = "ccid")]
            TransportKind::Ccid => {
                let card = crate::ccid::connect(reader, verbose)?;
                Ok(Card {
                    conn: Conn::Ccid(Box::new(card)),
                })
            }
            #[allow(unreachable_patterns)]
            other => Err(Failure::new(
                crate::exit::USAGE,
                format!("this build of cardunlock has no {other:?} transport"),
            )),
        }
    }

    /// Runs `f` with a driver over one exclusive session on the card, then ends the session
    /// as `end` says. Errors of ending the session after the flow are ignored: the card did
    /// what the flow asked, and a card that went away shows in the flow's own result.
    pub fn run<R>(
        &mut self,
        verbose: bool,
        end: End,
        f: impl FnOnce(&mut CardDriver<'_, '_>) -> R,
    ) -> Result<R, Failure> {
        match &mut self.conn {
            #[cfg(feature = "pcsc")]
            Conn::Pcsc(transport) => {
                use cardunlock_pcsc::pcsc::Disposition;
                let mut session = transport
                    .begin()
                    .map_err(|e| crate::failure::transport(&e))?;
                let result = {
                    let mut driver = Driver::new(Traced {
                        inner: Link::Pcsc(&mut session),
                        enabled: verbose,
                    });
                    f(&mut driver)
                };
                let _ = session.end(match end {
                    End::Leave => Disposition::LeaveCard,
                    End::Reset => Disposition::ResetCard,
                });
                Ok(result)
            }
            #[cfg(feature = "ccid")]
            Conn::Ccid(card) => {
                let result = {
                    let mut driver = Driver::new(Traced {
                        inner: Link::Ccid(card.session(), std::marker::PhantomData),
                        enabled: verbose,
                    });
                    f(&mut driver)
                };
                if end == End::Reset {
                    card.reset();
                }
                Ok(result)
            }
        }
    }
}

/// The transport of one session, whichever way the card is reached.
pub enum Link<'a, 's> {
    /// An exclusive PC/SC transaction.
    #[cfg(feature = "pcsc")]
    Pcsc(&'a mut cardunlock_pcsc::PcscSession<'s>),
    /// A powered CCID slot.
    #[cfg(feature = "ccid")]
    Ccid(
        &'a mut crate::ccid::Session,
        std::marker::PhantomData<&'s ()>,
    ),
}

/// A failure of either transport.
#[derive(Debug)]
pub enum LinkError {
    /// PC/SC.
    #[cfg(feature = "pcsc")]
    Pcsc(cardunlock_pcsc::PcscError),
    /// USB CCID.
    #[cfg(feature = "ccid")]
    Ccid(crate::ccid::SessionError),
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(feature = "pcsc")]
            Self::Pcsc(e) => e.fmt(f),
            #[cfg(feature = "ccid")]
            Self::Ccid(e) => e.fmt(f),
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
        }
    }

    fn supports_extended_length(&self) -> bool {
        match self {
            #[cfg(feature = "pcsc")]
            Self::Pcsc(s) => s.supports_extended_length(),
            #[cfg(feature = "ccid")]
            Self::Ccid(s, _) => s.supports_extended_length(),
        }
    }
}
