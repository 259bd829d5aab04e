//! T=1 over a firmware's UART (`t1::uart::Uart`): the engine's blocks as bytes on an
//! `embedded-io-async` port, to a card-side T=1 with line faults (lost and garbled replies seen
//! as read timeouts, bad checksums). The PIV unblock completes and no try is spent twice.

use std::collections::VecDeque;

use cardunlock_ccid::atr::Atr;
use cardunlock_ccid::t1::uart::{Uart, UartT1};
use cardunlock_ccid::t1::{T1Params, T1};
use cardunlock_ccid_sim::tpdu::T1Card;
use cardunlock_ccid_sim::SlotCard;
use cardunlock_core::driver::Driver;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock;
use cardunlock_sim::{Config, PivConfig, SimCard};
use embassy_futures::block_on;
use embedded_io_async::{ErrorKind as IoKind, ErrorType, Read, Write};

/// The line to a card: what the host writes is one block, handed to the card on `flush`; the
/// card's block comes back byte by byte. A card that stays mute makes the next read time out.
struct Line {
    card: T1Card<SimCard>,
    written: Vec<u8>,
    pending: VecDeque<u8>,
    waits: Vec<u8>,
}

impl ErrorType for Line {
    type Error = IoKind;
}

impl Write for Line {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, IoKind> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), IoKind> {
        let block = std::mem::take(&mut self.written);
        if let Ok(reply) = self.card.xfr_block(&block) {
            self.pending.extend(reply);
        }
        Ok(())
    }
}

impl Read for Line {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoKind> {
        if self.pending.is_empty() {
            return Err(IoKind::TimedOut);
        }
        let n = buf.len().min(self.pending.len());
        for b in buf.iter_mut().take(n) {
            *b = self.pending.pop_front().unwrap_or(0);
        }
        Ok(n)
    }
}

fn uart_card(setup: impl FnOnce(&mut T1Card<SimCard>)) -> UartT1<Line> {
    let mut card =
        T1Card::new(SimCard::new(Config::Piv(PivConfig::factory().blocked()))).with_ifsc(32);
    let atr = card.power_on();
    let params = T1Params::from_atr(&Atr::parse(&atr).unwrap());
    setup(&mut card);
    let line = Line {
        card,
        written: Vec::new(),
        pending: VecDeque::new(),
        waits: Vec::new(),
    };
    UartT1::new(
        T1::new(params),
        Uart::new(line, params.edc).with_wait_hook(|line, m| line.waits.push(m)),
    )
}

fn unblock(t: UartT1<Line>, puk: &[u8]) -> (Result<(), String>, Line) {
    let mut driver = Driver::new(t);
    let input = unlock::piv_input(&PinPolicy::PIV, puk, b"802517", b"802517").unwrap();
    let result = block_on(unlock::piv_unblock(&mut driver, &input.0, &input.1))
        .map_err(|e| format!("{e:?}"));
    (result, driver.into_inner().into_inner().into_inner())
}

#[test]
fn piv_unblock_over_a_uart() {
    let (result, line) = unblock(uart_card(|_| {}), b"12345678");
    result.unwrap();
    let card = line.card.inner();
    assert!(card.pin_is(b"802517"));
    assert_eq!(card.pin_tries_left(), 3);
    assert_eq!(card.puk_tries_left(), Some(3));
    assert!(line.waits.iter().all(|&m| m == 1), "{:?}", line.waits);
}

#[test]
fn lost_and_garbled_replies_on_the_line_never_run_the_unblock_twice() {
    for (lost, corrupt) in [(1, 0), (0, 1), (2, 1), (1, 2)] {
        let t = uart_card(|card| {
            card.lose_replies(lost);
            card.corrupt_replies(corrupt);
        });
        let (result, line) = unblock(t, b"12345678");
        result.unwrap_or_else(|e| panic!("lost {lost}, corrupt {corrupt}: {e}"));
        assert_eq!(
            line.card.executed_count(0x2C),
            1,
            "lost {lost}, corrupt {corrupt}"
        );
        assert_eq!(line.card.inner().puk_tries_left(), Some(3));
        assert!(line.card.inner().pin_is(b"802517"));
    }
}

#[test]
fn a_wrong_puk_over_a_uart_costs_exactly_one_try_and_wtx_reaches_the_port() {
    let t = uart_card(|card| card.request_wtx(1, 4));
    let (result, line) = unblock(t, b"87654321");
    let err = result.unwrap_err();
    assert!(
        err.contains("WrongPuk") && err.contains("tries_left: 2"),
        "{err}"
    );
    assert_eq!(line.card.inner().puk_tries_left(), Some(2));
    assert!(
        line.waits.contains(&4),
        "the WTX multiplier reaches the port: {:?}",
        line.waits
    );
}

#[test]
fn a_card_that_stays_mute_ends_with_a_clear_error() {
    let t = uart_card(|card| card.lose_replies(100));
    let (result, line) = unblock(t, b"12345678");
    let err = result.unwrap_err();
    assert!(
        err.contains("Unresponsive") || err.contains("Resynchronized"),
        "{err}"
    );
    // The SELECT's reply never came: nothing after it was sent, no try spent.
    assert_eq!(line.card.executed_count(0x2C), 0);
    assert_eq!(line.card.inner().puk_tries_left(), Some(3));
}

/// The card-side T=1 keeps its place in a chained answer when a block of the host arrives
/// garbled: it answers the bad block with an R-block, then the host's acknowledgement gets the
/// next link of the chain (ISO/IEC 7816-3 §11.6.3: a bad block changes nothing). Before the fix
/// the card answered the acknowledgement with an R-block and the host had to RESYNCH, losing
/// the outcome of the command (found by the firmware's UART run, `scripts/firmware-uart.sh`).
#[test]
fn a_garbled_acknowledgement_in_the_cards_chain_does_not_lose_its_place() {
    use cardunlock_ccid::t1::{Block, Pcb, RCode, SKind};
    let mut card = T1Card::new(SimCard::new(Config::Piv(PivConfig::factory().blocked())));
    card.power_on();
    let mut xfr = |block: Block<'_>, garble: bool| xfr_block(&mut card, block, garble);
    // IFSD 8, so the answer to SELECT comes in links of 8 bytes.
    let (pcb, _) = xfr(Block::s(0, SKind::Ifs, false, &[8]), false);
    assert_eq!(
        pcb,
        Pcb::S {
            kind: SKind::Ifs,
            response: true
        }
    );
    let select = hex_literal::hex!("00A4040009A00000030800001000");
    let (pcb, first) = xfr(Block::i(0, false, false, &select), false);
    assert_eq!(
        pcb,
        Pcb::I {
            ns: false,
            more: true
        }
    );
    // The acknowledgement arrives garbled: the card asks for it again.
    let (pcb, _) = xfr(Block::r(0, true, RCode::Ok), true);
    assert!(
        matches!(
            pcb,
            Pcb::R {
                code: RCode::Edc,
                ..
            }
        ),
        "{pcb:?}"
    );
    // Sent again, it gets the second link, not another R-block.
    let (pcb, second) = xfr(Block::r(0, true, RCode::Ok), false);
    assert!(matches!(pcb, Pcb::I { ns: true, .. }), "{pcb:?}");
    assert_ne!(first, second);
    // And a request to repeat the link (N(R) = its N(S)) repeats it.
    let (pcb, again) = xfr(Block::r(0, false, RCode::Other), true);
    assert!(matches!(pcb, Pcb::R { .. }), "{pcb:?}");
    let (pcb, repeated) = xfr(Block::r(0, true, RCode::Other), false);
    assert!(matches!(pcb, Pcb::I { ns: true, .. }), "{pcb:?} {again:?}");
    assert_eq!(repeated, second);
}

/// A garbled answer to the card's WTX request gets the request again (ISO/IEC 7816-3 rule 7.2),
/// not an R-block the host cannot place (before the fix the two sides traded R-blocks until the
/// host had to RESYNCH and lost the command's outcome).
#[test]
fn a_garbled_wtx_response_gets_the_cards_request_again() {
    use cardunlock_ccid::t1::{Block, Pcb, SKind};
    let mut card = T1Card::new(SimCard::new(Config::Piv(PivConfig::factory().blocked())));
    card.power_on();
    card.request_wtx(1, 3);
    let mut xfr = |block: Block<'_>, garble: bool| xfr_block(&mut card, block, garble);
    let wtx_request = Pcb::S {
        kind: SKind::Wtx,
        response: false,
    };
    let select = hex_literal::hex!("00A4040009A00000030800001000");
    assert_eq!(
        xfr(Block::i(0, false, false, &select), false),
        (wtx_request, vec![3])
    );
    assert_eq!(
        xfr(Block::s(0, SKind::Wtx, true, &[3]), true),
        (wtx_request, vec![3])
    );
    let (pcb, answer) = xfr(Block::s(0, SKind::Wtx, true, &[3]), false);
    assert_eq!(
        pcb,
        Pcb::I {
            ns: false,
            more: false
        }
    );
    assert_eq!(answer[answer.len() - 2..], [0x90, 0x00]);
}

/// One block to `card` (its LRC garbled when `garble`), the card's answer parsed.
fn xfr_block(
    card: &mut T1Card<SimCard>,
    block: cardunlock_ccid::t1::Block<'_>,
    garble: bool,
) -> (cardunlock_ccid::t1::Pcb, Vec<u8>) {
    use cardunlock_ccid::atr::Edc;
    use cardunlock_ccid::t1::Block;
    let mut buf = [0u8; 64];
    let n = block.encode(Edc::Lrc, &mut buf).unwrap();
    if garble {
        buf[n - 1] ^= 0x40;
    }
    let reply = card.xfr_block(&buf[..n]).unwrap();
    let block = Block::parse(&reply, Edc::Lrc).unwrap();
    (block.pcb, block.inf.to_vec())
}
