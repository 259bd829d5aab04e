//! `cardunlock demo`: unblocks simulated cards in-process and shows every step.

use cardunlock_core::crypto::AdminKey;
use cardunlock_core::driver::Driver;
use cardunlock_core::flow::{CardStatus, LocalKey};
use cardunlock_core::iso::IsoProfile;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock::{self, UnlockError};
use cardunlock_sim::{Config, GidsConfig, PivConfig, SimCard};
use embassy_futures::block_on;
use rand::RngCore;

use crate::trace::{SimTransport, Traced};

pub const UNLOCKED: &str = "The smart card has been unlocked successfully.";

pub fn describe(status: &CardStatus) -> String {
    let mut s = format!("{} card", status.profile.name().to_uppercase());
    if let Some(id) = status.identity {
        s += &format!(", id {id}");
    }
    match status.pin_tries_left {
        Some(0) => s += ", PIN BLOCKED",
        Some(n) => s += &format!(", PIN tries left {n}"),
        None if status.pin_verified => s += ", PIN verified",
        None => {}
    }
    if let Some(n) = status.puk_tries_left {
        s += &format!(", PUK tries left {n}");
    }
    if let Some(alg) = status.admin_algorithm {
        s += &format!(", admin key {alg}");
    }
    s
}

fn status_line(driver: &mut Driver<Traced<SimTransport>>) -> Result<String, String> {
    let status =
        block_on(unlock::read_status(driver, IsoProfile::SIM)).map_err(|e| e.to_string())?;
    Ok(describe(&status))
}

fn new_pin_prompt(pin: &str) {
    println!("  Enter new PIN to unlock the smart card.");
    println!("  New PIN: {}", "*".repeat(pin.len()));
    println!("  Confirm new PIN: {}", "*".repeat(pin.len()));
}

pub fn run(verbose: bool) -> Result<(), String> {
    println!("cardunlock demo: simulated cards in-process (no reader, no server)\n");

    println!("[1/2] PIV card, PIN blocked after 3 wrong PINs; unblock with the PUK");
    let card = SimCard::new(Config::Piv(PivConfig::factory().blocked()));
    let mut driver = Driver::new(Traced {
        inner: SimTransport(card),
        enabled: verbose,
    });
    println!("  card: {}", status_line(&mut driver)?);
    // A PIN the policy refuses never reaches the card.
    new_pin_prompt("123456");
    match block_on(unlock::piv_unblock(
        &mut driver,
        &PinPolicy::PIV,
        b"12345678",
        b"123456",
        b"123456",
    )) {
        Err(UnlockError::Policy(v)) => {
            println!("  New PIN refused before the card was touched:");
            for violation in v.iter() {
                println!("    - {violation}");
            }
        }
        other => return Err(format!("the policy should have refused 123456: {other:?}")),
    }
    new_pin_prompt("840259");
    println!("  PUK: ******** (factory PUK)");
    block_on(unlock::piv_unblock(
        &mut driver,
        &PinPolicy::PIV,
        b"12345678",
        b"840259",
        b"840259",
    ))
    .map_err(|e| e.to_string())?;
    println!("  {UNLOCKED}");
    println!("  card: {}\n", status_line(&mut driver)?);

    println!("[2/2] GIDS card, PIN blocked; unblock with the admin key (mutual authentication)");
    let card = SimCard::new(Config::Gids(GidsConfig::factory().blocked()));
    let mut driver = Driver::new(Traced {
        inner: SimTransport(card),
        enabled: verbose,
    });
    println!("  card: {}", status_line(&mut driver)?);
    new_pin_prompt("Xk9w2");
    let mut r1 = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut r1);
    let mut key = LocalKey::new(AdminKey::piv_default(), |b: &mut [u8]| {
        rand::thread_rng().fill_bytes(b)
    });
    block_on(unlock::gids_unblock(
        &mut driver,
        &PinPolicy::GIDS,
        b"Xk9w2",
        b"Xk9w2",
        r1,
        &mut key,
    ))
    .map_err(|e| e.to_string())?;
    println!("  the card proved it holds the same admin key; PIN reset and verified");
    println!("  {UNLOCKED}");
    println!("  card: {}", status_line(&mut driver)?);
    if !verbose {
        println!("\n(run `cardunlock -v demo` to see every APDU, with PINs and PUKs redacted)");
    }
    Ok(())
}
