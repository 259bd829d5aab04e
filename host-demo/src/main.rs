//! `cardunlock`: unblock a smart card whose PIN is blocked.
//!
//! Modules, one job each: `main` (the command line and its dispatch), `terminal` (what the
//! person reads and types), `secrets` (where secrets come from), `card` / `ccid` / `trace`
//! (reaching the card), and one module per group of commands (`unlock`, `status`, `operator`:
//! the operator API's clients, and with the `demo` feature `demo`, `simcard`). The unlock
//! flows, the server's clients and the failure kinds live in `cardunlock-client`, shared with
//! the window. The unlock server is its own program (`cardunlock-server`).

// Without a card transport and without the demo, only the operator commands are left: the
// terminal's unlock screens go unused.
#![cfg_attr(
    not(any(feature = "pcsc", feature = "ccid", feature = "demo")),
    allow(dead_code)
)]

#[cfg(any(feature = "pcsc", feature = "ccid"))]
mod card;
#[cfg(feature = "demo")]
mod demo;
mod operator;
mod secrets;
#[cfg(feature = "demo")]
mod simcard;
#[cfg(any(feature = "pcsc", feature = "ccid"))]
mod status;
mod terminal;
mod trace;
#[cfg(any(feature = "pcsc", feature = "ccid"))]
mod unlock;

use std::process::ExitCode;

use cardunlock_client::failure::exit;
use cardunlock_client::Failure;
use clap::{Parser, Subcommand};

/// Unblock a smart card whose PIN is blocked: PIV with the PUK, GIDS and ISO admin cards with
/// the admin key (online through the unlock server, an operator's response offline, or the key
/// at hand).
///
/// Exit codes: 0 success; 1 the card or the server refused (wrong PUK or response, blocked,
/// wrong answers, locked); 2 bad usage or input; 3 the new PIN breaks the PIN policy (card
/// untouched); 4 no PC/SC service or USB access, no reader or no card; 5 card removed or
/// communication failure mid-flow; 6 the unlock server is unreachable (the card was not changed).
#[derive(Parser, Debug)]
#[command(name = "cardunlock", version, about, long_about)]
struct Cli {
    /// The options of card commands, also accepted before the command name (`cardunlock -r 1
    /// status`); each command lists the ones it uses.
    #[cfg(any(feature = "pcsc", feature = "ccid"))]
    #[command(flatten)]
    before: Before,
    /// Print every APDU to stderr (accepted before the command name).
    #[cfg(not(any(feature = "pcsc", feature = "ccid")))]
    #[arg(short, long, hide = true)]
    verbose: bool,
    /// Machine-readable output (accepted before the command name).
    #[arg(long, hide = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// Card options given before the command name (as before they moved to the commands), hidden
/// from the help: each command shows the ones it uses. Commands that do not use them ignore them.
#[cfg(any(feature = "pcsc", feature = "ccid"))]
#[derive(clap::Args, Debug)]
struct Before {
    #[arg(short, long, hide = true)]
    verbose: bool,
    #[arg(short, long, hide = true)]
    reader: Option<String>,
    #[arg(long, hide = true)]
    wait: Option<u64>,
    #[arg(long, hide = true, value_enum)]
    transport: Option<card::TransportKind>,
    #[arg(long, hide = true)]
    iso_profiles: Option<std::path::PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Online unlock end to end, in-process: a server on a temporary SQLite file, Michael Benson
    /// enrolled with a simulated PIV card whose PIN is blocked, the security questions, the new
    /// PIN. No reader, no setup.
    #[cfg(feature = "demo")]
    Demo(DemoArgs),
    /// Operator: enroll a user and the card in the reader (the unlock server hands out the
    /// card's secrets, the card is personalised with them, the server records the user and
    /// the security questions).
    #[cfg(any(feature = "pcsc", feature = "ccid"))]
    Enroll(operator::enroll::EnrollArgs),
    /// Operator: lift the online-unlock lock of a card after too many wrong answers.
    LiftLock(operator::LiftLockArgs),
    /// List the readers (PC/SC, and USB CCID readers) and whether a card is in each.
    #[cfg(any(feature = "pcsc", feature = "ccid"))]
    Readers(status::ReadersArgs),
    /// Show the card's profile, identity, PIN and PUK tries left and admin key algorithm.
    #[cfg(any(feature = "pcsc", feature = "ccid"))]
    Status(status::StatusArgs),
    /// Unlock the card's blocked PIN and set a new one: online (--server), offline with your
    /// operator (--offline), with the admin key (--admin-key), or a PIV card's PUK.
    #[cfg(any(feature = "pcsc", feature = "ccid"))]
    #[command(visible_alias = "unblock")]
    Unlock(unlock::UnlockArgs),
    /// PIV: authenticate with the management key (mutual: the card proves it holds it too).
    #[cfg(any(feature = "pcsc", feature = "ccid"))]
    AdminAuth(status::AdminAuthArgs),
    /// Operator: the response to an ISO card's offline challenge (computed by the server).
    Respond(operator::RespondArgs),
    /// Operator: read out a PIV card's PUK to its holder (the server marks it read out).
    PukReadout(operator::PukReadoutArgs),
    /// Operator: end the session kept with --keep-session.
    SignOut(operator::SignOutArgs),
    /// Serve a simulated card to pcscd through the vpcd virtual reader (or to QEMU's emulated
    /// USB CCID reader with `--vscard`) until interrupted.
    #[cfg(feature = "demo")]
    SimCard(simcard::SimCardArgs),
}

#[cfg(feature = "demo")]
#[derive(clap::Args, Debug)]
struct DemoArgs {
    /// Run scripted (answers and PIN given), for CI and screenshots.
    #[arg(long)]
    non_interactive: bool,
    /// The first, local demo instead: PIV unblock with the PUK and GIDS with the admin key.
    #[arg(long)]
    local: bool,
    /// Print every APDU of the unlock to stderr (PIN, PUK and key bytes redacted).
    #[arg(short, long)]
    verbose: bool,
    /// After the unlock, keep the demo's server up (operator console, operator commands)
    /// until Enter is pressed.
    #[arg(long, conflicts_with = "local")]
    keep_serving: bool,
}

impl Cli {
    /// `-v` given before the command name.
    #[cfg(feature = "demo")]
    fn verbose_before(&self) -> bool {
        #[cfg(any(feature = "pcsc", feature = "ccid"))]
        return self.before.verbose;
        #[cfg(not(any(feature = "pcsc", feature = "ccid")))]
        return self.verbose;
    }

    /// Whether failures are printed as JSON.
    fn json(&self) -> bool {
        self.json
            || match &self.command {
                #[cfg(any(feature = "pcsc", feature = "ccid"))]
                Command::Readers(a) => a.json,
                #[cfg(any(feature = "pcsc", feature = "ccid"))]
                Command::Status(a) => a.json,
                #[cfg(any(feature = "pcsc", feature = "ccid"))]
                Command::Unlock(a) => a.json,
                #[cfg(any(feature = "pcsc", feature = "ccid"))]
                Command::AdminAuth(a) => a.json,
                Command::Respond(a) => a.json,
                _ => false,
            }
    }
}

/// Folds the options given before the command name into the command's own.
fn merged(mut cli: Cli) -> Cli {
    let json = cli.json;
    #[cfg(any(feature = "pcsc", feature = "ccid"))]
    {
        let b = &cli.before;
        let before = card::CardArgs {
            reader: b.reader.clone(),
            wait: b.wait,
            transport: b.transport,
            verbose: b.verbose,
            iso_profiles: b.iso_profiles.clone(),
        };
        match &mut cli.command {
            Command::Enroll(a) => {
                let card = a.card_mut();
                *card = card.or(&before);
            }
            Command::Status(a) => {
                a.card = a.card.or(&before);
                a.json |= json;
            }
            Command::Unlock(a) => {
                a.card = a.card.or(&before);
                a.json |= json;
            }
            Command::AdminAuth(a) => {
                a.card = a.card.or(&before);
                a.json |= json;
            }
            Command::Readers(a) => {
                a.transport = a.transport.or(before.transport);
                a.json |= json;
            }
            _ => {}
        }
    }
    if let Command::Respond(a) = &mut cli.command {
        a.json |= json;
    }
    cli
}

fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        #[cfg(feature = "demo")]
        Command::Demo(args) if args.local => demo::run_local(args.verbose || cli.verbose_before()),
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo::run_online(
            args.verbose || cli.verbose_before(),
            args.non_interactive,
            args.keep_serving,
        ),
        #[cfg(any(feature = "pcsc", feature = "ccid"))]
        Command::Enroll(args) => operator::enroll::run(args),
        Command::LiftLock(args) => operator::lift_lock(args),
        Command::PukReadout(args) => operator::puk_readout(args),
        Command::SignOut(args) => operator::sign_out(args),
        #[cfg(any(feature = "pcsc", feature = "ccid"))]
        Command::Readers(args) => status::readers(args),
        #[cfg(any(feature = "pcsc", feature = "ccid"))]
        Command::Status(args) => status::status(args),
        #[cfg(any(feature = "pcsc", feature = "ccid"))]
        Command::Unlock(args) => unlock::run(args),
        #[cfg(any(feature = "pcsc", feature = "ccid"))]
        Command::AdminAuth(args) => status::admin_auth(args),
        Command::Respond(args) => operator::respond(args),
        #[cfg(feature = "demo")]
        Command::SimCard(args) => simcard::run(args),
    }
}

/// Secrets clap may have read from the environment: removed once parsed, so nothing this
/// process starts or reads later sees them (the start environment in `/proc` stays: prefer the
/// `-stdin` and `-file` options).
const SECRET_ENV: [&str; 3] = [
    "CARDUNLOCK_PUK",
    "CARDUNLOCK_NEW_PIN",
    "CARDUNLOCK_ADMIN_KEY",
];

fn main() -> ExitCode {
    let cli = merged(Cli::parse());
    // Single-threaded here: nothing else reads the environment.
    for name in SECRET_ENV {
        std::env::remove_var(name);
    }
    match run(&cli) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(failure) => {
            terminal::print_failure(cli.json(), &failure);
            ExitCode::from(failure.exit_code())
        }
    }
}
