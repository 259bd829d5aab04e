//! The card options of the CLI (`--reader`, `--wait`, `--transport`, `-v`) and running flows on
//! the card they choose inside one exclusive session, through the client's [`card`] layer (the
//! same reader choice and transports the window uses). Every card command of the CLI goes
//! through here, so each works the same on both transports.

use std::time::Duration;

use cardunlock_client::card::{self, Readers};
use cardunlock_client::Failure;
use cardunlock_core::driver::Driver;

use crate::trace::Traced;

pub use cardunlock_client::card::{End, Link, LinkError};

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

    /// The readers these options choose from.
    pub fn readers(&self) -> Readers {
        Readers {
            transport: self.transport().into(),
            reader: self.reader.clone(),
            verbose: self.verbose,
        }
    }
}

impl From<TransportKind> for card::TransportKind {
    fn from(kind: TransportKind) -> Self {
        match kind {
            TransportKind::Pcsc => Self::Pcsc,
            TransportKind::Ccid => Self::Ccid,
        }
    }
}

/// A connected card.
pub struct Card {
    card: card::Card,
    verbose: bool,
}

/// The driver every command runs its flows with.
pub type CardDriver<'a, 's> = Driver<Traced<Link<'a, 's>>>;

impl Card {
    /// Connects to the card in the chosen reader (waiting for it with `--wait`).
    pub fn connect(args: &CardArgs) -> Result<Card, Failure> {
        let card = args
            .readers()
            .connect(args.wait(), &mut |notice| eprintln!("{notice}"))?;
        Ok(Card {
            card,
            verbose: args.verbose,
        })
    }

    /// Runs `f` with a driver over one exclusive session on the card, then ends the session
    /// as `end` says.
    pub fn run<R>(
        &mut self,
        end: End,
        f: impl FnOnce(&mut CardDriver<'_, '_>) -> R,
    ) -> Result<R, Failure> {
        let enabled = self.verbose;
        self.card.session(end, |link| {
            let mut driver = Driver::new(Traced {
                inner: link,
                enabled,
            });
            f(&mut driver)
        })
    }
}
