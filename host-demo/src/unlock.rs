//! `cardunlock unlock` (alias `unblock`): one verb for a card whose PIN is blocked. The card
//! and the options choose the way:
//!
//! - `--server URL --server-cert PEM`: online (security questions; the server answers the card);
//! - `--offline`: the operator answers the card's challenge (GIDS / ISO), or reads out the PUK
//!   (PIV: told so before anything is asked);
//! - `--admin-key`: GIDS / ISO with the admin key at hand;
//! - otherwise a PIV card's PUK (`--puk`, `--puk-stdin`, `--puk-file`, or asked hidden).

use std::path::PathBuf;

use cardunlock_client::failure::{self, flow_message};
use cardunlock_client::iso_profiles::IsoProfiles;
use cardunlock_client::status::{self, describe, UNLOCKED};
use cardunlock_client::{api, offline, online, Failure, Kind};
use cardunlock_core::crypto::{AdminKey, Algorithm};
use cardunlock_core::driver::Error;
use cardunlock_core::flow::{CardStatus, FlowError, LocalKey, Profile};
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock::{self, PivUnblockOptions, Select, UnlockError};
use embassy_futures::block_on;
use rand::RngCore;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::card::{read_status, read_status_selected, Card, CardArgs, CardDriver, End, LinkError};
use crate::secrets::{one_stdin, AdminKeyArgs, SecretArg, Source};
use crate::terminal::{self, Console};
use cardunlock_client::iso_profiles::parse_named_algorithm;

#[derive(clap::Args, Debug)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub card: CardArgs,
    /// Machine-readable output (JSON on stdout).
    #[arg(long)]
    pub json: bool,
    /// Online unlock with the unlock server: `https://host:port` (plain http is refused).
    #[arg(long, env = "CARDUNLOCK_SERVER", conflicts_with_all = ["offline", "admin_key", "admin_key_stdin", "admin_key_file", "puk", "puk_stdin", "puk_file"])]
    server: Option<String>,
    /// The server's certificate (PEM), pinned: the only one trusted.
    #[arg(long, env = "CARDUNLOCK_SERVER_CERT", requires = "server")]
    server_cert: Option<PathBuf>,
    /// Answer to a security question (repeat, in order; visible to other users of this
    /// machine: prefer --answers-stdin or --answers-file). Asked hidden when absent.
    #[arg(long = "answer", requires = "server", value_name = "ANSWER")]
    answers: Vec<SecretArg>,
    /// Read the answers from standard input, one per line.
    #[arg(long, requires = "server", conflicts_with_all = ["answers", "answers_file"])]
    answers_stdin: bool,
    /// Read the answers from a file only its owner can read, one per line (`-`: standard input).
    #[arg(
        long,
        requires = "server",
        value_name = "FILE",
        conflicts_with = "answers"
    )]
    answers_file: Option<PathBuf>,
    /// Offline: the operator answers the card's challenge (GIDS / ISO) or reads out the PUK (PIV).
    #[arg(long, conflicts_with_all = ["admin_key", "admin_key_stdin", "admin_key_file"])]
    offline: bool,
    /// The admin key, for an operator at the workstation (GIDS / ISO).
    #[command(flatten)]
    key: AdminKeyArgs,
    /// Admin key algorithm of ISO admin cards: 3des, aes128, aes192, aes256 (default: as the
    /// card reports, else 3des).
    #[arg(long, value_parser = parse_named_algorithm)]
    algorithm: Option<Algorithm>,
    /// The PUK (PIV). Asked hidden when absent.
    #[arg(long, env = "CARDUNLOCK_PUK", hide_env_values = true)]
    puk: Option<SecretArg>,
    /// Read the PUK from standard input.
    #[arg(long)]
    puk_stdin: bool,
    /// Read the PUK from a file only its owner can read (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    puk_file: Option<PathBuf>,
    /// The new PIN. Asked twice, hidden, when absent.
    #[arg(long, env = "CARDUNLOCK_NEW_PIN", hide_env_values = true)]
    new_pin: Option<SecretArg>,
    /// Read the new PIN from standard input.
    #[arg(long)]
    new_pin_stdin: bool,
    /// Read the new PIN from a file only its owner can read (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    new_pin_file: Option<PathBuf>,
}

impl UnlockArgs {
    fn puk(&self) -> Source<'_> {
        Source {
            subject: "PUK",
            option: "puk",
            value: self.puk.as_ref(),
            stdin: self.puk_stdin,
            file: self.puk_file.as_deref(),
        }
    }

    fn new_pin(&self) -> Source<'_> {
        Source {
            subject: "new PIN",
            option: "new-pin",
            value: self.new_pin.as_ref(),
            stdin: self.new_pin_stdin,
            file: self.new_pin_file.as_deref(),
        }
    }

    fn admin_key(&self) -> Source<'_> {
        self.key.source("admin key")
    }

    fn answers(&self) -> Source<'_> {
        Source {
            subject: "answers",
            option: "answers",
            value: None,
            stdin: self.answers_stdin,
            file: self.answers_file.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct Unlocked {
    message: &'static str,
}

fn done(json: bool) {
    terminal::print_ok(json, Unlocked { message: UNLOCKED }, UNLOCKED);
}

fn unlock_failure<R: std::fmt::Display>(e: UnlockError<LinkError, R>) -> Failure {
    failure::unlock(e, Kind::Usage)
}

/// What an unlock of a card that is not PIV needs.
fn admin_card_needs(status: &CardStatus) -> Failure {
    Failure::new(
        Kind::Usage,
        format!(
            "this is a {} card: its PIN is unblocked with the admin key: give --server with \
             --server-cert (online), --offline (your operator answers its challenge) or \
             --admin-key",
            status.profile.name().to_uppercase()
        ),
    )
}

/// `cardunlock unlock`.
pub fn run(args: &UnlockArgs) -> Result<(), Failure> {
    let (puk, pin, key, answers) = (args.puk(), args.new_pin(), args.admin_key(), args.answers());
    one_stdin(&[&puk, &pin, &key, &answers])?;
    if let Some(server) = &args.server {
        return online(args, server);
    }
    if args.offline {
        return offline(args);
    }
    if key.given() {
        return with_admin_key(args);
    }
    use std::io::IsTerminal;
    if !puk.given() && !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "unlock",
            "say how: a PIV card's PUK (--puk-stdin, --puk-file; asked at a terminal), --server \
             with --server-cert (online), --offline (your operator) or --admin-key (GIDS / ISO)",
        ));
    }
    with_puk(args)
}

fn online(args: &UnlockArgs, server: &str) -> Result<(), Failure> {
    let cert_path = args.server_cert.as_deref().ok_or_else(|| {
        Failure::usage(
            "--server-cert",
            "give it: the server's certificate is pinned",
        )
    })?;
    // The URL is checked before the certificate is read.
    api::Api::new(server, "").map(|_| ()).or_else(|f| {
        if f.message.starts_with("--server") {
            Err(f)
        } else {
            Ok(())
        }
    })?;
    let api = api::Api::new(server, &api::read_cert(cert_path)?)?;
    let answers = if args.answers.is_empty() {
        args.answers().lines().map_err(|f| f.about("--answers"))?
    } else {
        Some(
            args.answers
                .iter()
                .map(|a| Zeroizing::new(a.expose().to_string()))
                .collect(),
        )
    };
    let mut ui = Console {
        answers,
        new_pin: args.new_pin().get_given()?,
        quiet: args.json,
        ..Console::default()
    };
    let profiles = args.card.iso_profiles()?;
    Card::connect(&args.card)?.run(End::Reset, |driver| {
        online::unlock_with(driver, &api, &mut ui, &profiles, args.algorithm)
    })??;
    if args.json {
        done(true);
    }
    Ok(())
}

fn offline(args: &UnlockArgs) -> Result<(), Failure> {
    let mut ui = Console {
        new_pin: args.new_pin().get_given()?,
        puk: args.puk().get_given()?,
        quiet: args.json,
        ..Console::default()
    };
    let profiles = args.card.iso_profiles()?;
    Card::connect(&args.card)?.run(End::Reset, |driver| {
        offline::unlock_with(driver, &mut ui, &profiles, args.algorithm)
    })??;
    if args.json {
        done(true);
    }
    Ok(())
}

/// GIDS / ISO with the admin key at hand.
fn with_admin_key(args: &UnlockArgs) -> Result<(), Failure> {
    let key_hex = args.admin_key().get()?;
    let given_pin = args.new_pin().get_given()?;
    let profiles = args.card.iso_profiles()?;
    let mut card = Card::connect(&args.card)?;
    match given_pin {
        // The new PIN is known: the status read and the unblock share one session, and the
        // unblock starts on the application the status read left selected.
        Some(pin) => card.run(End::Reset, |driver| {
            let (status, selected) = read_status_selected(driver, &profiles, args.algorithm)?;
            if !args.json {
                println!("{}", describe(&status));
            }
            admin_unblock(
                driver,
                &key_hex,
                (&profiles, args.algorithm),
                &status,
                &pin,
                &pin,
                Select::After(selected),
            )
        })??,
        // Prompted: show the status, release the card while the user types, then unblock in a
        // second session on the same connection (SELECT again: another program may have
        // selected something else in between).
        None => {
            let status = card.run(End::Leave, |driver| {
                read_status(driver, &profiles, args.algorithm)
            })??;
            if !args.json {
                println!("{}", describe(&status));
            }
            if status.profile == Profile::Piv {
                return Err(piv_not_admin());
            }
            let (pin, confirm) = terminal::new_pin_twice()?;
            card.run(End::Reset, |driver| {
                admin_unblock(
                    driver,
                    &key_hex,
                    (&profiles, args.algorithm),
                    &status,
                    &pin,
                    &confirm,
                    Select::Application,
                )
            })??
        }
    }
    done(args.json);
    Ok(())
}

fn piv_not_admin() -> Failure {
    Failure::usage(
        "PIV card",
        "its PIN is unblocked with the PUK, not an admin key: drop --admin-key (the PUK is asked, \
         or give --puk-stdin / --puk-file), or use --server / --offline",
    )
}

/// The GIDS / ISO admin unblock of a card whose status was read, with the admin key.
fn admin_unblock(
    driver: &mut CardDriver<'_, '_>,
    key_hex: &str,
    (profiles, algorithm): (&IsoProfiles, Option<Algorithm>),
    status: &CardStatus,
    pin: &str,
    confirm: &str,
    select: Select,
) -> Result<(), Failure> {
    let policy = &PinPolicy::GIDS;
    // ISO: the profile the card answered on (its algorithm: --algorithm, else the profile's).
    let iso = status
        .iso_profile
        .and_then(|i| profiles.entries().get(i))
        .map(|e| e.profile(algorithm, None));
    let alg = match (status.profile, iso) {
        (Profile::Piv, _) => return Err(piv_not_admin()),
        (Profile::Gids, _) => Algorithm::TripleDes,
        (Profile::IsoAdmin, Some(iso)) => iso.algorithm,
        (Profile::IsoAdmin, None) => return Err(status::unknown_card(profiles)),
    };
    let key = AdminKey::from_hex(alg, key_hex)
        .map_err(|e| Failure::usage(&format!("admin key ({alg})"), e))?;
    let new_pin = unlock::admin_input(policy, pin.as_bytes(), confirm.as_bytes())
        .map_err(|e| failure::input(&e))?;
    let mut responder = LocalKey::new(key, rand::rngs::OsRng);
    if status.profile == Profile::Gids {
        let mut r1 = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut r1);
        block_on(unlock::gids_unblock_with(
            driver,
            &new_pin,
            r1,
            &mut responder,
            select,
        ))
    } else {
        let iso = iso.ok_or_else(|| status::unknown_card(profiles))?;
        block_on(unlock::iso_unblock_with(
            driver,
            iso,
            &new_pin,
            &mut responder,
            select,
        ))
    }
    .map_err(unlock_failure)
}

/// A PIV PIN unblocked with the PUK, over one connection.
///
/// With the PUK and the new PIN given up front, the status read is folded into the unblock: one
/// exclusive session, three APDUs (SELECT, GET METADATA of the PUK, RESET RETRY COUNTER; see
/// BENCHMARKS.md, "APDU audit"). The PIN policy is checked before the first APDU; a wrong PUK
/// reports the tries left from the card's answer to RESET RETRY COUNTER; a card that is not PIV
/// is identified in the same session. When something must be typed, the card's status is shown
/// first (its own session, released while the user types: Windows resets a card whose
/// transaction idles for 5 s), then the unblock runs in a second session on the same connection.
fn with_puk(args: &UnlockArgs) -> Result<(), Failure> {
    let given_puk = args.puk().get_given()?;
    if let Some(puk) = &given_puk {
        failure::check_puk(puk)?;
    }
    let given_pin = args.new_pin().get_given()?;
    let profiles = args.card.iso_profiles()?;
    let mut card = Card::connect(&args.card)?;
    let (puk, pin, confirm, options) = match (given_puk, given_pin) {
        (Some(puk), Some(pin)) => (puk, pin.clone(), pin, PivUnblockOptions::LEAN),
        (given_puk, given_pin) => {
            let status = card.run(End::Leave, |driver| read_status(driver, &profiles, None))??;
            if status.profile != Profile::Piv {
                return Err(admin_card_needs(&status));
            }
            if !args.json {
                println!("{}", describe(&status));
            }
            if status.puk_tries_left == Some(0) {
                return Err(Failure::new(
                    Kind::Refused,
                    flow_message(&FlowError::PukBlocked),
                ));
            }
            let puk = match given_puk {
                Some(p) => p,
                None => args.puk().prompt()?,
            };
            failure::check_puk(&puk)?;
            let (pin, confirm) = match given_pin {
                Some(p) => (p.clone(), p),
                None => terminal::new_pin_twice()?,
            };
            // The PUK's tries were just read: no second GET METADATA.
            let options = PivUnblockOptions::DEFAULT.without_verify();
            (puk, pin, confirm, options)
        }
    };
    card.run(End::Leave, |driver| {
        let (puk, new_pin) = unlock::piv_input(
            &PinPolicy::PIV,
            puk.as_bytes(),
            pin.as_bytes(),
            confirm.as_bytes(),
        )
        .map_err(|e| failure::input(&e))?;
        match block_on(unlock::piv_unblock_with(driver, &puk, &new_pin, options)) {
            Ok(()) => Ok(()),
            // No PIV application: say which card this is, in the same session.
            Err(UnlockError::Card(Error::Flow(FlowError::ApplicationNotFound(_)))) => {
                match read_status(driver, &profiles, None) {
                    Ok(status) => Err(admin_card_needs(&status)),
                    Err(f) => Err(f),
                }
            }
            Err(e) => Err(unlock_failure(e)),
        }
    })??;
    done(args.json);
    Ok(())
}
