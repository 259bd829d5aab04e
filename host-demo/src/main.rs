//! `cardunlock`: unblock a smart card whose PIN is blocked.

mod demo;
mod trace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Unblock a smart card whose PIN is blocked (PIV with the PUK, GIDS and ISO admin cards with the
/// admin key: locally, through an operator, or through the management server).
#[derive(Parser, Debug)]
#[command(name = "cardunlock", version, about)]
struct Cli {
    /// Print every APDU (PIN, PUK and key bytes redacted).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Unblock simulated cards in-process: a PIV card with its PUK, a GIDS card with its admin
    /// key. No reader, no server, no setup.
    Demo,
}

/// Documented exit codes.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The unlock failed (card refused, wrong PUK or response, policy).
    pub const FAILED: u8 = 1;
    /// Bad usage or input.
    pub const USAGE: u8 = 2;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo => demo::run(cli.verbose),
    };
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(exit::FAILED)
        }
    }
}
