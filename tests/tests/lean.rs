//! The APDU-lean unblocks the CLI runs when it has every input up front
//! (`unlock::piv_unblock_with(.., PivUnblockOptions::LEAN)`, `gids_unblock_with`,
//! `iso_unblock_with` with `Select::After`): exactly which commands reach the card, and that no PIN or PUK try is
//! ever wasted by leaving a command out.

use cardunlock_core::crypto::AdminKey;
use cardunlock_core::driver::{Driver, Error};
use cardunlock_core::flow::{FlowError, LocalKey, Profile};
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock::{self, PivUnblockOptions, UnlockError};
use cardunlock_sim::{Config, GidsConfig, IsoConfig, PivConfig, SimCard};
use cardunlock_tests::{fill_counter, shared, transport, Seen, SharedCard, TestTransport};
use embassy_futures::block_on;

const SELECT_PIV: [u8; 4] = [0x00, 0xA4, 0x04, 0x00];
const PUK_METADATA: [u8; 4] = [0x00, 0xF7, 0x00, 0x81];
const RRC_PIV: [u8; 4] = [0x00, 0x2C, 0x00, 0x80];

fn headers(t: &TestTransport) -> Vec<[u8; 4]> {
    t.seen()
        .iter()
        .map(|c| [c[0], c[1], c[2], c[3]])
        .collect::<Vec<_>>()
}

fn lean(card: &SharedCard, puk: &[u8], pin: &[u8]) -> (TestTransport, Result<(), FlowErrorOr>) {
    let mut driver = Driver::new(transport(card));
    let r = unlock::piv_input(&PinPolicy::PIV, puk, pin, pin)
        .map_err(UnlockError::from)
        .and_then(|(puk, pin)| {
            block_on(unlock::piv_unblock_with(
                &mut driver,
                &puk,
                &pin,
                PivUnblockOptions::LEAN,
            ))
        });
    let r = r.map_err(|e| match e {
        UnlockError::Card(Error::Flow(f)) => FlowErrorOr::Flow(f),
        UnlockError::Policy(_) => FlowErrorOr::Policy,
        other => panic!("unexpected {other:?}"),
    });
    (driver.into_inner(), r)
}

#[derive(Debug, PartialEq)]
enum FlowErrorOr {
    Flow(FlowError),
    Policy,
}

#[test]
fn lean_piv_unblock_is_three_apdus_and_leaves_the_pin_unverified() {
    let card = shared(SimCard::new(Config::Piv(PivConfig::factory().blocked())));
    let (t, r) = lean(&card, b"12345678", b"840259");
    assert_eq!(r, Ok(()));
    assert_eq!(headers(&t), [SELECT_PIV, PUK_METADATA, RRC_PIV]);
    let card = card.lock();
    assert!(card.pin_is(b"840259"));
    assert_eq!(card.pin_tries_left(), 3);
    assert_eq!(card.puk_tries_left(), Some(3));
    assert!(!card.pin_verified(), "no VERIFY: the PIN stays unverified");
}

#[test]
fn lean_wrong_puk_costs_one_try_and_reports_the_rest() {
    let card = shared(SimCard::new(Config::Piv(PivConfig::factory().blocked())));
    let (t, r) = lean(&card, b"87654321", b"840259");
    assert_eq!(
        r,
        Err(FlowErrorOr::Flow(FlowError::WrongPuk { tries_left: 2 }))
    );
    assert_eq!(headers(&t), [SELECT_PIV, PUK_METADATA, RRC_PIV]);
    assert_eq!(card.lock().puk_tries_left(), Some(2));
    assert_eq!(card.lock().pin_tries_left(), 0);
}

#[test]
fn lean_policy_violation_sends_nothing() {
    let card = shared(SimCard::new(Config::Piv(PivConfig::factory().blocked())));
    let (t, r) = lean(&card, b"12345678", b"111111");
    assert_eq!(r, Err(FlowErrorOr::Policy));
    assert!(t.seen().is_empty(), "{:?}", headers(&t));
    assert_eq!(card.lock().puk_tries_left(), Some(3));
}

#[test]
fn lean_blocked_puk_stops_before_reset_retry_counter() {
    let card = shared(SimCard::new(Config::Piv(PivConfig::factory().blocked())));
    for _ in 0..3 {
        let _ = lean(&card, b"87654321", b"840259");
    }
    assert_eq!(card.lock().puk_tries_left(), Some(0));
    let (t, r) = lean(&card, b"12345678", b"840259");
    assert_eq!(r, Err(FlowErrorOr::Flow(FlowError::PukBlocked)));
    assert_eq!(headers(&t), [SELECT_PIV, PUK_METADATA]);
}

#[test]
fn lean_on_a_gids_card_says_no_piv_application() {
    let card = shared(SimCard::new(Config::Gids(GidsConfig::factory().blocked())));
    let (t, r) = lean(&card, b"12345678", b"840259");
    assert!(
        matches!(r, Err(FlowErrorOr::Flow(FlowError::ApplicationNotFound(_)))),
        "{r:?}"
    );
    assert_eq!(headers(&t), [SELECT_PIV]);
}

#[test]
fn gids_unblock_after_the_status_read_skips_the_second_select() {
    let card = shared(SimCard::new(Config::Gids(GidsConfig::factory().blocked())));
    let mut driver = Driver::new(transport(&card));
    let (status, selected) = block_on(unlock::read_status_selected(
        &mut driver,
        cardunlock_sim::ISO_PROFILE,
    ))
    .unwrap();
    assert_eq!(status.profile, Profile::Gids);
    let before = driver.transport().seen().len();
    let mut key = LocalKey::new(AdminKey::piv_default(), fill_counter(7));
    block_on(unlock::gids_unblock_with(
        &mut driver,
        &unlock::admin_input(&PinPolicy::GIDS, b"Xk9w2", b"Xk9w2").unwrap(),
        [0x21; 16],
        &mut key,
        unlock::Select::After(selected),
    ))
    .unwrap();
    let t = driver.into_inner();
    let ins: Vec<u8> = t.seen()[before..].iter().map(|c| c[1]).collect();
    // MSE SET, 2x GENERAL AUTHENTICATE, RESET RETRY COUNTER, VERIFY: no SELECT.
    assert_eq!(ins, [0x22, 0x87, 0x87, 0x2C, 0x20]);
    assert!(card.lock().pin_is(b"Xk9w2"));
}

#[test]
fn iso_unblock_after_the_status_read_skips_the_second_select() {
    let card = shared(SimCard::new(Config::Iso(IsoConfig::factory().blocked())));
    let mut driver = Driver::new(transport(&card));
    let (status, selected) = block_on(unlock::read_status_selected(
        &mut driver,
        cardunlock_sim::ISO_PROFILE,
    ))
    .unwrap();
    assert_eq!(status.profile, Profile::IsoAdmin);
    let before = driver.transport().seen().len();
    let mut key = LocalKey::new(AdminKey::piv_default(), fill_counter(7));
    block_on(unlock::iso_unblock_with(
        &mut driver,
        cardunlock_sim::ISO_PROFILE,
        &unlock::admin_input(&PinPolicy::GIDS, b"Tq83z", b"Tq83z").unwrap(),
        &mut key,
        unlock::Select::After(selected),
    ))
    .unwrap();
    let t = driver.into_inner();
    let ins: Vec<u8> = t.seen()[before..].iter().map(|c| c[1]).collect();
    // GET CHALLENGE, EXTERNAL AUTHENTICATE, RESET RETRY COUNTER, VERIFY: no SELECT.
    assert_eq!(ins, [0x84, 0x82, 0x2C, 0x20]);
    assert!(card.lock().pin_is(b"Tq83z"));
}
