//! `cardunlock readers`, `status` and `admin-auth`: what is there, and the management-key check.

use cardunlock_client::card::Held;
use cardunlock_client::failure;
use cardunlock_client::status::describe;
use cardunlock_client::{Failure, Kind};
use cardunlock_core::crypto::{AdminKey, Algorithm};
use cardunlock_core::flow::{CardStatus, LocalKey, PivMgmtAuth, Profile};
use cardunlock_core::piv::AuthMode;
use embassy_futures::block_on;
use rand::RngCore;
use serde::Serialize;

use crate::card::{Card, CardArgs, End, TransportKind};
use crate::secrets::AdminKeyArgs;
use crate::terminal;
use cardunlock_client::iso_profiles::parse_named_algorithm;

/// `readers`' options.
#[derive(clap::Args, Debug)]
pub struct ReadersArgs {
    /// Which readers must be reachable: PC/SC (pcscd, the Windows smart-card service) or USB
    /// CCID readers driven directly (both are listed as far as they can be reached).
    #[arg(long, value_enum, env = "CARDUNLOCK_TRANSPORT")]
    pub transport: Option<TransportKind>,
    /// Machine-readable output (JSON on stdout).
    #[arg(long)]
    pub json: bool,
}

/// `status`' options.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub card: CardArgs,
    /// Machine-readable output (JSON on stdout).
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Reader<'a> {
    index: usize,
    name: &'a str,
    card: bool,
    /// A card is in the reader but does not answer (only written when true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    mute: bool,
}

/// What a reader holds, as the text listing of `readers` labels it.
fn label(held: Held) -> &'static str {
    match held {
        Held::Nothing => "empty",
        Held::Card => "card",
        Held::MuteCard => "card not answering: take it out and insert it again",
    }
}

#[derive(Serialize)]
struct Readers<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    readers: Option<Vec<Reader<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ccid_readers: Option<Vec<Reader<'a>>>,
}

fn listed(list: &Option<Vec<(String, Held)>>) -> Option<Vec<Reader<'_>>> {
    list.as_ref().map(|l| {
        l.iter()
            .enumerate()
            .map(|(index, (name, held))| Reader {
                index,
                name,
                card: *held == Held::Card,
                mute: *held == Held::MuteCard,
            })
            .collect()
    })
}

/// Lists the readers of both transports: the chosen one first (its failure is the command's),
/// the other as far as it is reachable.
pub fn readers(args: &ReadersArgs) -> Result<(), Failure> {
    let chosen = args.transport.unwrap_or_default();
    #[allow(unused_mut)]
    let mut pcsc_list: Option<Vec<(String, Held)>> = None;
    #[allow(unused_mut)]
    let mut ccid_list: Option<Vec<(String, Held)>> = None;
    #[cfg(feature = "pcsc")]
    {
        use cardunlock_pcsc::Pcsc;
        match Pcsc::establish().and_then(|p| p.list_readers()) {
            Ok(list) => {
                pcsc_list = Some(
                    list.into_iter()
                        .map(|r| (r.name, Held::of(r.card_present, r.mute)))
                        .collect(),
                )
            }
            Err(e) if chosen == TransportKind::Pcsc => return Err(failure::transport(&e)),
            Err(_) => {}
        }
    }
    #[cfg(feature = "ccid")]
    match cardunlock_client::card::ccid::list() {
        Ok(list) => {
            ccid_list = Some(
                list.into_iter()
                    .map(|r| {
                        let held = r.held();
                        (r.name, held)
                    })
                    .collect(),
            )
        }
        Err(e) if chosen == TransportKind::Ccid => return Err(e),
        Err(_) => {}
    }
    let _ = chosen;
    if args.json {
        let all = Readers {
            readers: listed(&pcsc_list),
            ccid_readers: listed(&ccid_list),
        };
        terminal::print_ok(true, all, "");
        return Ok(());
    }
    let print = |list: &[(String, Held)]| {
        for (i, (name, held)) in list.iter().enumerate() {
            println!("{i}: {name}  [{}]", label(*held));
        }
    };
    if let Some(list) = &pcsc_list {
        print(list);
    }
    if let Some(list) = ccid_list.as_deref().filter(|l| !l.is_empty()) {
        println!("USB CCID readers (--transport ccid):");
        print(list);
    }
    Ok(())
}

#[derive(Serialize)]
struct StatusJson {
    profile: &'static str,
    identity: Option<String>,
    pin_tries_left: Option<u8>,
    pin_blocked: bool,
    puk_tries_left: Option<u8>,
    admin_algorithm: Option<String>,
}

#[derive(Serialize)]
struct CardJson {
    card: StatusJson,
}

fn read_status(card: &CardArgs) -> Result<CardStatus, Failure> {
    let profiles = card.iso_profiles()?;
    Card::connect(card)?.run(End::Leave, |driver| {
        crate::card::read_status(driver, &profiles, None)
    })?
}

/// `cardunlock status`.
pub fn status(args: &StatusArgs) -> Result<(), Failure> {
    let s = read_status(&args.card)?;
    let json = CardJson {
        card: StatusJson {
            profile: s.profile.name(),
            identity: s.identity.map(|id| id.to_string()),
            pin_tries_left: s.pin_tries_left,
            pin_blocked: s.pin_blocked(),
            puk_tries_left: s.puk_tries_left,
            admin_algorithm: s.admin_algorithm.map(|a| a.to_string()),
        },
    };
    terminal::print_ok(args.json, json, &describe(&s));
    Ok(())
}

/// `admin-auth`'s options.
#[derive(clap::Args, Debug)]
pub struct AdminAuthArgs {
    #[command(flatten)]
    pub card: CardArgs,
    /// Machine-readable output (JSON on stdout).
    #[arg(long)]
    pub json: bool,
    /// The management key (asked hidden when absent).
    #[command(flatten)]
    key: AdminKeyArgs,
    /// Its algorithm: 3des, aes128, aes192, aes256 (default: as the card reports in its
    /// metadata, else 3des).
    #[arg(long, value_parser = parse_named_algorithm)]
    algorithm: Option<Algorithm>,
}

#[derive(Serialize)]
struct Accepted<'a> {
    algorithm: String,
    message: &'a str,
}

/// `cardunlock admin-auth`: PIV management-key mutual authentication. Without `--algorithm`
/// the card's metadata (GET METADATA of key 9B) says which algorithm the key is.
pub fn admin_auth(args: &AdminAuthArgs) -> Result<(), Failure> {
    let key_hex = args.key.source("management key").get()?;
    let profiles = args.card.iso_profiles()?;
    let alg = Card::connect(&args.card)?.run(End::Reset, |driver| {
        let alg = match args.algorithm {
            Some(a) => a,
            None => {
                let status = crate::card::read_status(driver, &profiles, None)?;
                if status.profile != Profile::Piv {
                    return Err(Failure::usage(
                        "admin-auth",
                        format!(
                            "this is a {} card; admin-auth checks a PIV management key",
                            status.profile.name().to_uppercase()
                        ),
                    ));
                }
                status.admin_algorithm.unwrap_or(Algorithm::TripleDes)
            }
        };
        let key = AdminKey::from_hex(alg, &key_hex)
            .map_err(|e| Failure::usage(&format!("management key ({alg})"), e))?;
        let mut host_challenge = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut host_challenge);
        let mut flow = PivMgmtAuth::new(Some(alg), AuthMode::Mutual, host_challenge);
        block_on(driver.run(&mut flow, &mut LocalKey::new(key, rand::rngs::OsRng)))
            .map(|_authenticated| alg)
            .map_err(|e| failure::card(e, Kind::Usage).about("management key"))
    })??;
    let message = format!(
        "Management key accepted ({alg}, mutual authentication: the card proved it holds the \
         key too)."
    );
    terminal::print_ok(
        args.json,
        Accepted {
            algorithm: alg.to_string(),
            message: &message,
        },
        &message,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mute_card_is_listed_as_a_card_that_does_not_answer() {
        let list = Some(vec![
            ("A".to_string(), Held::of(false, false)),
            ("B".to_string(), Held::of(true, false)),
            ("C".to_string(), Held::of(false, true)),
        ]);
        let json = serde_json::to_string(&listed(&list)).unwrap();
        assert_eq!(
            json,
            "[{\"index\":0,\"name\":\"A\",\"card\":false},\
             {\"index\":1,\"name\":\"B\",\"card\":true},\
             {\"index\":2,\"name\":\"C\",\"card\":false,\"mute\":true}]"
        );
        assert_eq!(
            label(Held::MuteCard),
            "card not answering: take it out and insert it again"
        );
        assert_eq!(label(Held::Nothing), "empty");
    }
}
