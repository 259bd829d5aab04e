//! Faults of the reader and the card at APDU level: stale and wrong-slot replies, time-extension
//! storms, a card pulled out mid-APDU, lying `dwLength`, a busy slot, a reader that never answers.
//! Every one ends with a result or a typed error, never a panic, and never costs a PIN or PUK try
//! the user did not spend.

use cardunlock_ccid::codec::{msg_type, Interrupt, SlotError};
use cardunlock_ccid::descriptor::{ClassDescriptor, ExchangeLevel};
use cardunlock_ccid::session::{Error, Violation};
use cardunlock_ccid_sim::{
    apdu_session, ApduCard, Event, Fault, SharedReader, SimConfig, SimSession, When,
};
use cardunlock_core::driver::Driver;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock::{self, UnlockError};
use cardunlock_core::{ErrorKind, Transport};
use cardunlock_sim::{Config, PivConfig, SimCard};
use embassy_futures::block_on;

/// XfrBlock indexes of the unblock: SELECT, RESET RETRY COUNTER, VERIFY.
const RRC: usize = 1;

fn setup(level: ExchangeLevel, max: u32) -> (SimSession<ApduCard>, SharedReader<ApduCard>) {
    let mut d = ClassDescriptor::TYPICAL.with_level(level);
    d.max_message_length = max;
    apdu_session(
        SimCard::new(Config::Piv(PivConfig::factory().blocked())),
        SimConfig::new(d),
    )
}

type Outcome = Result<(), UnlockError<<SimSession<ApduCard> as Transport>::Error>>;

fn unblock_with(session: SimSession<ApduCard>, puk: &[u8]) -> (Outcome, SimSession<ApduCard>) {
    let mut driver = Driver::new(session);
    let input = unlock::piv_input(&PinPolicy::PIV, puk, b"840259", b"840259").unwrap();
    let r = block_on(unlock::piv_unblock(&mut driver, &input.0, &input.1));
    (r, driver.into_inner())
}

fn transport_kind(r: &Outcome) -> Option<ErrorKind> {
    match r {
        Err(UnlockError::Card(e)) => e.transport_kind(),
        _ => None,
    }
}

fn transport_error(r: &Outcome) -> Option<<SimSession<ApduCard> as Transport>::Error> {
    match r {
        Err(UnlockError::Card(cardunlock_core::driver::Error::Transport(e))) => Some(*e),
        _ => None,
    }
}

fn rrc_seen(reader: &SharedReader<ApduCard>) -> usize {
    reader
        .get()
        .card_payloads
        .iter()
        .filter(|a| a.get(1) == Some(&0x2C))
        .count()
}

fn puk_tries(reader: &SharedReader<ApduCard>) -> u8 {
    reader.get().card().card.puk_tries_left().unwrap()
}

fn unblocked(reader: &SharedReader<ApduCard>) -> bool {
    reader.get().card().card.pin_is(b"840259")
}

/// The bulk Abort was preceded by the control request with the same bSeq.
fn abort_seen(reader: &SharedReader<ApduCard>) -> bool {
    let r = reader.get();
    r.events.windows(2).any(|w| match (w[0], w[1]) {
        (
            Event::ControlAbort { seq: a, .. },
            Event::Bulk {
                msg_type: t,
                seq: b,
                ..
            },
        ) => t == msg_type::ABORT && a == b,
        _ => false,
    })
}

#[test]
fn stale_replies_are_dropped() {
    let (session, reader) = setup(ExchangeLevel::ShortApdu, 271);
    reader
        .get_mut()
        .inject(When::Xfr(RRC), Fault::StaleReplies(3));
    let (r, _) = unblock_with(session, b"12345678");
    r.unwrap();
    assert!(unblocked(&reader));
    assert_eq!(rrc_seen(&reader), 1);
}

#[test]
fn replies_for_another_slot_are_dropped() {
    let (session, reader) = setup(ExchangeLevel::ShortExtendedApdu, 271);
    reader
        .get_mut()
        .inject(When::Xfr(0), Fault::WrongSlotReplies(2));
    reader
        .get_mut()
        .inject(When::Xfr(RRC), Fault::WrongSlotReplies(1));
    let (r, _) = unblock_with(session, b"12345678");
    r.unwrap();
    assert!(unblocked(&reader));
}

#[test]
fn endless_stale_replies_end_in_a_protocol_error_without_a_resend() {
    let (session, reader) = setup(ExchangeLevel::ShortApdu, 271);
    reader
        .get_mut()
        .inject(When::Xfr(RRC), Fault::StaleReplies(50));
    let (r, _) = unblock_with(session, b"12345678");
    assert_eq!(
        transport_error(&r),
        Some(Error::Protocol(Violation::TooManyStale))
    );
    // The card ran it once (the reader did), nobody sent it twice, no try lost.
    assert_eq!(rrc_seen(&reader), 1);
    assert_eq!(puk_tries(&reader), 3);
}

#[test]
fn a_wrong_puk_with_stale_replies_costs_exactly_one_try() {
    let (session, reader) = setup(ExchangeLevel::ShortApdu, 271);
    reader
        .get_mut()
        .inject(When::Xfr(RRC), Fault::StaleReplies(2));
    let (r, _) = unblock_with(session, b"87654321");
    assert!(
        matches!(
            r,
            Err(UnlockError::Card(cardunlock_core::driver::Error::Flow(_)))
        ),
        "{r:?}"
    );
    assert_eq!(puk_tries(&reader), 2);
    assert_eq!(rrc_seen(&reader), 1);
}

#[test]
fn time_extensions_push_the_deadline_out() {
    let (session, reader) = setup(ExchangeLevel::ShortApdu, 271);
    // The real reply comes 4 x 4 s = 16 s late: far past the 5 s base wait, but every
    // extension (x2) moves the deadline to now + 10 s.
    reader.get_mut().inject(
        When::Xfr(RRC),
        Fault::TimeExtensions {
            count: 3,
            multiplier: 2,
            interval_ms: 4_000,
        },
    );
    let (r, session) = unblock_with(session, b"12345678");
    r.unwrap();
    assert!(unblocked(&reader));
    assert!(!abort_seen(&reader));
    let (_, clock, _) = session.into_parts();
    assert!(clock.now() >= 16_000);
}

#[test]
fn a_time_extension_storm_ends_at_the_hard_cap() {
    let (session, reader) = setup(ExchangeLevel::ShortApdu, 271);
    reader.get_mut().inject(
        When::Xfr(RRC),
        Fault::TimeExtensions {
            count: 100_000,
            multiplier: 10,
            interval_ms: 1_000,
        },
    );
    let (r, session) = unblock_with(session, b"12345678");
    assert_eq!(transport_kind(&r), Some(ErrorKind::Timeout));
    assert!(abort_seen(&reader));
    let (_, clock, _) = session.into_parts();
    // 60 s cap (plus the abort, answered at once).
    assert!(
        clock.now() >= 60_000 && clock.now() < 63_000,
        "ended at {} ms",
        clock.now()
    );
    assert_eq!(rrc_seen(&reader), 1);
    assert_eq!(puk_tries(&reader), 3);
}

#[test]
fn a_reader_that_never_answers_times_out_and_is_aborted() {
    let (session, reader) = setup(ExchangeLevel::ShortApdu, 271);
    reader.get_mut().inject(When::Xfr(RRC), Fault::Silent);
    let (r, mut session) = unblock_with(session, b"12345678");
    assert_eq!(transport_kind(&r), Some(ErrorKind::Timeout));
    assert_eq!(transport_error(&r), Some(Error::Timeout));
    assert!(abort_seen(&reader));
    assert_eq!(rrc_seen(&reader), 0);
    assert_eq!(puk_tries(&reader), 3);
    // The session carries on after the abort.
    let (r, _) = {
        block_on(session.slot_status()).unwrap();
        unblock_with(session, b"12345678")
    };
    r.unwrap();
    assert!(unblocked(&reader));
}

#[test]
fn a_dead_reader_times_out_even_during_the_abort() {
    let (session, reader) = setup(ExchangeLevel::ShortApdu, 271);
    reader.get_mut().inject(When::Xfr(RRC), Fault::Dead);
    let (r, session) = unblock_with(session, b"12345678");
    assert_eq!(transport_kind(&r), Some(ErrorKind::Timeout));
    assert!(abort_seen(&reader));
    let (_, clock, _) = session.into_parts();
    assert_eq!(clock.now(), 5_000 + 2_000);
    assert_eq!(puk_tries(&reader), 3);
}

#[test]
fn card_removed_before_the_apdu_reaches_it() {
    let (session, reader) = setup(ExchangeLevel::ShortApdu, 271);
    reader.get_mut().inject(When::Xfr(RRC), Fault::CardRemoved);
    let (r, mut session) = unblock_with(session, b"12345678");
    assert_eq!(transport_kind(&r), Some(ErrorKind::CardRemoved));
    assert_eq!(rrc_seen(&reader), 0);
    assert_eq!(puk_tries(&reader), 3);
    assert!(!unblocked(&reader));
    // The interrupt endpoint says so too.
    let msg = reader.get_mut().take_interrupt().unwrap();
    let Interrupt::SlotChange(c) = Interrupt::parse(&msg).unwrap() else {
        panic!()
    };
    assert!(!c.present(0) && c.changed(0));
    // While it is out: no card.
    let mut resp = [0u8; 64];
    let e = block_on(session.transmit(&[0x00, 0xA4, 0x04, 0x00], &mut resp)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoCard);
    // Put back: works again.
    reader.get_mut().insert_card();
    let (r, _) = unblock_with(session, b"12345678");
    r.unwrap();
    assert!(unblocked(&reader));
}

#[test]
fn card_removed_after_running_the_apdu() {
    let (session, reader) = setup(ExchangeLevel::ShortExtendedApdu, 271);
    reader
        .get_mut()
        .inject(When::Xfr(RRC), Fault::CardRemovedAfter);
    let (r, _) = unblock_with(session, b"87654321");
    assert_eq!(transport_kind(&r), Some(ErrorKind::CardRemoved));
    // The user's one wrong PUK was spent by the card, and only that one.
    assert_eq!(rrc_seen(&reader), 1);
    assert_eq!(puk_tries(&reader), 2);
}

#[test]
fn a_busy_slot_is_retried_only_because_the_command_did_not_run() {
    let (session, reader) = setup(ExchangeLevel::ShortApdu, 271);
    reader.get_mut().inject(When::Xfr(RRC), Fault::SlotBusy(2));
    let (r, _) = unblock_with(session, b"12345678");
    r.unwrap();
    assert_eq!(rrc_seen(&reader), 1);
    assert!(unblocked(&reader));

    let (session, reader) = setup(ExchangeLevel::ShortApdu, 271);
    reader.get_mut().inject(When::Xfr(RRC), Fault::SlotBusy(20));
    let (r, _) = unblock_with(session, b"12345678");
    assert_eq!(
        transport_error(&r),
        Some(Error::Slot(SlotError::CmdSlotBusy))
    );
    assert_eq!(rrc_seen(&reader), 0);
    assert_eq!(puk_tries(&reader), 3);
}

#[test]
fn a_slot_error_is_reported_typed() {
    let (session, reader) = setup(ExchangeLevel::ShortApdu, 271);
    reader
        .get_mut()
        .inject(When::Xfr(RRC), Fault::Error(SlotError::XfrParityError));
    let (r, _) = unblock_with(session, b"12345678");
    assert_eq!(
        transport_error(&r),
        Some(Error::Slot(SlotError::XfrParityError))
    );
    assert_eq!(puk_tries(&reader), 3);
    let (session, reader) = setup(ExchangeLevel::ShortApdu, 271);
    reader
        .get_mut()
        .inject(When::Xfr(RRC), Fault::Error(SlotError::IccMute));
    let (r, _) = unblock_with(session, b"12345678");
    assert_eq!(transport_kind(&r), Some(ErrorKind::Timeout));
    assert_eq!(puk_tries(&reader), 3);
}

#[test]
fn an_overlong_dwlength_times_out_and_the_session_recovers() {
    let (session, reader) = setup(ExchangeLevel::ShortApdu, 271);
    reader
        .get_mut()
        .inject(When::Xfr(RRC), Fault::OverlongLength(4));
    let (r, session) = unblock_with(session, b"12345678");
    assert_eq!(transport_kind(&r), Some(ErrorKind::Timeout));
    assert!(abort_seen(&reader));
    // The card ran the right PUK: no try lost; it is unblocked even though the reply was lost.
    assert_eq!(puk_tries(&reader), 3);
    assert_eq!(rrc_seen(&reader), 1);
    let (r, _) = unblock_with(session, b"12345678");
    r.unwrap();
}

#[test]
fn an_overlong_dwlength_beyond_the_buffer_is_skipped() {
    let (session, reader) = setup(ExchangeLevel::ShortApdu, 271);
    reader
        .get_mut()
        .inject(When::Xfr(RRC), Fault::OverlongLength(100_000));
    let (r, session) = unblock_with(session, b"12345678");
    assert!(r.is_err());
    assert_eq!(puk_tries(&reader), 3);
    let (r, _) = unblock_with(session, b"12345678");
    r.unwrap();
}

#[test]
fn a_truncated_dwlength_is_an_error_and_the_session_recovers() {
    let (session, reader) = setup(ExchangeLevel::ShortApdu, 271);
    reader
        .get_mut()
        .inject(When::Xfr(RRC), Fault::TruncatedLength(1));
    let (r, mut session) = unblock_with(session, b"12345678");
    assert!(r.is_err(), "{r:?}");
    assert_eq!(puk_tries(&reader), 3);
    assert_eq!(rrc_seen(&reader), 1);
    // The leftover byte desynchronises the stream: the next command may fail (and is
    // aborted), the one after works.
    let _ = block_on(session.slot_status());
    let (r, _) = unblock_with(session, b"12345678");
    r.unwrap();
}

#[test]
fn a_stalled_endpoint_is_cleared_and_the_session_goes_on() {
    let (session, reader) = setup(ExchangeLevel::ShortApdu, 271);
    reader.get_mut().inject(When::Xfr(RRC), Fault::Stall);
    let (r, session) = unblock_with(session, b"87654321");
    assert_eq!(
        transport_error(&r),
        Some(Error::Io(embedded_io_async::ErrorKind::ConnectionReset))
    );
    assert_eq!(transport_kind(&r), Some(ErrorKind::Unavailable));
    assert_eq!(reader.get().halts_cleared, 1);
    // The wrong PUK reached the card once: one try, not two.
    assert_eq!(puk_tries(&reader), 2);
    assert_eq!(rrc_seen(&reader), 1);
    let (r, _) = unblock_with(session, b"12345678");
    r.unwrap();
    assert!(unblocked(&reader));
}

/// Every fault at every exchange of the unblock, with the right PUK and a wrong one: no panic,
/// no try lost beyond the one a wrong PUK spends when it reaches the card.
#[test]
fn no_fault_anywhere_costs_an_unspent_try() {
    let faults = [
        Fault::StaleReplies(2),
        Fault::StaleReplies(40),
        Fault::WrongSlotReplies(3),
        Fault::TimeExtensions {
            count: 5,
            multiplier: 1,
            interval_ms: 3_000,
        },
        Fault::TimeExtensions {
            count: 10_000,
            multiplier: 255,
            interval_ms: 10,
        },
        Fault::CardRemoved,
        Fault::CardRemovedAfter,
        Fault::TruncatedLength(1),
        Fault::TruncatedLength(200),
        Fault::OverlongLength(1),
        Fault::OverlongLength(u32::MAX - 300),
        Fault::SlotBusy(1),
        Fault::SlotBusy(9),
        Fault::Error(SlotError::HardwareError),
        Fault::Silent,
        Fault::Dead,
        Fault::Delay(4_999),
        Fault::Delay(5_001),
        Fault::Stall,
    ];
    for level in [ExchangeLevel::ShortApdu, ExchangeLevel::ShortExtendedApdu] {
        for max in [64, 271] {
            for fault in faults {
                for at in 0..4 {
                    for puk in [&b"12345678"[..], &b"87654321"[..]] {
                        let (session, reader) = setup(level, max);
                        reader.get_mut().inject(When::Xfr(at), fault);
                        let (r, _) = unblock_with(session, puk);
                        let spent = rrc_seen(&reader);
                        assert!(spent <= 1, "{fault:?} at {at}: RRC sent {spent} times");
                        let expected = if puk == b"87654321" {
                            3 - spent as u8
                        } else {
                            3
                        };
                        assert_eq!(
                            puk_tries(&reader),
                            expected,
                            "{fault:?} at {at} ({level:?}, {max}): {r:?}"
                        );
                        assert!(
                            reader.get().card().card.pin_tries_left() == 0 || unblocked(&reader)
                        );
                        assert_eq!(reader.get().partial_flushes, 0);
                        assert_eq!(reader.get().multi_message_flushes, 0);
                    }
                }
            }
        }
    }
}

mod hostile_reader {
    use cardunlock_ccid::descriptor::{ClassDescriptor, ExchangeLevel};
    use cardunlock_ccid::session::{NoControl, Session};
    use cardunlock_ccid_sim::{ScriptPipe, ScriptReply, TestClock};
    use cardunlock_core::Transport;
    use embassy_futures::block_on;
    use proptest::prelude::*;

    fn reply() -> impl Strategy<Value = ScriptReply> {
        let types = prop_oneof![
            Just(0x80u8),
            Just(0x81),
            Just(0x82),
            Just(0x83),
            Just(0x6C),
            any::<u8>()
        ];
        (
            types,
            proptest::collection::vec(any::<u8>(), 0..80),
            any::<[u8; 3]>(),
            any::<bool>(),
            any::<bool>(),
            any::<u32>(),
        )
            .prop_map(|(t, body, specific, answer, fix_length, len)| {
                let mut bytes = vec![t];
                bytes.extend_from_slice(&(len % 600).to_le_bytes());
                bytes.extend_from_slice(&[0, 0]);
                bytes.extend_from_slice(&specific);
                bytes.extend_from_slice(&body);
                ScriptReply {
                    bytes,
                    answer,
                    fix_length,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Whatever the reader answers, the session returns (in bounded virtual time), never
        /// panics, never sends a message over the maximum, and never sends the APDU twice.
        #[test]
        fn any_replies_end_in_a_result(
            script in proptest::collection::vec(reply(), 0..12),
            level in prop_oneof![Just(ExchangeLevel::ShortApdu), Just(ExchangeLevel::ShortExtendedApdu), Just(ExchangeLevel::Tpdu)],
            max in prop_oneof![Just(64u32), Just(271)],
        ) {
            let mut d = ClassDescriptor::TYPICAL.with_level(level);
            d.max_message_length = max;
            let clock = TestClock::new();
            let mut session: Session<_, _, _> =
                Session::new(ScriptPipe::new(script), clock.clone(), NoControl, &d, 0).unwrap();
            let rrc = [
                0x00, 0x2C, 0x00, 0x80, 0x10, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x38,
                0x34, 0x30, 0x32, 0x35, 0x39, 0xFF, 0xFF,
            ];
            let mut resp = [0u8; 258];
            let r = block_on(session.transmit(&rrc, &mut resp));
            if let Ok(n) = r {
                prop_assert!(n <= resp.len());
            }
            // Bounded: each command waits at most its cap, and there are only a few commands.
            prop_assert!(clock.now() <= 30 * 62_000, "{}", clock.now());
            let (pipe, _, _) = session.into_parts();
            prop_assert!(pipe.written.iter().all(|m| m.len() <= max as usize));
            let sent = pipe
                .written
                .iter()
                .filter(|m| m[0] == 0x6F && m.len() >= 12 && m[10..].windows(2).any(|w| w == [0x2C, 0x00]))
                .count();
            prop_assert!(sent <= 1, "the RESET RETRY COUNTER left {} times", sent);
        }
    }
}
