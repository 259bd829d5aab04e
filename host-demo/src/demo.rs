//! `cardunlock demo`: unblocks simulated cards in-process and shows every step.

use cardunlock_core::crypto::AdminKey;
use cardunlock_core::driver::Driver;
use cardunlock_core::flow::{CardStatus, LocalKey};
use cardunlock_core::iso::IsoProfile;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock;
use cardunlock_sim::{Config, GidsConfig, PivConfig, SimCard};
use embassy_futures::block_on;
use rand::RngCore;

use crate::trace::Traced;

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

fn status_line(driver: &mut Driver<Traced<SimCard>>) -> Result<String, String> {
    let status =
        block_on(unlock::read_status(driver, IsoProfile::SIM)).map_err(|e| e.to_string())?;
    Ok(describe(&status))
}

fn new_pin_prompt(pin: &str) {
    println!("  Enter new PIN to unlock the smart card.");
    println!("  New PIN: {}", "*".repeat(pin.len()));
    println!("  Confirm new PIN: {}", "*".repeat(pin.len()));
}

/// The first demo: local unblocks (PIV with the PUK, GIDS with the admin key).
pub fn run_local(verbose: bool) -> Result<(), String> {
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
        other => return Err(format!("the policy should have refused 123456: {other:?}")),
    }
    new_pin_prompt("840259");
    println!("  PUK: ******** (factory PUK)");
    let (puk, pin) = unlock::piv_input(&PinPolicy::PIV, b"12345678", b"840259", b"840259")
        .map_err(|e| e.to_string())?;
    block_on(unlock::piv_unblock(&mut driver, &puk, &pin)).map_err(|e| e.to_string())?;
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
    let new_pin =
        unlock::admin_input(&PinPolicy::GIDS, b"Xk9w2", b"Xk9w2").map_err(|e| e.to_string())?;
    block_on(unlock::gids_unblock(&mut driver, &new_pin, r1, &mut key))
        .map_err(|e| e.to_string())?;
    println!("  the card proved it holds the same admin key; PIN reset and verified");
    println!("  {UNLOCKED}");
    println!("  card: {}", status_line(&mut driver)?);
    if !verbose {
        println!("\n(run `cardunlock -v demo` to see every APDU, with PINs and PUKs redacted)");
    }
    Ok(())
}

/// The online demo: an in-process server on a temporary SQLite file, Michael Benson enrolled
/// with a simulated PIV card whose PIN then gets blocked, and the online unlock.
pub fn run_online(verbose: bool, non_interactive: bool) -> Result<(), crate::Failure> {
    use crate::{exit, Failure};
    use cardunlock_server::{
        Argon2Params, Config as ServerConfig, Enrollment, MasterSecret, Server,
    };

    let fail = |m: String| Failure::new(exit::REFUSED, m);
    let non_interactive = non_interactive || {
        use std::io::IsTerminal;
        let tty = std::io::stdin().is_terminal();
        if !tty {
            println!("(standard input is not a terminal: running the scripted demo)");
        }
        !tty
    };
    let dir = tempfile::tempdir().map_err(|e| fail(format!("temporary directory: {e}")))?;
    let master = MasterSecret::generate();
    println!("cardunlock demo: online unlock, everything in-process (no reader, no setup)");
    let config = ServerConfig {
        db_path: dir.path().join("cardunlock.db"),
        master: master.clone(),
        bind: "127.0.0.1:0".parse().map_err(|e| fail(format!("{e}")))?,
        state_dir: dir.path().to_path_buf(),
        max_attempts: 3,
        session_ttl: std::time::Duration::from_secs(300),
        argon2: Argon2Params::default(),
    };
    let server = Server::spawn(config).map_err(|e| fail(format!("starting the server: {e}")))?;
    println!(
        "  server: {} (SQLite {}, self-signed certificate pinned)",
        server.url(),
        dir.path().join("cardunlock.db").display()
    );

    // Operator: enroll the user with a factory-fresh card.
    let card = SimCard::new(Config::Piv(PivConfig::factory()));
    let mut driver = Driver::new(Traced {
        inner: card,
        enabled: verbose,
    });
    let status = block_on(unlock::read_status(&mut driver, IsoProfile::SIM))
        .map_err(|e| fail(e.to_string()))?;
    crate::enroll::personalise(
        &mut driver,
        &status,
        &master,
        &crate::enroll::Factory::default(),
        cardunlock_core::crypto::Algorithm::TripleDes,
    )?;
    let identity = status.identity.map(|i| i.to_string()).unwrap_or_default();
    let enrollment = Enrollment {
        name: "Michael Benson".into(),
        email: "Michael.Benson@demo.local".into(),
        profile: "piv".into(),
        identity_hex: identity.clone(),
        algorithm: cardunlock_core::crypto::Algorithm::TripleDes,
        questions: DEMO_QUESTIONS
            .iter()
            .map(|(q, a)| (q.to_string(), a.to_string()))
            .collect(),
    };
    server
        .store()
        .enroll(&enrollment, &Argon2Params::default())
        .map_err(|e| fail(format!("enrollment: {e}")))?;
    println!("  operator: enrolled Michael Benson with PIV card {identity}; PUK and management key replaced by derived ones");

    // The user blocks the PIN.
    for _ in 0..3 {
        let wrong = cardunlock_core::secret::PivReference::pin(b"000000")
            .map_err(|e| fail(format!("{e:?}")))?;
        let _ = block_on(driver.transceive(&cardunlock_core::piv::select()));
        let _ = block_on(driver.transceive(&cardunlock_core::piv::verify_pin(&wrong)));
    }
    let status = block_on(unlock::read_status(&mut driver, IsoProfile::SIM))
        .map_err(|e| fail(e.to_string()))?;
    println!("  user: three wrong PINs later: {}\n", describe(&status));

    let api = crate::online::Api::new(&server.url(), server.cert_pem())?;
    let result = if non_interactive {
        let mut ui = crate::ui::Scripted {
            answers: DEMO_QUESTIONS.iter().map(|(_, a)| a.to_string()).collect(),
            new_pin: "840259".into(),
            show_answers: true,
        };
        crate::online::unlock(
            &mut driver,
            &api,
            &mut ui,
            cardunlock_core::crypto::Algorithm::TripleDes,
        )
    } else {
        println!(
            "(answers: {})",
            DEMO_QUESTIONS
                .iter()
                .map(|(_, a)| *a)
                .collect::<Vec<_>>()
                .join(", ")
        );
        crate::online::unlock(
            &mut driver,
            &api,
            &mut crate::ui::Terminal,
            cardunlock_core::crypto::Algorithm::TripleDes,
        )
    };
    result?;
    let status = block_on(unlock::read_status(&mut driver, IsoProfile::SIM))
        .map_err(|e| fail(e.to_string()))?;
    println!("\n  card: {}", describe(&status));
    let record = server
        .store()
        .card("piv", &identity)
        .map_err(|e| fail(format!("{e}")))?;
    if let Some(r) = record {
        let puk = cardunlock_server::kdf::piv_puk(
            &master,
            status
                .identity
                .map(|i| i.as_bytes().to_vec())
                .unwrap_or_default()
                .as_slice(),
            r.puk_gen,
        );
        let on_card = driver.transport().inner.puk_is(puk.as_bytes());
        println!(
            "  server: PUK rotated to generation {} ({}; the PUK this workstation saw is no longer valid)",
            r.puk_gen,
            if on_card { "the card holds it" } else { "MISMATCH: the card does not hold it" }
        );
        if !on_card {
            return Err(fail(
                "the card's PUK is not the server's current generation".into(),
            ));
        }
    }
    server.shutdown();
    Ok(())
}

/// The demo user's security questions and answers.
pub const DEMO_QUESTIONS: [(&str, &str); 2] = [
    ("What was the name of your first pet?", "Rex"),
    ("In which city were you born?", "Springfield"),
];
