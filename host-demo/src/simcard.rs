//! `cardunlock sim-card`: serves a simulated card to pcscd through vpcd, or to QEMU's emulated
//! USB CCID reader through its `ccid-card-passthru` socket (`--vscard`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cardunlock_sim::{Config, GidsConfig, IsoConfig, PivConfig, SimCard};

use cardunlock_client::{Failure, Kind};

/// The card profile to simulate.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ProfileArg {
    Piv,
    Gids,
    Iso,
}

impl std::fmt::Display for ProfileArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Piv => "PIV",
            Self::Gids => "GIDS",
            Self::Iso => "ISO admin",
        })
    }
}

#[derive(clap::Args, Debug)]
pub struct SimCardArgs {
    /// Card profile.
    #[arg(long, value_enum, default_value = "piv")]
    profile: ProfileArg,
    /// Start with the PIN blocked.
    #[arg(long)]
    blocked: bool,
    /// vpcd port: 35963 is reader "Virtual PCD 00 00", 35964 "Virtual PCD 00 01".
    #[arg(long, default_value_t = 35963)]
    port: u16,
    /// Put the card into QEMU's emulated USB CCID reader instead of vpcd: the unix socket of
    /// QEMU's `-chardev socket,server=on,path=SOCKET` behind `-device ccid-card-passthru`.
    #[arg(long, value_name = "SOCKET", conflicts_with = "port")]
    vscard: Option<std::path::PathBuf>,
    /// With --vscard: answer whole APDUs as SPICE smart-card passthrough does (a case 4
    /// command gets its data and 90 00, not 61 XX) instead of as a T=0 card.
    #[arg(long, requires = "vscard")]
    apdu_level: bool,
    /// PIV: the management key is AES-192 (a YubiKey 5.7's factory key: the same 24 bytes).
    #[arg(long)]
    mgmt_aes192: bool,
    /// PIV: PUK tries left (0 to 3; 3 by default).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=3))]
    puk_tries_left: Option<u8>,
    /// ISO: the application's AID (hex, 1 to 16 bytes) instead of the simulator's own: a
    /// vendor's card that only a configured ISO profile reaches.
    #[arg(long, value_name = "HEX", value_parser = parse_aid)]
    iso_aid: Option<Aid>,
}

/// An application identifier as given on the command line.
#[derive(Clone, Debug)]
struct Aid(Vec<u8>);

/// Why `--iso-aid` is refused.
#[derive(Debug)]
enum AidError {
    Hex(cardunlock_client::hex::HexError),
    Length(usize),
}

impl std::fmt::Display for AidError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hex(e) => e.fmt(f),
            Self::Length(n) => write!(f, "an AID has 1 to 16 bytes, this one {n}"),
        }
    }
}

impl std::error::Error for AidError {}

fn parse_aid(s: &str) -> Result<Aid, AidError> {
    let aid = cardunlock_client::hex::parse(s).map_err(AidError::Hex)?;
    if (1..=16).contains(&aid.len()) {
        Ok(Aid(aid))
    } else {
        Err(AidError::Length(aid.len()))
    }
}

fn iso(args: &SimCardArgs) -> IsoConfig {
    let mut c = IsoConfig::factory();
    if args.blocked {
        c = c.blocked();
    }
    if let Some(Aid(aid)) = &args.iso_aid {
        c = c.with_aid(aid);
    }
    c
}

fn piv(args: &SimCardArgs) -> PivConfig {
    let mut c = PivConfig::factory();
    if args.blocked {
        c = c.blocked();
    }
    if args.mgmt_aes192 {
        c.mgmt_algorithm = cardunlock_sim::Algorithm::Aes192;
    }
    if let Some(n) = args.puk_tries_left {
        c.puk_tries_left = n;
    }
    c
}

fn card(args: &SimCardArgs) -> SimCard {
    let (profile, blocked) = (args.profile, args.blocked);
    SimCard::new(match (profile, blocked) {
        (ProfileArg::Piv, _) => Config::Piv(piv(args)),
        (ProfileArg::Gids, false) => Config::Gids(GidsConfig::factory()),
        (ProfileArg::Gids, true) => Config::Gids(GidsConfig::factory().blocked()),
        (ProfileArg::Iso, _) => Config::Iso(iso(args)),
    })
}

pub fn run(args: &SimCardArgs) -> Result<(), Failure> {
    let card = card(args);
    if let Some(socket) = &args.vscard {
        return run_vscard(card, socket, args);
    }
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    let stop = Arc::new(AtomicBool::new(false));
    eprintln!(
        "sim-card: serving a {} card{} to vpcd at {addr}",
        args.profile,
        if args.blocked { " (PIN blocked)" } else { "" }
    );
    let mut card = card;
    cardunlock_virtual_readers::serve(&mut card, addr, &stop).map_err(|e| {
        Failure::new(
            Kind::NoCard,
            format!("vpcd at {addr}: {e} (is pcscd with vsmartcard-vpcd running?)"),
        )
    })?;
    stop.store(true, Ordering::SeqCst);
    Ok(())
}

/// QEMU's ccid-card-passthru is a unix socket: not on Windows.
#[cfg(not(unix))]
fn run_vscard(_: SimCard, _: &std::path::Path, _: &SimCardArgs) -> Result<(), Failure> {
    Err(Failure::new(
        Kind::Usage,
        "--vscard: QEMU's unix socket exists on Unix only",
    ))
}

/// QEMU's reader speaks T=0 only: the card is presented with a T=0 ATR (same historical
/// bytes); its APDU behaviour is unchanged.
#[cfg(unix)]
fn run_vscard(card: SimCard, socket: &std::path::Path, args: &SimCardArgs) -> Result<(), Failure> {
    let stop = AtomicBool::new(false);
    let mut card: Box<dyn cardunlock_virtual_readers::VirtualCard> = if args.apdu_level {
        Box::new(cardunlock_virtual_readers::vscard::ApduLevel(card))
    } else {
        Box::new(cardunlock_virtual_readers::vscard::T0Card::new(card))
    };
    let atr = card.atr();
    eprintln!(
        "sim-card: serving a {} card{} to QEMU's ccid-card-passthru at {} (T=0 ATR {}{})",
        args.profile,
        if args.blocked { " (PIN blocked)" } else { "" },
        socket.display(),
        atr.iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(" "),
        if args.apdu_level {
            "; whole APDUs, as SPICE passthrough"
        } else {
            ""
        }
    );
    cardunlock_virtual_readers::vscard::serve(card.as_mut(), socket, &stop).map_err(|e| {
        Failure::new(
            Kind::NoCard,
            format!("{e} (is QEMU running with -device ccid-card-passthru on that socket?)"),
        )
    })
}
