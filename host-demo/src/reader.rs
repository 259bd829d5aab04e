//! The commands that talk to a card: readers, status, unblock, unlock, admin-auth. They reach
//! the card through [`crate::card::Card`], over PC/SC or USB CCID alike.

use std::io::{BufRead, Write};

use cardunlock_core::crypto::{AdminKey, Algorithm};
use cardunlock_core::driver::Error;
use cardunlock_core::flow::{
    AdminRequest, AdminResponder, CardStatus, FlowError, LocalKey, Profile, MAX_ANSWER_LEN,
};
use cardunlock_core::iso::IsoProfile;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock::{self, PivUnblockOptions, Select, UnlockError};

#[cfg(feature = "pcsc")]
use cardunlock_pcsc::{Pcsc, PcscError, ReaderChoice, ShareMode};
use embassy_futures::block_on;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::card::{Card, CardDriver, End, LinkError};
use crate::demo::{describe, UNLOCKED};
use crate::respond::{grouped_hex, parse_algorithm, parse_hex};
use crate::secret_arg::SecretArg;
use crate::{exit, json_str, Failure};

/// A PIN or PUK the user typed, wiped when dropped.
type Secret = Zeroizing<String>;

#[derive(clap::Args, Debug)]
pub struct UnblockArgs {
    /// The PUK (prompted, hidden, when absent).
    #[arg(long, env = "CARDUNLOCK_PUK", hide_env_values = true)]
    puk: Option<SecretArg>,
    /// The new PIN (prompted twice, hidden, when absent).
    #[arg(long, env = "CARDUNLOCK_NEW_PIN", hide_env_values = true)]
    new_pin: Option<SecretArg>,
}

#[derive(clap::Args, Debug)]
pub struct UnlockArgs {
    /// The unlock server (online unlock): `https://host:port`.
    #[arg(long, env = "CARDUNLOCK_SERVER", conflicts_with_all = ["offline", "admin_key"])]
    server: Option<String>,
    /// The server's certificate (PEM), pinned: the only one trusted.
    #[arg(long, env = "CARDUNLOCK_SERVER_CERT", requires = "server")]
    server_cert: Option<std::path::PathBuf>,
    /// Answer to a security question (repeat, in order) for scripts; prompted when absent.
    #[arg(long = "answer", requires = "server")]
    answers: Vec<SecretArg>,
    /// Offline mode: show the card's challenge, read the operator's response.
    #[arg(long, conflicts_with = "admin_key")]
    offline: bool,
    /// The admin key (hex), for an operator at the workstation.
    #[arg(long, env = "CARDUNLOCK_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<SecretArg>,
    /// Admin key algorithm of ISO admin cards: 3des, aes128, aes192, aes256.
    #[arg(long, default_value = "3des", value_parser = parse_algorithm)]
    algorithm: Algorithm,
    /// The new PIN (prompted twice, hidden, when absent).
    #[arg(long, env = "CARDUNLOCK_NEW_PIN", hide_env_values = true)]
    new_pin: Option<SecretArg>,
}

/// A PC/SC failure as the user reads it.
#[cfg(feature = "pcsc")]
pub(crate) fn pcsc_failure(e: &PcscError) -> Failure {
    crate::failure::transport(e)
}

fn card_failure<R: std::fmt::Debug + std::fmt::Display>(e: &Error<LinkError, R>) -> Failure {
    crate::failure::card(e, exit::USAGE)
}

fn unlock_failure<R: std::fmt::Debug + std::fmt::Display>(
    e: &UnlockError<LinkError, R>,
) -> Failure {
    crate::failure::unlock(e, exit::USAGE)
}

/// How long to wait for a card (`--wait`); zero: fail at once when there is none.
pub static WAIT: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();

/// Connects to the card in the chosen PC/SC reader (waiting for it with `--wait`).
#[cfg(feature = "pcsc")]
pub(crate) fn connect(
    reader: Option<&str>,
    verbose: bool,
) -> Result<(cardunlock_pcsc::PcscTransport, String), Failure> {
    let pcsc = Pcsc::establish().map_err(|e| pcsc_failure(&e))?;
    let choice = reader
        .map(ReaderChoice::parse)
        .unwrap_or(ReaderChoice::WithCard);
    let wait = WAIT.get().copied().unwrap_or_default();
    let name = match pcsc.find_reader(&choice) {
        Err(PcscError::NoCard { .. }) if !wait.is_zero() => {
            eprintln!(
                "Insert the smart card (waiting up to {} s) ...",
                wait.as_secs()
            );
            let deadline = std::time::Instant::now() + wait;
            loop {
                std::thread::sleep(std::time::Duration::from_millis(200));
                match pcsc.find_reader(&choice) {
                    Err(PcscError::NoCard { .. }) if std::time::Instant::now() < deadline => {
                        continue
                    }
                    other => break other.map_err(|e| pcsc_failure(&e))?,
                }
            }
        }
        other => other.map_err(|e| pcsc_failure(&e))?,
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
                exit::NO_CARD,
                format!("no card was inserted in {name} within {} s", wait.as_secs()),
            ),
            e => pcsc_failure(&e),
        })?;
    }
    let transport = pcsc
        .connect(&name, ShareMode::Shared)
        .map_err(|e| pcsc_failure(&e))?;
    if verbose {
        eprintln!("reader: {name}");
    }
    Ok((transport, name))
}

/// Lists the readers of both transports: the chosen one first (its failure is the command's),
/// the other as far as it is reachable.
pub fn readers(json: bool) -> Result<(), Failure> {
    let chosen = crate::card::TRANSPORT.get().copied().unwrap_or_default();
    #[allow(unused_mut)]
    let mut pcsc_list: Option<Vec<(String, bool)>> = None;
    #[allow(unused_mut)]
    let mut ccid_list: Option<Vec<(String, bool)>> = None;
    #[cfg(feature = "pcsc")]
    {
        let listed = Pcsc::establish().and_then(|p| p.list_readers());
        match listed {
            Ok(list) => {
                pcsc_list = Some(list.into_iter().map(|r| (r.name, r.card_present)).collect())
            }
            Err(e) if chosen == crate::card::TransportKind::Pcsc => return Err(pcsc_failure(&e)),
            Err(_) => {}
        }
    }
    #[cfg(feature = "ccid")]
    match crate::ccid::list() {
        Ok(list) => ccid_list = Some(list),
        Err(e) if chosen == crate::card::TransportKind::Ccid => return Err(e),
        Err(_) => {}
    }
    let _ = chosen;
    if json {
        let items = |list: &[(String, bool)]| -> String {
            let items: Vec<String> = list
                .iter()
                .enumerate()
                .map(|(i, (name, card))| {
                    format!(
                        "{{\"index\":{i},\"name\":{},\"card\":{card}}}",
                        json_str(name)
                    )
                })
                .collect();
            format!("[{}]", items.join(","))
        };
        let mut out = String::from("{\"ok\":true");
        if let Some(list) = &pcsc_list {
            out += &format!(",\"readers\":{}", items(list));
        }
        if let Some(list) = &ccid_list {
            out += &format!(",\"ccid_readers\":{}", items(list));
        }
        println!("{out}}}");
    } else {
        let print = |list: &[(String, bool)]| {
            for (i, (name, card)) in list.iter().enumerate() {
                println!("{i}: {name}  [{}]", if *card { "card" } else { "empty" });
            }
        };
        if let Some(list) = &pcsc_list {
            print(list);
        }
        if let Some(list) = ccid_list.as_deref().filter(|l| !l.is_empty()) {
            println!("USB CCID readers (--transport ccid):");
            print(list);
        }
    }
    Ok(())
}

fn read_status(
    reader: Option<&str>,
    verbose: bool,
    algorithm: Algorithm,
) -> Result<CardStatus, Failure> {
    let iso = IsoProfile {
        algorithm,
        ..IsoProfile::SIM
    };
    Card::connect(reader, verbose)?
        .run(verbose, End::Leave, |driver| {
            block_on(unlock::read_status(driver, iso))
        })?
        .map_err(|e| card_failure(&e))
}

fn status_json(s: &CardStatus) -> String {
    let opt = |v: Option<u8>| v.map_or("null".to_string(), |n| n.to_string());
    format!(
        "{{\"profile\":\"{}\",\"identity\":{},\"pin_tries_left\":{},\"pin_blocked\":{},\"puk_tries_left\":{},\"admin_algorithm\":{}}}",
        s.profile.name(),
        s.identity.map_or("null".into(), |id| json_str(&id.to_string())),
        opt(s.pin_tries_left),
        s.pin_blocked(),
        opt(s.puk_tries_left),
        s.admin_algorithm.map_or("null".into(), |a| json_str(&a.to_string())),
    )
}

pub fn status(reader: Option<&str>, json: bool, verbose: bool) -> Result<(), Failure> {
    let s = read_status(reader, verbose, Algorithm::TripleDes)?;
    if json {
        println!("{{\"ok\":true,\"card\":{}}}", status_json(&s));
    } else {
        println!("{}", describe(&s));
    }
    Ok(())
}

fn prompt_hidden(label: &str) -> Result<Secret, Failure> {
    rpassword::prompt_password(format!("{label}: "))
        .map(Zeroizing::new)
        .map_err(|e| {
            Failure::new(
                exit::USAGE,
                format!("cannot read {label} from the terminal ({e}); pass it as an option"),
            )
        })
}

fn new_pin(given: &Option<SecretArg>) -> Result<(Secret, Secret), Failure> {
    match given {
        Some(p) => Ok((
            Zeroizing::new(p.expose().to_string()),
            Zeroizing::new(p.expose().to_string()),
        )),
        None => {
            println!("Enter new PIN to unlock the smart card.");
            Ok((prompt_hidden("New PIN")?, prompt_hidden("Confirm new PIN")?))
        }
    }
}

/// The refusal for a card whose status says it is not PIV.
fn not_piv(status: &CardStatus) -> Failure {
    Failure::new(
        exit::USAGE,
        format!(
            "this is a {} card: use `cardunlock unlock` (admin key or --offline)",
            status.profile.name().to_uppercase()
        ),
    )
}

/// `cardunlock unblock`: a PIV PIN unblocked with the PUK, over one connection.
///
/// With the PUK and the new PIN given up front, the status read is folded into the unblock: one
/// exclusive session, three APDUs (SELECT, GET METADATA of the PUK, RESET RETRY COUNTER; see
/// BENCHMARKS.md, "APDU audit"). The PIN policy is checked before the first APDU; a wrong PUK
/// reports the tries left from the card's answer to RESET RETRY COUNTER; a card that is not PIV
/// is identified in the same session. When something must be typed, the card's status is shown
/// first (its own session, released while the user types: Windows resets a card whose
/// transaction idles for 5 s), then the unblock runs in a second session on the same connection.
pub fn unblock(
    reader: Option<&str>,
    args: &UnblockArgs,
    json: bool,
    verbose: bool,
) -> Result<(), Failure> {
    let mut card = Card::connect(reader, verbose)?;
    let (puk, pin, confirm, options) = match (&args.puk, &args.new_pin) {
        (Some(puk), Some(pin)) => (
            Zeroizing::new(puk.expose().to_string()),
            Zeroizing::new(pin.expose().to_string()),
            Zeroizing::new(pin.expose().to_string()),
            PivUnblockOptions::LEAN,
        ),
        _ => {
            let status = card
                .run(verbose, End::Leave, |driver| {
                    block_on(unlock::read_status(driver, IsoProfile::SIM))
                })?
                .map_err(|e| card_failure(&e))?;
            if status.profile != Profile::Piv {
                return Err(not_piv(&status));
            }
            if !json {
                println!("{}", describe(&status));
            }
            if status.puk_tries_left == Some(0) {
                return Err(Failure::new(
                    exit::REFUSED,
                    crate::failure::flow_message(&FlowError::PukBlocked),
                ));
            }
            let puk = match &args.puk {
                Some(p) => Zeroizing::new(p.expose().to_string()),
                None => prompt_hidden("PUK")?,
            };
            let (pin, confirm) = new_pin(&args.new_pin)?;
            // The PUK's tries were just read: no second GET METADATA.
            let options = PivUnblockOptions {
                check_puk_first: false,
                skip_verify: true,
            };
            (puk, pin, confirm, options)
        }
    };
    card.run(verbose, End::Leave, |driver| {
        let input = unlock::piv_input(
            &PinPolicy::PIV,
            puk.as_bytes(),
            pin.as_bytes(),
            confirm.as_bytes(),
        );
        match input
            .map_err(UnlockError::from)
            .and_then(|(puk, pin)| block_on(unlock::piv_unblock_with(driver, &puk, &pin, options)))
        {
            Ok(()) => Ok(()),
            // No PIV application: say which card this is, in the same session.
            Err(UnlockError::Card(Error::Flow(FlowError::ApplicationNotFound(_)))) => {
                match block_on(unlock::read_status(driver, IsoProfile::SIM)) {
                    Ok(status) => Err(not_piv(&status)),
                    Err(e) => Err(card_failure(&e)),
                }
            }
            Err(e) => Err(unlock_failure(&e)),
        }
    })??;
    if json {
        println!("{{\"ok\":true,\"message\":{}}}", json_str(UNLOCKED));
    } else {
        println!("{UNLOCKED}");
    }
    Ok(())
}

/// Offline mode: shows the challenge, reads the operator's response from standard input.
struct Operator;

impl AdminResponder for Operator {
    type Error = String;

    async fn answer(
        &mut self,
        request: AdminRequest<'_>,
        out: &mut [u8; MAX_ANSWER_LEN],
    ) -> Result<usize, String> {
        let AdminRequest::Encrypt { algorithm, block } = request else {
            return Err("this card needs a mutual authentication an operator cannot relay by phone; use --admin-key or online unlock".into());
        };
        println!("Challenge: {}", grouped_hex(block));
        println!(
            "Read the challenge to your operator ({algorithm} admin key) and type the response."
        );
        // A mistyped response never reaches the card: ask again (the challenge stays valid
        // until a response is sent).
        let bytes = loop {
            print!("Response: ");
            std::io::stdout().flush().map_err(|e| e.to_string())?;
            let mut line = String::new();
            let n = std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(
                    "no response typed (end of input); nothing was sent to the card".into(),
                );
            }
            match parse_hex(line.trim()) {
                Ok(bytes) if bytes.len() == block.len() => break bytes,
                Ok(_) => println!(
                    "The response must be {} hex digits; type it again.",
                    2 * block.len()
                ),
                Err(e) => println!("That is not a response ({e}); type it again."),
            }
        };
        out[..bytes.len()].copy_from_slice(&bytes);
        Ok(bytes.len())
    }
}

fn unlock_online(
    reader: Option<&str>,
    args: &UnlockArgs,
    server: &str,
    verbose: bool,
) -> Result<(), Failure> {
    let cert_path = args.server_cert.as_deref().ok_or_else(|| {
        Failure::new(
            exit::USAGE,
            "give --server-cert: the server's certificate is pinned",
        )
    })?;
    let api = crate::online::Api::new(server, &crate::online::read_cert(cert_path)?)?;
    let scripted = if args.answers.is_empty() && args.new_pin.is_none() {
        None
    } else {
        let new_pin = args.new_pin.clone().ok_or_else(|| {
            Failure::new(
                exit::USAGE,
                "scripted online unlock needs --new-pin with --answer",
            )
        })?;
        Some(crate::ui::Scripted {
            answers: args
                .answers
                .iter()
                .map(|a| a.expose().to_string())
                .collect(),
            new_pin: new_pin.expose().to_string(),
            show_answers: false,
        })
    };
    Card::connect(reader, verbose)?.run(verbose, End::Reset, |driver| match scripted {
        None => crate::online::unlock(driver, &api, &mut crate::ui::Terminal, args.algorithm),
        Some(mut ui) => crate::online::unlock(driver, &api, &mut ui, args.algorithm),
    })?
}

fn piv_needs_puk() -> Failure {
    Failure::new(
        exit::USAGE,
        "a PIV PIN is unblocked with the PUK: use `cardunlock unblock`",
    )
}

/// The GIDS / ISO admin unblock of a card whose status was read, with the admin key given on the
/// command line or the operator's response typed at the terminal.
fn admin_unblock(
    driver: &mut CardDriver<'_, '_>,
    args: &UnlockArgs,
    iso: IsoProfile<'_>,
    status: &CardStatus,
    pin: &str,
    confirm: &str,
    select: Select,
) -> Result<(), Failure> {
    let (pin, confirm) = (pin.as_bytes(), confirm.as_bytes());
    let policy = &PinPolicy::GIDS;
    let new_pin = unlock::admin_input(policy, pin, confirm).map_err(|e| {
        unlock_failure(&UnlockError::<LinkError, std::convert::Infallible>::from(e))
    })?;
    match (status.profile, &args.admin_key) {
        (Profile::Piv, _) => Err(piv_needs_puk()),
        (Profile::Gids, None) => Err(Failure::new(
            exit::USAGE,
            "GIDS cards need the admin key (--admin-key) or online unlock",
        )),
        (profile, Some(hex)) => {
            let alg = if profile == Profile::Gids {
                Algorithm::TripleDes
            } else {
                args.algorithm
            };
            let key = AdminKey::from_hex(alg, hex.expose())
                .map_err(|e| Failure::new(exit::USAGE, format!("admin key: {e}")))?;
            let mut responder = LocalKey::new(key, rand::rngs::OsRng);
            if profile == Profile::Gids {
                let mut r1 = [0u8; 16];
                rand::thread_rng().fill_bytes(&mut r1);
                block_on(unlock::gids_unblock_with(
                    driver,
                    &new_pin,
                    r1,
                    &mut responder,
                    select,
                ))
            } else {
                block_on(unlock::iso_unblock_with(
                    driver,
                    iso,
                    &new_pin,
                    &mut responder,
                    select,
                ))
            }
            .map_err(|e| unlock_failure(&e))
        }
        (Profile::IsoAdmin, None) => block_on(unlock::iso_unblock_with(
            driver,
            iso,
            &new_pin,
            &mut Operator,
            select,
        ))
        .map_err(|e| unlock_failure(&e)),
    }
}

pub fn unlock(
    reader: Option<&str>,
    args: &UnlockArgs,
    json: bool,
    verbose: bool,
) -> Result<(), Failure> {
    if let Some(server) = &args.server {
        return unlock_online(reader, args, server, verbose);
    }
    if !args.offline && args.admin_key.is_none() {
        return Err(Failure::new(
            exit::USAGE,
            "give --server (online unlock), --offline (operator response) or --admin-key",
        ));
    }
    let iso = IsoProfile {
        algorithm: args.algorithm,
        ..IsoProfile::SIM
    };
    let mut card = Card::connect(reader, verbose)?;
    let result = match &args.new_pin {
        // The new PIN is known: the status read and the unblock share one session, and the
        // unblock starts on the application the status read left selected.
        Some(given) => {
            let pin = Zeroizing::new(given.expose().to_string());
            card.run(verbose, End::Reset, |driver| {
                let (status, selected) = block_on(unlock::read_status_selected(driver, iso))
                    .map_err(|e| card_failure(&e))?;
                if !json {
                    println!("{}", describe(&status));
                }
                admin_unblock(
                    driver,
                    args,
                    iso,
                    &status,
                    &pin,
                    &pin,
                    Select::After(selected),
                )
            })?
        }
        // Prompted: show the status, release the card while the user types, then unblock in a
        // second session on the same connection (SELECT again: another program may have
        // selected something else in between).
        None => {
            let status = card
                .run(verbose, End::Leave, |driver| {
                    block_on(unlock::read_status(driver, iso))
                })?
                .map_err(|e| card_failure(&e))?;
            if !json {
                println!("{}", describe(&status));
            }
            if status.profile == Profile::Piv {
                return Err(piv_needs_puk());
            }
            let (pin, confirm) = new_pin(&args.new_pin)?;
            card.run(verbose, End::Reset, |driver| {
                admin_unblock(
                    driver,
                    args,
                    iso,
                    &status,
                    &pin,
                    &confirm,
                    Select::Application,
                )
            })?
        }
    };
    result?;
    if json {
        println!("{{\"ok\":true,\"message\":{}}}", json_str(UNLOCKED));
    } else {
        println!("{UNLOCKED}");
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct AdminAuthArgs {
    /// The management key (hex).
    #[arg(long, env = "CARDUNLOCK_ADMIN_KEY", hide_env_values = true)]
    key: SecretArg,
    /// Its algorithm: 3des, aes128, aes192, aes256 (default: as the card reports, else 3DES).
    #[arg(long, value_parser = parse_algorithm)]
    algorithm: Option<Algorithm>,
}

pub fn admin_auth(
    reader: Option<&str>,
    args: &AdminAuthArgs,
    json: bool,
    verbose: bool,
) -> Result<(), Failure> {
    let alg = args.algorithm.unwrap_or(Algorithm::TripleDes);
    let key = AdminKey::from_hex(alg, args.key.expose())
        .map_err(|e| Failure::new(exit::USAGE, format!("management key: {e}")))?;
    let mut host_challenge = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut host_challenge);
    let mut flow = cardunlock_core::flow::PivMgmtAuth::new(
        args.algorithm,
        cardunlock_core::piv::AuthMode::Mutual,
        host_challenge,
    );
    let alg = Card::connect(reader, verbose)?
        .run(verbose, End::Leave, |driver| {
            block_on(driver.run(&mut flow, &mut LocalKey::new(key, rand::rngs::OsRng)))
        })?
        .map_err(|e| card_failure(&e))?
        .algorithm();
    let message = format!("Management key accepted ({alg}, mutual authentication: the card proved it holds the key too).");
    if json {
        println!(
            "{{\"ok\":true,\"algorithm\":{},\"message\":{}}}",
            json_str(&alg.to_string()),
            json_str(&message)
        );
    } else {
        println!("{message}");
    }
    Ok(())
}
