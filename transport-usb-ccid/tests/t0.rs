//! T=0: APDU to TPDU mapping (`61 XX`, `6C XX`) against the card-side T=0 of `sim::tpdu`, a full
//! PIV unblock over it, and the procedure-byte state machine of `t0::Uart` against a scripted
//! card over an in-memory byte pipe.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use cardunlock_ccid::atr::{Atr, Protocol};
use cardunlock_ccid::t0::{self, T0Error, TpduIo, Uart, UartError};
use cardunlock_ccid_sim::tpdu::{FnCard, T0Card};
use cardunlock_ccid_sim::SlotCard;
use cardunlock_core::driver::Driver;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::transport::{ErrorKind, Transport, TransportError};
use cardunlock_core::unlock;
use cardunlock_sim::{Config, PivConfig, SimCard, VirtualCard};
use embassy_futures::block_on;
use hex_literal::hex;

/// A reader at TPDU level in front of a T=0 card: one TPDU in, data and SW out.
struct Reader<C> {
    card: T0Card<C>,
}

impl<C: VirtualCard> TpduIo for Reader<C> {
    type Error = ErrorKind;

    async fn exchange(&mut self, tpdu: &[u8], reply: &mut [u8]) -> Result<usize, ErrorKind> {
        let answer = self.card.xfr_block(tpdu).map_err(|_| ErrorKind::Other)?;
        reply
            .get_mut(..answer.len())
            .ok_or(ErrorKind::ResponseTooLong)?
            .copy_from_slice(&answer);
        Ok(answer.len())
    }
}

impl<C: VirtualCard> Transport for Reader<C> {
    type Error = T0Error<ErrorKind>;

    async fn transmit(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, Self::Error> {
        t0::transmit(self, command, response).await
    }
}

type Log = Rc<RefCell<Vec<Vec<u8>>>>;

/// A card answering `len` bytes of pattern + 9000 to everything, recording the APDUs.
fn t0_card(len: usize) -> (T0Card<impl VirtualCard>, Log) {
    let log: Log = Rc::default();
    let seen = log.clone();
    let card = FnCard::new(&cardunlock_sim::ATR_PIV, move |apdu: &[u8]| {
        seen.borrow_mut().push(apdu.to_vec());
        let mut r: Vec<u8> = (0..len).map(|i| i as u8).collect();
        r.extend_from_slice(&[0x90, 0x00]);
        r
    });
    (T0Card::new(card), log)
}

fn pattern(len: usize) -> Vec<u8> {
    let mut r: Vec<u8> = (0..len).map(|i| i as u8).collect();
    r.extend_from_slice(&[0x90, 0x00]);
    r
}

fn run(
    reader: &mut Reader<impl VirtualCard>,
    apdu: &[u8],
    buf: usize,
) -> Result<Vec<u8>, T0Error<ErrorKind>> {
    let mut resp = vec![0u8; buf];
    let n = block_on(t0::transmit(reader, apdu, &mut resp))?;
    resp.truncate(n);
    Ok(resp)
}

#[test]
fn the_t0_card_atr_offers_t0_only() {
    let (card, _) = t0_card(0);
    let atr = Atr::parse(card.atr()).unwrap();
    assert!(atr.offers(0) && !atr.offers(1));
    assert_eq!(atr.default_protocol(), Some(Protocol::T0));
    assert_eq!(atr.tck(), None);
}

#[test]
fn case_1_sends_p3_zero() {
    let (card, log) = t0_card(0);
    let mut r = Reader { card };
    assert_eq!(
        run(&mut r, &hex!("00 44 00 00"), 64).unwrap(),
        hex!("90 00")
    );
    assert_eq!(r.card.tpdus(), [hex!("00 44 00 00 00")]);
    assert_eq!(log.borrow().as_slice(), [hex!("00 44 00 00").to_vec()]);
}

#[test]
fn case_2_with_a_wrong_le_is_resent_after_6c() {
    let (card, log) = t0_card(10);
    let mut r = Reader { card };
    assert_eq!(
        run(&mut r, &hex!("00 CA 5F C1 04"), 64).unwrap(),
        pattern(10)
    );
    // P3 = Le = 4, then P3 = 0A as the card said.
    assert_eq!(
        r.card.tpdus(),
        [hex!("00 CA 5F C1 04"), hex!("00 CA 5F C1 0A")]
    );
    assert_eq!(log.borrow().len(), 1);
    // Le = 00 (256) too.
    assert_eq!(
        run(&mut r, &hex!("00 CA 5F C1 00"), 300).unwrap(),
        pattern(10)
    );
}

#[test]
fn case_2_with_the_right_le() {
    let (card, _) = t0_card(10);
    let mut r = Reader { card };
    assert_eq!(
        run(&mut r, &hex!("00 CA 5F C1 0A"), 64).unwrap(),
        pattern(10)
    );
    assert_eq!(r.card.tpdus().len(), 1);
}

#[test]
fn case_2_answered_61_is_followed_by_get_response() {
    let (card, _) = t0_card(10);
    let mut r = Reader {
        card: card.always_61(true),
    };
    assert_eq!(
        run(&mut r, &hex!("00 CA 5F C1 0A"), 64).unwrap(),
        pattern(10)
    );
    assert_eq!(
        r.card.tpdus(),
        [hex!("00 CA 5F C1 0A"), hex!("00 C0 00 00 0A")]
    );
}

#[test]
fn case_3_sends_the_data() {
    let (card, log) = t0_card(0);
    let mut r = Reader { card };
    let apdu = hex!("00 DA 3F FF 03 01 02 03");
    assert_eq!(run(&mut r, &apdu, 64).unwrap(), hex!("90 00"));
    assert_eq!(r.card.tpdus(), [hex!("00 DA 3F FF 03")]);
    assert_eq!(log.borrow()[0], apdu);
}

#[test]
fn case_4_gets_its_response_with_get_response() {
    let (card, log) = t0_card(300);
    let mut r = Reader { card };
    let apdu = hex!("00 87 03 9B 04 7C 02 81 00 00");
    let resp = run(&mut r, &apdu, 512).unwrap();
    // Case-3 TPDU, `61 00` (256 or more), GET RESPONSE of Ne = 256; the `61 2C` after it goes
    // up to the caller.
    assert_eq!(resp[..256], pattern(300)[..256]);
    assert_eq!(resp[256..], hex!("61 2C"));
    assert_eq!(
        r.card.tpdus(),
        [hex!("00 87 03 9B 04"), hex!("00 C0 00 00 00")]
    );
    // The caller's GET RESPONSE (a case 2 APDU) fetches the rest.
    assert_eq!(
        run(&mut r, &hex!("00 C0 00 00 2C"), 512).unwrap(),
        pattern(300)[256..]
    );
    // The card got the APDU without Le (T=0 carries none), and ran it once.
    assert_eq!(log.borrow().as_slice(), [apdu[..9].to_vec()]);
    // Le smaller than what is there: GET RESPONSE asks for Le.
    let (card, _) = t0_card(20);
    let mut r = Reader { card };
    let apdu = hex!("00 87 03 9B 01 00 08");
    let resp = run(&mut r, &apdu, 64).unwrap();
    assert_eq!(r.card.tpdus()[1], hex!("00 C0 00 00 08"));
    // The rest is announced with 61 XX for the driver above.
    assert_eq!(resp[..8], pattern(8)[..8]);
    assert_eq!(resp[8..], hex!("61 0C"));
}

#[test]
fn refusals() {
    let (card, _) = t0_card(0);
    let mut r = Reader { card };
    let mut ext = hex!("00 DB 3F FF 00 00 02 AA BB").to_vec();
    assert_eq!(run(&mut r, &ext, 64), Err(T0Error::ExtendedLength));
    assert_eq!(
        T0Error::<ErrorKind>::ExtendedLength.kind(),
        ErrorKind::InvalidCommand
    );
    ext.truncate(3);
    assert_eq!(run(&mut r, &ext, 64), Err(T0Error::InvalidCommand));
    // Lc says 3, 2 bytes follow.
    assert_eq!(
        run(&mut r, &hex!("00 DA 3F FF 03 01 02"), 64),
        Err(T0Error::InvalidCommand)
    );
    assert!(r.card.tpdus().is_empty());
    let (card, _) = t0_card(100);
    let mut r = Reader { card };
    assert_eq!(
        run(&mut r, &hex!("00 CA 00 00 64"), 50),
        Err(T0Error::ResponseTooLong)
    );
}

#[test]
fn get_response_stops_at_ne_and_loops_are_bounded() {
    /// A card that always has one more byte.
    struct Endless;
    impl TpduIo for Endless {
        type Error = ErrorKind;
        async fn exchange(&mut self, _: &[u8], reply: &mut [u8]) -> Result<usize, ErrorKind> {
            reply[..3].copy_from_slice(&[0xAA, 0x61, 0x01]);
            Ok(3)
        }
    }
    let mut resp = vec![0u8; 100_000];
    // Le 00: 256 bytes, then the `61 01` goes up to the driver.
    let n = block_on(t0::transmit(
        &mut Endless,
        &hex!("00 CA 00 00 00"),
        &mut resp,
    ))
    .unwrap();
    assert_eq!(n, 258);
    assert!(resp[..256].iter().all(|&b| b == 0xAA));
    assert_eq!(resp[256..258], hex!("61 01"));

    /// A card that never likes P3.
    struct Picky;
    impl TpduIo for Picky {
        type Error = ErrorKind;
        async fn exchange(&mut self, tpdu: &[u8], reply: &mut [u8]) -> Result<usize, ErrorKind> {
            reply[..2].copy_from_slice(&[0x6C, tpdu[4].wrapping_add(1)]);
            Ok(2)
        }
    }
    let err = block_on(t0::transmit(&mut Picky, &hex!("00 CA 00 00 01"), &mut resp));
    assert_eq!(err, Err(T0Error::TooManyGetResponse));
}

#[test]
fn piv_unblock_over_t0() {
    let sim = Rc::new(RefCell::new(SimCard::new(Config::Piv(
        PivConfig::factory().blocked(),
    ))));
    let mut t0card = T0Card::new(sim.clone());
    t0card.power_on();
    let mut driver = Driver::new(Reader { card: t0card });
    let input = unlock::piv_input(&PinPolicy::PIV, b"12345678", b"840259", b"840259").unwrap();
    block_on(unlock::piv_unblock(&mut driver, &input.0, &input.1)).unwrap();
    let c = sim.borrow();
    assert!(c.pin_is(b"840259"));
    assert_eq!(c.puk_tries_left(), Some(3));
    assert_eq!(c.pin_tries_left(), 3);
    assert_eq!(driver.transport().card.executed(), [0xA4, 0x2C, 0x20]);
}

// ---------------------------------------------------------------------------------------------
// The UART state machine against a scripted card.

/// The card end of a byte pipe: it emits each scripted piece once the host has written at least
/// so many bytes; a read with nothing to give times out.
struct Scripted {
    written: Vec<u8>,
    pending: VecDeque<u8>,
    script: VecDeque<(usize, Vec<u8>)>,
}

impl Scripted {
    fn new(script: &[(usize, &[u8])]) -> Self {
        Self {
            written: Vec::new(),
            pending: VecDeque::new(),
            script: script.iter().map(|(n, b)| (*n, b.to_vec())).collect(),
        }
    }
}

impl embedded_io_async::ErrorType for Scripted {
    type Error = embedded_io_async::ErrorKind;
}

impl embedded_io_async::Read for Scripted {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        while let Some((after, _)) = self.script.front() {
            if *after > self.written.len() {
                break;
            }
            let (_, bytes) = self.script.pop_front().unwrap();
            self.pending.extend(bytes);
        }
        if self.pending.is_empty() {
            return if self.script.is_empty() {
                Ok(0)
            } else {
                Err(embedded_io_async::ErrorKind::TimedOut)
            };
        }
        // Deliver a byte at a time, as a UART does.
        buf[0] = self.pending.pop_front().unwrap();
        Ok(1)
    }
}

impl embedded_io_async::Write for Scripted {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

fn uart_exchange(
    script: &[(usize, &[u8])],
    tpdu: &[u8],
) -> (
    Result<Vec<u8>, UartError<embedded_io_async::ErrorKind>>,
    Vec<u8>,
) {
    let mut uart = Uart::new(Scripted::new(script));
    let mut reply = [0u8; 258];
    let r = block_on(uart.exchange(tpdu, &mut reply)).map(|n| reply[..n].to_vec());
    (r, uart.into_inner().written)
}

#[test]
fn uart_outgoing_data_acknowledged_at_once() {
    let tpdu = hex!("00 2C 00 80 04 31 32 33 34");
    let (r, written) = uart_exchange(&[(5, &[0x60, 0x60, 0x2C]), (9, &[0x90, 0x00])], &tpdu);
    assert_eq!(r.unwrap(), hex!("90 00"));
    assert_eq!(written, tpdu);
}

#[test]
fn uart_outgoing_data_byte_by_byte() {
    let tpdu = hex!("00 DA 3F FF 04 01 02 03 04");
    let (r, written) = uart_exchange(
        &[
            (5, &[0x25]),
            (6, &[0x25]),
            (7, &[0x60, 0xDA]),
            (9, &[0x60, 0x63, 0xC2]),
        ],
        &tpdu,
    );
    assert_eq!(r.unwrap(), hex!("63 C2"));
    assert_eq!(written, tpdu);
}

#[test]
fn uart_incoming_data() {
    let (r, written) = uart_exchange(
        &[(5, &[0x60, 0xCA, 1, 2, 3, 4, 0x90, 0x00])],
        &hex!("00 CA 00 00 04"),
    );
    assert_eq!(r.unwrap(), hex!("01 02 03 04 90 00"));
    assert_eq!(written, hex!("00 CA 00 00 04"));
    // Part byte by byte, part at once; the SW says more is waiting.
    let (r, _) = uart_exchange(
        &[(5, &[0x35, 9, 0xCA, 8, 7, 6, 0x61, 0x10])],
        &hex!("00 CA 00 00 04"),
    );
    assert_eq!(r.unwrap(), hex!("09 08 07 06 61 10"));
}

#[test]
fn uart_status_without_data() {
    let (r, _) = uart_exchange(&[(5, &[0x6C, 0x08])], &hex!("00 CA 00 00 04"));
    assert_eq!(r.unwrap(), hex!("6C 08"));
    let (r, written) = uart_exchange(&[(5, &[0x6A, 0x82])], &hex!("00 A4 04 00 02 A0 00"));
    assert_eq!(r.unwrap(), hex!("6A 82"));
    // The data was never sent: the card refused before asking for it.
    assert_eq!(written, hex!("00 A4 04 00 02"));
}

#[test]
fn uart_failures() {
    let mut uart = Uart::new(Scripted::new(&[(5, &[0x60; 5])])).with_max_nulls(3);
    let mut reply = [0u8; 16];
    assert_eq!(
        block_on(uart.exchange(&hex!("00 CA 00 00 04"), &mut reply)),
        Err(UartError::TooManyNulls)
    );
    let (r, _) = uart_exchange(&[(5, &[0x33])], &hex!("00 CA 00 00 04"));
    assert_eq!(r, Err(UartError::ProcedureByte(0x33)));
    // An acknowledgement with nothing left to send.
    let (r, _) = uart_exchange(&[(5, &[0xCA, 1, 0xCA])], &hex!("00 CA 00 00 01"));
    assert_eq!(r, Err(UartError::ProcedureByte(0xCA)));
    let (r, _) = uart_exchange(&[], &hex!("00 CA 00 00 04"));
    assert_eq!(r, Err(UartError::Eof));
    let (r, _) = uart_exchange(&[(100, &[0x90, 0x00])], &hex!("00 CA 00 00 04"));
    assert_eq!(
        r,
        Err(UartError::Io(embedded_io_async::ErrorKind::TimedOut))
    );
    assert_eq!(
        UartError::Io(embedded_io_async::ErrorKind::TimedOut).kind(),
        ErrorKind::Timeout
    );
    let (r, _) = uart_exchange(&[], &hex!("00 CA 00"));
    assert_eq!(r, Err(UartError::InvalidTpdu));
}

#[test]
fn transmit_over_the_uart_resends_after_6c() {
    let mut uart = Uart::new(Scripted::new(&[
        (5, &[0x6C, 0x04]),
        (10, &[0xCA, 1, 2, 3, 4, 0x90, 0x00]),
    ]));
    let mut resp = [0u8; 64];
    let n = block_on(t0::transmit(&mut uart, &hex!("00 CA 00 00 00"), &mut resp)).unwrap();
    assert_eq!(resp[..n], hex!("01 02 03 04 90 00"));
    assert_eq!(
        uart.into_inner().written,
        hex!("00 CA 00 00 00 00 CA 00 00 04")
    );
}

/// Proves the strict engine (a firmware's UART) keeps refusing data after a TPDU that sent
/// data, which no T=0 card can send, while `Replies::ApduLevel` (the CCID reader path) takes it
/// as the response data and its status word.
#[test]
fn data_after_an_outgoing_tpdu_is_refused_strictly_and_taken_at_apdu_level() {
    use cardunlock_ccid::t0::{transmit_with, Replies};
    /// Answers every TPDU with three data bytes and `90 00`.
    struct WholeApdu;
    impl TpduIo for WholeApdu {
        type Error = ErrorKind;
        async fn exchange(&mut self, _: &[u8], reply: &mut [u8]) -> Result<usize, ErrorKind> {
            reply[..5].copy_from_slice(&[1, 2, 3, 0x90, 0x00]);
            Ok(5)
        }
    }
    // Case 4: data out, Le 00.
    let apdu = [0x00, 0xA4, 0x04, 0x00, 0x02, 0xA0, 0x00, 0x00];
    let mut out = [0u8; 300];
    let strict = block_on(t0::transmit(&mut WholeApdu, &apdu, &mut out));
    assert_eq!(strict, Err(T0Error::InvalidResponse));
    let n = block_on(transmit_with(
        &mut WholeApdu,
        &apdu,
        &mut out,
        Replies::ApduLevel,
    ))
    .unwrap();
    assert_eq!(&out[..n], &[1, 2, 3, 0x90, 0x00]);
}

/// Proves both UART error types are errors whose source is the port's error (so a client's
/// failure chain reaches it), and that the other variants have none.
#[test]
fn uart_errors_keep_the_ports_error_as_their_source() {
    use core::error::Error;
    let t0 = UartError::Io(embedded_io_async::ErrorKind::TimedOut);
    let source = t0.source().expect("the port's error");
    assert_eq!(
        source.downcast_ref::<embedded_io_async::ErrorKind>(),
        Some(&embedded_io_async::ErrorKind::TimedOut)
    );
    assert!(UartError::<embedded_io_async::ErrorKind>::TooManyNulls
        .source()
        .is_none());
    let t1 = cardunlock_ccid::t1::uart::UartError::Io(embedded_io_async::ErrorKind::BrokenPipe);
    let source = t1.source().expect("the port's error");
    assert_eq!(
        source.downcast_ref::<embedded_io_async::ErrorKind>(),
        Some(&embedded_io_async::ErrorKind::BrokenPipe)
    );
}
