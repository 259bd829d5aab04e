//! The driver's transport-level duties against the simulated card: `61 XX` GET RESPONSE rounds,
//! `6C XX` resends, command chaining.

use cardunlock_core::apdu::Command;
use cardunlock_core::driver::Driver;
use cardunlock_core::piv;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::secret::PinContext;
use cardunlock_core::sw::Status;
use cardunlock_core::unlock;
use cardunlock_sim::{Config, Options, PivConfig, SimCard};
use cardunlock_tests::{shared, transport, Seen};
use embassy_futures::block_on;

#[test]
fn get_response_rounds_assemble_long_answers() {
    let whole = shared(SimCard::new(Config::Piv(PivConfig::factory())));
    let mut driver = Driver::new(transport(&whole));
    let expected = block_on(unlock::read_status(
        &mut driver,
        cardunlock_sim::ISO_PROFILE,
    ))
    .unwrap();

    let options = Options {
        max_response_data: 8,
        ..Options::default()
    };
    let chunked = shared(SimCard::with_options(
        Config::Piv(PivConfig::factory()),
        options,
    ));
    let mut driver = Driver::new(transport(&chunked));
    let got = block_on(unlock::read_status(
        &mut driver,
        cardunlock_sim::ISO_PROFILE,
    ))
    .unwrap();
    assert_eq!(got, expected);
    let get_responses = driver
        .transport()
        .seen()
        .iter()
        .filter(|c| c[1] == 0xC0)
        .count();
    assert!(
        get_responses >= 5,
        "only {get_responses} GET RESPONSE rounds"
    );
}

#[test]
fn wrong_le_is_resent_with_the_exact_length() {
    let options = Options {
        strict_le: true,
        ..Options::default()
    };
    let card = shared(SimCard::with_options(
        Config::Piv(PivConfig::factory()),
        options,
    ));
    let mut driver = Driver::new(transport(&card));
    block_on(driver.transceive(&piv::select())).unwrap();
    let short = piv::get_chuid().with_le(4);
    let r = block_on(driver.transceive(&short)).unwrap();
    assert_eq!(r.status, Status::Success);
    assert!(piv::parse_chuid(r.data).is_some());
    let seen = &driver.transport().seen();
    assert_eq!(seen.len(), 3, "SELECT, GET DATA (6C), GET DATA again");
}

#[test]
fn long_data_is_chained() {
    let card = shared(SimCard::new(Config::Piv(PivConfig::factory())));
    let mut driver = Driver::new(transport(&card));
    block_on(driver.transceive(&piv::select())).unwrap();
    let data = [0x31u8; 300];
    let cmd = Command::new(0x00, 0x20, 0x00, 0x80).with_data(&data);
    let r = block_on(driver.transceive(&cmd)).unwrap();
    // The card reassembles 300 bytes of VERIFY data and refuses them as a PIN.
    assert_eq!(r.status, Status::IncorrectData);
    let seen = &driver.transport().seen();
    assert_eq!(seen.len(), 3);
    assert_eq!((seen[1][0], seen[1][4]), (0x10, 255));
    assert_eq!((seen[2][0], seen[2][4]), (0x00, 45));
    // The refused PIN cost no try.
    assert_eq!(card.lock().pin_tries_left(), 3);
}

/// A blocked PIV card and the input of its unblock.
fn blocked_piv() -> (
    cardunlock_tests::SharedCard,
    cardunlock_core::secret::PivPuk,
) {
    let card = shared(SimCard::new(Config::Piv(PivConfig::factory().blocked())));
    (
        card,
        cardunlock_core::secret::PivPuk::new(b"12345678").unwrap(),
    )
}

#[test]
fn piv_unblock_with_buffers_sized_for_short_apdus() {
    // 32 bytes to send (RESET RETRY COUNTER is 21), 128 to receive (SELECT's answer is the
    // largest of this unblock).
    let (card, puk) = blocked_piv();
    let new_pin = cardunlock_core::secret::NewPin::confirmed(
        &PinPolicy::PIV,
        b"840259",
        b"840259",
        PinContext::NONE.puk(b"12345678"),
    )
    .unwrap();
    let mut driver: Driver<_, 32, 128> = Driver::with_buffers(transport(&card));
    block_on(unlock::piv_unblock(&mut driver, &puk, &new_pin)).unwrap();
    assert!(card.lock().pin_is(b"840259"));
    let seen = &driver.transport().seen();
    assert_eq!(
        seen.iter().map(|c| c[1]).collect::<Vec<_>>(),
        [0xA4, 0x2C, 0x20]
    );
    assert!(seen.iter().all(|c| c[0] & 0x10 == 0), "nothing chained");
}

#[test]
fn a_send_buffer_smaller_than_the_command_chains_it() {
    // 16 bytes: RESET RETRY COUNTER (16 bytes of data) goes out in links of 10 and 6.
    let (card, puk) = blocked_piv();
    let new_pin = cardunlock_core::secret::NewPin::confirmed(
        &PinPolicy::PIV,
        b"840259",
        b"840259",
        PinContext::NONE,
    )
    .unwrap();
    let mut driver: Driver<_, 16, 128> = Driver::with_buffers(transport(&card));
    block_on(unlock::piv_unblock(&mut driver, &puk, &new_pin)).unwrap();
    assert!(card.lock().pin_is(b"840259"));
    assert_eq!(card.lock().puk_tries_left(), Some(3));
    let rrc: Vec<(u8, u8)> = driver
        .transport()
        .seen()
        .iter()
        .filter(|c| c[1] == 0x2C)
        .map(|c| (c[0], c[4]))
        .collect();
    assert_eq!(rrc, [(0x10, 10), (0x00, 6)]);
}

#[test]
fn a_response_longer_than_the_receive_buffer_is_an_error_not_a_cut() {
    let (card, _) = blocked_piv();
    let mut driver: Driver<_, 32, 8> = Driver::with_buffers(transport(&card));
    let got = block_on(unlock::read_status(
        &mut driver,
        cardunlock_sim::ISO_PROFILE,
    ));
    assert_eq!(
        got,
        Err(cardunlock_core::driver::Error::Protocol(
            cardunlock_core::driver::ProtocolError::ResponseTooLong
        ))
    );
}
