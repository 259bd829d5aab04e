//! PIV card presence on the client side, against the simulated card: enrollment reports the key
//! already in 9E and never replaces it, generates one only into an empty slot, prefers the 9E
//! certificate's key; a card whose 9E key is not the enrolled one cannot get to the questions.

use cardunlock_client::api::Api;
use cardunlock_client::enroll::{personalise, Factory, Target};
use cardunlock_client::online::unlock;
use cardunlock_client::Kind;
use cardunlock_core::crypto::Algorithm;
use cardunlock_core::driver::Driver;
use cardunlock_core::unlock as core_unlock;
use cardunlock_server::{Argon2Params, Config, Enrollment, MasterSecret, Server};
use cardunlock_sim::{Config as SimConfig, PivConfig, SimCard};
use embassy_futures::block_on;

mod common;
use common::Script;

/// Personalises the card as an enrollment station does; the 9E key it reports.
fn enroll_card(driver: &mut Driver<SimCard>) -> Option<[u8; 65]> {
    let status = block_on(core_unlock::read_status(
        driver,
        cardunlock_sim::ISO_PROFILE,
    ))
    .unwrap();
    let id = status.identity.unwrap();
    let master = MasterSecret::generate();
    let target = Target {
        puk: Some(cardunlock_server::kdf::piv_puk(&master, id.as_bytes(), 0)),
        admin_key: cardunlock_server::kdf::piv_mgmt_key(&master, id.as_bytes(), 0),
    };
    personalise(driver, &status, None, &Factory::default(), &target).unwrap()
}

/// Proves an issued 9E key is kept: the key reported is the card's own (recovered from its
/// signatures), and the card still holds it afterwards (a GENERATE would have changed it).
#[test]
fn enrollment_reports_the_key_in_9e_and_never_replaces_it() {
    let cfg = PivConfig::factory();
    let before = cfg.card_auth_public_key().unwrap();
    let mut driver = Driver::new(SimCard::new(SimConfig::Piv(cfg)));
    assert_eq!(enroll_card(&mut driver), Some(before));
    assert_eq!(driver.transport().card_auth_public_key(), Some(before));
}

/// Proves an empty 9E slot gets a key, and the key reported is the one generated.
#[test]
fn an_empty_slot_gets_a_key_generated() {
    let mut cfg = PivConfig::factory();
    cfg.card_auth_key = None;
    let mut driver = Driver::new(SimCard::new(SimConfig::Piv(cfg)));
    let reported = enroll_card(&mut driver).unwrap();
    assert_eq!(driver.transport().card_auth_public_key(), Some(reported));
}

/// Proves the certificate's key is taken (parsed as X.509) when 9E holds a certificate: it is
/// not the simulated card's signing key, so a reader of signatures would report another one.
#[test]
fn the_certificate_in_9e_gives_the_key() {
    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["card authentication".into()])
        .unwrap()
        .self_signed(&key_pair)
        .unwrap();
    let mut cfg = PivConfig::factory();
    let own = cfg.card_auth_public_key().unwrap();
    cfg.card_auth_certificate = Some(cert.der().to_vec());
    let mut driver = Driver::new(SimCard::new(SimConfig::Piv(cfg)));
    let reported = enroll_card(&mut driver).unwrap();
    assert_eq!(&reported[..], key_pair.public_key_raw());
    assert_ne!(reported, own);
}

/// Proves a card whose 9E key is not the enrolled one (a copy of the identity on another card)
/// gets no questions: the unlock ends with the offline advice and the card is untouched.
#[test]
fn another_cards_key_gets_no_questions() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(
        dir.path().join("db.sqlite"),
        dir.path(),
        MasterSecret::generate(),
    );
    config.argon2 = Argon2Params::TEST_ONLY_FAST;
    let server = Server::spawn(config).unwrap();
    let genuine = PivConfig::factory();
    let identity = hex::encode(&genuine.guid);
    server
        .enroll(&Enrollment {
            name: "Michael Benson".into(),
            email: "Michael.Benson@demo.local".into(),
            profile: "piv".into(),
            identity_hex: identity,
            algorithm: Algorithm::TripleDes,
            questions: vec![("First pet?".into(), "Rex".into())],
            card_auth_key: genuine.card_auth_public_key().map(|k| k.to_vec()),
        })
        .unwrap();
    let mut copy = PivConfig::factory().blocked();
    copy.card_auth_key = Some([0x33; 32]);
    let mut driver = Driver::new(SimCard::new(SimConfig::Piv(copy)));
    let api = Api::new(&server.url(), server.cert_pem()).unwrap();
    let mut ui = Script {
        answers: vec!["Rex"],
        pin: "840259",
        ..Script::default()
    };
    let failure = unlock(&mut driver, &api, &mut ui).unwrap_err();
    assert_eq!(failure.kind, Kind::NoQuestions, "{}", failure.message);
    assert!(
        failure.message.contains("could not be verified"),
        "{}",
        failure.message
    );
    assert_eq!(driver.transport().pin_tries_left(), 0);
    assert_eq!(driver.transport().puk_tries_left(), Some(3));
}
