//! The server's per-card rules as the person at the workstation meets them, with the real server
//! in-process and simulated ISO admin cards: the daily cap of admin answers ends the unlock with
//! the server's own message (a refusal, not "the server failed"), and the card is not touched.

use cardunlock_client::api::Api;
use cardunlock_client::online::unlock;
use cardunlock_client::{Failure, Kind};
use cardunlock_core::crypto::Algorithm;
use cardunlock_core::driver::Driver;
use cardunlock_core::unlock as core_unlock;
use cardunlock_server::{kdf, Argon2Params, Config, Enrollment, MasterSecret, Server};
use cardunlock_sim::{Config as SimConfig, IsoConfig, SimCard};
use embassy_futures::block_on;

mod common;
use common::Script;

/// A blocked ISO card holding the server's derived admin key; `seed` varies its challenges.
fn iso_card(master: &MasterSecret, seed: u64) -> (SimCard, String) {
    let probe = SimCard::new(SimConfig::Iso(IsoConfig::factory()));
    let mut driver = Driver::new(probe);
    let status = block_on(core_unlock::read_status(
        &mut driver,
        cardunlock_sim::ISO_PROFILE,
    ))
    .unwrap();
    let id = status.identity.unwrap();
    let key = kdf::admin_key(master, "iso", id.as_bytes(), Algorithm::TripleDes, 0);
    let mut config = IsoConfig::factory().blocked();
    config.admin_key = key.expose_bytes().to_vec();
    config.seed = seed;
    let card = SimCard::new(SimConfig::Iso(config));
    (card, id.to_string())
}

/// Runs the online unlock on `card`; the outcome and the card's PIN tries left after.
fn unlock_iso(card: SimCard, api: &Api) -> (Result<(), Failure>, u8) {
    let mut driver = Driver::new(card);
    let mut ui = Script {
        answers: vec!["Rex"],
        pin: "482915",
        ..Script::default()
    };
    let result = unlock(&mut driver, api, &mut ui);
    let tries = driver.transport().pin_tries_left();
    (result, tries)
}

/// Three unlocks of one card in a day work; the fourth is refused with the server's message
/// (kind `Refused`) and the card's PIN stays blocked. Fails if the cap is not enforced or the
/// client turns the refusal into a server failure.
#[test]
fn the_daily_cap_of_admin_answers_reaches_the_user_as_a_clear_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterSecret::generate();
    let mut config = Config::new(dir.path().join("db.sqlite"), dir.path(), master.clone());
    config.argon2 = Argon2Params::TEST_ONLY_FAST;
    assert_eq!(config.limits.admin_answers_per_card_per_day, 3);
    let server = Server::spawn(config).unwrap();
    let api = Api::new(&server.url(), server.cert_pem()).unwrap();
    let (_, identity) = iso_card(&master, 1);
    server
        .enroll(&Enrollment {
            name: "Michael Benson".into(),
            email: "Michael.Benson@demo.local".into(),
            profile: "iso".into(),
            identity_hex: identity,
            algorithm: Algorithm::TripleDes,
            questions: vec![("First pet?".into(), "Rex".into())],
            card_auth_key: None,
        })
        .unwrap();
    for seed in 1..=3 {
        let (card, _) = iso_card(&master, seed);
        let (result, tries) = unlock_iso(card, &api);
        result.unwrap();
        assert_eq!(tries, 3);
    }
    let (card, _) = iso_card(&master, 4);
    let (result, tries) = unlock_iso(card, &api);
    let failure = result.unwrap_err();
    assert_eq!(failure.kind, Kind::Refused, "{}", failure.message);
    assert!(
        failure.message.contains("online unlocks for today"),
        "{}",
        failure.message
    );
    assert_eq!(tries, 0, "the PIN stays blocked");
}
