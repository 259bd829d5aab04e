//! A polled driver for USART1 of the STM32F405 (QEMU's netduinoplus2 board wires it to the first
//! `-serial`), raw registers, as an `embedded-io-async` port for the T=1 engine's
//! [`Uart`](cardunlock_ccid::t1::uart::Uart) carrier.
//!
//! Reads time out (SysTick milliseconds, [`crate::clock`]): a byte the line lost is a read that
//! times out, which the T=1 engine turns into an R-block or a retransmission. Parity, framing,
//! noise and overrun errors are reported as garbled (`InvalidData`): a real USART in smart-card
//! mode sets them, QEMU's model never does, so on QEMU a garbled byte shows as a wrong LRC.
//! Before the first byte of each block it sends, the driver waits for the line to fall silent and
//! throws away what arrives meanwhile (ISO/IEC 7816-3 §11.6.3: after an error the receiver waits
//! for the end of the faulty block before it answers), so the rest of a garbled or overlong
//! block is never read as the start of the next one.

use core::ptr::{read_volatile, write_volatile};

use embedded_io_async::{ErrorKind, ErrorType, Read, Write};

use crate::clock;

/// USART1 on the STM32F4 (APB2).
const USART1: usize = 0x4001_1000;
const SR: usize = 0x00;
const DR: usize = 0x04;
const BRR: usize = 0x08;
const CR1: usize = 0x0C;
/// RCC APB2 peripheral clock enable register; bit 4 is USART1EN.
const RCC_APB2ENR: usize = 0x4002_3844;

const SR_PE: u32 = 1 << 0;
const SR_FE: u32 = 1 << 1;
const SR_NF: u32 = 1 << 2;
const SR_ORE: u32 = 1 << 3;
const SR_RXNE: u32 = 1 << 5;
const SR_TC: u32 = 1 << 6;
const SR_TXE: u32 = 1 << 7;
const SR_ERRORS: u32 = SR_PE | SR_FE | SR_NF | SR_ORE;

const CR1_RE: u32 = 1 << 2;
const CR1_TE: u32 = 1 << 3;
const CR1_PCE: u32 = 1 << 10;
const CR1_M: u32 = 1 << 12;
const CR1_UE: u32 = 1 << 13;

/// APB2 clock of the board (the core clock halved).
const APB2_HZ: u32 = clock::CORE_HZ / 2;
/// ISO/IEC 7816-3's initial rate: 3.5712 MHz card clock, F = 372, D = 1.
const BAUD: u32 = 9600;
/// How long a transmit may wait for room in the data register before the port is declared broken.
const TX_TIMEOUT_MS: u32 = 100;

/// What the port saw: the counts the firmware reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Reads that timed out (a lost byte, or a card that stayed mute).
    pub timeouts: u32,
    /// Bytes the line flagged as garbled (parity, framing, noise, overrun).
    pub garbled: u32,
    /// Bytes thrown away while waiting for the line to fall silent before sending.
    pub drained: u32,
    /// Bytes sent.
    pub sent: u32,
    /// Bytes received.
    pub received: u32,
}

/// USART1, polled, with read timeouts.
pub struct Usart {
    /// How long a read waits for its first byte, before the WTX multiplier.
    timeout_ms: u32,
    /// How long the line must stay silent before a block is sent.
    idle_ms: u32,
    /// The card's waiting time extension for the next block (1 but after a WTX request).
    multiplier: u8,
    /// A block is being written (the line was drained for it).
    sending: bool,
    stats: Stats,
}

fn reg(offset: usize) -> *mut u32 {
    (USART1 + offset) as *mut u32
}

fn sr() -> u32 {
    // SAFETY: USART1's status register, a device register always mapped on this chip.
    unsafe { read_volatile(reg(SR)) }
}

impl Usart {
    /// Enables USART1's clock and the USART: 9600 baud, 8 data bits and even parity (the
    /// ISO 7816-3 character frame; QEMU carries the bytes and ignores the framing), transmitter
    /// and receiver on. `timeout_ms` bounds how long a read waits for a byte; `idle_ms` is the
    /// silence awaited before each block is sent.
    pub fn init(timeout_ms: u32, idle_ms: u32) -> Self {
        // SAFETY: device registers of this chip; this driver is their only user (`main` creates
        // one `Usart`, once).
        unsafe {
            let apb2 = RCC_APB2ENR as *mut u32;
            write_volatile(apb2, read_volatile(apb2) | (1 << 4));
            write_volatile(reg(BRR), APB2_HZ / BAUD);
            write_volatile(reg(CR1), CR1_UE | CR1_M | CR1_PCE | CR1_TE | CR1_RE);
        }
        Self {
            timeout_ms,
            idle_ms,
            multiplier: 1,
            sending: false,
            stats: Stats::default(),
        }
    }

    /// What the port saw so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Sets the card's waiting time extension for the next reads (the T=1 carrier's wait hook).
    pub fn set_multiplier(&mut self, multiplier: u8) {
        self.multiplier = multiplier.max(1);
    }

    /// One received byte if there is one now: `Ok(None)` when the line is quiet, `Err` for a
    /// byte the USART flagged as garbled (it is consumed).
    fn take(&mut self) -> Result<Option<u8>, ErrorKind> {
        let status = sr();
        if status & (SR_RXNE | SR_ERRORS) == 0 {
            return Ok(None);
        }
        // SAFETY: USART1's data register; reading it (after the status) clears RXNE and the
        // error flags.
        let byte = unsafe { read_volatile(reg(DR)) } as u8;
        if status & SR_ERRORS != 0 {
            self.stats.garbled += 1;
            return Err(ErrorKind::InvalidData);
        }
        self.stats.received += 1;
        Ok(Some(byte))
    }

    /// Waits up to `ms` for one byte.
    fn wait_byte(&mut self, ms: u32) -> Result<Option<u8>, ErrorKind> {
        let start = clock::now_ms();
        loop {
            if let Some(b) = self.take()? {
                return Ok(Some(b));
            }
            if clock::elapsed(start, ms) {
                return Ok(None);
            }
        }
    }

    /// Throws away what arrives until the line has been silent for the idle time.
    fn drain(&mut self) {
        loop {
            match self.wait_byte(self.idle_ms) {
                Ok(None) => return,
                Ok(Some(_)) | Err(_) => self.stats.drained += 1,
            }
        }
    }

    /// Reads bytes into `buf` until the line is silent for the idle time, waiting up to the
    /// read timeout for the first one; returns how many came (an ATR, whose length is only
    /// known once it is parsed).
    pub fn read_until_idle(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let mut n = 0;
        let mut wait = self.timeout_ms;
        while let Some(b) = self.wait_byte(wait)? {
            let slot = buf.get_mut(n).ok_or(ErrorKind::OutOfMemory)?;
            *slot = b;
            n += 1;
            wait = self.idle_ms;
        }
        if n == 0 {
            self.stats.timeouts += 1;
            return Err(ErrorKind::TimedOut);
        }
        Ok(n)
    }

    fn send_byte(&mut self, byte: u8) -> Result<(), ErrorKind> {
        let start = clock::now_ms();
        while sr() & SR_TXE == 0 {
            if clock::elapsed(start, TX_TIMEOUT_MS) {
                return Err(ErrorKind::TimedOut);
            }
        }
        // SAFETY: USART1's data register, empty (TXE): writing it sends the byte.
        unsafe { write_volatile(reg(DR), u32::from(byte)) };
        self.stats.sent += 1;
        Ok(())
    }
}

impl ErrorType for Usart {
    type Error = ErrorKind;
}

impl Read for Usart {
    /// Waits up to the read timeout (times the WTX multiplier) for a byte, then takes the bytes
    /// already there without waiting.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        if buf.is_empty() {
            return Ok(0);
        }
        let wait = self.timeout_ms.saturating_mul(u32::from(self.multiplier));
        let Some(first) = self.wait_byte(wait)? else {
            self.stats.timeouts += 1;
            return Err(ErrorKind::TimedOut);
        };
        let mut n = 0;
        let mut next = Some(first);
        while let (Some(b), Some(slot)) = (next, buf.get_mut(n)) {
            *slot = b;
            n += 1;
            next = if n < buf.len() { self.take()? } else { None };
        }
        Ok(n)
    }
}

impl Write for Usart {
    /// Sends `buf`; before the first byte of a block, waits for the line to fall silent.
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        if !self.sending {
            self.drain();
            self.sending = true;
        }
        for &b in buf {
            self.send_byte(b)?;
        }
        Ok(buf.len())
    }

    /// Waits until the last byte has left the shift register; the next write starts a block.
    async fn flush(&mut self) -> Result<(), ErrorKind> {
        self.sending = false;
        let start = clock::now_ms();
        while sr() & SR_TC == 0 {
            if clock::elapsed(start, TX_TIMEOUT_MS) {
                return Err(ErrorKind::TimedOut);
            }
        }
        Ok(())
    }
}
