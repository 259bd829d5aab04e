//! The driver's transport-level duties against the simulated card: `61 XX` GET RESPONSE rounds,
//! `6C XX` resends, command chaining.

use cardunlock_core::apdu::Command;
use cardunlock_core::driver::Driver;
use cardunlock_core::iso::IsoProfile;
use cardunlock_core::piv;
use cardunlock_core::status::Status;
use cardunlock_core::unlock;
use cardunlock_sim::{Config, Options, PivConfig, SimCard};
use cardunlock_tests::{shared, TestTransport};
use embassy_futures::block_on;

#[test]
fn get_response_rounds_assemble_long_answers() {
    let whole = shared(SimCard::new(Config::Piv(PivConfig::factory())));
    let mut driver = Driver::new(TestTransport::new(&whole));
    let expected = block_on(unlock::read_status(&mut driver, IsoProfile::SIM)).unwrap();

    let options = Options {
        max_response_data: 8,
        ..Options::default()
    };
    let chunked = shared(SimCard::with_options(
        Config::Piv(PivConfig::factory()),
        options,
    ));
    let mut driver = Driver::new(TestTransport::new(&chunked));
    let got = block_on(unlock::read_status(&mut driver, IsoProfile::SIM)).unwrap();
    assert_eq!(got, expected);
    let get_responses = driver
        .transport()
        .seen
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
    let mut driver = Driver::new(TestTransport::new(&card));
    block_on(driver.transceive(&piv::select())).unwrap();
    let short = piv::get_chuid().with_le(4);
    let r = block_on(driver.transceive(&short)).unwrap();
    assert_eq!(r.status, Status::Success);
    assert!(piv::parse_chuid(r.data).is_some());
    let seen = &driver.transport().seen;
    assert_eq!(seen.len(), 3, "SELECT, GET DATA (6C), GET DATA again");
}

#[test]
fn long_data_is_chained() {
    let card = shared(SimCard::new(Config::Piv(PivConfig::factory())));
    let mut driver = Driver::new(TestTransport::new(&card));
    block_on(driver.transceive(&piv::select())).unwrap();
    let data = [0x31u8; 300];
    let cmd = Command::new(0x00, 0x20, 0x00, 0x80).with_data(&data);
    let r = block_on(driver.transceive(&cmd)).unwrap();
    // The card reassembles 300 bytes of VERIFY data and refuses them as a PIN.
    assert_eq!(r.status, Status::IncorrectData);
    let seen = &driver.transport().seen;
    assert_eq!(seen.len(), 3);
    assert_eq!((seen[1][0], seen[1][4]), (0x10, 255));
    assert_eq!((seen[2][0], seen[2][4]), (0x00, 45));
    // The refused PIN cost no try.
    assert_eq!(card.borrow().pin_tries_left(), 3);
}
