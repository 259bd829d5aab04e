//! `cardunlock demo`: unblocks simulated cards in-process and shows every step.

use cardunlock_core::crypto::AdminKey;
use cardunlock_core::driver::Driver;
use cardunlock_core::flow::LocalKey;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock;
use cardunlock_sim::{Config, GidsConfig, PivConfig, SimCard};
use embassy_futures::block_on;
use rand::RngCore;

use cardunlock_client::demo::{Demo, Scenario, DEMO_ANSWERS, DEMO_NEW_PIN, DEMO_USER};
use cardunlock_client::online::{self, Event, Person, Ui};
use cardunlock_client::status::{describe, UNLOCKED};
use cardunlock_client::{failure, Failure, Kind};
use zeroize::Zeroizing;

use crate::terminal::Console;
use crate::trace::Traced;

fn status_line(driver: &mut Driver<Traced<SimCard>>) -> Result<String, Failure> {
    let status = block_on(unlock::read_status(driver, cardunlock_sim::ISO_PROFILE))
        .map_err(|e| failure::card(e, Kind::Refused))?;
    Ok(describe(&status))
}

fn new_pin_prompt(pin: &str) {
    println!("  Enter new PIN to unlock the smart card.");
    println!("  New PIN: {}", "*".repeat(pin.len()));
    println!("  Confirm new PIN: {}", "*".repeat(pin.len()));
}

/// The first demo: local unblocks (PIV with the PUK, GIDS with the admin key).
pub fn run_local(verbose: bool) -> Result<(), Failure> {
    println!("cardunlock demo: simulated cards in-process (no reader, no server)\n");

    println!("[1/2] PIV card, PIN blocked after 3 wrong PINs; unblock with the PUK");
    let card = SimCard::new(Config::Piv(PivConfig::factory().blocked()));
    let mut driver = Driver::new(Traced {
        inner: card,
        enabled: verbose,
    });
    println!("  card: {}", status_line(&mut driver)?);
    // A PIN the policy refuses never reaches the card.
    new_pin_prompt("123456");
    match unlock::piv_input(&PinPolicy::PIV, b"12345678", b"123456", b"123456") {
        Err(unlock::InputError::Policy(v)) => {
            println!("  New PIN refused before the card was touched:");
            for violation in v.iter() {
                println!("    - {violation}");
            }
        }
        _ => {
            return Err(Failure::new(
                Kind::Refused,
                "the PIV PIN policy did not refuse 123456 (an ascending run)",
            ))
        }
    }
    new_pin_prompt("840259");
    println!("  PUK: ******** (factory PUK)");
    let (puk, pin) = unlock::piv_input(&PinPolicy::PIV, b"12345678", b"840259", b"840259")
        .map_err(|e| failure::input(&e))?;
    block_on(unlock::piv_unblock(&mut driver, &puk, &pin))
        .map_err(|e| failure::unlock(e, Kind::Refused))?;
    println!("  {UNLOCKED}");
    println!("  card: {}\n", status_line(&mut driver)?);

    println!("[2/2] GIDS card, PIN blocked; unblock with the admin key (mutual authentication)");
    let card = SimCard::new(Config::Gids(GidsConfig::factory().blocked()));
    let mut driver = Driver::new(Traced {
        inner: card,
        enabled: verbose,
    });
    println!("  card: {}", status_line(&mut driver)?);
    new_pin_prompt("Xk9w2");
    let mut r1 = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut r1);
    let mut key = LocalKey::new(AdminKey::piv_default(), rand::rngs::OsRng);
    let new_pin = unlock::admin_input(&PinPolicy::GIDS, b"Xk9w2", b"Xk9w2")
        .map_err(|e| failure::input(&e))?;
    block_on(unlock::gids_unblock(&mut driver, &new_pin, r1, &mut key))
        .map_err(|e| failure::unlock(e, Kind::Refused))?;
    println!("  the card proved it holds the same admin key; PIN reset and verified");
    println!("  {UNLOCKED}");
    println!("  card: {}", status_line(&mut driver)?);
    if !verbose {
        println!("\n(run `cardunlock -v demo` to see every APDU, with PINs and PUKs redacted)");
    }
    Ok(())
}

/// The online demo: an in-process server on a temporary SQLite file, Michael Benson enrolled
/// with a simulated PIV card whose PIN then got blocked, and the online unlock.
pub fn run_online(verbose: bool, non_interactive: bool, keep_serving: bool) -> Result<(), Failure> {
    let non_interactive = non_interactive || {
        use std::io::IsTerminal;
        let tty = std::io::stdin().is_terminal();
        if !tty {
            println!("(standard input is not a terminal: running the scripted demo)");
        }
        !tty
    };
    println!("cardunlock demo: online unlock, everything in-process (no reader, no setup)");
    let demo = Demo::start(Scenario::Seed)?;
    println!(
        "  server: {} (SQLite {}, self-signed certificate pinned)",
        demo.server_url(),
        demo.database_path().display()
    );
    println!(
        "  operator: enrolled {} with a PIV card; PUK and management key replaced by derived ones",
        DEMO_USER.0
    );
    println!("  user: three wrong PINs later: {}\n", demo.card_status()?);

    let mut driver = Driver::new(Traced {
        inner: demo.card(),
        enabled: verbose,
    });
    let mut console = if non_interactive {
        Console {
            answers: Some(
                DEMO_ANSWERS
                    .iter()
                    .map(|a| Zeroizing::new(a.to_string()))
                    .collect(),
            ),
            new_pin: Some(Zeroizing::new(DEMO_NEW_PIN.to_string())),
            show_answers: true,
            ..Console::default()
        }
    } else {
        println!("(answers: {})", DEMO_ANSWERS.join(", "));
        Console::default()
    };
    // The success line comes last, after what the card and the server say.
    let mut ui = LastWord {
        inner: &mut console,
        unlocked: false,
    };
    online::unlock(&mut driver, demo.api(), &mut ui)?;
    println!("\n  card: {}", demo.card_status()?);
    match demo.puk_agreement()? {
        Some((generation, true)) => println!(
            "  server: PUK rotated to generation {generation} (the card holds it; the PUK this \
             workstation saw is no longer valid)"
        ),
        Some((generation, false)) => {
            return Err(Failure::new(
                Kind::Refused,
                format!("demo: the card does not hold the server's PUK generation {generation}"),
            ))
        }
        None => {}
    }
    help_desk(&demo, keep_serving)?;
    if ui.unlocked {
        println!("\n{UNLOCKED}");
    }
    if keep_serving {
        wait_for_enter();
    }
    Ok(())
}

/// The help desk's side of the same server: the operator console and a demo operator (every
/// role), with the command line an operator would type.
fn help_desk(demo: &Demo, keep_serving: bool) -> Result<(), Failure> {
    let op = demo.add_operator()?;
    let cert = demo.cert_path();
    println!("\n  help desk: operator console {}", demo.console_url());
    println!("  server certificate: {}", cert.display());
    println!("  operator: {}", op.name);
    println!("  password: {}", op.password.as_str());
    println!("  TOTP: {}", op.totp_uri.as_str());
    println!(
        "  e.g.: cardunlock lift-lock --server {} --cert {} --operator {} --profile piv \\\n         \
         --identity {} --reason \"called back on the number on file\"",
        demo.server_url(),
        cert.display(),
        op.name,
        demo.card_identity()
    );
    if !keep_serving {
        println!("  (the server stops with the demo: `demo --keep-serving` keeps it up)");
    }
    Ok(())
}

/// Keeps the demo's server up until Enter (or the end of standard input).
fn wait_for_enter() {
    println!("\nThe demo's server runs until you press Enter.");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

/// Holds back the success line so that it ends the demo's output.
struct LastWord<'a> {
    inner: &'a mut Console,
    unlocked: bool,
}

impl Person for LastWord<'_> {
    fn show(&mut self, event: Event<'_>) {
        match event {
            Event::Unlocked => self.unlocked = true,
            other => self.inner.show(other),
        }
    }

    fn can_retry(&self) -> bool {
        self.inner.can_retry()
    }

    fn new_pin(
        &mut self,
        policy: &PinPolicy<'_>,
    ) -> Result<(Zeroizing<String>, Zeroizing<String>), Failure> {
        self.inner.new_pin(policy)
    }
}

impl Ui for LastWord<'_> {
    fn answers(&mut self, questions: &[String]) -> Result<Vec<Zeroizing<String>>, Failure> {
        self.inner.answers(questions)
    }
}
