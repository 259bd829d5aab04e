//! The T=1 engine: blocks, and the engine against the card-side T=1 of `sim::tpdu` over a direct
//! in-memory `BlockIo` (no CCID framing), with faults injected on both sides, up to a full PIV
//! unblock through the core's driver.

use std::cell::RefCell;
use std::rc::Rc;

use cardunlock_ccid::atr::{Atr, Edc};
use cardunlock_ccid::codec::SlotError;
use cardunlock_ccid::t1::{
    crc16, lrc, Block, BlockError, BlockIo, ExchangeError, Pcb, RCode, SKind, T1Error, T1Params,
    MAX_BLOCK, T1,
};
use cardunlock_ccid_sim::tpdu::{FnCard, T1Card};
use cardunlock_ccid_sim::SlotCard;
use cardunlock_core::driver::{Driver, Error as DriverError};
use cardunlock_core::flow::FlowError;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::transport::{ErrorKind, Transport, TransportError};
use cardunlock_core::unlock::{self, UnlockError};
use cardunlock_sim::{Config, PivConfig, SimCard, VirtualCard};
use embassy_futures::block_on;
use hex_literal::hex;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Blocks

#[test]
fn block_vectors() {
    let mut buf = [0u8; MAX_BLOCK];
    // S(IFS request, 254), LRC.
    let n = Block::s(0, SKind::Ifs, false, &[0xFE])
        .encode(Edc::Lrc, &mut buf)
        .unwrap();
    assert_eq!(&buf[..n], hex!("00 C1 01 FE 3E"));
    // R(N(R)=1), no error.
    let n = Block::r(0, true, RCode::Ok)
        .encode(Edc::Lrc, &mut buf)
        .unwrap();
    assert_eq!(&buf[..n], hex!("00 90 00 90"));
    // I(1, more) with two bytes.
    let n = Block::i(0, true, true, &[0x00, 0xA4])
        .encode(Edc::Lrc, &mut buf)
        .unwrap();
    assert_eq!(&buf[..n], hex!("00 60 02 00 A4 C6"));
    // S(WTX response, 3).
    let n = Block::s(0, SKind::Wtx, true, &[3])
        .encode(Edc::Lrc, &mut buf)
        .unwrap();
    assert_eq!(&buf[..n], hex!("00 E3 01 03 E1"));
    assert_eq!(
        Block::parse(&hex!("00 C0 00 C0"), Edc::Lrc).unwrap().pcb,
        Pcb::S {
            kind: SKind::Resynch,
            response: false
        }
    );
}

#[test]
fn crc_is_the_one_host_stacks_use() {
    // CRC-16/MCRF4XX check value: reflected 0x1021, init FFFF, no final XOR.
    assert_eq!(crc16(b"123456789"), 0x6F91);
    assert_eq!(crc16(&[]), 0xFFFF);
    assert_eq!(lrc(&[0x00, 0xC1, 0x01, 0xFE]), 0x3E);
    let mut buf = [0u8; MAX_BLOCK];
    let n = Block::r(0, false, RCode::Ok)
        .encode(Edc::Crc, &mut buf)
        .unwrap();
    assert_eq!(n, 5);
    assert_eq!(buf[3..5], crc16(&[0x00, 0x80, 0x00]).to_be_bytes());
    assert!(Block::parse(&buf[..n], Edc::Crc).is_ok());
    assert_eq!(
        Block::parse(&buf[..n], Edc::Lrc),
        Err(BlockError::TrailingBytes)
    );
}

#[test]
fn invalid_blocks_are_refused() {
    assert_eq!(Block::parse(&[], Edc::Lrc), Err(BlockError::Truncated));
    assert_eq!(
        Block::parse(&hex!("00 00 FF 00"), Edc::Lrc),
        Err(BlockError::InvalidLength)
    );
    assert_eq!(
        Block::parse(&hex!("00 00 02 01"), Edc::Lrc),
        Err(BlockError::Truncated)
    );
    assert_eq!(
        Block::parse(&hex!("00 90 00 91"), Edc::Lrc),
        Err(BlockError::Edc)
    );
    // R-block with an information field.
    assert_eq!(
        Block::parse(&hex!("00 80 01 00 81"), Edc::Lrc),
        Err(BlockError::InvalidPcb)
    );
    // I-block with reserved bits.
    assert_eq!(
        Block::parse(&hex!("00 01 00 01"), Edc::Lrc),
        Err(BlockError::InvalidPcb)
    );
    // An information field too long to encode.
    let mut buf = [0u8; 600];
    assert_eq!(
        Block::i(0, false, false, &[0; 255]).encode(Edc::Lrc, &mut buf),
        Err(BlockError::InvalidLength)
    );
    assert_eq!(
        Block::i(0, false, false, &[0; 10]).encode(Edc::Lrc, &mut buf[..5]),
        Err(BlockError::BufferTooSmall)
    );
}

fn any_pcb() -> impl Strategy<Value = Pcb> {
    prop_oneof![
        (any::<bool>(), any::<bool>()).prop_map(|(ns, more)| Pcb::I { ns, more }),
        (
            any::<bool>(),
            prop_oneof![Just(RCode::Ok), Just(RCode::Edc), Just(RCode::Other)]
        )
            .prop_map(|(nr, code)| Pcb::R { nr, code }),
        (
            prop_oneof![
                Just(SKind::Resynch),
                Just(SKind::Ifs),
                Just(SKind::Abort),
                Just(SKind::Wtx)
            ],
            any::<bool>()
        )
            .prop_map(|(kind, response)| Pcb::S { kind, response }),
    ]
}

proptest! {
    #[test]
    fn blocks_round_trip(
        nad in any::<u8>(),
        pcb in any_pcb(),
        inf in proptest::collection::vec(any::<u8>(), 0..=254),
        crc in any::<bool>(),
    ) {
        let edc = if crc { Edc::Crc } else { Edc::Lrc };
        let inf: &[u8] = match pcb {
            Pcb::I { .. } => &inf,
            Pcb::R { .. } => &[],
            Pcb::S { kind: SKind::Ifs | SKind::Wtx, .. } => &inf[..inf.len().min(1)],
            Pcb::S { .. } => &[],
        };
        prop_assume!(!matches!(pcb, Pcb::S { kind: SKind::Ifs | SKind::Wtx, .. }) || inf.len() == 1);
        let block = Block { nad, pcb, inf };
        let mut buf = [0u8; MAX_BLOCK];
        let n = block.encode(edc, &mut buf).unwrap();
        prop_assert_eq!(n, 3 + inf.len() + edc.epilogue_len());
        prop_assert_eq!(Block::parse(&buf[..n], edc), Ok(block));
        prop_assert_eq!(Pcb::from_byte(pcb.to_byte()), Some(pcb));
        // Any single flipped bit is caught.
        let bit = n * 8 - 1;
        let mut bad = buf;
        bad[bit / 8 % n] ^= 1 << (bit % 8);
        prop_assert!(Block::parse(&bad[..n], edc) != Ok(block));
    }

    #[test]
    fn block_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), crc in any::<bool>()) {
        let edc = if crc { Edc::Crc } else { Edc::Lrc };
        if let Ok(block) = Block::parse(&bytes, edc) {
            let mut buf = [0u8; MAX_BLOCK];
            let n = block.encode(edc, &mut buf).unwrap();
            prop_assert_eq!(&buf[..n], &bytes[..]);
        }
    }

    #[test]
    fn pcb_decoding_is_total(b in any::<u8>()) {
        if let Some(pcb) = Pcb::from_byte(b) {
            prop_assert_eq!(pcb.to_byte(), b);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A direct BlockIo over the card-side T=1, with faults of its own on chosen exchanges.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// The block never reaches the card.
    LoseCommand,
    /// The card acts on the block; its reply is lost.
    LoseReply,
    /// The card's reply arrives garbled.
    CorruptReply,
    /// The block reaches the card garbled.
    CorruptCommand,
}

struct Direct<C> {
    card: T1Card<C>,
    /// (exchange index, fault)
    faults: Vec<(usize, Fault)>,
    exchanges: usize,
    multipliers: Vec<u8>,
    sent: Vec<u8>,
}

impl<C: VirtualCard> Direct<C> {
    fn new(card: T1Card<C>) -> Self {
        Self {
            card,
            faults: Vec::new(),
            exchanges: 0,
            multipliers: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// `fault` on `n` exchanges from the `from`-th (0-based, counted from now).
    fn fault(&mut self, from: usize, n: usize, fault: Fault) {
        for i in 0..n {
            self.faults.push((self.exchanges + from + i, fault));
        }
    }

    /// The PCB bytes sent, in order.
    fn pcbs(&self) -> &[u8] {
        &self.sent
    }
}

impl<C: VirtualCard> BlockIo for Direct<C> {
    type Error = ErrorKind;

    async fn exchange(
        &mut self,
        block: &[u8],
        reply: &mut [u8],
        bwt_multiplier: u8,
    ) -> Result<usize, ExchangeError<ErrorKind>> {
        let index = self.exchanges;
        self.exchanges += 1;
        self.multipliers.push(bwt_multiplier);
        self.sent.push(block.get(1).copied().unwrap_or(0));
        let fault = self
            .faults
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, f)| *f);
        let mut block = block.to_vec();
        match fault {
            Some(Fault::LoseCommand) => return Err(ExchangeError::Mute),
            Some(Fault::CorruptCommand) => {
                if let Some(b) = block.last_mut() {
                    *b ^= 0xFF;
                }
            }
            _ => {}
        }
        let answer = match self.card.xfr_block(&block) {
            Ok(a) => a,
            Err(SlotError::IccMute) => return Err(ExchangeError::Mute),
            Err(_) => return Err(ExchangeError::Io(ErrorKind::Other)),
        };
        let mut answer = answer;
        match fault {
            Some(Fault::LoseReply) => return Err(ExchangeError::Mute),
            Some(Fault::CorruptReply) => {
                if let Some(b) = answer.get_mut(1) {
                    *b ^= 0x01;
                }
            }
            _ => {}
        }
        let dst = reply
            .get_mut(..answer.len())
            .ok_or(ExchangeError::Io(ErrorKind::ResponseTooLong))?;
        dst.copy_from_slice(&answer);
        Ok(answer.len())
    }
}

/// The adapter a test needs to run the core's flows over T=1 (the session does this for real).
struct T1Transport<C> {
    t1: T1,
    io: Direct<C>,
}

impl<C: VirtualCard> T1Transport<C> {
    fn new(mut card: T1Card<C>) -> Self {
        let atr = card.power_on();
        let t1 = T1::new(T1Params::from_atr(&Atr::parse(&atr).unwrap()));
        Self {
            t1,
            io: Direct::new(card),
        }
    }
}

impl<C: VirtualCard> Transport for T1Transport<C> {
    type Error = T1Error<ErrorKind>;

    async fn transmit(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, Self::Error> {
        self.t1.transceive(&mut self.io, command, response).await
    }
}

/// A card that records the APDUs it gets and answers `len(apdu)` bytes of pattern + 9000, or
/// as many bytes as the first data byte times 10 when the APDU has data.
type Log = Rc<RefCell<Vec<Vec<u8>>>>;

fn recording_card(response_len: usize) -> (FnCard<impl FnMut(&[u8]) -> Vec<u8>>, Log) {
    let log: Log = Rc::default();
    let seen = log.clone();
    let card = FnCard::new(&cardunlock_sim::ATR_PIV, move |apdu: &[u8]| {
        seen.borrow_mut().push(apdu.to_vec());
        let mut r: Vec<u8> = (0..response_len).map(|i| (i % 251) as u8).collect();
        r.extend_from_slice(&[0x90, 0x00]);
        r
    });
    (card, log)
}

fn setup(card: T1Card<impl VirtualCard>) -> (T1, Direct<impl VirtualCard>) {
    let mut card = card;
    let atr = card.power_on();
    let t1 = T1::new(T1Params::from_atr(&Atr::parse(&atr).unwrap()));
    (t1, Direct::new(card))
}

fn expected_response(len: usize) -> Vec<u8> {
    let mut r: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    r.extend_from_slice(&[0x90, 0x00]);
    r
}

fn case4(data_len: usize) -> Vec<u8> {
    let mut apdu = vec![0x00, 0xDB, 0x3F, 0xFF, data_len as u8];
    apdu.extend((0..data_len).map(|i| i as u8));
    apdu.push(0x00);
    apdu
}

#[test]
fn the_t1_card_atr_announces_its_parameters() {
    let (card, _) = recording_card(0);
    let card = T1Card::new(card).with_ifsc(16).with_edc(Edc::Crc);
    let atr = Atr::parse(card.atr()).unwrap();
    assert!(atr.offers(1));
    assert_eq!(atr.t1_ifsc(), 16);
    assert_eq!(atr.t1_edc(), Edc::Crc);
    assert!(atr.historical_bytes().ends_with(b"YubiKey"));
}

#[test]
fn a_short_exchange() {
    let (card, log) = recording_card(4);
    let (mut t1, mut io) = setup(T1Card::new(card));
    let mut resp = [0u8; 64];
    let n = block_on(t1.transceive(&mut io, &hex!("00 CA 00 00 00"), &mut resp)).unwrap();
    assert_eq!(&resp[..n], expected_response(4));
    assert_eq!(log.borrow().as_slice(), [hex!("00 CA 00 00 00").to_vec()]);
    // One I-block each way.
    assert_eq!(io.exchanges, 1);
    // Sequence numbers advance: the second exchange works too.
    let n = block_on(t1.transceive(&mut io, &hex!("00 CA 00 00 00"), &mut resp)).unwrap();
    assert_eq!(n, 6);
    assert_eq!(io.pcbs(), [0x00, 0x40]);
}

#[test]
fn chaining_both_ways_with_small_ifsc_and_default_ifsd() {
    let (card, log) = recording_card(300);
    let (mut t1, mut io) = setup(T1Card::new(card).with_ifsc(16));
    assert_eq!(t1.ifsc(), 16);
    let apdu = case4(200);
    let mut resp = [0u8; 512];
    let n = block_on(t1.transceive(&mut io, &apdu, &mut resp)).unwrap();
    assert_eq!(&resp[..n], expected_response(300));
    assert_eq!(log.borrow().as_slice(), std::slice::from_ref(&apdu));
    // 206 bytes in blocks of 16: 13 I-blocks; 302 bytes in blocks of 32: 10 I-blocks, 9 of them
    // acknowledged with an R-block. 13 + 9 exchanges.
    assert_eq!(io.exchanges, 13 + 9);
    let i_blocks = io.pcbs().iter().filter(|&&p| p & 0x80 == 0).count();
    let r_blocks = io.pcbs().iter().filter(|&&p| p & 0xC0 == 0x80).count();
    assert_eq!((i_blocks, r_blocks), (13, 9));
    // Chained I-blocks carry M, the last one does not.
    assert!(io.pcbs()[..12].iter().all(|&p| p & 0x20 != 0));
    assert_eq!(io.pcbs()[12] & 0x20, 0);
}

#[test]
fn ifsd_negotiation_shortens_the_response_chain() {
    let (card, _) = recording_card(300);
    let (mut t1, mut io) = setup(T1Card::new(card));
    assert_eq!(t1.ifsd(), 32);
    assert_eq!(block_on(t1.negotiate_ifsd(&mut io)).unwrap(), 254);
    assert_eq!(t1.ifsd(), 254);
    assert_eq!(io.card.ifsd(), 254);
    let before = io.exchanges;
    let mut resp = [0u8; 512];
    let n = block_on(t1.transceive(&mut io, &case4(10), &mut resp)).unwrap();
    assert_eq!(&resp[..n], expected_response(300));
    // 302 bytes in 254-byte blocks: 2 I-blocks from the card, one R-block from us.
    assert_eq!(io.exchanges - before, 2);
}

#[test]
fn crc_channel() {
    let (card, log) = recording_card(100);
    let (mut t1, mut io) = setup(T1Card::new(card).with_edc(Edc::Crc).with_ifsc(32));
    assert_eq!(t1.params().edc, Edc::Crc);
    let mut resp = [0u8; 512];
    let n = block_on(t1.transceive(&mut io, &case4(50), &mut resp)).unwrap();
    assert_eq!(&resp[..n], expected_response(100));
    assert_eq!(log.borrow().len(), 1);
}

#[test]
fn wtx_requests_are_answered_and_extend_the_next_wait() {
    let (card, log) = recording_card(8);
    let (mut t1, mut io) = setup(T1Card::new(card));
    io.card.request_wtx(2, 5);
    let mut resp = [0u8; 64];
    let n = block_on(t1.transceive(&mut io, &hex!("00 CA 00 00 00"), &mut resp)).unwrap();
    assert_eq!(&resp[..n], expected_response(8));
    // I-block, then two S(WTX response): the exchanges after them wait 5 times longer.
    assert_eq!(io.pcbs(), [0x00, 0xE3, 0xE3]);
    assert_eq!(io.multipliers, [1, 5, 5]);
    assert_eq!(log.borrow().len(), 1);
}

#[test]
fn an_ifs_request_of_the_card_changes_ifsc() {
    let (card, log) = recording_card(2);
    let (mut t1, mut io) = setup(T1Card::new(card).with_ifsc(254));
    io.card.request_ifs(20);
    let mut resp = [0u8; 64];
    block_on(t1.transceive(&mut io, &case4(10), &mut resp)).unwrap();
    assert_eq!(t1.ifsc(), 20);
    assert_eq!(io.card.ifsc(), 20);
    // The next command is chained in blocks of 20.
    let before = io.exchanges;
    block_on(t1.transceive(&mut io, &case4(100), &mut resp)).unwrap();
    assert_eq!(io.exchanges - before, 6); // 106 bytes / 20
    assert_eq!(log.borrow()[1], case4(100));
}

#[test]
fn checksum_errors_are_recovered_without_repeating_the_command() {
    for n in 1..=3 {
        let (card, log) = recording_card(40);
        let (mut t1, mut io) = setup(T1Card::new(card));
        io.card.corrupt_replies(n);
        let mut resp = [0u8; 64];
        let len = block_on(t1.transceive(&mut io, &case4(5), &mut resp)).unwrap();
        assert_eq!(&resp[..len], expected_response(40), "{n} corrupted");
        assert_eq!(log.borrow().len(), 1, "{n} corrupted");
        // Each garbled reply was answered with an R-block reporting an EDC error.
        let r_edc = io.pcbs().iter().filter(|&&p| p & 0xEF == 0x81).count();
        assert_eq!(r_edc, n as usize);
    }
}

#[test]
fn a_garbled_command_is_sent_again_when_the_card_asks() {
    let (card, log) = recording_card(4);
    let (mut t1, mut io) = setup(T1Card::new(card));
    io.fault(0, 1, Fault::CorruptCommand);
    let mut resp = [0u8; 64];
    let n = block_on(t1.transceive(&mut io, &case4(5), &mut resp)).unwrap();
    assert_eq!(&resp[..n], expected_response(4));
    // The card answered R(N(R)=0, EDC error); the engine sent I(0) again.
    assert_eq!(io.pcbs(), [0x00, 0x00]);
    assert_eq!(log.borrow().len(), 1);
}

#[test]
fn lost_blocks_are_recovered() {
    for fault in [Fault::LoseCommand, Fault::LoseReply, Fault::CorruptReply] {
        for n in 1..=3 {
            for at in [0usize, 3, 7] {
                let (card, log) = recording_card(100);
                let (mut t1, mut io) = setup(T1Card::new(card).with_ifsc(16));
                io.fault(at, n, fault);
                let apdu = case4(60);
                let mut resp = [0u8; 512];
                let len = block_on(t1.transceive(&mut io, &apdu, &mut resp))
                    .unwrap_or_else(|e| panic!("{fault:?} x{n} at {at}: {e}"));
                assert_eq!(
                    &resp[..len],
                    expected_response(100),
                    "{fault:?} x{n} at {at}"
                );
                assert_eq!(log.borrow().as_slice(), [apdu], "{fault:?} x{n} at {at}");
                assert_eq!(io.card.resynchs(), 0);
            }
        }
    }
}

#[test]
fn a_lost_reply_is_asked_for_again_not_re_executed() {
    let (card, log) = recording_card(4);
    let (mut t1, mut io) = setup(T1Card::new(card));
    io.card.lose_replies(2);
    let mut resp = [0u8; 64];
    let n = block_on(t1.transceive(&mut io, &case4(5), &mut resp)).unwrap();
    assert_eq!(&resp[..n], expected_response(4));
    // I(0), then R(N(R)=0) twice: the card repeated its answer, it ran the command once.
    assert_eq!(io.pcbs(), [0x00, 0x82, 0x82]);
    assert_eq!(log.borrow().len(), 1);
}

#[test]
fn resynch_mid_chain_restarts_the_command_once() {
    let (card, log) = recording_card(10);
    let (mut t1, mut io) = setup(T1Card::new(card).with_ifsc(16));
    let mut resp = [0u8; 64];
    // One exchange first, so the sequence numbers are not at their initial values.
    block_on(t1.transceive(&mut io, &case4(1), &mut resp)).unwrap();
    // The third block of the chain and everything after it is lost 4 times: 3 retries, then
    // RESYNCH; the card never had the whole command, so the engine sends it again.
    io.fault(2, 4, Fault::LoseReply);
    let apdu = case4(60);
    let n = block_on(t1.transceive(&mut io, &apdu, &mut resp)).unwrap();
    assert_eq!(&resp[..n], expected_response(10));
    assert_eq!(io.card.resynchs(), 1);
    assert_eq!(log.borrow().len(), 2);
    assert_eq!(log.borrow()[1], apdu);
    assert!(io.pcbs().contains(&0xC0));
}

#[test]
fn resynch_after_the_command_reached_the_card_reports_an_unknown_outcome() {
    let (card, log) = recording_card(10);
    let (mut t1, mut io) = setup(T1Card::new(card));
    // The card runs the command; its answer and the 3 repeats are lost.
    io.card.lose_replies(4);
    let mut resp = [0u8; 64];
    let err = block_on(t1.transceive(&mut io, &case4(5), &mut resp)).unwrap_err();
    assert_eq!(err, T1Error::Resynchronized);
    assert_eq!(err.kind(), ErrorKind::Other);
    assert!(err.to_string().contains("outcome is unknown"));
    assert_eq!(log.borrow().len(), 1, "the command must not be sent again");
    assert_eq!(io.card.resynchs(), 1);
    // The channel works again afterwards.
    let n = block_on(t1.transceive(&mut io, &case4(5), &mut resp)).unwrap();
    assert_eq!(&resp[..n], expected_response(10));
    assert_eq!(log.borrow().len(), 2);
}

#[test]
fn gives_up_with_a_clear_error_after_the_retry_budget() {
    let (card, log) = recording_card(10);
    let (mut t1, mut io) = setup(T1Card::new(card));
    io.card.lose_commands(1_000);
    let mut resp = [0u8; 64];
    let err = block_on(t1.transceive(&mut io, &case4(5), &mut resp)).unwrap_err();
    assert_eq!(err, T1Error::Unresponsive);
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(
        err.to_string(),
        "T=1: the card does not answer (retransmissions and resynchronisation failed)"
    );
    // The I-block, 3 R-blocks, 3 S(RESYNCH).
    assert_eq!(io.pcbs(), [0x00, 0x82, 0x82, 0x82, 0xC0, 0xC0, 0xC0]);
    assert!(log.borrow().is_empty());
}

#[test]
fn a_card_that_keeps_rejecting_makes_the_engine_give_up() {
    let (card, _) = recording_card(10);
    let (mut t1, mut io) = setup(T1Card::new(card));
    io.fault(0, 1000, Fault::CorruptCommand);
    let mut resp = [0u8; 64];
    let err = block_on(t1.transceive(&mut io, &case4(5), &mut resp)).unwrap_err();
    assert_eq!(err, T1Error::Unresponsive);
    assert!(io.exchanges <= 1 + 3 + 3);
}

#[test]
fn a_response_too_long_is_drained_and_reported() {
    let (card, _) = recording_card(100);
    let (mut t1, mut io) = setup(T1Card::new(card));
    let mut small = [0u8; 50];
    let err = block_on(t1.transceive(&mut io, &case4(5), &mut small)).unwrap_err();
    assert_eq!(err, T1Error::ResponseTooLong);
    assert_eq!(err.kind(), ErrorKind::ResponseTooLong);
    // Still in step.
    let mut resp = [0u8; 200];
    let n = block_on(t1.transceive(&mut io, &case4(5), &mut resp)).unwrap();
    assert_eq!(&resp[..n], expected_response(100));
}

#[test]
fn carrier_errors_stop_the_engine() {
    struct Broken;
    impl BlockIo for Broken {
        type Error = ErrorKind;
        async fn exchange(
            &mut self,
            _: &[u8],
            _: &mut [u8],
            _: u8,
        ) -> Result<usize, ExchangeError<ErrorKind>> {
            Err(ExchangeError::Io(ErrorKind::CardRemoved))
        }
    }
    let mut t1 = T1::new(T1Params::default());
    let mut resp = [0u8; 16];
    let err = block_on(t1.transceive(&mut Broken, &case4(1), &mut resp)).unwrap_err();
    assert_eq!(err, T1Error::Io(ErrorKind::CardRemoved));
    assert_eq!(err.kind(), ErrorKind::CardRemoved);
    assert_eq!(
        block_on(t1.transceive(&mut Broken, &[], &mut resp)),
        Err(T1Error::InvalidCommand)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random faults on random exchanges: the engine either delivers the right response with
    /// the command run exactly once, or fails; never runs a command twice once its last block
    /// may have reached the card; never panics.
    #[test]
    fn random_faults_never_repeat_a_command(
        faults in proptest::collection::vec((0usize..40, 0u8..4), 0..12),
        ifsc in 8u8..64,
        data_len in 1usize..200,
        resp_len in 0usize..300,
    ) {
        let (card, log) = recording_card(resp_len);
        let (mut t1, mut io) = setup(T1Card::new(card).with_ifsc(ifsc));
        for (at, f) in faults {
            let f = [Fault::LoseCommand, Fault::LoseReply, Fault::CorruptReply, Fault::CorruptCommand][usize::from(f)];
            io.fault(at, 1, f);
        }
        let apdu = case4(data_len);
        let mut resp = [0u8; 512];
        match block_on(t1.transceive(&mut io, &apdu, &mut resp)) {
            Ok(n) => {
                prop_assert_eq!(&resp[..n], &expected_response(resp_len)[..]);
                let seen = log.borrow().clone();
                prop_assert_eq!(seen, vec![apdu.clone()]);
            }
            Err(T1Error::Resynchronized) | Err(T1Error::Unresponsive) => {
                prop_assert!(log.borrow().len() <= 1);
            }
            Err(e) => prop_assert!(false, "unexpected error {:?}", e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A full PIV unblock over T=1 with faults.

fn blocked_piv() -> Rc<RefCell<SimCard>> {
    Rc::new(RefCell::new(SimCard::new(Config::Piv(
        PivConfig::factory().blocked(),
    ))))
}

type UnblockResult = Result<(), UnlockError<T1Error<ErrorKind>>>;

/// What a run left behind: the card, the flow's result, the INS bytes the card executed and the
/// R-blocks it received.
struct Run {
    card: Rc<RefCell<SimCard>>,
    result: UnblockResult,
    executed: Vec<u8>,
    r_blocks: usize,
}

impl Run {
    fn executed_count(&self, ins: u8) -> usize {
        self.executed.iter().filter(|&&i| i == ins).count()
    }
}

/// A transport that makes the card lose its reply to RESET RETRY COUNTER `lose_rrc` times
/// (after the card ran it), with other faults set up by `arm`.
struct Faulty {
    inner: T1Transport<Rc<RefCell<SimCard>>>,
    lose_rrc: u32,
}

impl Transport for Faulty {
    type Error = T1Error<ErrorKind>;

    async fn transmit(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, Self::Error> {
        if command.get(1) == Some(&0x2C) {
            self.inner.io.card.lose_replies(self.lose_rrc);
        }
        self.inner.transmit(command, response).await
    }
}

/// Runs a PIV unblock of a blocked card (PUK `puk`, new PIN 840259) over T=1 with IFSC `ifsc`.
fn unblock(
    puk: &[u8],
    ifsc: u8,
    lose_rrc: u32,
    arm: impl FnOnce(&mut Direct<Rc<RefCell<SimCard>>>),
) -> Run {
    let card = blocked_piv();
    let mut inner = T1Transport::new(T1Card::new(card.clone()).with_ifsc(ifsc));
    arm(&mut inner.io);
    let mut driver = Driver::new(Faulty { inner, lose_rrc });
    let input = unlock::piv_input(&PinPolicy::PIV, puk, b"840259", b"840259").unwrap();
    let result = block_on(unlock::piv_unblock(&mut driver, &input.0, &input.1));
    let t1card = &driver.transport().inner.io.card;
    Run {
        card,
        result,
        executed: t1card.executed().to_vec(),
        r_blocks: t1card.r_blocks_received(),
    }
}

#[test]
fn piv_unblock_over_t1_with_chaining() {
    let run = unblock(b"12345678", 16, 0, |_| {});
    run.result.unwrap();
    let c = run.card.borrow();
    assert!(c.pin_is(b"840259"));
    assert_eq!(c.puk_tries_left(), Some(3));
    assert_eq!(c.pin_tries_left(), 3);
    // SELECT, RESET RETRY COUNTER, VERIFY: each run once.
    assert_eq!(run.executed, [0xA4, 0x2C, 0x20]);
}

#[test]
fn piv_unblock_survives_faults_without_spending_a_try() {
    let run = unblock(b"12345678", 16, 2, |io| {
        io.card.request_wtx(1, 3);
        // Garbled and lost blocks all along the flow.
        io.fault(1, 2, Fault::CorruptReply);
        io.fault(4, 1, Fault::LoseCommand);
        io.fault(6, 3, Fault::LoseReply);
        io.fault(11, 1, Fault::CorruptCommand);
        io.fault(13, 2, Fault::LoseReply);
    });
    run.result.unwrap();
    let c = run.card.borrow();
    assert!(c.pin_is(b"840259"));
    assert_eq!(c.puk_tries_left(), Some(3));
    assert_eq!(c.pin_tries_left(), 3);
    assert_eq!(run.executed_count(0x2C), 1);
    assert_eq!(run.executed_count(0x20), 1);
}

#[test]
fn a_lost_rrc_reply_is_repeated_by_the_card_not_resent() {
    for n in 1..=3 {
        let run = unblock(b"12345678", 254, n, |_| {});
        run.result.unwrap();
        assert_eq!(run.executed_count(0x2C), 1, "{n} lost");
        // The engine asked for the answer again with R-blocks.
        assert!(run.r_blocks >= n as usize);
        let c = run.card.borrow();
        assert!(c.pin_is(b"840259"));
        assert_eq!(c.puk_tries_left(), Some(3));
    }
}

#[test]
fn a_wrong_puk_with_a_lost_reply_costs_exactly_one_try() {
    let run = unblock(b"87654321", 254, 2, |_| {});
    assert_eq!(
        run.result,
        Err(UnlockError::Card(DriverError::Flow(FlowError::WrongPuk {
            tries_left: 2
        })))
    );
    assert_eq!(run.executed_count(0x2C), 1);
    assert_eq!(run.card.borrow().puk_tries_left(), Some(2));
    assert_eq!(run.card.borrow().pin_tries_left(), 0);
}

#[test]
fn an_rrc_reply_lost_for_good_is_reported_not_retried() {
    let run = unblock(b"87654321", 254, 4, |_| {});
    assert_eq!(
        run.result,
        Err(UnlockError::Card(DriverError::Transport(
            T1Error::Resynchronized
        )))
    );
    // The card ran it once: the one try the user spent, and no second one.
    assert_eq!(run.executed_count(0x2C), 1);
    assert_eq!(run.card.borrow().puk_tries_left(), Some(2));
}

/// A scripted card that answers any command with I-blocks chained forever (254 bytes each,
/// `more` always set), and confirms a RESYNCH.
struct EndlessChain {
    ns: bool,
    i_blocks: usize,
    resynchs: usize,
}

impl BlockIo for EndlessChain {
    type Error = ErrorKind;

    async fn exchange(
        &mut self,
        block: &[u8],
        reply: &mut [u8],
        _bwt_multiplier: u8,
    ) -> Result<usize, ExchangeError<ErrorKind>> {
        let sent = Block::parse(block, Edc::Lrc).map_err(|_| ExchangeError::Mute)?;
        let answer = match sent.pcb {
            Pcb::S {
                kind: SKind::Resynch,
                response: false,
            } => {
                self.resynchs += 1;
                Block::s(0, SKind::Resynch, true, &[])
            }
            _ => {
                self.i_blocks += 1;
                let ns = self.ns;
                self.ns = !self.ns;
                Block::i(0, ns, true, &[0xAB; 254])
            }
        };
        answer
            .encode(Edc::Lrc, reply)
            .map_err(|_| ExchangeError::Io(ErrorKind::ResponseTooLong))
    }
}

/// Proves the bound on response chains: a card chaining I-blocks forever gets
/// `ChainTooLong` right after the longest legal response (65,538 bytes, 259 blocks of 254),
/// then the channel is resynchronised. Without the bound the exchange never ends (the test
/// would hang: the card below never stops).
#[test]
fn a_card_chaining_forever_is_stopped_after_the_longest_legal_response() {
    let mut t1 = T1::new(T1Params {
        ifsd: 254,
        ..T1Params::default()
    });
    let mut io = EndlessChain {
        ns: false,
        i_blocks: 0,
        resynchs: 0,
    };
    let mut resp = vec![0u8; 70_000];
    let err = block_on(t1.transceive(&mut io, &case4(5), &mut resp)).unwrap_err();
    assert_eq!(err, T1Error::ChainTooLong);
    assert_eq!(err.kind(), ErrorKind::ResponseTooLong);
    assert!(
        err.to_string().contains("longer than any legal response"),
        "{err}"
    );
    assert_eq!(io.i_blocks, cardunlock_ccid::t1::MAX_RESPONSE / 254 + 1);
    assert_eq!(io.resynchs, 1);
    // A small buffer too: the chain is not read past the bound.
    let mut io = EndlessChain {
        ns: false,
        i_blocks: 0,
        resynchs: 0,
    };
    let mut small = [0u8; 64];
    let err = block_on(t1.transceive(&mut io, &case4(5), &mut small)).unwrap_err();
    assert_eq!(err, T1Error::ChainTooLong);
    assert_eq!(io.i_blocks, 259);
}
