//! The session at TPDU level: T=1 and T=0 through the crate's engines, carried in XfrBlocks to
//! the simulated reader with helper B's card-side T=1 / T=0 in the slot; PPS, SetParameters and
//! IFSD as the reader's feature bits require; faults of the line and of the reader.

use cardunlock_ccid::atr::{Edc, Protocol};
use cardunlock_ccid::codec::msg_type;
use cardunlock_ccid::descriptor::{features, ClassDescriptor};
use cardunlock_ccid_sim::tpdu::{T0Card, T1Card};
use cardunlock_ccid_sim::{
    session_with, Fault, SharedReader, SimConfig, SimSession, SlotCard, When,
};
use cardunlock_core::driver::Driver;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock;
use cardunlock_core::{ErrorKind, Transport};
use cardunlock_sim::{Config, PivConfig, SimCard};
use embassy_futures::block_on;

fn piv() -> SimCard {
    SimCard::new(Config::Piv(PivConfig::factory().blocked()))
}

fn tpdu_reader(features: u32, max: u32) -> SimConfig {
    let mut d = ClassDescriptor::TYPICAL;
    d.features = features | features::LEVEL_TPDU;
    d.max_message_length = max;
    SimConfig::new(d)
}

fn unblock<S: SlotCard>(session: SimSession<S>, puk: &[u8]) -> (Result<(), String>, SimSession<S>) {
    let mut driver = Driver::new(session);
    let input = unlock::piv_input(&PinPolicy::PIV, puk, b"840259", b"840259").unwrap();
    let r = block_on(unlock::piv_unblock(&mut driver, &input.0, &input.1));
    (r.map_err(|e| format!("{e:?}")), driver.into_inner())
}

fn t1_card(reader: &SharedReader<T1Card<SimCard>>) -> std::cell::Ref<'_, SimCard> {
    std::cell::Ref::map(reader.get(), |r| r.card().inner())
}

#[test]
fn t1_unblock_with_a_reader_that_does_everything_itself() {
    let all = features::AUTO_PARAMETERS_FROM_ATR
        | features::AUTO_VOLTAGE
        | features::AUTO_NEGOTIATION
        | features::AUTO_PPS
        | features::AUTO_IFSD;
    let (session, reader) = session_with(T1Card::new(piv()), tpdu_reader(all, 271));
    assert!(!session.supports_extended_length());
    let (r, session) = unblock(session, b"12345678");
    r.unwrap();
    let setup = session.tpdu_setup_result().unwrap();
    assert_eq!(setup.protocol, Protocol::T1);
    assert!(!setup.pps_sent && !setup.set_parameters_sent);
    assert!(reader.get().pps_requests.is_empty());
    assert_eq!(reader.get().count(msg_type::SET_PARAMETERS), 0);
    let card = t1_card(&reader);
    assert!(card.pin_is(b"840259"));
    assert_eq!(card.puk_tries_left(), Some(3));
}

#[test]
fn t1_unblock_with_a_bare_reader_does_pps_set_parameters_and_ifsd() {
    let (session, reader) =
        session_with(T1Card::new(piv()), tpdu_reader(features::AUTO_VOLTAGE, 271));
    let (r, session) = unblock(session, b"12345678");
    r.unwrap();
    let setup = session.tpdu_setup_result().unwrap();
    assert_eq!(setup.protocol, Protocol::T1);
    assert_eq!(setup.fidi, 0x13, "TA1 of the card's ATR");
    assert!(setup.pps_sent && setup.set_parameters_sent);
    assert_eq!(setup.ifsd, 254);
    // PPS: FF, PPS0 = 0x11 (PPS1 present, T=1), PPS1 = 0x13, PCK.
    assert_eq!(
        reader.get().pps_requests,
        vec![vec![0xFF, 0x11, 0x13, 0xFF ^ 0x11 ^ 0x13]]
    );
    let params = reader.get().parameters_set.clone();
    assert_eq!(params.len(), 1);
    assert_eq!(params[0].0, 1);
    assert_eq!(params[0].1[0], 0x13);
    assert_eq!(reader.get().card().ifsd(), 254);
    assert!(t1_card(&reader).pin_is(b"840259"));
}

#[test]
fn t1_with_automatic_pps_sets_parameters_but_sends_no_pps() {
    let (session, reader) = session_with(
        T1Card::new(piv()),
        tpdu_reader(
            features::AUTO_VOLTAGE | features::AUTO_PPS | features::AUTO_PARAMETERS_FROM_ATR,
            271,
        ),
    );
    let (r, session) = unblock(session, b"12345678");
    r.unwrap();
    let setup = session.tpdu_setup_result().unwrap();
    assert!(!setup.pps_sent && setup.set_parameters_sent);
    assert!(reader.get().pps_requests.is_empty());
    assert_eq!(reader.get().parameters_set.len(), 1);
}

#[test]
fn t1_in_64_byte_messages_chains_blocks() {
    let card = T1Card::new(piv()).with_ifsc(254).with_edc(Edc::Crc);
    let (session, reader) = session_with(card, tpdu_reader(features::AUTO_VOLTAGE, 64));
    let (r, _) = unblock(session, b"12345678");
    r.unwrap();
    assert!(reader.get().longest_message <= 64);
    assert_eq!(reader.get().oversize_messages, 0);
    assert!(t1_card(&reader).pin_is(b"840259"));
    assert!(reader.get().card().ifsd() <= 64 - 10 - 5);
}

#[test]
fn t1_lost_and_garbled_replies_never_run_the_unblock_twice() {
    for lose in [true, false] {
        let (mut session, reader) = session_with(
            T1Card::new(piv()),
            tpdu_reader(features::AUTO_VOLTAGE | features::AUTO_IFSD, 271),
        );
        block_on(session.power_on()).unwrap();
        let mut resp = [0u8; 258];
        let select = [0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08];
        block_on(session.transmit(&select, &mut resp)).unwrap();
        if lose {
            reader.get_mut().card_mut().lose_replies(1);
        } else {
            reader.get_mut().card_mut().corrupt_replies(2);
        }
        let (r, _) = unblock(session, b"12345678");
        r.unwrap();
        assert_eq!(reader.get().card().executed_count(0x2C), 1);
        assert!(t1_card(&reader).pin_is(b"840259"));
        assert_eq!(t1_card(&reader).puk_tries_left(), Some(3));
    }
}

#[test]
fn t1_card_wtx_and_reader_time_extensions() {
    let (session, reader) =
        session_with(T1Card::new(piv()), tpdu_reader(features::AUTO_VOLTAGE, 271));
    reader.get_mut().card_mut().request_wtx(2, 3);
    // XfrBlock 0 is the IFSD exchange, 1 SELECT, 2 RESET RETRY COUNTER.
    reader.get_mut().inject(
        When::Xfr(2),
        Fault::TimeExtensions {
            count: 4,
            multiplier: 2,
            interval_ms: 3_000,
        },
    );
    let (r, _) = unblock(session, b"12345678");
    r.unwrap();
    assert!(t1_card(&reader).pin_is(b"840259"));
}

#[test]
fn t1_card_removed_mid_apdu() {
    let (session, reader) =
        session_with(T1Card::new(piv()), tpdu_reader(features::AUTO_VOLTAGE, 271));
    reader.get_mut().inject(When::Xfr(2), Fault::CardRemoved);
    let mut driver = Driver::new(session);
    let input = unlock::piv_input(&PinPolicy::PIV, b"12345678", b"840259", b"840259").unwrap();
    let r = block_on(unlock::piv_unblock(&mut driver, &input.0, &input.1));
    let Err(unlock::UnlockError::Card(e)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(e.transport_kind(), Some(ErrorKind::CardRemoved));
    assert_eq!(reader.get().card().executed_count(0x2C), 0);
    assert_eq!(t1_card(&reader).puk_tries_left(), Some(3));
}

#[test]
fn t0_unblock() {
    let (session, reader) =
        session_with(T0Card::new(piv()), tpdu_reader(features::AUTO_VOLTAGE, 271));
    let (r, session) = unblock(session, b"12345678");
    r.unwrap();
    let setup = session.tpdu_setup_result().unwrap();
    assert_eq!(setup.protocol, Protocol::T0);
    assert!(reader.get().card().inner().pin_is(b"840259"));
    assert_eq!(reader.get().card().inner().puk_tries_left(), Some(3));
}

#[test]
fn t0_wrong_puk_costs_one_try_only() {
    let (session, reader) =
        session_with(T0Card::new(piv()), tpdu_reader(features::AUTO_VOLTAGE, 271));
    reader
        .get_mut()
        .inject(When::Xfr(1), Fault::StaleReplies(2));
    let (r, _) = unblock(session, b"87654321");
    assert!(r.unwrap_err().contains("WrongPuk"));
    assert_eq!(reader.get().card().inner().puk_tries_left(), Some(2));
}

/// Proves the CCID reader path takes a TPDU-level reader's APDU-level answers (QEMU's
/// `usb-ccid` with `ccid-card-passthru`, SPICE passthrough): SELECT, a case 4 command, comes
/// back as data and `90 00` instead of `61 XX`, and the unblock goes through. Fails with
/// "T=0: the card's answer is malformed" if the session's T=0 is the strict engine.
#[test]
fn t0_reader_with_a_card_answering_at_apdu_level() {
    let mut d = ClassDescriptor::TYPICAL;
    d.features = 0x0001_04FE; // QEMU's usb-ccid: TPDU level, T=0 only.
    d.protocols = 0x01;
    let card = T0Card::new(piv()).apdu_level(true);
    let (session, reader) = session_with(card, SimConfig::new(d));
    let mut driver = Driver::new(session);
    let select = cardunlock_core::piv::select();
    let r = block_on(driver.transceive(&select)).unwrap();
    assert!(r.status.is_success());
    assert!(!r.data.is_empty(), "SELECT's application property template");
    let session = driver.into_inner();
    let (r, session) = unblock(session, b"12345678");
    r.unwrap();
    assert_eq!(session.tpdu_setup_result().unwrap().protocol, Protocol::T0);
    let r = reader.get();
    assert!(r.card().inner().pin_is(b"840259"));
    // No GET RESPONSE went out: every answer came whole.
    assert!(r.card().tpdus().iter().all(|h| h[1] != 0xC0));
}

/// Proves a T=1-only card in a T=0-only reader is explained: the error names both sides and
/// the missing protocol, not just "no protocol".
#[test]
fn a_t1_only_card_in_a_t0_only_reader_is_explained() {
    let mut d = ClassDescriptor::TYPICAL;
    d.features = features::AUTO_VOLTAGE | features::LEVEL_TPDU;
    d.protocols = 0x01;
    let (mut session, _reader) = session_with(T1Card::new(piv()), SimConfig::new(d));
    let e = block_on(session.power_on()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("only T=1"), "{text}");
    assert!(text.contains("only T=0"), "{text}");
    assert!(!text.contains("offers no protocol"), "{text}");
}
