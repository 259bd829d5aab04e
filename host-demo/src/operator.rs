//! The operator's commands, clients of the unlock server's operator API (`server/API.md`,
//! "Operator API"): `enroll` (in `operator/enroll.rs`), `lift-lock`, `respond` (an ISO card's
//! offline challenge), `puk-readout` (a PIV card's PUK) and `sign-out`. The workstation holds
//! no master secret and no admin key: the server computes and hands out, and audits each call.
//!
//! Signing in takes the operator's name (`--operator`), password (hidden prompt,
//! `--password-stdin` or an owner-only `--password-file`) and the authenticator app's code
//! (`--totp` or a hidden prompt). `--keep-session` keeps the session's token in an owner-only
//! file so the next commands reuse it; otherwise each command signs out when done.

#[cfg(any(feature = "pcsc", feature = "ccid"))]
pub mod enroll;

use std::path::PathBuf;

use cardunlock_client::api::{read_cert, Api};
use cardunlock_client::operator::{self, session_file, Credentials, Operator};
use cardunlock_client::{Failure, Kind};
use cardunlock_protocol::Profile;
use zeroize::Zeroizing;

use crate::secrets::{SecretArg, Source};

/// Where the operator API is and who signs in.
#[derive(clap::Args, Debug)]
pub struct SignInArgs {
    /// The unlock server, https://host:port.
    #[arg(long, value_name = "URL", env = "CARDUNLOCK_SERVER")]
    server: String,
    /// The server's certificate (PEM file): pinned, no other is accepted.
    #[arg(long, value_name = "PEM", alias = "server-cert")]
    cert: PathBuf,
    /// The operator's name (not needed with a kept session).
    #[arg(long, value_name = "NAME", env = "CARDUNLOCK_OPERATOR")]
    operator: Option<String>,
    /// Read the operator's password from standard input (else it is asked, hidden).
    #[arg(long, conflicts_with = "password_file")]
    password_stdin: bool,
    /// Read the operator's password from a file only its owner can read (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// The current code of the operator's authenticator app (else it is asked, hidden).
    #[arg(long, value_name = "CODE")]
    totp: Option<SecretArg>,
    /// Keep the session for the next commands (an owner-only file in the user's state
    /// directory, `$CARDUNLOCK_STATE_DIR` or `~/.local/state/cardunlock`); `cardunlock
    /// sign-out` ends it.
    #[arg(long)]
    keep_session: bool,
}

impl SignInArgs {
    /// The password's source (for the one-secret-on-standard-input check).
    pub fn password_source(&self) -> Source<'_> {
        Source {
            subject: "password",
            option: "password",
            value: None,
            stdin: self.password_stdin,
            file: self.password_file.as_deref(),
        }
    }

    fn api(&self) -> Result<Api, Failure> {
        let cert = read_cert(&self.cert)?;
        Api::new(&self.server, &cert)
    }
}

/// A signed-in operator for one command, and whether to sign out after it.
pub struct Session {
    operator: Operator,
    /// Signed in for this command only: signed out at the end.
    one_off: bool,
    /// Came from the kept-session file.
    resumed: bool,
}

impl Session {
    /// Reuses the kept session for this server (and operator, if named), else signs in.
    pub fn open(args: &SignInArgs) -> Result<Session, Failure> {
        let api = args.api()?;
        let path = session_file::default_path()?;
        if let Some(saved) = session_file::load(&path, api.base_url())? {
            if args.operator.as_deref().is_none_or(|n| n == saved.operator) {
                return Ok(Session {
                    operator: Operator::resume(api, saved.token, Some(saved.operator)),
                    one_off: false,
                    resumed: true,
                });
            }
        }
        let name = args.operator.clone().ok_or_else(|| {
            Failure::usage(
                "operator",
                "give --operator NAME (no session is kept for this server)",
            )
        })?;
        let password = args.password_source().get()?;
        let totp = match &args.totp {
            Some(code) => Zeroizing::new(code.expose().to_string()),
            None => crate::terminal::hidden("TOTP code").map_err(|f| {
                Failure::new(
                    f.kind,
                    "TOTP code: it is asked at a terminal, and standard input is not one: give \
                     --totp CODE",
                )
            })?,
        };
        let operator = Operator::sign_in(
            api,
            &Credentials {
                name: name.clone(),
                password,
                totp,
            },
        )?;
        if args.keep_session {
            session_file::save(
                &path,
                &session_file::Saved {
                    server: operator.api().base_url().to_string(),
                    operator: name,
                    token: operator.token().clone(),
                },
            )?;
        }
        Ok(Session {
            operator,
            one_off: !args.keep_session,
            resumed: false,
        })
    }

    /// The signed-in operator.
    pub fn operator(&self) -> &Operator {
        &self.operator
    }

    /// Ends the command: a one-off session is signed out; a kept one that the server no
    /// longer takes is forgotten (the next command signs in again).
    pub fn finish<T>(self, result: Result<T, Failure>) -> Result<T, Failure> {
        match &result {
            Err(f) if f.kind == Kind::Unauthorized && self.resumed => {
                let path = session_file::default_path()?;
                session_file::delete(&path)?;
                return Err(Failure::new(
                    Kind::Unauthorized,
                    format!(
                        "{} (the kept session ended and was forgotten: run the command again to \
                         sign in)",
                        f.message
                    ),
                ));
            }
            _ => {}
        }
        if self.one_off {
            // The command's own outcome matters more than a failed sign-out.
            let signed_out = self.operator.sign_out();
            if let (Ok(_), Err(f)) = (&result, signed_out) {
                eprintln!("warning: {f}");
            }
        }
        result
    }
}

#[derive(clap::Args, Debug)]
pub struct CardIdArgs {
    /// Card profile: piv, gids, iso.
    #[arg(long)]
    profile: Profile,
    /// Card identity (hex, as `cardunlock status` shows it).
    #[arg(long)]
    identity: String,
}

#[derive(clap::Args, Debug)]
pub struct LiftLockArgs {
    #[command(flatten)]
    sign_in: SignInArgs,
    #[command(flatten)]
    card: CardIdArgs,
    /// Why the lock is lifted (goes to the audit log).
    #[arg(long)]
    reason: String,
}

pub fn lift_lock(args: &LiftLockArgs) -> Result<(), Failure> {
    let card = operator::card_ref(args.card.profile, &args.card.identity)?;
    let session = Session::open(&args.sign_in)?;
    let done = session.operator().lift_lock(&card, &args.reason);
    session.finish(done)?;
    println!(
        "Online unlock lifted for {} card {}.",
        card.profile, card.identity
    );
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct RespondArgs {
    /// Machine-readable output (JSON on stdout).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    sign_in: SignInArgs,
    /// Card profile (offline responses are for ISO admin cards).
    #[arg(long, default_value = "iso")]
    profile: Profile,
    /// Card identity (hex, as the user's screen or `cardunlock status` shows it).
    #[arg(long)]
    identity: String,
    /// How the caller was identified (goes to the audit log).
    #[arg(long, value_name = "HOW")]
    identity_checked: String,
    /// The challenge the user reads out (hex; spaces allowed).
    challenge: Vec<String>,
}

pub fn respond(args: &RespondArgs) -> Result<(), Failure> {
    let card = operator::card_ref(args.profile, &args.identity)?;
    if args.challenge.is_empty() {
        return Err(Failure::usage(
            "challenge",
            "give the challenge the user reads out",
        ));
    }
    let challenge = args.challenge.join(" ");
    let session = Session::open(&args.sign_in)?;
    let reply = session
        .operator()
        .offline_response(&card, &challenge, &args.identity_checked);
    let reply = session.finish(reply)?;
    #[derive(serde::Serialize)]
    struct Response<'a> {
        response: &'a str,
    }
    let grouped = reply.grouped.expose();
    crate::terminal::print_ok(
        args.json,
        Response { response: grouped },
        &format!("Response: {grouped}"),
    );
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct PukReadoutArgs {
    #[command(flatten)]
    sign_in: SignInArgs,
    /// The PIV card's identity (hex, as `cardunlock status` shows it).
    #[arg(long)]
    identity: String,
    /// How the caller was identified (goes to the audit log).
    #[arg(long, value_name = "HOW")]
    identity_checked: String,
}

pub fn puk_readout(args: &PukReadoutArgs) -> Result<(), Failure> {
    let card = operator::card_ref(Profile::Piv, &args.identity)?;
    let session = Session::open(&args.sign_in)?;
    let reply = session
        .operator()
        .puk_readout(&card, &args.identity_checked);
    let reply = session.finish(reply)?;
    println!(
        "PUK (generation {}): {}",
        reply.generation,
        reply.puk.expose()
    );
    if let Some(other) = &reply.alternative {
        println!("If the card refuses it: {}", other.expose());
    }
    println!("It is rotated away at the card's next online unlock.");
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct SignOutArgs {
    /// The unlock server, https://host:port.
    #[arg(long, value_name = "URL", env = "CARDUNLOCK_SERVER")]
    server: String,
    /// The server's certificate (PEM file): pinned.
    #[arg(long, value_name = "PEM", alias = "server-cert")]
    cert: PathBuf,
}

/// Ends the kept session: on the server, and the file is deleted (even when the server no
/// longer knew the session).
pub fn sign_out(args: &SignOutArgs) -> Result<(), Failure> {
    let cert = read_cert(&args.cert)?;
    let api = Api::new(&args.server, &cert)?;
    let path = session_file::default_path()?;
    let Some(saved) = session_file::load(&path, api.base_url())? else {
        println!("No session is kept for {}.", api.base_url());
        return Ok(());
    };
    let name = saved.operator.clone();
    let ended = Operator::resume(api, saved.token, Some(saved.operator)).sign_out();
    session_file::delete(&path)?;
    match ended {
        Ok(()) => println!("Signed out {name}."),
        Err(f) if f.kind == Kind::Unauthorized => {
            println!("Signed out {name} (the session had already ended).")
        }
        Err(f) => return Err(f),
    }
    Ok(())
}
