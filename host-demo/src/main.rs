//! `cardunlock`: unblock a smart card whose PIN is blocked.

#[cfg(any(feature = "pcsc", feature = "ccid"))]
mod card;
#[cfg(feature = "ccid")]
mod ccid;
mod demo;
mod enroll;
mod failure;
mod online;
#[cfg(any(feature = "pcsc", feature = "ccid"))]
mod reader;
mod respond;
mod secret_arg;
mod serve;
mod simcard;
mod trace;
mod ui;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Unblock a smart card whose PIN is blocked: PIV with the PUK, GIDS and ISO admin cards with
/// the admin key (local key, or an operator's response in offline mode).
///
/// Exit codes: 0 success; 1 the card refused (wrong PUK or response, blocked, PIN refused by the
/// card); 2 bad usage or input; 3 the new PIN breaks the PIN policy (card untouched); 4 no PC/SC
/// service or USB access, no reader or no card; 5 card removed or communication failure mid-flow;
/// 6 the unlock server is unreachable (the card was not changed).
#[derive(Parser, Debug)]
#[command(name = "cardunlock", version, about, long_about)]
struct Cli {
    /// Print every APDU to stderr (PIN, PUK and key bytes redacted).
    #[arg(short, long, global = true)]
    verbose: bool,
    /// Reader to use: index (from `cardunlock readers`) or name (or a unique part of it).
    #[arg(short, long, global = true, value_name = "NAME|INDEX")]
    reader: Option<String>,
    /// Machine-readable output (JSON on stdout).
    #[arg(long, global = true)]
    json: bool,
    /// Wait up to this many seconds for a card to be inserted (0: fail at once).
    #[arg(long, global = true, default_value_t = 0, value_name = "SECONDS")]
    wait: u64,
    /// How to reach card readers: PC/SC (pcscd, the Windows smart-card service) or USB CCID
    /// readers driven directly, without PC/SC.
    #[cfg(any(feature = "pcsc", feature = "ccid"))]
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "pcsc",
        env = "CARDUNLOCK_TRANSPORT"
    )]
    transport: card::TransportKind,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Online unlock end to end, in-process: a server on a temporary SQLite file, Michael Benson
    /// enrolled with a simulated PIV card whose PIN is blocked, the security questions, the new
    /// PIN. No reader, no setup.
    Demo(DemoArgs),
    /// Run the online-unlock server (HTTPS, SQLite).
    Serve(serve::ServeArgs),
    /// Operator: enroll a user and the card in the reader (personalises the card with its
    /// derived secrets, stores the security questions).
    #[cfg(any(feature = "pcsc", feature = "ccid"))]
    Enroll(serve::EnrollArgs),
    /// Operator: lift the online-unlock lock of a card after too many wrong answers.
    LiftLock(serve::LiftLockArgs),
    /// List the readers (PC/SC, and USB CCID readers) and whether a card is in each.
    #[cfg(any(feature = "pcsc", feature = "ccid"))]
    Readers,
    /// Show the card's profile, identity, PIN and PUK tries left and admin key algorithm.
    #[cfg(any(feature = "pcsc", feature = "ccid"))]
    Status,
    /// PIV: unblock the PIN with the PUK and set a new PIN.
    #[cfg(any(feature = "pcsc", feature = "ccid"))]
    Unblock(reader::UnblockArgs),
    /// GIDS / ISO admin cards: unblock with the admin key (`--admin-key`) or, with `--offline`,
    /// with the response an operator computes for the card's challenge.
    #[cfg(any(feature = "pcsc", feature = "ccid"))]
    Unlock(reader::UnlockArgs),
    /// PIV: authenticate with the management key (mutual: the card proves it holds it too).
    #[cfg(any(feature = "pcsc", feature = "ccid"))]
    AdminAuth(reader::AdminAuthArgs),
    /// Operator: compute the response to a card's challenge with the admin key.
    Respond(respond::RespondArgs),
    /// Serve a simulated card to pcscd through the vpcd virtual reader (or to QEMU's emulated
    /// USB CCID reader with `--vscard`) until interrupted.
    SimCard(simcard::SimCardArgs),
}

#[derive(clap::Args, Debug)]
struct DemoArgs {
    /// Run scripted (answers and PIN given), for CI and screenshots.
    #[arg(long)]
    non_interactive: bool,
    /// The first, local demo instead: PIV unblock with the PUK and GIDS with the admin key.
    #[arg(long)]
    local: bool,
}

/// Documented exit codes.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The card refused: wrong PUK or response, blocked, new PIN refused by the card.
    pub const REFUSED: u8 = 1;
    /// Bad usage or input.
    pub const USAGE: u8 = 2;
    /// The new PIN breaks the PIN policy; the card was not touched.
    pub const POLICY: u8 = 3;
    /// No PC/SC service or USB access, no reader, no card, reader in use.
    pub const NO_CARD: u8 = 4;
    /// Card removed or communication failure in the middle of a flow.
    pub const COMMUNICATION: u8 = 5;
    /// The unlock server is unreachable or answered nonsense; the card was not changed.
    pub const SERVER: u8 = 6;
}

/// A failure with its exit code and a message for the user.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    #[cfg(any(feature = "pcsc", feature = "ccid"))]
    {
        let _ = reader::WAIT.set(std::time::Duration::from_secs(cli.wait));
        let _ = card::TRANSPORT.set(cli.transport);
    }
    let result = match &cli.command {
        Command::Demo(args) if args.local => {
            demo::run_local(cli.verbose).map_err(|m| Failure::new(exit::REFUSED, m))
        }
        Command::Demo(args) => demo::run_online(cli.verbose, args.non_interactive),
        Command::Serve(args) => serve::serve(args),
        #[cfg(any(feature = "pcsc", feature = "ccid"))]
        Command::Enroll(args) => serve::enroll(cli.reader.as_deref(), args, cli.verbose),
        Command::LiftLock(args) => serve::lift_lock(args),
        #[cfg(any(feature = "pcsc", feature = "ccid"))]
        Command::Readers => reader::readers(cli.json),
        #[cfg(any(feature = "pcsc", feature = "ccid"))]
        Command::Status => reader::status(cli.reader.as_deref(), cli.json, cli.verbose),
        #[cfg(any(feature = "pcsc", feature = "ccid"))]
        Command::Unblock(args) => {
            reader::unblock(cli.reader.as_deref(), args, cli.json, cli.verbose)
        }
        #[cfg(any(feature = "pcsc", feature = "ccid"))]
        Command::Unlock(args) => reader::unlock(cli.reader.as_deref(), args, cli.json, cli.verbose),
        #[cfg(any(feature = "pcsc", feature = "ccid"))]
        Command::AdminAuth(args) => {
            reader::admin_auth(cli.reader.as_deref(), args, cli.json, cli.verbose)
        }
        Command::Respond(args) => respond::run(args, cli.json),
        Command::SimCard(args) => simcard::run(args),
    };
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(failure) => {
            if cli.json {
                println!(
                    "{{\"ok\":false,\"exit\":{},\"error\":{}}}",
                    failure.code,
                    json_str(&failure.message)
                );
            }
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
