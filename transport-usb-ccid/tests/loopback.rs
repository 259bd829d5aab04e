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

/// The reply the loopback reader has ready, read whole.
fn reply(reader: &mut Loopback<SimCard>) -> Vec<u8> {
    use cardunlock_ccid::pipe::Pipe;
    let mut buf = [0u8; 300];
    let n = block_on(reader.recv(&mut buf)).unwrap();
    buf[..n].to_vec()
}

/// Proves the loopback reader answers a message that comes whole or as its header and then its
/// data (the two ways a session sends one) the same, echoing `bSeq`, and refuses one split
/// elsewhere, or whose data is not `dwLength` bytes, with CMD_NOT_SUPPORTED instead of taking
/// bytes it was not given.
#[test]
fn the_loopback_takes_a_message_whole_or_split_after_its_header() {
    use cardunlock_ccid::codec::{
        msg_type, CommandStatus, Request, RequestKind, Response, ResponseKind, SlotError,
    };
    use cardunlock_ccid::pipe::Pipe;
    let select = [
        0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00,
    ];
    let mut message = [0u8; 64];
    let xfr = Request::new(
        0,
        7,
        RequestKind::XfrBlock {
            bwi: 0,
            level: 0,
            data: &select,
        },
    );
    let len = xfr.encode(&mut message).unwrap();
    let message = &message[..len];
    let mut reader = Loopback::new(SimCard::new(Config::Piv(PivConfig::factory())), ATR);
    assert!(block_on(reader.send(message, &[])).unwrap());
    let whole = reply(&mut reader);
    assert!(block_on(reader.send(&message[..10], &message[10..])).unwrap());
    let apart = reply(&mut reader);
    assert_eq!(whole, apart);
    let r = Response::parse(&whole).unwrap();
    assert_eq!((r.seq, r.status.command), (7, CommandStatus::Ok));
    let ResponseKind::DataBlock { data, .. } = r.kind else {
        panic!("{r:?}")
    };
    assert_eq!(&data[data.len() - 2..], &[0x90, 0x00]);
    // Nothing more to read once the reply is taken.
    assert!(reply(&mut reader).is_empty());

    let refused = |head: &[u8], payload: &[u8], reader: &mut Loopback<SimCard>| {
        assert!(block_on(reader.send(head, payload)).unwrap());
        let bytes = reply(reader);
        let r = Response::parse(&bytes).unwrap();
        assert_eq!(
            r.status.command,
            CommandStatus::Failed(SlotError::CommandNotSupported),
            "{head:02x?} + {payload:02x?}"
        );
        assert!(matches!(r.kind, ResponseKind::SlotStatus { .. }));
        assert_eq!(bytes[0], msg_type::SLOT_STATUS);
    };
    // Split inside the header.
    refused(&message[..6], &message[6..], &mut reader);
    // The header announces more data than came, or less.
    refused(&message[..10], &message[10..len - 1], &mut reader);
    refused(
        &message[..10],
        &[&message[10..], &[0u8][..]].concat(),
        &mut reader,
    );
    // The card saw none of these: the PIV application is still selectable and answers.
    assert!(block_on(reader.send(&message[..10], &message[10..])).unwrap());
    assert_eq!(reply(&mut reader), whole);
}

/// Proves a whole response too long for the caller's buffer is refused as too long (the
/// session's in-line path hands it to the general one, which counts it), with the session
/// still in step for the next APDU.
#[test]
fn a_response_too_long_for_the_buffer_is_an_error_and_the_session_stays_in_step() {
    use cardunlock_ccid::session::Error;
    use cardunlock_core::Transport;
    let mut s = session(SimCard::new(Config::Piv(PivConfig::factory())));
    let select = [
        0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00,
    ];
    let mut small = [0u8; 4];
    let e = block_on(s.transmit(&select, &mut small)).unwrap_err();
    assert_eq!(e, Error::ResponseTooLong);
    let mut response = [0u8; 258];
    let n = block_on(s.transmit(&select, &mut response)).unwrap();
    assert!(n > 4);
    assert_eq!(&response[n - 2..n], &[0x90, 0x00]);
}
