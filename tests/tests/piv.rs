//! PIV flows against the simulated card: status, PUK unblock, management-key authentication in
//! all four algorithms (single and mutual), PUK change, and their failures.

use cardunlock_core::crypto::{AdminKey, Algorithm};
use cardunlock_core::driver::{Driver, Error};
use cardunlock_core::flow::{FlowError, LocalKey, PivChangePuk, PivMgmtAuth, Profile};
use cardunlock_core::piv::{AuthMode, IdKind};
use cardunlock_core::policy::{PinPolicy, Violation};
use cardunlock_core::secret::{PinContext, PivPuk};
use cardunlock_core::sw::Status;
use cardunlock_core::unlock::{self, UnlockError, UnlockErrorKind};
use cardunlock_core::ErrorKind;
use cardunlock_sim::{Config, PivConfig, SimCard};
use cardunlock_tests::{fill_counter, shared, transport, Seen, SharedCard};
use embassy_futures::block_on;

fn piv_card(config: PivConfig) -> SharedCard {
    shared(SimCard::new(Config::Piv(config)))
}

fn sim_alg(a: Algorithm) -> cardunlock_sim::Algorithm {
    match a {
        Algorithm::TripleDes => cardunlock_sim::Algorithm::TripleDes,
        Algorithm::Aes128 => cardunlock_sim::Algorithm::Aes128,
        Algorithm::Aes192 => cardunlock_sim::Algorithm::Aes192,
        Algorithm::Aes256 => cardunlock_sim::Algorithm::Aes256,
    }
}

const KEYS: [(Algorithm, &str); 4] = [
    (
        Algorithm::TripleDes,
        "0102030405060708 1112131415161718 2122232425262728",
    ),
    (Algorithm::Aes128, "11223344556677881122334455667788"),
    (
        Algorithm::Aes192,
        "010203040506070801020304050607080102030405060708",
    ),
    (
        Algorithm::Aes256,
        "1122334455667788112233445566778811223344556677881122334455667788",
    ),
];

#[test]
fn status_of_a_blocked_card_spends_nothing() {
    let card = piv_card(PivConfig::factory().blocked());
    let mut driver = Driver::new(transport(&card));
    let status = block_on(unlock::read_status(
        &mut driver,
        cardunlock_sim::ISO_PROFILE,
    ))
    .unwrap();
    assert_eq!(status.profile, Profile::Piv);
    assert!(status.pin_blocked());
    assert_eq!(status.puk_tries_left, Some(3));
    assert_eq!(status.admin_algorithm, Some(Algorithm::TripleDes));
    assert_eq!(status.identity.unwrap().kind, IdKind::Guid);
    assert_eq!(card.lock().puk_tries_left(), Some(3));
}

#[test]
fn puk_unblock_sets_the_new_pin_and_resets_counters() {
    let card = piv_card(PivConfig::factory().blocked());
    let mut driver = Driver::new(transport(&card));
    let input = unlock::piv_input(&PinPolicy::PIV, b"12345678", b"840259", b"840259").unwrap();
    block_on(unlock::piv_unblock(&mut driver, &input.0, &input.1)).unwrap();
    let c = card.lock();
    assert!(c.pin_is(b"840259"));
    assert_eq!(c.pin_tries_left(), 3);
    assert_eq!(c.puk_tries_left(), Some(3));
    // SELECT, RESET RETRY COUNTER, VERIFY with the new PIN: nothing else.
    let seen = &driver.transport().seen();
    assert_eq!(
        seen.iter().map(|c| c[1]).collect::<Vec<_>>(),
        vec![0xA4, 0x2C, 0x20]
    );
}

#[test]
fn wrong_puk_costs_exactly_one_try_and_reports_it() {
    let card = piv_card(PivConfig::factory().blocked());
    let mut driver = Driver::new(transport(&card));
    let input = unlock::piv_input(&PinPolicy::PIV, b"87654321", b"840259", b"840259").unwrap();
    let err = block_on(unlock::piv_unblock(&mut driver, &input.0, &input.1));
    assert_eq!(
        err,
        Err(UnlockError::Card(Error::Flow(FlowError::WrongPuk {
            tries_left: 2
        })))
    );
    assert_eq!(card.lock().puk_tries_left(), Some(2));
    assert!(card.lock().pin_is(b"123456"));
    assert_eq!(card.lock().pin_tries_left(), 0);
    // What a program reads without matching the layers.
    let err = err.unwrap_err();
    assert_eq!(err.kind(), UnlockErrorKind::WrongSecret);
    assert_eq!(err.tries_left(), Some(2));
}

#[test]
fn blocked_puk_is_reported() {
    let mut config = PivConfig::factory().blocked();
    config.puk_tries_left = 0;
    let card = piv_card(config);
    let mut driver = Driver::new(transport(&card));
    let input = unlock::piv_input(&PinPolicy::PIV, b"12345678", b"840259", b"840259").unwrap();
    let err = block_on(unlock::piv_unblock(&mut driver, &input.0, &input.1));
    assert_eq!(
        err,
        Err(UnlockError::Card(Error::Flow(FlowError::PukBlocked)))
    );
    assert!(!card.lock().pin_is(b"840259"));
    let err = err.unwrap_err();
    assert_eq!(err.kind(), UnlockErrorKind::Blocked);
    assert_eq!(err.tries_left(), Some(0));
}

#[test]
fn error_kinds_of_a_missing_card_and_a_refused_pin() {
    // No PIV application: the wrong card, no tries to report.
    let card = shared(SimCard::new(Config::Gids(
        cardunlock_sim::GidsConfig::factory(),
    )));
    let mut driver = Driver::new(transport(&card));
    let input = unlock::piv_input(&PinPolicy::PIV, b"12345678", b"840259", b"840259").unwrap();
    let err = block_on(unlock::piv_unblock(&mut driver, &input.0, &input.1)).unwrap_err();
    assert_eq!(
        (err.kind(), err.tries_left()),
        (UnlockErrorKind::WrongCard, None)
    );
    // Raw input the policy refuses, as one error type with the unblock's.
    let err: UnlockError<ErrorKind> = unlock::piv_input(&PinPolicy::PIV, b"12345678", b"1", b"1")
        .unwrap_err()
        .into();
    assert_eq!(
        (err.kind(), err.tries_left()),
        (UnlockErrorKind::Policy, None)
    );
    // The transport's own kind comes through.
    let err: UnlockError<ErrorKind> = UnlockError::Card(Error::Transport(ErrorKind::NoCard));
    assert_eq!(err.kind(), UnlockErrorKind::Transport(ErrorKind::NoCard));
}

#[test]
fn policy_violations_are_all_reported_before_any_apdu() {
    let card = piv_card(PivConfig::factory().blocked());
    let mut driver = Driver::new(transport(&card));
    // The typed input is refused before a driver is even involved.
    let err = unlock::piv_input(&PinPolicy::PIV, b"12345678", b"1111", b"1112");
    let Err(unlock::InputError::Policy(v)) = err else {
        panic!("expected a policy error, got {err:?}")
    };
    assert!(v.contains(&Violation::TooShort { min: 6 }));
    assert!(v.contains(&Violation::RepeatedCharacter));
    assert!(v.contains(&Violation::ConfirmationMismatch));
    // The new PIN may not be the PUK either.
    let err = unlock::piv_input(&PinPolicy::PIV, b"84025913", b"84025913", b"84025913");
    let Err(unlock::InputError::Policy(v)) = err else {
        panic!("expected a policy error, got {err:?}")
    };
    assert!(v.contains(&Violation::SameAsPuk));
    assert!(
        driver.transport().seen().is_empty(),
        "the card saw a command"
    );
    assert_eq!(card.lock().commands_seen(), 0);
}

#[test]
fn card_side_pin_rules_cost_no_puk_try() {
    let mut config = PivConfig::factory().blocked();
    config.enforce_pin_complexity = true;
    let card = piv_card(config);
    let mut driver = Driver::new(transport(&card));
    // A permissive host policy lets "123456" through; the YubiKey-like card refuses it (69 85).
    let lax = PinPolicy {
        builtin_blocklist: false,
        forbid_sequences: false,
        ..PinPolicy::PIV
    };
    let err = block_on(unlock::piv_unblock(
        &mut driver,
        &PivPuk::new(b"12345678").unwrap(),
        &cardunlock_core::secret::NewPin::confirmed(
            &lax,
            b"123456",
            b"123456",
            PinContext::NONE.puk(b"12345678"),
        )
        .unwrap(),
    ));
    assert_eq!(
        err,
        Err(UnlockError::Card(Error::Flow(FlowError::NewPinRejected(
            Status::ConditionsNotSatisfied
        ))))
    );
    assert_eq!(card.lock().puk_tries_left(), Some(3));
}

fn run_auth(
    card: &SharedCard,
    key: AdminKey,
    expected: Option<Algorithm>,
    mode: AuthMode,
) -> Result<Algorithm, Error<cardunlock_core::ErrorKind, cardunlock_core::crypto::CryptoError>> {
    let mut driver = Driver::new(transport(card));
    let mut flow = PivMgmtAuth::new(expected, mode, [0x5A; 16]);
    block_on(driver.run(&mut flow, &mut LocalKey::new(key, fill_counter(1))))
        .map(|authenticated| authenticated.algorithm())
}

/// A factory PIV card whose management key is `hex` of `alg`.
fn with_mgmt_key(alg: Algorithm, hex: &str) -> PivConfig {
    let mut config = PivConfig::factory();
    config.mgmt_algorithm = sim_alg(alg);
    config.mgmt_key = AdminKey::from_hex(alg, hex)
        .unwrap()
        .expose_bytes()
        .to_vec();
    config
}

#[test]
fn management_key_auth_all_algorithms_modes_with_and_without_metadata() {
    for (alg, hex) in KEYS {
        for metadata in [true, false] {
            for mode in [AuthMode::Single, AuthMode::Mutual] {
                let mut config = with_mgmt_key(alg, hex);
                config.supports_metadata = metadata;
                let card = piv_card(config);
                let key = AdminKey::from_hex(alg, hex).unwrap();
                // Without GET METADATA the caller's algorithm is used.
                let got = run_auth(&card, key, Some(alg), mode);
                assert_eq!(got, Ok(alg), "{alg:?} metadata={metadata} {mode:?}");
                assert!(card.lock().admin_authenticated(), "{alg:?} {mode:?}");
            }
        }
    }
}

#[test]
fn management_key_algorithm_is_discovered_with_get_metadata() {
    // YubiKey 5.7: AES-192 default key with the old 3DES bytes.
    let mut config = PivConfig::factory();
    config.mgmt_algorithm = cardunlock_sim::Algorithm::Aes192;
    let card = piv_card(config);
    let key = AdminKey::new(Algorithm::Aes192, &cardunlock_core::crypto::PIV_DEFAULT_KEY).unwrap();
    assert_eq!(
        run_auth(&card, key, None, AuthMode::Mutual),
        Ok(Algorithm::Aes192)
    );
}

#[test]
fn wrong_management_key_fails_every_algorithm_and_mode() {
    for (alg, hex) in KEYS {
        for mode in [AuthMode::Single, AuthMode::Mutual] {
            let card = piv_card(with_mgmt_key(alg, hex));
            let mut wrong = AdminKey::from_hex(alg, hex)
                .unwrap()
                .expose_bytes()
                .to_vec();
            wrong[0] ^= 0x01;
            wrong[1] ^= 0x80;
            let got = run_auth(&card, AdminKey::new(alg, &wrong).unwrap(), Some(alg), mode);
            assert!(
                matches!(got, Err(Error::Flow(FlowError::AdminAuthFailed { .. }))),
                "{alg:?} {mode:?}: {got:?}"
            );
            assert!(!card.lock().admin_authenticated());
        }
    }
}

#[test]
fn algorithm_mismatch_is_reported() {
    let mut config = PivConfig::factory();
    config.mgmt_algorithm = cardunlock_sim::Algorithm::Aes128;
    let card = piv_card(config.clone());
    let key = AdminKey::piv_default();
    assert_eq!(
        run_auth(
            &card,
            key.clone(),
            Some(Algorithm::TripleDes),
            AuthMode::Mutual
        ),
        Err(Error::Flow(FlowError::AlgorithmMismatch))
    );
    config.supports_metadata = false;
    let card = piv_card(config);
    assert_eq!(
        run_auth(&card, key, Some(Algorithm::TripleDes), AuthMode::Mutual),
        Err(Error::Flow(FlowError::AlgorithmMismatch))
    );
}

#[test]
fn forged_card_answer_in_mutual_auth_is_refused() {
    use cardunlock_tests::Fault;
    let card = piv_card(PivConfig::factory());
    // Exchanges: SELECT, GET METADATA, GA witness, GA answer (replaced).
    const FORGED: &[u8] = &[0x7C, 0x0A, 0x82, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00];
    let mut driver = Driver::new(transport(&card).with_fault(3, Fault::Garbage(FORGED)));
    let mut flow = PivMgmtAuth::new(None, AuthMode::Mutual, [0x5A; 16]);
    let got = block_on(driver.run(
        &mut flow,
        &mut LocalKey::new(AdminKey::piv_default(), fill_counter(1)),
    ));
    assert_eq!(got, Err(Error::Flow(FlowError::CardAuthFailed)));
}

#[test]
fn puk_change_and_wrong_old_puk() {
    let card = piv_card(PivConfig::factory());
    let old = PivPuk::new(b"12345678").unwrap();
    let new = PivPuk::new(b"24681357").unwrap();
    let mut driver = Driver::new(transport(&card));
    block_on(driver.run(
        &mut PivChangePuk::new(&old, &new),
        &mut cardunlock_core::flow::NoAdmin,
    ))
    .unwrap();
    assert!(card.lock().puk_is(b"24681357"));
    // The old PUK is no longer valid: one try spent, reported.
    let got = block_on(driver.run(
        &mut PivChangePuk::new(&old, &new),
        &mut cardunlock_core::flow::NoAdmin,
    ));
    assert_eq!(got, Err(Error::Flow(FlowError::WrongPuk { tries_left: 2 })));
}

#[test]
fn set_management_key_after_authentication() {
    use cardunlock_core::flow::PivSetMgmtKey;
    let card = piv_card(PivConfig::factory());
    let mut driver = Driver::new(transport(&card));
    let new_key = AdminKey::from_hex(Algorithm::TripleDes, KEYS[0].1).unwrap();
    // Without authentication in its session the card refuses: a token from another session
    // (a misuse the types cannot see) changes nothing.
    let other = piv_card(PivConfig::factory());
    let mut other_driver = Driver::new(transport(&other));
    let stale = block_on(other_driver.run(
        &mut PivMgmtAuth::new(None, AuthMode::Mutual, [3; 16]),
        &mut LocalKey::new(AdminKey::piv_default(), fill_counter(2)),
    ))
    .unwrap();
    let got = block_on(driver.run(
        &mut PivSetMgmtKey::new(stale, &new_key),
        &mut cardunlock_core::flow::NoAdmin,
    ));
    assert!(got.is_err(), "{got:?}");
    let mut auth = PivMgmtAuth::new(None, AuthMode::Mutual, [3; 16]);
    let authenticated = block_on(driver.run(
        &mut auth,
        &mut LocalKey::new(AdminKey::piv_default(), fill_counter(2)),
    ))
    .unwrap();
    block_on(driver.run(
        &mut PivSetMgmtKey::new(authenticated, &new_key),
        &mut cardunlock_core::flow::NoAdmin,
    ))
    .unwrap();
    assert!(card
        .lock()
        .mgmt_key_is(cardunlock_sim::Algorithm::TripleDes, new_key.expose_bytes()));
    assert_eq!(
        run_auth(&card, new_key, None, AuthMode::Mutual),
        Ok(Algorithm::TripleDes)
    );
}
