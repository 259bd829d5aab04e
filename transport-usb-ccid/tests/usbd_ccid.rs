//! The independent device peer: the real `usbd-ccid` 0.5 reader (device side, over
//! `usb-device` 0.3) in-process behind a fake `UsbBus`, with `apdu-dispatch` 0.4 and
//! `interchange` 0.3 carrying APDUs to a simulated PIV card.
//!
//! The host enumerates the device with real control requests and takes its CCID class
//! descriptor from the configuration descriptor; hand-encoded CCID messages then go through a
//! byte pipe (`embedded_io_async::{Read, Write}`) over the bulk endpoints. The tests pin down
//! usbd-ccid's behaviour, quirks included, so that our session is checked against a reader it
//! was not written with.

#[path = "usbd_ccid/card_app.rs"]
mod card_app;
#[path = "usbd_ccid/fake_bus.rs"]
mod fake_bus;
#[path = "usbd_ccid/pipe.rs"]
mod pipe;
#[path = "usbd_ccid/reader.rs"]
mod reader;

use std::cell::RefCell;
use std::rc::Rc;

use cardunlock_sim::{Config, PivConfig, SimCard};
use embassy_futures::block_on;
use embedded_io_async::{Read, Write};
use hex_literal::hex;

use pipe::{PipeError, UsbPipe};
use reader::{Reader, Trace};

const SELECT_PIV: [u8; 15] = hex!("00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 00");
const GET_CHUID: [u8; 11] = hex!("00 CB 3F FF 05 5C 03 5F C1 02 00");

/// A blocked factory PIV card, an enumerated usbd-ccid reader in front of it, and the host's
/// pipe to the reader.
struct Bench {
    card: Rc<RefCell<SimCard>>,
    reader: Rc<RefCell<Reader>>,
    pipe: UsbPipe,
}

fn bench() -> Bench {
    let card = Rc::new(RefCell::new(SimCard::new(Config::Piv(
        PivConfig::factory().blocked(),
    ))));
    let reader = Rc::new(RefCell::new(Reader::new(card.clone())));
    reader.borrow_mut().enumerate();
    let pipe = UsbPipe::new(reader.clone());
    Bench { card, reader, pipe }
}

/// A CCID bulk-OUT message: type, dwLength, bSlot 0, bSeq, three message-specific bytes,
/// payload.
fn message(kind: u8, seq: u8, specific: [u8; 3], payload: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    m.extend_from_slice(&[0, seq]);
    m.extend_from_slice(&specific);
    m.extend_from_slice(payload);
    m
}

fn xfr_block(seq: u8, level: u16, apdu: &[u8]) -> Vec<u8> {
    let [l0, l1] = level.to_le_bytes();
    message(0x6F, seq, [0, l0, l1], apdu)
}

/// One reader reply: header fields and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Reply {
    kind: u8,
    slot: u8,
    seq: u8,
    status: u8,
    error: u8,
    /// bChainParameter (DataBlock), bClockStatus (SlotStatus), bProtocolNum (Parameters).
    specific: u8,
    payload: Vec<u8>,
}

async fn send(pipe: &mut UsbPipe, m: &[u8]) {
    pipe.write_all(m).await.expect("write");
    pipe.flush().await.expect("flush");
}

async fn receive(pipe: &mut UsbPipe) -> Result<Reply, PipeError> {
    let mut header = [0u8; 10];
    pipe.read_exact(&mut header).await.map_err(|e| match e {
        embedded_io_async::ReadExactError::Other(e) => e,
        embedded_io_async::ReadExactError::UnexpectedEof => panic!("end of stream"),
    })?;
    let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let mut payload = vec![0u8; len];
    pipe.read_exact(&mut payload).await.expect("payload");
    Ok(Reply {
        kind: header[0],
        slot: header[5],
        seq: header[6],
        status: header[7],
        error: header[8],
        specific: header[9],
        payload,
    })
}

fn exchange(pipe: &mut UsbPipe, m: &[u8]) -> Reply {
    block_on(async {
        send(pipe, m).await;
        receive(pipe).await.expect("a reply")
    })
}

/// Sends an APDU in one XfrBlock and follows a chained DataBlock with empty XfrBlocks of
/// wLevelParameter 0x10; returns the response APDU and the bChainParameter of every part.
fn transmit_apdu(pipe: &mut UsbPipe, seq: &mut u8, apdu: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut reply = exchange(pipe, &xfr_block(*seq, 0, apdu));
    let mut response = Vec::new();
    let mut chain = Vec::new();
    loop {
        assert_eq!(reply.kind, 0x80, "DataBlock: {reply:02X?}");
        assert_eq!(reply.seq, *seq);
        assert_eq!(reply.status, 0, "{reply:02X?}");
        *seq = seq.wrapping_add(1);
        response.extend_from_slice(&reply.payload);
        chain.push(reply.specific);
        if matches!(reply.specific, 0 | 2) {
            return (response, chain);
        }
        reply = exchange(pipe, &xfr_block(*seq, 0x10, &[]));
    }
}

/// What the simulated card answers to `apdus` directly, without any reader.
fn direct(apdus: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut card = SimCard::new(Config::Piv(PivConfig::factory().blocked()));
    apdus.iter().map(|a| card.transmit(a)).collect()
}

// ---- enumeration ------------------------------------------------------------------------------

#[test]
fn enumerates_and_declares_a_ccid_interface() {
    let b = bench();
    let r = b.reader.borrow();
    let found = r.found.clone().unwrap();
    assert_eq!(
        r.usb_state(),
        usb_device::device::UsbDeviceState::Configured
    );
    // Configuration descriptor: one interface, class 0x0B (CCID), bulk.
    assert_eq!(found.config[1], 2);
    assert_eq!(found.config[4], 1, "bNumInterfaces");
    assert_eq!(found.config[9 + 5], 0x0B, "bInterfaceClass");
    assert_eq!(found.config[9 + 7], 0, "bInterfaceProtocol: bulk");
    // Device descriptor: class from the interface, EP0 of 64 bytes, our VID:PID.
    assert_eq!(found.device[4], 0x00);
    assert_eq!(found.device[7], 64);
    assert_eq!(&found.device[8..12], &hex!("09 12 1D CC"));
    // The CCID class descriptor: 54 bytes, type 0x21, CCID 1.10.
    let d = &found.ccid_class;
    assert_eq!(d.len(), 54);
    assert_eq!(&d[..4], &hex!("36 21 10 01"));
    assert_eq!(d[4], 0, "bMaxSlotIndex: one slot");
    assert_eq!(
        u32::from_le_bytes(d[6..10].try_into().unwrap()),
        2,
        "T=1 only"
    );
    assert_eq!(
        u32::from_le_bytes(d[40..44].try_into().unwrap()),
        0x0004_0840,
        "dwFeatures: short and extended APDU level"
    );
    assert_eq!(u32::from_le_bytes(d[44..48].try_into().unwrap()), 3072);
    // Bulk pair of 64-byte packets; usbd-ccid 0.5 declares no interrupt endpoint (so no
    // NotifySlotChange ever).
    assert_eq!(found.bulk_mps, 64);
    assert_eq!(found.interrupt_in, None);
    assert_eq!(found.bulk_in & 0x80, 0x80);
    assert_eq!(found.bulk_out & 0x80, 0);
    let eps = r.host.endpoints();
    assert_eq!(eps.len(), 4, "EP0 in and out, bulk in and out: {eps:?}");
}

// ---- hand-encoded CCID messages -------------------------------------------------------------------

#[test]
fn power_on_answers_the_readers_own_atr() {
    let mut b = bench();
    let reply = exchange(&mut b.pipe, &message(0x62, 0, [0, 0, 0], &[]));
    assert_eq!(reply.kind, 0x80);
    assert_eq!(
        (reply.slot, reply.seq, reply.status, reply.error),
        (0, 0, 0, 0)
    );
    // usbd-ccid makes up its ATR (T=1 only, no historical bytes): the card's own ATR never
    // reaches the host.
    assert_eq!(reply.payload, hex!("3B 80 01 81"));
    assert_ne!(reply.payload, b.card.borrow().atr());
}

#[test]
fn select_piv_gets_the_cards_answer_through_chaining() {
    let mut b = bench();
    let mut seq = 0;
    exchange(&mut b.pipe, &message(0x62, seq, [0, 0, 0], &[]));
    seq += 1;
    let (response, chain) = transmit_apdu(&mut b.pipe, &mut seq, &SELECT_PIV);
    let want = &direct(&[&SELECT_PIV])[0];
    assert_eq!(&response, want);
    assert_eq!(&response[response.len() - 2..], &[0x90, 0x00]);
    if response.len() > 54 {
        assert_eq!(chain.first(), Some(&1), "begins");
        assert_eq!(chain.last(), Some(&2), "ends");
    } else {
        assert_eq!(chain, vec![0]);
    }
    assert_eq!(b.reader.borrow().app.seen_ins, vec![0xA4]);
}

#[test]
fn a_response_over_54_bytes_comes_back_chained() {
    let mut b = bench();
    let mut seq = 0;
    let (select, _) = transmit_apdu(&mut b.pipe, &mut seq, &SELECT_PIV);
    let (chuid, chain) = transmit_apdu(&mut b.pipe, &mut seq, &GET_CHUID);
    let want = direct(&[&SELECT_PIV, &GET_CHUID]);
    assert_eq!(select, want[0]);
    assert_eq!(chuid, want[1]);
    assert!(chuid.len() > 54, "CHUID is {} bytes", chuid.len());
    // bChainParameter: 1 begins, 3 continues, 2 ends; 54 data bytes per part.
    let parts = chuid.len().div_ceil(54);
    let mut expected = vec![1];
    expected.extend(std::iter::repeat_n(3, parts - 2));
    expected.push(2);
    assert_eq!(chain, expected);
    // A full part is a 64-byte packet: usbd-ccid ends it with a zero-length packet, which the
    // host's larger IN transfer absorbs.
    let trace = b.reader.borrow().trace.clone();
    assert!(trace
        .iter()
        .any(|t| matches!(t, Trace::In(d) if d.len() == 64)));
}

#[test]
fn a_zero_length_packet_read_on_its_own_is_skipped() {
    let mut b = bench();
    // The host submits 64-byte IN transfers: the trailing ZLP of a 64-byte message arrives as a
    // transfer of its own, which the pipe must skip (it is not the end of the stream).
    b.pipe.in_transfer_len = 64;
    let mut seq = 0;
    transmit_apdu(&mut b.pipe, &mut seq, &SELECT_PIV);
    let (chuid, _) = transmit_apdu(&mut b.pipe, &mut seq, &GET_CHUID);
    assert_eq!(chuid, direct(&[&SELECT_PIV, &GET_CHUID])[1]);
    assert!(b.pipe.zlps_skipped > 0);
}

#[test]
fn slot_status_always_says_present_and_active() {
    let mut b = bench();
    let before = exchange(&mut b.pipe, &message(0x65, 9, [0, 0, 0], &[]));
    assert_eq!(
        (before.kind, before.seq, before.status, before.error),
        (0x81, 9, 0, 0)
    );
    let off = exchange(&mut b.pipe, &message(0x63, 10, [0, 0, 0], &[]));
    assert_eq!((off.kind, off.seq, off.status), (0x81, 10, 0));
    // After IccPowerOff a reader should say "present, inactive" (bStatus 1): usbd-ccid keeps
    // saying "present and active".
    let after = exchange(&mut b.pipe, &message(0x65, 11, [0, 0, 0], &[]));
    assert_eq!((after.kind, after.seq, after.status), (0x81, 11, 0));
}

#[test]
fn get_parameters_reports_t1() {
    let mut b = bench();
    let reply = exchange(&mut b.pipe, &message(0x6C, 4, [0, 0, 0], &[]));
    assert_eq!((reply.kind, reply.seq, reply.status), (0x82, 4, 0));
    assert_eq!(reply.specific, 1, "bProtocolNum T=1");
    assert_eq!(reply.payload.len(), 7);
}

#[test]
fn unsupported_commands_get_an_error_reply_of_message_type_6c() {
    let mut b = bench();
    for kind in [0x61u8, 0x6B, 0x6D, 0x69] {
        let reply = exchange(&mut b.pipe, &message(kind, 0x20, [0, 0, 0], &[]));
        // A CCID reader answers SlotStatus (0x81) with bStatus "command failed" and bError 0
        // (command not supported); usbd-ccid puts 0x6C in bMessageType.
        assert_eq!(
            (reply.kind, reply.seq, reply.status, reply.error),
            (0x6C, 0x20, 0x40, 0x00),
            "command {kind:02X}"
        );
    }
    // The reader still works afterwards.
    let mut seq = 0x21;
    let (r, _) = transmit_apdu(&mut b.pipe, &mut seq, &SELECT_PIV);
    assert_eq!(&r[r.len() - 2..], &[0x90, 0x00]);
}

#[test]
fn time_extensions_come_before_the_answer() {
    let mut b = bench();
    b.reader.borrow_mut().set_wtx_per_command(2);
    let replies = block_on(async {
        send(&mut b.pipe, &xfr_block(3, 0, &SELECT_PIV)).await;
        let mut all = Vec::new();
        for _ in 0..3 {
            all.push(receive(&mut b.pipe).await.unwrap());
        }
        all
    });
    for wtx in &replies[..2] {
        // DataBlock, bmCommandStatus 2 (time extension), bError = multiplier 1, no data.
        assert_eq!(
            (wtx.kind, wtx.seq, wtx.status, wtx.error, wtx.payload.len()),
            (0x80, 3, 0x80, 1, 0)
        );
    }
    assert_eq!(
        (replies[2].kind, replies[2].seq, replies[2].status),
        (0x80, 3, 0)
    );
    assert_eq!(replies[2].payload, direct(&[&SELECT_PIV])[0]);
    assert_eq!(b.reader.borrow().wtx_sent, 2);
}

/// A 64-byte XfrBlock: a 54-byte APDU (GET DATA with a padded tag list; any answer will do).
fn full_packet_xfr(seq: u8) -> Vec<u8> {
    let mut apdu = hex!("00 CB 3F FF 31 5C 03 5F C1 02").to_vec();
    apdu.resize(54, 0);
    let m = xfr_block(seq, 0, &apdu);
    assert_eq!(m.len(), 64);
    m
}

#[test]
fn a_64_byte_message_without_zlp_is_answered() {
    let mut b = bench();
    let mut seq = 0;
    transmit_apdu(&mut b.pipe, &mut seq, &SELECT_PIV);
    let reply = exchange(&mut b.pipe, &full_packet_xfr(seq));
    assert_eq!((reply.kind, reply.seq, reply.status), (0x80, seq, 0));
    assert!(reply.payload.len() >= 2);
    assert!(!pipe::trace_has_out_zlp(&b.reader.borrow().trace));
}

#[test]
fn quirk_a_zlp_after_a_64_byte_message_resets_usbd_ccid() {
    let mut b = bench();
    let mut seq = 0;
    transmit_apdu(&mut b.pipe, &mut seq, &SELECT_PIV);
    let seen_before = b.card.borrow().commands_seen();
    b.pipe.zlp_after_full_out = true;
    let silent = block_on(async {
        send(&mut b.pipe, &full_packet_xfr(seq)).await;
        receive(&mut b.pipe).await
    });
    assert!(pipe::trace_has_out_zlp(&b.reader.borrow().trace));
    // The ZLP reads as a "short packet" and resets the reader, which cancels the command:
    // no answer ever comes, and the card never sees the command.
    assert_eq!(silent, Err(PipeError::Silent));
    assert_eq!(b.card.borrow().commands_seen(), seen_before);
    // The reader works again for the next message.
    b.pipe.zlp_after_full_out = false;
    let status = exchange(&mut b.pipe, &message(0x65, 0x40, [0, 0, 0], &[]));
    assert_eq!((status.kind, status.seq), (0x81, 0x40));
}

#[test]
fn quirk_get_slot_status_while_busy_takes_over_the_commands_bseq() {
    let mut b = bench();
    b.reader.borrow_mut().hold_app = true;
    block_on(send(&mut b.pipe, &xfr_block(5, 0, &SELECT_PIV)));
    // The reader answers the status poll at once: present, active, no "busy" indication.
    let status = exchange(&mut b.pipe, &message(0x65, 6, [0, 0, 0], &[]));
    assert_eq!((status.kind, status.seq, status.status), (0x81, 6, 0));
    b.reader.borrow_mut().hold_app = false;
    let answer = block_on(receive(&mut b.pipe)).unwrap();
    // The answer to the XfrBlock of bSeq 5 arrives with bSeq 6.
    assert_eq!((answer.kind, answer.seq, answer.status), (0x80, 6, 0));
    assert_eq!(answer.payload, direct(&[&SELECT_PIV])[0]);
}

#[test]
fn quirk_an_xfr_block_while_busy_resets_the_reader() {
    let mut b = bench();
    b.reader.borrow_mut().hold_app = true;
    block_on(send(&mut b.pipe, &xfr_block(5, 0, &SELECT_PIV)));
    block_on(send(&mut b.pipe, &xfr_block(6, 0, &SELECT_PIV)));
    b.reader.borrow_mut().hold_app = false;
    // No answer to either: the second XfrBlock reset the reader, which cancelled the first.
    assert_eq!(block_on(receive(&mut b.pipe)), Err(PipeError::Silent));
    assert_eq!(b.card.borrow().commands_seen(), 0);
    let mut seq = 7;
    let (r, _) = transmit_apdu(&mut b.pipe, &mut seq, &SELECT_PIV);
    assert_eq!(r, direct(&[&SELECT_PIV])[0]);
}

#[test]
fn abort_through_control_and_bulk_ends_a_running_command() {
    let mut b = bench();
    b.reader.borrow_mut().hold_app = true;
    block_on(send(&mut b.pipe, &xfr_block(3, 0, &SELECT_PIV)));
    b.reader
        .borrow_mut()
        .control_abort(0, 4)
        .expect("ABORT control request");
    let reply = exchange(&mut b.pipe, &message(0x72, 4, [0, 0, 0], &[]));
    assert_eq!(
        (reply.kind, reply.seq, reply.status, reply.error),
        (0x81, 4, 0, 0)
    );
    // The aborted command's answer never comes.
    b.reader.borrow_mut().hold_app = false;
    assert_eq!(block_on(receive(&mut b.pipe)), Err(PipeError::Silent));
    // The next command works.
    let mut seq = 5;
    let (r, _) = transmit_apdu(&mut b.pipe, &mut seq, &SELECT_PIV);
    assert_eq!(&r[r.len() - 2..], &[0x90, 0x00]);
}

#[test]
fn control_abort_alone_makes_the_reader_refuse_commands_until_the_bulk_abort() {
    let mut b = bench();
    b.reader
        .borrow_mut()
        .control_abort(0, 8)
        .expect("ABORT control request");
    let refused = exchange(&mut b.pipe, &message(0x65, 7, [0, 0, 0], &[]));
    // CMD_ABORTED (0xFF), in usbd-ccid's 0x6C error reply.
    assert_eq!(
        (refused.kind, refused.seq, refused.status, refused.error),
        (0x6C, 7, 0x40, 0xFF)
    );
    let done = exchange(&mut b.pipe, &message(0x72, 8, [0, 0, 0], &[]));
    assert_eq!((done.kind, done.seq, done.status), (0x81, 8, 0));
    let ok = exchange(&mut b.pipe, &message(0x65, 9, [0, 0, 0], &[]));
    assert_eq!((ok.kind, ok.seq, ok.status), (0x81, 9, 0));
}

#[test]
fn quirk_a_command_handled_with_a_pending_in_completion_resets_a_chain() {
    let mut b = bench();
    // The host reads 64-byte transfers and the device polls late: the host's wLevelParameter
    // 0x10 poll reaches usbd-ccid in the same poll as the completion of the 64-byte packet, while
    // usbd-ccid still holds the ZLP that must follow it ("Full outbox"): it resets.
    b.pipe.in_transfer_len = 64;
    b.reader.borrow_mut().late_in_complete = true;
    let mut seq = 0;
    transmit_apdu(&mut b.pipe, &mut seq, &SELECT_PIV);
    let first = exchange(&mut b.pipe, &xfr_block(seq, 0, &GET_CHUID));
    assert_eq!(
        (first.kind, first.specific, first.payload.len()),
        (0x80, 1, 54)
    );
    let next = block_on(async {
        send(&mut b.pipe, &xfr_block(seq + 1, 0x10, &[])).await;
        // The queued ZLP arrives (and is skipped), then nothing.
        receive(&mut b.pipe).await
    });
    assert_eq!(next, Err(PipeError::Silent));
}

// ---- our CCID session against usbd-ccid ---------------------------------------------------------

mod session {
    use super::*;

    use cardunlock_ccid::descriptor::{ClassDescriptor, ExchangeLevel};
    use cardunlock_ccid::session::{Error as SessionError, Session};
    use cardunlock_core::driver::{Driver, Error};
    use cardunlock_core::flow::{FlowError, NoAdmin, PivUnblock, Profile, ReadStatus};
    use cardunlock_core::piv::IdKind;
    use cardunlock_core::policy::PinPolicy;
    use cardunlock_core::secret::{NewPin, PinContext, PivPin, PivPuk};
    use cardunlock_core::Transport;
    use pipe::{UsbControl, VirtualClock};

    type UsbSession = Session<UsbPipe, VirtualClock, UsbControl>;

    /// A session configured from the descriptor the device itself declared.
    fn open(b: Bench) -> (Rc<RefCell<SimCard>>, Rc<RefCell<Reader>>, UsbSession) {
        let found = b.reader.borrow().found.clone().unwrap();
        let desc = ClassDescriptor::parse(&found.ccid_class).expect("usbd-ccid's descriptor");
        assert_eq!(desc.exchange_level(), ExchangeLevel::ShortExtendedApdu);
        assert_eq!(desc.max_message_length, 3072);
        assert_eq!(desc.max_slot_index, 0);
        // Found the way a USB stack hands it over (the interface's extra descriptors), and
        // encoded back to the device's own bytes.
        assert_eq!(ClassDescriptor::find(&found.config[18..]), Ok(desc));
        assert_eq!(&desc.encode()[..], &found.ccid_class[..]);
        let clock = VirtualClock::of(&b.reader);
        let control = UsbControl::new(b.reader.clone());
        let session = Session::new(b.pipe, clock, control, &desc, 0).expect("session");
        (b.card, b.reader, session)
    }

    fn new_pin() -> NewPin<PivPin> {
        NewPin::confirmed(
            &PinPolicy::PIV,
            b"840259",
            b"840259",
            PinContext::NONE.puk(b"12345678"),
        )
        .unwrap()
    }

    #[test]
    fn piv_unblock_through_the_session_and_usbd_ccid() {
        let (card, reader, session) = open(bench());
        let mut driver = Driver::new(session);
        let pin = new_pin();
        let puk = PivPuk::new(b"12345678").unwrap();
        let mut flow = PivUnblock::new(&puk, &pin);
        block_on(driver.run(&mut flow, &mut NoAdmin)).expect("unblock");
        let c = card.borrow();
        assert!(c.pin_is(b"840259"));
        assert_eq!(c.pin_tries_left(), 3);
        assert_eq!(c.puk_tries_left(), Some(3));
        // SELECT, RESET RETRY COUNTER, VERIFY with the new PIN reached the card, nothing else.
        assert_eq!(reader.borrow().app.seen_ins, vec![0xA4, 0x2C, 0x20]);
        // The session powered the card first (IccPowerOn), and never sent a ZLP.
        let r = reader.borrow();
        assert!(matches!(r.trace.first(), Some(Trace::Out(m)) if m[0] == 0x62));
        assert!(!pipe::trace_has_out_zlp(&r.trace));
        // The PUK and PIN never reached the trace.
        for t in &r.trace {
            if let Trace::Out(m) = t {
                assert!(!m.windows(8).any(|w| w == b"12345678"), "PUK in {m:02X?}");
                assert!(!m.windows(6).any(|w| w == b"840259"), "PIN in {m:02X?}");
            }
        }
    }

    #[test]
    fn wrong_puk_reports_tries_left_and_costs_exactly_one() {
        let (card, _reader, session) = open(bench());
        let mut driver = Driver::new(session);
        let pin = NewPin::confirmed(
            &PinPolicy::PIV,
            b"840259",
            b"840259",
            PinContext::NONE.puk(b"87654321"),
        )
        .unwrap();
        let puk = PivPuk::new(b"87654321").unwrap();
        let mut flow = PivUnblock::new(&puk, &pin);
        let got = block_on(driver.run(&mut flow, &mut NoAdmin));
        assert_eq!(got, Err(Error::Flow(FlowError::WrongPuk { tries_left: 2 })));
        let c = card.borrow();
        assert_eq!(c.puk_tries_left(), Some(2));
        assert!(c.pin_is(b"123456"));
        assert_eq!(c.pin_tries_left(), 0);
    }

    #[test]
    fn read_status_through_usbd_ccid() {
        let (card, _reader, session) = open(bench());
        let mut driver = Driver::new(session);
        let status = block_on(driver.run(
            &mut ReadStatus::new(cardunlock_sim::ISO_PROFILE),
            &mut NoAdmin,
        ))
        .unwrap();
        assert_eq!(status.profile, Profile::Piv);
        assert!(status.pin_blocked());
        assert_eq!(status.puk_tries_left, Some(3));
        assert_eq!(status.identity.unwrap().kind, IdKind::Guid);
        assert_eq!(card.borrow().puk_tries_left(), Some(3));
        assert_eq!(card.borrow().pin_tries_left(), 0);
    }

    #[test]
    fn power_on_slot_status_and_parameters() {
        let (_card, _reader, mut s) = open(bench());
        let atr = block_on(s.power_on()).expect("power on").to_vec();
        assert_eq!(atr, hex!("3B 80 01 81"));
        let slot = block_on(s.slot_status()).expect("slot status");
        assert_eq!(slot.icc, cardunlock_ccid::codec::IccStatus::Active);
        let params = block_on(s.get_parameters()).expect("parameters");
        assert_eq!(params.protocol(), 1);
    }

    /// APDUs through the session give what the card gives directly: a long command (several
    /// OUT packets), a 64-byte message, a chained response.
    #[test]
    fn apdus_through_the_session_match_the_card() {
        let (_card, reader, mut s) = open(bench());
        let mut long_cmd = hex!("00 CB 3F FF 78 5C 03 5F C1 02").to_vec();
        long_cmd.resize(5 + 0x78, 0);
        let mut full_packet = hex!("00 CB 3F FF 31 5C 03 5F C1 02").to_vec();
        full_packet.resize(54, 0);
        let apdus: [&[u8]; 4] = [&SELECT_PIV, &GET_CHUID, &long_cmd, &full_packet];
        let want = direct(&apdus);
        for (apdu, want) in apdus.iter().zip(&want) {
            let mut resp = [0u8; 300];
            let n = block_on(s.transmit(apdu, &mut resp)).expect("transmit");
            assert_eq!(&resp[..n], &want[..], "APDU {:02X?}", &apdu[..5]);
        }
        let r = reader.borrow();
        assert!(!pipe::trace_has_out_zlp(&r.trace));
        // The 54-byte APDU went out as exactly one 64-byte message.
        assert!(r
            .trace
            .iter()
            .any(|t| matches!(t, Trace::Out(m) if m.len() == 64)));
    }

    #[test]
    fn time_extensions_from_usbd_ccid_are_followed() {
        let b = bench();
        b.reader.borrow_mut().set_wtx_per_command(3);
        let (card, reader, session) = open(b);
        let mut driver = Driver::new(session);
        let pin = new_pin();
        let puk = PivPuk::new(b"12345678").unwrap();
        let mut flow = PivUnblock::new(&puk, &pin);
        block_on(driver.run(&mut flow, &mut NoAdmin)).expect("unblock");
        assert!(card.borrow().pin_is(b"840259"));
        // Three per APDU (SELECT, RRC, VERIFY).
        assert_eq!(reader.borrow().wtx_sent, 9);
    }

    #[test]
    fn a_silent_card_times_out_and_the_abort_sequence_recovers_the_reader() {
        let b = bench();
        let (card, reader, mut s) = open(b);
        s.io_mut().wait_when_silent = true;
        block_on(s.power_on()).expect("power on");
        reader.borrow_mut().hold_app = true;
        let mut resp = [0u8; 300];
        let got = block_on(s.transmit(&SELECT_PIV, &mut resp));
        assert!(matches!(got, Err(SessionError::Timeout)), "{got:?}");
        // ABORT went out over EP0 and then over bulk with the same bSeq.
        let aborts = s.control().aborts.clone();
        assert_eq!(aborts.len(), 1);
        let abort_seq = aborts[0].1;
        let bulk_abort = reader
            .borrow()
            .trace
            .iter()
            .rev()
            .find_map(|t| match t {
                Trace::Out(m) if m[0] == 0x72 => Some(m[6]),
                _ => None,
            })
            .expect("a bulk Abort");
        assert_eq!(bulk_abort, abort_seq);
        // usbd-ccid answered the Abort with a SlotStatus of that bSeq.
        assert!(reader.borrow().trace.iter().any(
            |t| matches!(t, Trace::In(m) if m.len() == 10 && m[0] == 0x81 && m[6] == abort_seq)
        ));
        // The card comes back; the next command goes through.
        reader.borrow_mut().hold_app = false;
        let n = block_on(s.transmit(&SELECT_PIV, &mut resp)).expect("after abort");
        assert_eq!(&resp[..n], &direct(&[&SELECT_PIV])[0][..]);
        assert!(card.borrow().is_selected());
    }

    #[test]
    fn set_parameters_gets_usbd_ccids_6c_error_reply_as_command_not_supported() {
        let (_card, _reader, mut s) = open(bench());
        block_on(s.power_on()).expect("power on");
        let params = block_on(s.get_parameters()).expect("parameters");
        let got = block_on(s.set_parameters(&params));
        assert_eq!(
            got,
            Err(SessionError::Slot(
                cardunlock_ccid::codec::SlotError::CommandNotSupported
            ))
        );
        // The session stays in step with the reader.
        let mut resp = [0u8; 300];
        let n = block_on(s.transmit(&SELECT_PIV, &mut resp)).expect("transmit");
        assert_eq!(&resp[n - 2..n], &[0x90, 0x00]);
    }

    #[test]
    fn an_explicit_abort_on_an_idle_reader_completes() {
        let (_card, _reader, mut s) = open(bench());
        block_on(s.abort()).expect("abort");
        assert_eq!(s.control().aborts.len(), 1);
        let slot = block_on(s.slot_status()).expect("slot status");
        assert_eq!(slot.icc, cardunlock_ccid::codec::IccStatus::Active);
    }

    /// An extended APDU with 300 data bytes (GET DATA with a padded tag list): over one
    /// 271-byte message, so the session chains it (wLevelParameter 1, 3, 2) and usbd-ccid
    /// collects it; or in one message with a session buffer as large as the reader takes.
    fn long_extended_apdu() -> Vec<u8> {
        let mut apdu = hex!("00 CB 3F FF 00 01 2C 5C 03 5F C1 02").to_vec();
        apdu.resize(7 + 300, 0);
        apdu
    }

    #[test]
    fn a_long_command_is_chained_to_usbd_ccid() {
        let (card, reader, mut s) = open(bench());
        let apdu = long_extended_apdu();
        let mut resp = [0u8; 300];
        let n = block_on(s.transmit(&SELECT_PIV, &mut resp)).expect("select");
        assert_eq!(&resp[n - 2..n], &[0x90, 0x00]);
        let n = block_on(s.transmit(&apdu, &mut resp)).expect("long APDU");
        assert_eq!(&resp[..n], &direct(&[&SELECT_PIV, &apdu])[1][..]);
        // The card saw the whole command once.
        assert_eq!(card.borrow().commands_seen(), 2);
        let r = reader.borrow();
        let levels: Vec<u16> = r
            .trace
            .iter()
            .filter_map(|t| match t {
                Trace::Out(m) if m[0] == 0x6F => Some(u16::from_le_bytes([m[8], m[9]])),
                _ => None,
            })
            .collect();
        assert_eq!(levels, vec![0, 1, 2], "SELECT whole; then begin, end");
    }

    #[test]
    fn a_session_with_a_large_buffer_sends_a_long_command_in_one_message() {
        let b = bench();
        let found = b.reader.borrow().found.clone().unwrap();
        let desc = ClassDescriptor::parse(&found.ccid_class).unwrap();
        let clock = VirtualClock::of(&b.reader);
        let control = UsbControl::new(b.reader.clone());
        let mut s: Session<UsbPipe, VirtualClock, UsbControl, 3072> =
            Session::new(b.pipe, clock, control, &desc, 0).expect("session");
        assert_eq!(s.max_message_len(), 3072);
        let apdu = long_extended_apdu();
        let mut resp = [0u8; 300];
        block_on(s.transmit(&SELECT_PIV, &mut resp)).expect("select");
        let n = block_on(s.transmit(&apdu, &mut resp)).expect("long APDU");
        assert_eq!(&resp[..n], &direct(&[&SELECT_PIV, &apdu])[1][..]);
        let r = b.reader.borrow();
        assert!(r
            .trace
            .iter()
            .any(|t| matches!(t, Trace::Out(m) if m.len() == 10 + 307 && m[8] == 0)));
    }

    #[test]
    fn power_on_asks_for_5v_as_the_descriptor_offers_only_that() {
        let (_card, reader, mut s) = open(bench());
        block_on(s.power_on()).expect("power on");
        let r = reader.borrow();
        let first = r.trace.iter().find_map(|t| match t {
            Trace::Out(m) => Some(m.clone()),
            _ => None,
        });
        // bVoltageSupport 0x01 (5 V) and no automatic voltage selection: bPowerSelect 1.
        assert_eq!(first, Some(message(0x62, 0, [1, 0, 0], &[])));
    }

    #[test]
    fn without_a_control_channel_usbd_ccid_never_answers_the_bulk_abort() {
        let b = bench();
        let found = b.reader.borrow().found.clone().unwrap();
        let desc = ClassDescriptor::parse(&found.ccid_class).unwrap();
        let reader = b.reader.clone();
        let mut s: Session<_, _, _> = Session::new(
            b.pipe,
            VirtualClock::of(&reader),
            cardunlock_ccid::session::NoControl,
            &desc,
            0,
        )
        .expect("session");
        s.io_mut().wait_when_silent = true;
        block_on(s.power_on()).expect("power on");
        reader.borrow_mut().hold_app = true;
        let mut resp = [0u8; 300];
        let t0 = reader.borrow().now_ms.get();
        let got = block_on(s.transmit(&SELECT_PIV, &mut resp));
        assert!(matches!(got, Err(SessionError::Timeout)), "{got:?}");
        // usbd-ccid waits for the control half of the ABORT: its bulk Abort got no SlotStatus,
        // so the session waited out the abort timeout too (5 s + 2 s of virtual time).
        let waited = reader.borrow().now_ms.get() - t0;
        assert!(waited >= 7_000, "{waited} ms");
        assert!(!reader
            .borrow()
            .trace
            .iter()
            .any(|t| matches!(t, Trace::In(m) if m[0] == 0x81)));
        // Once the card answers, the late DataBlock (carrying the Abort's bSeq) is dropped as
        // stale and the next command goes through. (A command sent before the card answers
        // would reset usbd-ccid instead: see quirk_an_xfr_block_while_busy_resets_the_reader.)
        reader.borrow_mut().hold_app = false;
        for _ in 0..3 {
            reader.borrow_mut().tick();
        }
        assert!(
            reader.borrow().host.in_pending(found.bulk_in),
            "the late answer"
        );
        let n = block_on(s.transmit(&SELECT_PIV, &mut resp)).expect("after the card came back");
        assert_eq!(&resp[..n], &direct(&[&SELECT_PIV])[0][..]);
        let r = reader.borrow();
        let abort_seq = r
            .trace
            .iter()
            .find_map(|t| match t {
                Trace::Out(m) if m[0] == 0x72 => Some(m[6]),
                _ => None,
            })
            .expect("a bulk Abort");
        let stale = r
            .trace
            .iter()
            .filter(|t| matches!(t, Trace::In(m) if m[0] == 0x80 && m[6] == abort_seq))
            .count();
        assert_eq!(
            stale, 1,
            "the held command's answer came with the Abort's bSeq"
        );
    }

    /// The bytes the card app hands the simulated card for a GET DATA-like command: the same
    /// encoding, so direct and through-the-reader runs see identical commands.
    fn apdu(ins: u8, p1: u8, data: &[u8]) -> Vec<u8> {
        let mut a = vec![0x00, ins, p1, 0x00];
        if data.len() <= 255 {
            if !data.is_empty() {
                a.push(data.len() as u8);
                a.extend_from_slice(data);
            }
            a.push(0x00);
        } else {
            a.push(0x00);
            a.extend_from_slice(&(data.len() as u16).to_be_bytes());
            a.extend_from_slice(data);
            a.extend_from_slice(&[0x00, 0x00]);
        }
        a
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Any sequence of commands (data 0..=400 bytes: one packet, several packets, a
        /// 64-byte message, host-side chaining) gives through session and usbd-ccid exactly what
        /// the card gives directly, and reaches the card exactly once each.
        #[test]
        fn any_command_sequence_matches_the_card(
            cmds in proptest::collection::vec(
                (
                    proptest::sample::select(vec![0xCBu8, 0xDB, 0x87, 0xF7, 0xFD, 0x47, 0x20, 0x2C]),
                    proptest::prelude::any::<u8>(),
                    proptest::collection::vec(proptest::prelude::any::<u8>(), 0..=400),
                ),
                1..6,
            )
        ) {
            let (card, _reader, mut s) = open(bench());
            let mut apdus = vec![SELECT_PIV.to_vec()];
            apdus.extend(cmds.iter().map(|(ins, p1, data)| apdu(*ins, *p1, data)));
            let refs: Vec<&[u8]> = apdus.iter().map(|a| a.as_slice()).collect();
            let want = direct(&refs);
            for (a, w) in apdus.iter().zip(&want) {
                let mut resp = [0u8; 1024];
                let n = block_on(s.transmit(a, &mut resp)).expect("transmit");
                proptest::prop_assert_eq!(&resp[..n], &w[..], "APDU {:02X?} ({} bytes)", &a[..4], a.len());
            }
            proptest::prop_assert_eq!(card.borrow().commands_seen(), apdus.len());
        }
    }
}
