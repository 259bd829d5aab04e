//! GIDS and ISO admin-key unblocks against the simulated card: every algorithm, wrong keys,
//! forged card cryptograms, blocked admin keys.

use cardunlock_core::crypto::{AdminKey, Algorithm};
use cardunlock_core::driver::{Driver, Error};
use cardunlock_core::flow::{FlowError, GidsUnblock, LocalKey, Profile};
use cardunlock_core::iso::IsoProfile;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock::{self, UnlockError};
use cardunlock_sim::{Config, GidsConfig, IsoConfig, SimCard};
use cardunlock_tests::{
    fill_counter, shared, transport, Fault, Seen, SharedCard, FORGED_GIDS_CRYPTOGRAM,
};
use embassy_futures::block_on;

const R1: [u8; 16] = *b"host-random-R1!!";

fn gids_card(config: GidsConfig) -> SharedCard {
    shared(SimCard::new(Config::Gids(config)))
}

fn local(key: AdminKey) -> LocalKey<cardunlock_sim::TestRng> {
    LocalKey::new(key, fill_counter(9))
}

#[test]
fn gids_status_and_admin_unblock() {
    let card = gids_card(GidsConfig::factory().blocked());
    let mut driver = Driver::new(transport(&card));
    let status = block_on(unlock::read_status(
        &mut driver,
        cardunlock_sim::ISO_PROFILE,
    ))
    .unwrap();
    assert_eq!(status.profile, Profile::Gids);
    assert_eq!(
        (status.pin_tries_left, status.pin_max_tries),
        (Some(0), Some(3))
    );
    assert!(status.identity.is_some());

    let mut key = local(AdminKey::piv_default());
    block_on(unlock::gids_unblock(
        &mut driver,
        &unlock::admin_input(&PinPolicy::GIDS, b"Xk9w2", b"Xk9w2").unwrap(),
        R1,
        &mut key,
    ))
    .unwrap();
    let c = card.lock();
    assert!(c.pin_is(b"Xk9w2"));
    assert_eq!(c.pin_tries_left(), 3);
}

#[test]
fn gids_wrong_admin_key_changes_nothing_and_counts_down() {
    let card = gids_card(GidsConfig::factory().blocked());
    let before = card.lock().admin_tries_left().unwrap();
    let mut driver = Driver::new(transport(&card));
    let wrong = AdminKey::new(Algorithm::TripleDes, &[0x42; 24]).unwrap();
    let got = block_on(unlock::gids_unblock(
        &mut driver,
        &unlock::admin_input(&PinPolicy::GIDS, b"Xk9w2", b"Xk9w2").unwrap(),
        R1,
        &mut local(wrong),
    ));
    assert_eq!(
        got,
        Err(UnlockError::Card(Error::Flow(FlowError::AdminAuthFailed {
            tries_left: Some(before - 1)
        })))
    );
    assert!(card.lock().pin_is(b"1234"));
    assert!(
        !driver.transport().seen().iter().any(|c| c[1] == 0x2C),
        "RESET RETRY COUNTER was sent"
    );
}

#[test]
fn gids_blocked_admin_key() {
    let mut config = GidsConfig::factory().blocked();
    config.admin_tries_left = 0;
    let card = gids_card(config);
    let mut driver = Driver::new(transport(&card));
    let got = block_on(unlock::gids_unblock(
        &mut driver,
        &unlock::admin_input(&PinPolicy::GIDS, b"Xk9w2", b"Xk9w2").unwrap(),
        R1,
        &mut local(AdminKey::piv_default()),
    ));
    assert_eq!(
        got,
        Err(UnlockError::Card(Error::Flow(FlowError::AdminBlocked)))
    );
}

#[test]
fn gids_forged_card_cryptogram_stops_before_the_pin_is_sent() {
    let card = gids_card(GidsConfig::factory().blocked());
    // SELECT, MSE SET, GA step 1, GA step 2 (answer replaced by a well-formed forgery).
    let mut driver =
        Driver::new(transport(&card).with_fault(3, Fault::Garbage(&FORGED_GIDS_CRYPTOGRAM)));
    let got = block_on(unlock::gids_unblock(
        &mut driver,
        &unlock::admin_input(&PinPolicy::GIDS, b"Xk9w2", b"Xk9w2").unwrap(),
        R1,
        &mut local(AdminKey::piv_default()),
    ));
    assert_eq!(
        got,
        Err(UnlockError::Card(Error::Flow(FlowError::CardAuthFailed)))
    );
    assert!(!driver.transport().seen().iter().any(|c| c[1] == 0x2C));
    assert!(card.lock().pin_is(b"1234"));
}

fn iso_card(alg: Algorithm, key: &[u8]) -> SharedCard {
    let mut config = IsoConfig::factory().blocked();
    config.admin_algorithm = match alg {
        Algorithm::TripleDes => cardunlock_sim::Algorithm::TripleDes,
        Algorithm::Aes128 => cardunlock_sim::Algorithm::Aes128,
        Algorithm::Aes192 => cardunlock_sim::Algorithm::Aes192,
        Algorithm::Aes256 => cardunlock_sim::Algorithm::Aes256,
    };
    config.admin_key = key.to_vec();
    shared(SimCard::new(Config::Iso(config)))
}

#[test]
fn iso_unblock_in_every_algorithm_and_wrong_keys_fail() {
    for alg in [
        Algorithm::TripleDes,
        Algorithm::Aes128,
        Algorithm::Aes192,
        Algorithm::Aes256,
    ] {
        let key: Vec<u8> = (0..alg.key_len() as u8)
            .map(|i| i.wrapping_mul(37) ^ 0x5C)
            .collect();
        let profile = IsoProfile {
            algorithm: alg,
            ..cardunlock_sim::ISO_PROFILE
        };

        let card = iso_card(alg, &key);
        let mut driver = Driver::new(transport(&card));
        let status = block_on(unlock::read_status(&mut driver, profile)).unwrap();
        assert_eq!(
            (status.profile, status.pin_tries_left),
            (Profile::IsoAdmin, Some(0))
        );
        let mut responder = local(AdminKey::new(alg, &key).unwrap());
        block_on(unlock::iso_unblock(
            &mut driver,
            profile,
            &unlock::admin_input(&PinPolicy::GIDS, b"Tq83z", b"Tq83z").unwrap(),
            &mut responder,
        ))
        .unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
        assert!(card.lock().pin_is(b"Tq83z"), "{alg:?}");

        let card = iso_card(alg, &key);
        let mut driver = Driver::new(transport(&card));
        let mut wrong_key = key.clone();
        wrong_key[5] ^= 0x10;
        let mut responder = local(AdminKey::new(alg, &wrong_key).unwrap());
        let got = block_on(unlock::iso_unblock(
            &mut driver,
            profile,
            &unlock::admin_input(&PinPolicy::GIDS, b"Tq83z", b"Tq83z").unwrap(),
            &mut responder,
        ));
        assert!(
            matches!(
                got,
                Err(UnlockError::Card(Error::Flow(
                    FlowError::AdminAuthFailed { .. }
                )))
            ),
            "{alg:?}: {got:?}"
        );
        assert!(card.lock().pin_is(b"1234"), "{alg:?}");
    }
}

#[test]
fn gids_admin_key_change_then_unblock_with_the_new_key_only() {
    use cardunlock_core::flow::GidsChangeAdminKey;
    let card = gids_card(GidsConfig::factory().blocked());
    let mut driver = Driver::new(transport(&card));
    let new_key = AdminKey::new(Algorithm::TripleDes, &[0x5A; 8].repeat(3)).unwrap();
    block_on(driver.run(
        &mut GidsChangeAdminKey::new(&new_key, R1),
        &mut local(AdminKey::piv_default()),
    ))
    .unwrap();
    assert!(
        card.lock().pin_is(b"1234"),
        "the PIN is not touched by a key change"
    );
    // The factory key no longer works; the new one does.
    let got = block_on(unlock::gids_unblock(
        &mut driver,
        &unlock::admin_input(&PinPolicy::GIDS, b"Xk9w2", b"Xk9w2").unwrap(),
        R1,
        &mut local(AdminKey::piv_default()),
    ));
    assert!(
        matches!(
            got,
            Err(UnlockError::Card(Error::Flow(
                FlowError::AdminAuthFailed { .. }
            )))
        ),
        "{got:?}"
    );
    block_on(unlock::gids_unblock(
        &mut driver,
        &unlock::admin_input(&PinPolicy::GIDS, b"Xk9w2", b"Xk9w2").unwrap(),
        R1,
        &mut local(new_key),
    ))
    .unwrap();
    assert!(card.lock().pin_is(b"Xk9w2"));
}

#[test]
fn iso_admin_key_change_in_every_algorithm() {
    use cardunlock_core::flow::IsoChangeAdminKey;
    for alg in [
        Algorithm::TripleDes,
        Algorithm::Aes128,
        Algorithm::Aes192,
        Algorithm::Aes256,
    ] {
        let old: Vec<u8> = (0..alg.key_len() as u8).collect();
        let new: Vec<u8> = (0..alg.key_len() as u8).map(|b| b ^ 0xA5).collect();
        let card = iso_card(alg, &old);
        let profile = IsoProfile {
            algorithm: alg,
            ..cardunlock_sim::ISO_PROFILE
        };
        let mut driver = Driver::new(transport(&card));
        let new_key = AdminKey::new(alg, &new).unwrap();
        let mut flow = IsoChangeAdminKey::new(profile, &new_key);
        block_on(driver.run(&mut flow, &mut local(AdminKey::new(alg, &old).unwrap()))).unwrap();
        assert!(card.lock().pin_is(b"1234"));
        let mut with_new = local(AdminKey::new(alg, &new).unwrap());
        block_on(unlock::iso_unblock(
            &mut driver,
            profile,
            &unlock::admin_input(&PinPolicy::GIDS, b"Tq83z", b"Tq83z").unwrap(),
            &mut with_new,
        ))
        .unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
    }
}

#[test]
fn admin_key_change_with_the_wrong_current_key_changes_nothing() {
    use cardunlock_core::flow::IsoChangeAdminKey;
    let card = iso_card(Algorithm::TripleDes, AdminKey::piv_default().expose_bytes());
    let mut driver = Driver::new(transport(&card));
    let new_key = AdminKey::new(Algorithm::TripleDes, &[0x77; 24]).unwrap();
    let wrong = AdminKey::new(Algorithm::TripleDes, &[0x42; 24]).unwrap();
    let mut flow = IsoChangeAdminKey::new(cardunlock_sim::ISO_PROFILE, &new_key);
    let got = block_on(driver.run(&mut flow, &mut local(wrong)));
    assert!(
        matches!(got, Err(Error::Flow(FlowError::AdminAuthFailed { .. }))),
        "{got:?}"
    );
    assert!(card.lock().mgmt_key_is(
        cardunlock_sim::Algorithm::TripleDes,
        AdminKey::piv_default().expose_bytes()
    ));
}

#[test]
fn an_admin_flow_run_without_a_responder_stops_before_the_new_pin() {
    let card = gids_card(GidsConfig::factory().blocked());
    let mut driver = Driver::new(transport(&card));
    let new_pin = unlock::admin_input(&PinPolicy::GIDS, b"Xk9w2", b"Xk9w2").unwrap();
    let got = block_on(driver.run_without_admin(&mut GidsUnblock::new(&new_pin, R1)));
    assert_eq!(got, Err(Error::Flow(FlowError::NoAdminResponder)));
    // SELECT, MSE, GENERAL AUTHENTICATE step 1; then the flow asked and ended: no RESET RETRY
    // COUNTER, the PIN still blocked.
    let ins: Vec<u8> = driver.transport().seen().iter().map(|c| c[1]).collect();
    assert_eq!(ins, [0xA4, 0x22, 0x87]);
    assert!(card.lock().pin_is(b"1234"));
}
