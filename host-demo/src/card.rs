//! The card options of the CLI (`--reader`, `--wait`, `--transport`, `-v`) and running flows on
//! the card they choose inside one exclusive session, through the client's [`card`] layer (the
//! same reader choice and transports the window uses). Every card command of the CLI goes
//! through here, so each works the same on both transports.

use std::path::PathBuf;
use std::time::Duration;

use cardunlock_client::card::{self, Readers};
use cardunlock_client::iso_profiles::IsoProfiles;
use cardunlock_client::{status, Failure, Kind};
use cardunlock_core::crypto::Algorithm;
use cardunlock_core::driver::Driver;
use cardunlock_core::flow::{CardStatus, Selected};
use cardunlock_core::unlock;
use embassy_futures::block_on;

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
    /// The ISO admin profiles to try after PIV and GIDS (TOML; default
    /// /etc/cardunlock/iso-profiles.toml, %ProgramData%\cardunlock\iso-profiles.toml on
    /// Windows, if it exists).
    #[arg(long, value_name = "FILE", env = "CARDUNLOCK_ISO_PROFILES")]
    pub iso_profiles: Option<PathBuf>,
}

impl CardArgs {
    /// These options, completed by the ones given before the command (`cardunlock -r 1 status`).
    pub fn or(&self, before: &CardArgs) -> CardArgs {
        CardArgs {
            reader: self.reader.clone().or_else(|| before.reader.clone()),
            wait: self.wait.or(before.wait),
            transport: self.transport.or(before.transport),
            verbose: self.verbose || before.verbose,
            iso_profiles: self
                .iso_profiles
                .clone()
                .or_else(|| before.iso_profiles.clone()),
        }
    }

    /// The workstation's ISO profiles: `--iso-profiles`, else the default file if it exists.
    pub fn iso_profiles(&self) -> Result<IsoProfiles, Failure> {
        IsoProfiles::load(self.iso_profiles.as_deref())
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

/// The card's status (no try spent), trying the ISO `profiles` after PIV and GIDS with the
/// admin key algorithm `algorithm` (`None`: each profile's, else 3DES).
pub fn read_status(
    driver: &mut CardDriver<'_, '_>,
    profiles: &IsoProfiles,
    algorithm: Option<Algorithm>,
) -> Result<CardStatus, Failure> {
    block_on(unlock::read_status_with(
        driver,
        &profiles.probes(algorithm),
    ))
    .map_err(|e| status::read_failure(e, profiles, Kind::Usage))
}

/// [`read_status`], with the token that lets the flow that follows skip its SELECT.
pub fn read_status_selected(
    driver: &mut CardDriver<'_, '_>,
    profiles: &IsoProfiles,
    algorithm: Option<Algorithm>,
) -> Result<(CardStatus, Selected), Failure> {
    block_on(unlock::read_status_selected_with(
        driver,
        &profiles.probes(algorithm),
    ))
    .map_err(|e| status::read_failure(e, profiles, Kind::Usage))
}
