//! The session against the simulated reader at APDU level: full PIV unblocks through the core's
//! driver at short and extended level, with chaining, voltage fallback and the ABORT sequence.

use cardunlock_ccid::codec::{msg_type, IccStatus, Voltage};
use cardunlock_ccid::descriptor::{ClassDescriptor, ExchangeLevel};
use cardunlock_ccid::session::{Error, Unsupported};
use cardunlock_ccid_sim::{apdu_session, ApduCard, Event, SharedReader, SimConfig, SimSession};
use cardunlock_core::driver::Driver;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock;
use cardunlock_core::Transport;
use cardunlock_sim::{Config, PivConfig, SimCard};
use embassy_futures::block_on;

fn blocked_piv() -> SimCard {
    SimCard::new(Config::Piv(PivConfig::factory().blocked()))
}

fn reader(level: ExchangeLevel, max_message: u32) -> SimConfig {
    let mut d = ClassDescriptor::TYPICAL.with_level(level);
    d.max_message_length = max_message;
    SimConfig::new(d)
}

fn unblock(session: SimSession<ApduCard>) -> (Result<(), String>, SimSession<ApduCard>) {
    let mut driver = Driver::new(session);
    let input = unlock::piv_input(&PinPolicy::PIV, b"12345678", b"840259", b"840259").unwrap();
    let r = block_on(unlock::piv_unblock(&mut driver, &input.0, &input.1));
    (r.map_err(|e| format!("{e:?}")), driver.into_inner())
}

fn assert_unblocked(reader: &SharedReader<ApduCard>) {
    let r = reader.get();
    let card = &r.card().card;
    assert!(card.pin_is(b"840259"));
    assert_eq!(card.pin_tries_left(), 3);
    assert_eq!(card.puk_tries_left(), Some(3));
    assert_eq!(
        r.partial_flushes, 0,
        "a flush handed over part of a message"
    );
    assert_eq!(
        r.multi_message_flushes, 0,
        "a flush handed over two messages"
    );
    assert_eq!(r.oversize_messages, 0);
}

#[test]
fn piv_unblock_at_extended_apdu_level() {
    let (session, reader) =
        apdu_session(blocked_piv(), reader(ExchangeLevel::ShortExtendedApdu, 271));
    assert!(session.supports_extended_length());
    let (r, session) = unblock(session);
    r.unwrap();
    assert_unblocked(&reader);
    // SELECT, RESET RETRY COUNTER, VERIFY: each reached the card whole, once.
    let ins: Vec<u8> = reader.get().card_payloads.iter().map(|a| a[1]).collect();
    assert_eq!(ins, vec![0xA4, 0x2C, 0x20]);
    assert_eq!(session.atr(), reader.get().card().card.atr());
    // The reader chose the voltage.
    assert_eq!(reader.get().power_ons, vec![Voltage::Auto]);
}

#[test]
fn piv_unblock_at_short_apdu_level() {
    let (session, reader) = apdu_session(blocked_piv(), reader(ExchangeLevel::ShortApdu, 271));
    assert!(!session.supports_extended_length());
    let (r, _) = unblock(session);
    r.unwrap();
    assert_unblocked(&reader);
}

#[test]
fn a_64_byte_reader_still_unblocks_through_chaining_both_ways() {
    for level in [ExchangeLevel::ShortApdu, ExchangeLevel::ShortExtendedApdu] {
        let (session, reader) = apdu_session(blocked_piv(), reader(level, 64));
        assert_eq!(session.max_message_len(), 64);
        let (r, mut session) = unblock(session);
        r.unwrap();
        assert_unblocked(&reader);
        assert!(reader.get().longest_message <= 64);
        // The RESET RETRY COUNTER APDU (5 + 16 + 1 bytes) fits; a long one is chained:
        // 1 begin, 3 continue, 2 end, and the reader's 0x10 "send more" replies.
        let long: Vec<u8> = [0x00, 0xCB, 0x3F, 0xFF, 0x00, 0x00, 0x96]
            .into_iter()
            .chain(0..150u8)
            .chain([0x00, 0x00])
            .collect();
        let before = reader.get().xfr_blocks();
        let mut resp = [0u8; 600];
        let n = block_on(session.transmit(&long, &mut resp)).unwrap();
        assert!(n >= 2);
        assert!(
            reader.get().xfr_blocks() - before >= 3,
            "chained over 3+ messages"
        );
        assert_eq!(reader.get().card_payloads.last().unwrap(), &long);
        assert!(reader.get().longest_message <= 64);
    }
}

#[test]
fn long_responses_come_back_chained() {
    // usbd-ccid chains every response above 54 bytes.
    let mut config = reader(ExchangeLevel::ShortExtendedApdu, 271);
    config.response_chunk = 16;
    let (mut session, reader) = apdu_session(blocked_piv(), config);
    let mut resp = [0u8; 258];
    // SELECT answers the application property template (more than 16 bytes).
    let select = [
        0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00,
    ];
    let n = block_on(session.transmit(&select, &mut resp)).unwrap();
    assert!(n > 16, "response of {n} bytes");
    assert_eq!(&resp[n - 2..n], &[0x90, 0x00]);
    let mut direct = blocked_piv();
    let expected = direct.transmit(&select);
    assert_eq!(&resp[..n], &expected[..]);
    // One XfrBlock, then one "send more" poll per further 16-byte DataBlock.
    assert_eq!(reader.get().xfr_blocks(), n.div_ceil(16));
    // A buffer too small for the chained response is an error, and the session stays in step.
    let mut small = [0u8; 8];
    let e = block_on(session.transmit(&select, &mut small)).unwrap_err();
    assert_eq!(e, Error::ResponseTooLong);
    let n = block_on(session.transmit(&select, &mut resp)).unwrap();
    assert_eq!(&resp[..n], &expected[..]);
}

#[test]
fn voltage_fallback_goes_from_the_lowest_class_up() {
    let mut d = ClassDescriptor::TYPICAL;
    d.features &= !cardunlock_ccid::descriptor::features::AUTO_VOLTAGE;
    let mut config = SimConfig::new(d);
    config.card_voltages = 0x01; // a 5 V only card
    let (mut session, reader) = apdu_session(blocked_piv(), config);
    let atr = block_on(session.power_on()).unwrap().to_vec();
    assert_eq!(atr, reader.get().card().card.atr());
    assert_eq!(
        reader.get().power_ons,
        vec![Voltage::V1_8, Voltage::V3, Voltage::V5]
    );
    // Powered off between tries.
    assert_eq!(reader.get().count(msg_type::ICC_POWER_OFF), 2);
    // Only the classes the reader supports.
    let mut d2 = d;
    d2.voltage_support = 0x03;
    let mut config = SimConfig::new(d2);
    config.card_voltages = 0x04; // 1.8 V card in a 5 V / 3 V reader
    let (mut session, reader) = apdu_session(blocked_piv(), config);
    let e = block_on(session.power_on()).unwrap_err();
    assert_eq!(e, Error::Slot(cardunlock_ccid::codec::SlotError::IccMute));
    assert_eq!(reader.get().power_ons, vec![Voltage::V3, Voltage::V5]);
}

#[test]
fn slot_status_power_off_and_no_card() {
    let (mut session, reader) = apdu_session(blocked_piv(), reader(ExchangeLevel::ShortApdu, 271));
    assert_eq!(
        block_on(session.slot_status()).unwrap().icc,
        IccStatus::Inactive
    );
    block_on(session.power_on()).unwrap();
    assert_eq!(
        block_on(session.slot_status()).unwrap().icc,
        IccStatus::Active
    );
    block_on(session.power_off()).unwrap();
    assert!(!reader.get().powered());
    reader.get_mut().remove_card();
    assert_eq!(
        block_on(session.slot_status()).unwrap().icc,
        IccStatus::Absent
    );
    assert_eq!(block_on(session.power_on()).unwrap_err(), Error::NoCard);
    let mut resp = [0u8; 32];
    let e = block_on(session.transmit(&[0x00, 0x20, 0x00, 0x80], &mut resp)).unwrap_err();
    assert_eq!(e.kind(), cardunlock_core::ErrorKind::NoCard);
    assert_eq!(reader.get().card().card.commands_seen(), 0);
}

#[test]
fn abort_is_control_request_then_bulk_abort_with_the_same_seq() {
    let (mut session, reader) = apdu_session(blocked_piv(), reader(ExchangeLevel::ShortApdu, 271));
    block_on(session.power_on()).unwrap();
    block_on(session.abort()).unwrap();
    let events = reader.get().events.clone();
    let n = events.len();
    let Event::ControlAbort { slot: 0, seq } = events[n - 2] else {
        panic!("no control abort before the bulk one: {events:?}")
    };
    assert_eq!(
        events[n - 1],
        Event::Bulk {
            msg_type: msg_type::ABORT,
            slot: 0,
            seq,
            len: 10
        }
    );
    // The session is usable afterwards.
    assert_eq!(
        block_on(session.slot_status()).unwrap().icc,
        IccStatus::Active
    );
}

#[test]
fn bseq_increments_per_message_and_wraps() {
    let (mut session, reader) = apdu_session(blocked_piv(), reader(ExchangeLevel::ShortApdu, 271));
    for _ in 0..300 {
        block_on(session.slot_status()).unwrap();
    }
    let seqs: Vec<u8> = reader
        .get()
        .events
        .iter()
        .map(|e| match e {
            Event::Bulk { seq, .. } => *seq,
            Event::ControlAbort { seq, .. } => *seq,
        })
        .collect();
    for (i, s) in seqs.iter().enumerate() {
        assert_eq!(*s, i as u8);
    }
}

#[test]
fn character_level_and_iccd_are_refused_clearly() {
    let clock = cardunlock_ccid_sim::TestClock::new();
    let d = ClassDescriptor::TYPICAL.with_level(ExchangeLevel::Character);
    let shared = cardunlock_ccid_sim::ReaderSim::new(
        ApduCard::new(blocked_piv()),
        SimConfig::new(d),
        &clock,
    )
    .into_shared();
    let e = cardunlock_ccid::session::Session::<_, _, _>::new(
        shared.pipe(),
        clock.clone(),
        shared.control(),
        &d,
        0,
    )
    .unwrap_err();
    assert_eq!(
        e,
        Error::Unsupported(Unsupported::Level(ExchangeLevel::Character))
    );
    assert!(e.to_string().contains("character level"), "{e}");
    let config = cardunlock_ccid::session::Config {
        interface_protocol: 2,
        ..Default::default()
    };
    let e = cardunlock_ccid::session::Session::<_, _, _>::with_config(
        shared.pipe(),
        clock,
        shared.control(),
        &ClassDescriptor::TYPICAL,
        0,
        config,
    )
    .unwrap_err();
    assert_eq!(e, Error::Unsupported(Unsupported::Iccd));
    assert!(e.to_string().contains("ICCD"), "{e}");
}

#[test]
fn a_card_seen_gone_by_slot_status_fails_the_next_apdu_once() {
    let (mut session, reader) = apdu_session(blocked_piv(), reader(ExchangeLevel::ShortApdu, 271));
    block_on(session.power_on()).unwrap();
    reader.get_mut().remove_card();
    assert_eq!(
        block_on(session.slot_status()).unwrap().icc,
        IccStatus::Absent
    );
    let mut resp = [0u8; 32];
    let status = [0x00, 0x20, 0x00, 0x80];
    assert_eq!(
        block_on(session.transmit(&status, &mut resp)),
        Err(Error::CardRemoved)
    );
    assert_eq!(
        block_on(session.transmit(&status, &mut resp)),
        Err(Error::NoCard)
    );
    reader.get_mut().insert_card();
    assert!(block_on(session.transmit(&status, &mut resp)).is_ok());
    assert_eq!(reader.get().card().card.commands_seen(), 1);
}

/// QEMU's reader answers GetParameters with `dwLength` 0 (and the 7 bytes after the message,
/// which the USB pipe drops at the short transfer): a clear protocol error, and the session
/// stays in step for the next command.
#[test]
fn empty_parameters_reply_is_a_clear_error_and_the_session_stays_in_step() {
    use cardunlock_ccid::session::{Error, NoControl, Session, Violation};
    use cardunlock_ccid_sim::{ScriptPipe, ScriptReply, TestClock};
    let empty_parameters = ScriptReply {
        bytes: vec![0x82, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00],
        answer: true,
        fix_length: true,
    };
    let slot_status = ScriptReply {
        bytes: vec![0x81, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00],
        answer: true,
        fix_length: true,
    };
    let desc = cardunlock_ccid::descriptor::ClassDescriptor::TYPICAL;
    let mut s: Session<_, _, _> = Session::new(
        ScriptPipe::new([empty_parameters, slot_status]),
        TestClock::new(),
        NoControl,
        &desc,
        0,
    )
    .unwrap();
    let err = block_on(s.get_parameters()).unwrap_err();
    assert_eq!(err, Error::Protocol(Violation::EmptyParameters));
    assert_eq!(
        err.to_string(),
        "CCID protocol: the reader answered with empty protocol parameters"
    );
    let state = block_on(s.slot_status()).unwrap();
    assert_eq!(state.icc, cardunlock_ccid::codec::IccStatus::Active);
}
