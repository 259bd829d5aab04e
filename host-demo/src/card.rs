//! Opening the card the user chose, over PC/SC (the default) or straight over a USB CCID reader
//! (`--transport ccid`), and running flows on it inside one exclusive session. Every card
//! command of the CLI goes through here, so each works the same on both transports.

use std::fmt;
use std::time::Duration;

use cardunlock_client::{Failure, Kind};
use cardunlock_core::driver::Driver;
use cardunlock_core::{ErrorKind, Transport, TransportError};

use crate::trace::Traced;

/// How the CLI reaches card readers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TransportKind {
    /// PC/SC: pcscd on Linux and macOS, the smart-card service on Windows.
    #[default]
    Pcsc,
    /// USB CCID readers driven directly, without PC/SC (the reader must not be held by pcscd).
    Ccid,
}

/// The options of every command that talks to a card.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CardArgs {
    /// Reader to use: index (from `cardunlock readers`) or name (or a unique part of it).
    #[arg(short, long, value_name = "NAME|INDEX")]
    pub reader: Option<String>,
    /// Wait up to this many seconds for a card to be inserted (0: fail at once).
    #[arg(long, value_name = "SECONDS")]
    pub wait: Option<u64>,
    /// How to reach card readers: PC/SC (pcscd, the Windows smart-card service) or USB CCID
    /// readers driven directly, without PC/SC.
    #[arg(long, value_enum, env = "CARDUNLOCK_TRANSPORT")]
    pub transport: Option<TransportKind>,
    /// Print every APDU to stderr (PIN, PUK and key bytes redacted).
    #[arg(short, long)]
    pub verbose: bool,
}

impl CardArgs {
    /// These options, completed by the ones given before the command (`cardunlock -r 1 status`).
    pub fn or(&self, before: &CardArgs) -> CardArgs {
        CardArgs {
            reader: self.reader.clone().or_else(|| before.reader.clone()),
            wait: self.wait.or(before.wait),
            transport: self.transport.or(before.transport),
            verbose: self.verbose || before.verbose,
        }
    }

    /// The chosen transport.
    pub fn transport(&self) -> TransportKind {
        self.transport.unwrap_or_default()
    }

    fn wait(&self) -> Duration {
        Duration::from_secs(self.wait.unwrap_or(0))
    }
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
    verbose: bool,
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
    pub fn connect(args: &CardArgs) -> Result<Card, Failure> {
        let (reader, verbose) = (args.reader.as_deref(), args.verbose);
        match args.transport() {
            #[cfg(feature = "pcsc")]
            TransportKind::Pcsc => {
                let transport = pcsc_connect(reader, args.wait(), verbose)?;
                Ok(Card {
                    conn: Conn::Pcsc(transport),
                    verbose,
                })
            }
            #[cfg(feature = "ccid")]
            TransportKind::Ccid => {
                let card = crate::ccid::connect(reader, args.wait(), verbose)?;
                Ok(Card {
                    conn: Conn::Ccid(Box::new(card)),
                    verbose,
                })
            }
            #[allow(unreachable_patterns)]
            other => Err(Failure::new(
                Kind::Usage,
                format!("this build of cardunlock has no {other:?} transport"),
            )),
        }
    }

    /// Runs `f` with a driver over one exclusive session on the card, then ends the session
    /// as `end` says. Errors of ending the session after the flow are ignored: the card did
    /// what the flow asked, and a card that went away shows in the flow's own result.
    pub fn run<R>(
        &mut self,
        end: End,
        f: impl FnOnce(&mut CardDriver<'_, '_>) -> R,
    ) -> Result<R, Failure> {
        let verbose = self.verbose;
        match &mut self.conn {
            #[cfg(feature = "pcsc")]
            Conn::Pcsc(transport) => {
                use cardunlock_pcsc::pcsc::Disposition;
                let mut session = transport
                    .begin()
                    .map_err(|e| cardunlock_client::failure::transport(&e))?;
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

/// Connects to the card in the chosen PC/SC reader (waiting up to `wait` for it).
#[cfg(feature = "pcsc")]
fn pcsc_connect(
    reader: Option<&str>,
    wait: Duration,
    verbose: bool,
) -> Result<cardunlock_pcsc::PcscTransport, Failure> {
    use cardunlock_client::failure::transport as failure;
    use cardunlock_pcsc::{Pcsc, PcscError, ReaderChoice, ShareMode};

    let pcsc = Pcsc::establish().map_err(|e| failure(&e))?;
    let choice = reader
        .map(ReaderChoice::parse)
        .unwrap_or(ReaderChoice::WithCard);
    let name = match pcsc.find_reader(&choice) {
        Err(PcscError::NoCard { .. }) if !wait.is_zero() => {
            eprintln!(
                "Insert the smart card (waiting up to {} s) ...",
                wait.as_secs()
            );
            let deadline = std::time::Instant::now() + wait;
            loop {
                std::thread::sleep(Duration::from_millis(200));
                match pcsc.find_reader(&choice) {
                    Err(PcscError::NoCard { .. }) if std::time::Instant::now() < deadline => {
                        continue
                    }
                    other => break other.map_err(|e| failure(&e))?,
                }
            }
        }
        other => other.map_err(|e| failure(&e))?,
    };
    if !wait.is_zero()
        && !pcsc
            .reader_info(&name)
            .map(|r| r.card_present)
            .unwrap_or(false)
    {
        // A reader named on the command line is found whether it holds a card or not.
        eprintln!(
            "Insert the smart card in {name} (waiting up to {} s) ...",
            wait.as_secs()
        );
        pcsc.wait_for_card(&name, wait).map_err(|e| match e {
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
