//! The unlock on a worker thread for a front end (the window, the login-screen tile): the CLI's
//! own unlock code ([`crate::online::unlock_with`], [`crate::offline::unlock_with`]) behind a
//! channel-backed UI ([`crate::link`]), over a card from a [`CardSource`].

use crate::api::Api;
#[cfg(feature = "demo")]
use crate::demo::{Demo, Scenario};
use crate::failure::{CardError, Failure, Kind};
use crate::iso_profiles::IsoProfiles;
use crate::offline::{self, OfflineUi};
use crate::online::{self, Event, Person, Ui};
use cardunlock_core::driver::Driver;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::Transport;
use zeroize::Zeroizing;

use crate::link::{Ask, Challenge, Closed, Problem, ProblemKind, Reply, Report, WorkerEnd};

/// The text of the waiting screen.
pub use crate::card::INSERT_CARD;

/// Where the card comes from.
pub trait CardSource {
    /// The connection to the card.
    type Card: Transport<Error = Self::Error>;
    /// Its error.
    type Error: CardError;
    /// Waits until a card is there (telling the front end what to do meanwhile) and connects.
    /// `Ok(None)`: the front end went away while waiting.
    fn wait_for_card(&mut self, end: &WorkerEnd) -> Result<Option<Self::Card>, Failure>;
}

/// How the worker runs the unlock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Whether offline unlock (the operator's response) may be chosen after "no questions".
    pub offline_offered: bool,
    /// The ISO admin key algorithm (`None`: the profile's, else 3DES).
    pub iso_algorithm: Option<cardunlock_core::crypto::Algorithm>,
    /// The workstation's ISO admin profiles, tried in order after PIV and GIDS.
    pub iso_profiles: IsoProfiles,
}

impl Default for Options {
    /// Offline unlock offered; the built-in ISO profiles ([`IsoProfiles::builtin`]).
    fn default() -> Self {
        Self {
            offline_offered: true,
            iso_algorithm: None,
            iso_profiles: IsoProfiles::builtin(),
        }
    }
}

/// The channel-backed UI the unlock code talks to.
struct ChannelUi<'a> {
    end: &'a WorkerEnd,
    closed: bool,
}

fn cancelled() -> Failure {
    Failure::new(Kind::Cancelled, "the unlock was closed")
}

impl ChannelUi<'_> {
    fn tell(&mut self, event: Event<'_>) {
        let report = match event {
            Event::Card { description } => Report::Card(description.to_string()),
            Event::User(u) => Report::User(u.clone()),
            Event::WrongAnswers { attempts_left } => Report::WrongAnswers { attempts_left },
            Event::PinRefused { violations } => Report::PinRefused(violations.to_vec()),
            Event::Unlocking => Report::Unlocking,
            Event::Warning(w) => Report::Warning(w.to_string()),
            Event::Unlocked => Report::Unlocked,
            // A newer client may say more: nothing the front end must act on.
            #[allow(unreachable_patterns)]
            _ => return,
        };
        if self.end.report(report).is_err() {
            self.closed = true;
        }
    }

    fn ask(&mut self, ask: Ask) -> Result<Reply, Failure> {
        match self.end.ask(ask) {
            Ok(Reply::Cancel) => Err(Failure::new(Kind::Cancelled, "cancelled by the user")),
            Ok(reply) => Ok(reply),
            Err(Closed) => {
                self.closed = true;
                Err(cancelled())
            }
        }
    }
}

impl Person for ChannelUi<'_> {
    fn show(&mut self, event: Event<'_>) {
        self.tell(event);
    }

    fn can_retry(&self) -> bool {
        true
    }

    fn new_pin(
        &mut self,
        policy: &PinPolicy<'_>,
    ) -> Result<(Zeroizing<String>, Zeroizing<String>), Failure> {
        match self.ask(Ask::NewPin(policy.into()))? {
            Reply::NewPin(pin, confirm) => Ok((pin, confirm)),
            _ => Err(cancelled()),
        }
    }
}

impl Ui for ChannelUi<'_> {
    fn answers(&mut self, questions: &[String]) -> Result<Vec<Zeroizing<String>>, Failure> {
        match self.ask(Ask::Answers(questions.to_vec()))? {
            Reply::Answers(a) if a.len() == questions.len() => Ok(a),
            Reply::Answers(_) => Err(Failure::new(Kind::Usage, "answers: one per question")),
            _ => Err(cancelled()),
        }
    }
}

impl OfflineUi for ChannelUi<'_> {
    fn response(
        &mut self,
        challenge: offline::Challenge<'_>,
    ) -> Result<Zeroizing<String>, Failure> {
        let challenge = match challenge {
            offline::Challenge::Admin {
                challenge_hex,
                algorithm,
            } => Challenge::Admin {
                challenge_hex: challenge_hex.to_string(),
                algorithm: algorithm.to_string(),
            },
            offline::Challenge::Puk => Challenge::Puk,
            #[allow(unreachable_patterns)]
            _ => return Err(Failure::new(Kind::Usage, "unknown offline challenge")),
        };
        match self.ask(Ask::Response(challenge))? {
            Reply::Response(r) => Ok(r),
            _ => Err(cancelled()),
        }
    }
}

/// The front end's view of a client failure.
pub fn problem(f: &Failure) -> Problem {
    let kind = match &f.kind {
        Kind::WrongAnswers { attempts_left } => ProblemKind::WrongAnswers {
            attempts_left: *attempts_left,
        },
        Kind::Locked => ProblemKind::Locked,
        Kind::NoQuestions => ProblemKind::NoQuestions,
        Kind::Server => ProblemKind::ServerUnreachable,
        Kind::Communication => ProblemKind::CardRemoved,
        Kind::NoCard => ProblemKind::NoCard,
        Kind::Refused => ProblemKind::Refused,
        Kind::Policy => ProblemKind::Policy,
        Kind::Usage => ProblemKind::Usage,
        Kind::Cancelled => ProblemKind::Cancelled,
        #[allow(unreachable_patterns)]
        _ => ProblemKind::Refused,
    };
    Problem {
        kind,
        message: f.message.clone(),
    }
}

/// Runs unlocks until one succeeds or the front end goes away: waits for the card, runs the
/// online unlock (or, once the user chose it after "no questions" and `options` offer it, the
/// offline unlock), and on a failure waits for the user's choice (try again, offline).
pub fn run<S: CardSource>(source: &mut S, api: &Api, options: Options, end: &WorkerEnd) {
    let mut offline_mode = false;
    loop {
        let failure = match source.wait_for_card(end) {
            Ok(None) => return,
            Ok(Some(card)) => {
                if end
                    .report(Report::Busy("Reading the card...".into()))
                    .is_err()
                {
                    return;
                }
                let mut driver = Driver::new(card);
                let mut ui = ChannelUi { end, closed: false };
                let result = if offline_mode {
                    let profiles = &options.iso_profiles;
                    offline::unlock_with(&mut driver, &mut ui, profiles, options.iso_algorithm)
                } else {
                    let profiles = &options.iso_profiles;
                    online::unlock_with(&mut driver, api, &mut ui, profiles, options.iso_algorithm)
                };
                if ui.closed {
                    return;
                }
                match result {
                    // The front end shows the success; wait for OK (or for it to go away).
                    Ok(()) => {
                        let _ = end.wait();
                        return;
                    }
                    Err(f) => f,
                }
            }
            Err(f) => f,
        };
        if end.report(Report::Failed(problem(&failure))).is_err() {
            return;
        }
        match end.wait() {
            Ok(Reply::Retry) => offline_mode = false,
            Ok(Reply::Offline) if options.offline_offered => offline_mode = true,
            // A stray reply (e.g. answers sent just before the failure) is not a choice.
            Ok(Reply::Answers(_) | Reply::NewPin(..) | Reply::Response(_)) => offline_mode = false,
            _ => return,
        }
    }
}

#[cfg(feature = "demo")]
mod slot;
#[cfg(feature = "demo")]
pub use slot::DemoSlot;

/// The demo's simulated card: always in the reader.
#[cfg(feature = "demo")]
pub struct DemoCard(pub crate::demo::SharedCard);

#[cfg(feature = "demo")]
impl CardSource for DemoCard {
    type Card = crate::demo::SharedCard;
    type Error = cardunlock_core::ErrorKind;

    fn wait_for_card(&mut self, end: &WorkerEnd) -> Result<Option<Self::Card>, Failure> {
        match end.poll() {
            Ok(Some(Reply::Cancel)) | Err(Closed) => Ok(None),
            _ => Ok(Some(self.0.clone())),
        }
    }
}

/// Starts the demo scenario (answer hashes at `argon2`'s cost) and runs the unlock against it
/// (on the calling thread: spawn it).
#[cfg(feature = "demo")]
pub fn run_demo(
    scenario: Scenario,
    argon2: cardunlock_server::Argon2Params,
    mut options: Options,
    end: WorkerEnd,
) {
    // The demo's card is the simulator: its profile is always known.
    options.iso_profiles.add_simulator();
    if end
        .report(Report::Busy(
            "Starting the demo: unlock server, enrollment of Michael Benson, blocked card..."
                .into(),
        ))
        .is_err()
    {
        return;
    }
    match Demo::start_with(scenario, argon2) {
        Ok(demo) => {
            let mut source = DemoCard(demo.card());
            run(&mut source, demo.api(), options, &end);
        }
        Err(f) => {
            let _ = end.report(Report::Failed(problem(&f)));
            let _ = end.wait();
        }
    }
}

/// Connects to the unlock server at `url` pinned to `cert_pem` and runs the unlock with cards
/// from `source` (on the calling thread: spawn it).
pub fn run_server<S: CardSource>(
    url: &str,
    cert_pem: &str,
    mut source: S,
    options: Options,
    end: WorkerEnd,
) {
    match Api::new(url, cert_pem) {
        Ok(api) => run(&mut source, &api, options, &end),
        Err(f) => {
            let _ = end.report(Report::Failed(problem(&f)));
            let _ = end.wait();
        }
    }
}

/// Cards in the readers of one transport (PC/SC: pcsc-lite on Linux, WinSCard on Windows; or
/// USB CCID readers driven directly), chosen and connected by the client's
/// [`crate::card::Readers`], as the CLI chooses them.
///
/// WinSCard specifics the front ends rely on:
/// - Reader names differ: Windows names readers `"<vendor> <model> <n>"` with a trailing index
///   from 0 (e.g. `"Yubico YubiKey OTP+FIDO+CCID 0"`), pcsc-lite appends `"00 00"`
///   (`"Yubico YubiKey OTP+FIDO+CCID 00 00"`): match by name part, never by a fixed full name.
/// - With no reader attached, `SCardListReaders` fails with `SCARD_E_NO_READERS_AVAILABLE`;
///   when the smart-card service is stopped (Windows stops it when the last reader is removed)
///   `SCardEstablishContext` fails with `SCARD_E_NO_SERVICE`: both are "connect a reader", and
///   the front end keeps waiting.
/// - Windows resets the card when an exclusive transaction stays idle for more than 5 s. A front
///   end waits for a person between card commands (answers, new PIN, an operator's code),
///   so it sends each APDU on its own (the [`Card`](crate::card::Card) as the
///   transport, no session): the core's flows send the commands that belong together
///   (authentication then RESET RETRY COUNTER) back to back, after every answer is in.
#[cfg(any(feature = "pcsc", feature = "ccid"))]
pub struct Readers {
    /// The transport and the reader (a name part; `None`: the reader holding a card).
    pub readers: crate::card::Readers,
    /// How often to look again while waiting.
    pub poll: std::time::Duration,
}

#[cfg(any(feature = "pcsc", feature = "ccid"))]
impl CardSource for Readers {
    type Card = crate::card::Card;
    type Error = crate::card::LinkError;

    fn wait_for_card(&mut self, end: &WorkerEnd) -> Result<Option<Self::Card>, Failure> {
        let mut shown = "";
        loop {
            match end.poll() {
                Ok(Some(Reply::Cancel)) | Err(Closed) => return Ok(None),
                _ => {}
            }
            let waiting = match self.readers.look()? {
                Ok(card) => return Ok(Some(card)),
                Err(waiting) => waiting,
            };
            if waiting != shown {
                if end.report(Report::Waiting(waiting.to_string())).is_err() {
                    return Ok(None);
                }
                shown = waiting;
            }
            std::thread::sleep(self.poll);
        }
    }
}
