//! The card's side of the firmware UART test (`firmware-uart/`, `scripts/firmware-uart.sh`): a
//! simulated PIV card (PIN blocked) behind a card-side ISO/IEC 7816-3 T=1
//! ([`T1Card`](cardunlock_ccid_sim::tpdu::T1Card)), spoken over a TCP stream that QEMU's
//! `-serial` connects to the emulated board's USART. Bytes on that line are lost, garbled and
//! delayed by a seeded [`Schedule`]; when the firmware is done (the stream closes), [`serve`]
//! reports what the card went through and whether it ended unblocked with the new PIN.
//!
//! The line: the firmware's first byte, [`RESET_REQUEST`], stands for the RST line (QEMU's USART
//! has none) and is answered with the ATR (never faulted). Then every block the firmware sends
//! is read whole by its length (`NAD PCB LEN`, `LEN` bytes, LRC), faulted, and framed again as
//! the card would: a block that lost bytes is incomplete and the card stays mute; a garbled one
//! reaches the card's T=1, which answers it with an R-block. The card's answer goes back with
//! its own faults; a delayed byte holds the rest of the block back. Before its first answer the
//! card asks for a waiting time extension and then takes longer than the firmware's plain read
//! timeout ([`Options::wtx`]).

pub mod faults;

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use cardunlock_ccid::atr::Edc;
use cardunlock_ccid::t1::{Block, Pcb, SKind};
use cardunlock_ccid_sim::tpdu::T1Card;
use cardunlock_ccid_sim::SlotCard;
use cardunlock_sim::{Config, PivConfig, SimCard};

pub use faults::{Counts, Fault, Schedule};

/// The byte with which the firmware asks for a cold reset (and the ATR).
pub const RESET_REQUEST: u8 = 0x52;
/// The simulated card's factory PUK, which the firmware uses.
pub const PUK: &[u8] = b"12345678";
/// The new PIN the firmware sets; the card must end with it.
pub const NEW_PIN: &[u8] = b"802517";
/// The IFSC the card announces: small, so the firmware chains its longer commands.
pub const IFSC: u8 = 8;
/// INS of RESET RETRY COUNTER.
const INS_RESET_RETRY_COUNTER: u8 = 0x2C;

/// How the card side runs.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Longest silence of the firmware before the card side gives up (boot, then between
    /// blocks; the firmware's own timeouts are far shorter).
    pub idle_limit: Duration,
    /// Longest pause between two bytes of one block (the character waiting time): a block cut
    /// short is dropped. Generous (a busy machine may stall QEMU between two bytes) but below the
    /// firmware's read timeout, so the card has given up on a cut block before the firmware
    /// sends its next one.
    pub char_wait: Duration,
    /// Longest run of the whole exchange.
    pub run_limit: Duration,
    /// Print every block both ways, with its fault, to stderr.
    pub trace: bool,
    /// Before its first answer the card asks for a waiting time extension of this multiplier
    /// (S(WTX request)), then holds the answer back [`Options::wtx_hold`]; 0: no request.
    pub wtx: u8,
    /// How long the card holds its answer back after a WTX: longer than the firmware's read
    /// timeout, shorter than the multiplier times it, so only a firmware that stretches its
    /// timeout by the multiplier reads the answer without a timeout.
    pub wtx_hold: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            idle_limit: Duration::from_secs(30),
            char_wait: Duration::from_millis(250),
            run_limit: Duration::from_secs(50),
            trace: false,
            wtx: 3,
            wtx_hold: Duration::from_millis(800),
        }
    }
}

/// What the card went through, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The faults injected.
    pub faults: Counts,
    /// Blocks the firmware sent (faulted ones included).
    pub blocks: usize,
    /// Blocks the card never saw whole (bytes lost on the line).
    pub incomplete: usize,
    /// R-blocks the card received.
    pub r_blocks: usize,
    /// S(RESYNCH) requests the card answered.
    pub resynchs: usize,
    /// Answers held back after a WTX.
    pub wtx_holds: usize,
    /// Times RESET RETRY COUNTER ran on the card.
    pub unblocks: usize,
    /// The card's PIN is [`NEW_PIN`].
    pub new_pin_set: bool,
    /// PIN tries left.
    pub pin_tries: u8,
    /// PUK tries left.
    pub puk_tries: Option<u8>,
}

impl Report {
    /// The firmware did its job: the PIN is the new one with all its tries, no PUK try was
    /// spent, and RESET RETRY COUNTER ran exactly once whatever the line did.
    pub fn unblocked(&self) -> bool {
        self.new_pin_set && self.pin_tries == 3 && self.puk_tries == Some(3) && self.unblocks == 1
    }
}

/// A fresh card: PIV, PIN blocked, factory PUK, IFSC [`IFSC`], LRC.
pub fn blocked_card() -> T1Card<SimCard> {
    T1Card::new(SimCard::new(Config::Piv(PivConfig::factory().blocked()))).with_ifsc(IFSC)
}

/// One block off the line.
enum Incoming {
    Block(Vec<u8>),
    /// The firmware closed the line (QEMU exited).
    Closed,
}

struct Line {
    stream: TcpStream,
    options: Options,
}

impl Line {
    /// One byte within `wait`; `None` at the end of the stream.
    fn byte(&mut self, wait: Duration) -> io::Result<Option<u8>> {
        self.stream.set_read_timeout(Some(wait))?;
        let mut b = [0u8];
        loop {
            return match self.stream.read(&mut b) {
                Ok(0) => Ok(None),
                Ok(_) => Ok(Some(b[0])),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }

    /// The next block as the firmware sent it: its prologue says how long it is. A block cut
    /// short by silence is returned as it is.
    fn block(&mut self) -> io::Result<Incoming> {
        let Some(first) = self.byte(self.options.idle_limit)? else {
            return Ok(Incoming::Closed);
        };
        let mut block = vec![first];
        let mut want = 4;
        while block.len() < want {
            match self.byte(self.options.char_wait) {
                Ok(Some(b)) => block.push(b),
                Ok(None) => return Ok(Incoming::Closed),
                Err(e) if is_timeout(&e) => break,
                Err(e) => return Err(e),
            }
            if block.len() == 3 {
                want = 3 + usize::from(block[2]) + 1;
            }
        }
        Ok(Incoming::Block(block))
    }

    /// Sends `bytes`, holding back the byte a [`Fault::Delay`] names.
    fn send(&mut self, bytes: &[u8], delay: Option<(usize, u64)>) -> io::Result<()> {
        match delay {
            Some((at, ms)) if at < bytes.len() => {
                let (head, tail) = bytes.split_at(at);
                self.stream.write_all(head)?;
                self.stream.flush()?;
                thread::sleep(Duration::from_millis(ms));
                self.stream.write_all(tail)?;
            }
            _ => self.stream.write_all(bytes)?,
        }
        self.stream.flush()
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Applies a loss or a garbling to `bytes`; returns the delay to put on the way, if any.
fn apply(fault: Option<Fault>, bytes: &mut Vec<u8>) -> Option<(usize, u64)> {
    match fault? {
        Fault::Drop(at) => {
            if at < bytes.len() {
                bytes.remove(at);
            }
            None
        }
        Fault::Garble(at, mask) => {
            if let Some(b) = bytes.get_mut(at) {
                *b ^= mask;
            }
            None
        }
        Fault::Delay(at, ms) => Some((at, ms)),
    }
}

/// The block the card frames out of what reached it: by the (maybe garbled) length in its
/// prologue; `None` if fewer bytes came (the card waits for the rest, times out, stays mute).
fn frame(bytes: &[u8]) -> Option<&[u8]> {
    let len = 3 + usize::from(*bytes.get(2)?) + 1;
    bytes.get(..len)
}

/// One block on stderr: who sent it, its bytes (before the fault) and the fault. The blocks
/// carry the PUK and the PIN: test values of the simulated card, never a real card's.
fn trace(on: bool, from: &str, bytes: &[u8], fault: Option<Fault>) {
    if on {
        let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
        eprintln!("uart-card: {from:>8}: {hex} {fault:?}");
    }
}

/// Plays the card on `stream` until the firmware closes it: reset, then T=1 blocks with the
/// faults of `schedule`. Errors are the line's (the firmware silent too long, a broken socket).
pub fn serve(
    stream: TcpStream,
    card: &mut T1Card<SimCard>,
    schedule: &mut Schedule,
    options: Options,
) -> io::Result<Report> {
    stream.set_nodelay(true)?;
    let mut line = Line { stream, options };
    let started = Instant::now();
    let mut report = Report {
        faults: Counts::default(),
        blocks: 0,
        incomplete: 0,
        r_blocks: 0,
        resynchs: 0,
        wtx_holds: 0,
        unblocks: 0,
        new_pin_set: false,
        pin_tries: 0,
        puk_tries: None,
    };
    match line.byte(options.idle_limit) {
        Ok(Some(RESET_REQUEST)) => {}
        Ok(Some(b)) => {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                format!("the firmware's first byte is {b:02X}, not the reset request"),
            ))
        }
        Ok(None) => return Err(ErrorKind::UnexpectedEof.into()),
        Err(e) => return Err(e),
    }
    let atr = card.power_on();
    if options.wtx > 0 {
        card.request_wtx(1, options.wtx);
    }
    line.send(&atr, None)?;
    loop {
        if started.elapsed() > options.run_limit {
            return Err(io::Error::new(
                ErrorKind::TimedOut,
                "the exchange ran over its time limit",
            ));
        }
        let mut bytes = match line.block()? {
            Incoming::Block(b) => b,
            Incoming::Closed => break,
        };
        report.blocks += 1;
        let fault = schedule.next(bytes.len(), true);
        trace(options.trace, "firmware", &bytes, fault);
        apply(fault, &mut bytes);
        let Some(block) = frame(&bytes) else {
            report.incomplete += 1;
            continue;
        };
        let wtx_answered = matches!(
            Block::parse(block, Edc::Lrc),
            Ok(Block {
                pcb: Pcb::S {
                    kind: SKind::Wtx,
                    response: true
                },
                ..
            })
        );
        let Ok(mut reply) = card.xfr_block(block) else {
            continue;
        };
        if wtx_answered {
            report.wtx_holds += 1;
            thread::sleep(options.wtx_hold);
        }
        bytes.fill(0);
        let fault = schedule.next(reply.len(), false);
        trace(options.trace, "card", &reply, fault);
        let delay = apply(fault, &mut reply);
        line.send(&reply, delay)?;
        reply.fill(0);
    }
    report.faults = schedule.counts();
    report.r_blocks = card.r_blocks_received();
    report.resynchs = card.resynchs();
    report.unblocks = card.executed_count(INS_RESET_RETRY_COUNTER);
    let sim = card.inner();
    report.new_pin_set = sim.pin_is(NEW_PIN);
    report.pin_tries = sim.pin_tries_left();
    report.puk_tries = sim.puk_tries_left();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lost byte leaves the card an incomplete block, so it stays mute; a garbled length
    /// frames a block of another size.
    #[test]
    fn faults_reach_the_framing() {
        let block = vec![0x00, 0x00, 0x02, 0xAA, 0xBB, 0x11];
        let mut lost = block.clone();
        apply(Some(Fault::Drop(4)), &mut lost);
        assert_eq!(frame(&lost), None);
        let mut longer = block.clone();
        apply(Some(Fault::Garble(2, 0x04)), &mut longer);
        assert_eq!(frame(&longer), None, "LEN 6: wants 10 bytes, has 6");
        let mut shorter = block.clone();
        apply(Some(Fault::Garble(2, 0x02)), &mut shorter);
        assert_eq!(
            frame(&shorter),
            Some(&shorter[..4]),
            "LEN 0: the first 4 bytes"
        );
        assert_eq!(frame(&block), Some(&block[..]));
        let mut delayed = block.clone();
        assert_eq!(apply(Some(Fault::Delay(1, 9)), &mut delayed), Some((1, 9)));
        assert_eq!(delayed, block);
    }
}
