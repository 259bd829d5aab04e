//! The no-heap loopback reader: a whole PIV unblock through the CCID session and the loopback
//! reader into the simulated card, as `firmware-size` links it.

use cardunlock_ccid::clock::NoTimeout;
use cardunlock_ccid::descriptor::{ClassDescriptor, ExchangeLevel};
use cardunlock_ccid::loopback::Loopback;
use cardunlock_ccid::session::{NoControl, Session};
use cardunlock_core::driver::Driver;
use cardunlock_core::flow::FlowError;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock::{self, UnlockError};
use cardunlock_sim::{Config, PivConfig, SimCard};
use embassy_futures::block_on;

const ATR: &[u8] = &[0x3B, 0x80, 0x80, 0x01, 0x01];

fn session(card: SimCard) -> Session<Loopback<SimCard>, NoTimeout> {
    let desc = ClassDescriptor::TYPICAL.with_level(ExchangeLevel::ShortApdu);
    let mut s = Session::new(Loopback::new(card, ATR), NoTimeout, NoControl, &desc, 0).unwrap();
    assert_eq!(block_on(s.power_on()).unwrap(), ATR);
    s
}

#[test]
fn piv_unblock_through_the_loopback_reader() {
    let mut driver = Driver::new(session(SimCard::new(Config::Piv(
        PivConfig::factory().blocked(),
    ))));
    let input = unlock::piv_input(&PinPolicy::PIV, b"12345678", b"802517", b"802517").unwrap();
    block_on(unlock::piv_unblock(&mut driver, &input.0, &input.1)).unwrap();
    let (reader, _, _) = driver.into_inner().into_parts();
    let card = reader.card();
    assert!(card.pin_is(b"802517"));
    assert_eq!(card.pin_tries_left(), 3);
    assert_eq!(card.puk_tries_left(), Some(3));
}

#[test]
fn a_wrong_puk_through_the_loopback_reader_costs_one_try() {
    let mut driver = Driver::new(session(SimCard::new(Config::Piv(
        PivConfig::factory().blocked(),
    ))));
    let input = unlock::piv_input(&PinPolicy::PIV, b"87654321", b"802517", b"802517").unwrap();
    let err = block_on(unlock::piv_unblock(&mut driver, &input.0, &input.1)).unwrap_err();
    assert!(
        matches!(
            err,
            UnlockError::Card(cardunlock_core::driver::Error::Flow(FlowError::WrongPuk {
                tries_left: 2
            }))
        ),
        "{err:?}"
    );
    let (reader, _, _) = driver.into_inner().into_parts();
    assert_eq!(reader.card().puk_tries_left(), Some(2));
}

/// Proves the `tpdu` feature decides whether a TPDU-level reader is taken: without it (a
/// firmware that only meets APDU-level readers) the session refuses one when it is made,
/// clearly, instead of failing at the first APDU; with it the reader is taken. Run both ways:
/// `cargo test -p cardunlock-ccid --test loopback` and the same with `--no-default-features`.
#[test]
fn a_tpdu_level_reader_needs_the_tpdu_feature() {
    use cardunlock_ccid::session::{Error, Unsupported};
    let desc = ClassDescriptor::TYPICAL.with_level(ExchangeLevel::Tpdu);
    let card = SimCard::new(Config::Piv(PivConfig::factory()));
    let made: Result<Session<_, _>, _> =
        Session::new(Loopback::new(card, ATR), NoTimeout, NoControl, &desc, 0);
    if cfg!(feature = "tpdu") {
        assert!(made.is_ok());
    } else {
        assert!(matches!(
            made,
            Err(Error::Unsupported(Unsupported::Level(ExchangeLevel::Tpdu)))
        ));
    }
    // APDU level works either way.
    let desc = ClassDescriptor::TYPICAL.with_level(ExchangeLevel::ShortApdu);
    let card = SimCard::new(Config::Piv(PivConfig::factory()));
    let made: Result<Session<_, _>, _> =
        Session::new(Loopback::new(card, ATR), NoTimeout, NoControl, &desc, 0);
    assert!(made.is_ok());
}
