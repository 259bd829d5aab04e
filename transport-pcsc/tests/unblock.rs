//! Every unblock flow of the core, run through real pcscd against the simulated card in
//! vpcd's reader: what a user's workstation does with a hardware card.

mod common;

use std::sync::Mutex;

use cardunlock_core::crypto::{AdminKey, Algorithm, CryptoError};
use cardunlock_core::driver::Error;
use cardunlock_core::flow::{
    Flow, FlowError, GidsUnblock, IsoUnblock, LocalKey, NoAdmin, PivUnblock, Profile, ReadStatus,
};
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::secret::{NewPin, PinContext, PivPin, PivPuk};
use cardunlock_pcsc::PcscError;
use cardunlock_sim::{Config, GidsConfig, IsoConfig, PivConfig};
use common::{counter_rng, insert};
use embassy_futures::block_on;

fn piv_pin(pin: &[u8]) -> NewPin<PivPin> {
    NewPin::confirmed(&PinPolicy::PIV, pin, pin, PinContext::NONE).unwrap()
}

fn gids_pin(pin: &[u8]) -> NewPin {
    NewPin::confirmed(&PinPolicy::GIDS, pin, pin, PinContext::NONE).unwrap()
}

fn wrong_key() -> AdminKey {
    AdminKey::new(
        Algorithm::TripleDes,
        &[
            0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66,
            0x77, 0x88, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
        ],
    )
    .unwrap()
}

#[test]
fn status_of_a_blocked_piv_card() {
    let card = insert(Config::Piv(PivConfig::factory().blocked()));
    let mut transport = card.connect();
    let status = block_on(transport.run_exclusive(
        &mut ReadStatus::new(cardunlock_sim::ISO_PROFILE),
        &mut NoAdmin,
    ))
    .unwrap();
    assert_eq!(status.profile, Profile::Piv);
    assert_eq!(status.pin_tries_left, Some(0));
    assert!(status.pin_blocked());
    assert_eq!(status.puk_tries_left, Some(3));
    assert_eq!(status.admin_algorithm, Some(Algorithm::TripleDes));
    assert!(status.identity.is_some(), "CHUID GUID read through pcscd");
    // Status queries cost no try.
    assert_eq!(card.sim().pin_tries_left(), 0);
    assert_eq!(card.sim().puk_tries_left(), Some(3));
}

#[test]
fn piv_puk_unblock() {
    let card = insert(Config::Piv(PivConfig::factory().blocked()));
    let mut transport = card.connect();
    let puk = PivPuk::new(b"12345678").unwrap();
    let pin = piv_pin(b"840259");
    let mut flow = PivUnblock::new(&puk, &pin);
    block_on(transport.run_exclusive(&mut flow, &mut NoAdmin)).unwrap();
    {
        let sim = card.sim();
        assert!(sim.pin_is(b"840259"));
        assert_eq!(sim.pin_tries_left(), 3);
        assert_eq!(sim.puk_tries_left(), Some(3));
    }
    // A second connection sees the card unblocked.
    let status = block_on(card.connect().run_exclusive(
        &mut ReadStatus::new(cardunlock_sim::ISO_PROFILE),
        &mut NoAdmin,
    ))
    .unwrap();
    assert!(!status.pin_blocked());
}

#[test]
fn wrong_puk_costs_exactly_one_try() {
    let card = insert(Config::Piv(PivConfig::factory().blocked()));
    let mut transport = card.connect();
    let puk = PivPuk::new(b"87654321").unwrap();
    let pin = piv_pin(b"840259");
    let mut flow = PivUnblock::new(&puk, &pin);
    let err = block_on(transport.run_exclusive(&mut flow, &mut NoAdmin)).unwrap_err();
    assert_eq!(err, Error::Flow(FlowError::WrongPuk { tries_left: 2 }));
    let sim = card.sim();
    assert_eq!(sim.puk_tries_left(), Some(2));
    assert!(sim.pin_is(b"123456"));
    assert_eq!(sim.pin_tries_left(), 0);
}

/// A blocked `config` card reads as `profile` with no PIN try left; `flow`, with the factory
/// admin key held locally, then sets the PIN "k7Rq29xZ" with 3 tries.
fn admin_unblock(config: Config, profile: Profile, flow: &mut impl Flow<Output = ()>) {
    let card = insert(config);
    let mut transport = card.connect();
    let status = block_on(transport.run_exclusive(
        &mut ReadStatus::new(cardunlock_sim::ISO_PROFILE),
        &mut NoAdmin,
    ))
    .unwrap();
    assert_eq!(status.profile, profile);
    assert_eq!(status.pin_tries_left, Some(0));

    let mut key = LocalKey::new(AdminKey::piv_default(), counter_rng());
    block_on(transport.run_exclusive(flow, &mut key)).unwrap();
    let sim = card.sim();
    assert!(sim.pin_is(b"k7Rq29xZ"));
    assert_eq!(sim.pin_tries_left(), 3);
}

/// `flow` with a wrong admin key on a blocked `config` card: the error it ends with, after
/// checking that the PIN is untouched (still blocked) and one admin try is gone.
fn wrong_admin_key(
    config: Config,
    flow: &mut impl Flow<Output = ()>,
) -> Error<PcscError, CryptoError> {
    let card = insert(config);
    let admin_tries = card.sim().admin_tries_left().unwrap();
    let mut transport = card.connect();
    let mut key = LocalKey::new(wrong_key(), counter_rng());
    let err = block_on(transport.run_exclusive(flow, &mut key)).unwrap_err();
    let sim = card.sim();
    assert!(sim.pin_is(b"1234"));
    assert_eq!(sim.pin_tries_left(), 0);
    assert_eq!(sim.admin_tries_left(), Some(admin_tries - 1));
    err
}

#[test]
fn gids_admin_unblock() {
    let pin = gids_pin(b"k7Rq29xZ");
    let config = Config::Gids(GidsConfig::factory().blocked());
    admin_unblock(
        config,
        Profile::Gids,
        &mut GidsUnblock::new(&pin, [0x5A; 16]),
    );
}

#[test]
fn gids_wrong_admin_key_changes_nothing() {
    let pin = gids_pin(b"k7Rq29xZ");
    let config = Config::Gids(GidsConfig::factory().blocked());
    let err = wrong_admin_key(config, &mut GidsUnblock::new(&pin, [0x5A; 16]));
    assert!(
        matches!(
            err,
            Error::Flow(FlowError::AdminAuthFailed { .. } | FlowError::CardAuthFailed)
        ),
        "{err:?}"
    );
}

#[test]
fn iso_admin_unblock() {
    let pin = gids_pin(b"k7Rq29xZ");
    let config = Config::Iso(IsoConfig::factory().blocked());
    admin_unblock(
        config,
        Profile::IsoAdmin,
        &mut IsoUnblock::new(cardunlock_sim::ISO_PROFILE, &pin),
    );
}

#[test]
fn iso_wrong_admin_key_changes_nothing() {
    let pin = gids_pin(b"k7Rq29xZ");
    let config = Config::Iso(IsoConfig::factory().blocked());
    let err = wrong_admin_key(
        config,
        &mut IsoUnblock::new(cardunlock_sim::ISO_PROFILE, &pin),
    );
    assert_eq!(
        err,
        Error::Flow(FlowError::AdminAuthFailed {
            tries_left: Some(9)
        })
    );
}

static TRACE: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn record(line: &str) {
    TRACE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(line.to_owned());
}

#[test]
fn trace_redacts_puk_and_pins() {
    let card = insert(Config::Piv(PivConfig::factory().blocked()));
    let mut transport = card.connect().with_trace(record);
    let puk = PivPuk::new(b"12345678").unwrap();
    let pin = piv_pin(b"840259");
    let mut flow = PivUnblock::new(&puk, &pin);
    block_on(transport.run_exclusive(&mut flow, &mut NoAdmin)).unwrap();
    let lines = TRACE.lock().unwrap().clone();
    let all = lines.join("\n");
    assert!(
        all.contains("> 00 2C 00 80 <16 bytes redacted>"),
        "RESET RETRY COUNTER traced redacted:\n{all}"
    );
    assert!(all.contains("> 00 20 00 80 <8 bytes redacted>"), "{all}");
    assert!(all.contains("< 90 00"), "{all}");
    // Neither the PUK nor the new PIN, in hex or as text.
    for secret in [
        "31 32 33 34 35 36 37 38",
        "38 34 30 32 35 39",
        "12345678",
        "840259",
    ] {
        assert!(!all.contains(secret), "{secret} leaked:\n{all}");
    }
    // One line per command and one per response.
    assert_eq!(lines.len(), 6, "{all}");
}
