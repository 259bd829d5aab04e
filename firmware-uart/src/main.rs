//! A Cortex-M4F firmware that unblocks a PIV card over its UART with ISO/IEC 7816-3 T=1, run
//! under QEMU's netduinoplus2 board (STM32F405).
//!
//! QEMU's USART has no smart-card mode, so USART1 (QEMU's first `-serial`) carries the T=1
//! bytes plainly to a host program that plays the card (`uart-card` in `tests/`): it answers
//! with the simulated PIV card behind a card-side T=1 and loses, garbles and delays bytes by a
//! seeded schedule. The firmware resets the card (one reset request byte stands for the RST
//! line, which QEMU does not have), reads the ATR, negotiates IFSD, and runs the core's PIV PUK
//! unblock through the T=1 engine of `cardunlock-ccid` (`t1::T1` over `t1::uart::Uart`), which
//! recovers from the faults with R-blocks, retransmissions and RESYNCH. It paints its stack
//! first and reports the outcome, what the port saw and the peak stack through ARM semihosting
//! (`cortex-m-semihosting`), then ends the emulation with the outcome as exit status.
#![no_std]
#![no_main]

mod clock;
// The stack painter of firmware-size (its semihosting printer is not used here).
#[allow(dead_code)]
#[path = "../../firmware-size/src/stack.rs"]
mod stack;
mod usart;

use cardunlock_ccid::atr::{Atr, Protocol, MAX_ATR_LEN};
use cardunlock_ccid::t1::uart::{Uart, UartError, UartT1};
use cardunlock_ccid::t1::{T1Error, T1Params, T1};
use cardunlock_core::driver::Driver;
use cardunlock_core::flow::PivUnblock;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::secret::{NewPin, PinContext, PivPin, PivPuk};
use cortex_m_rt::entry;
// hprintln! of cortex-m-semihosting 0.5 formats only explicit arguments (no `{name}` captures).
use cortex_m_semihosting::{debug, hprintln};
use embedded_io_async::{ErrorKind, Write};
use panic_halt as _;

use crate::usart::Usart;

/// How long a read waits for a byte (the block and character waiting time in one): well above
/// what the host program's delayed bytes and a busy CI machine add, well below QEMU's time limit.
const READ_TIMEOUT_MS: u32 = 500;
/// Silence on the line before a block is sent or after which an ATR is complete.
const IDLE_MS: u32 = 40;
/// The byte that asks the host program for a cold reset (stands for the RST line).
const RESET_REQUEST: u8 = 0x52;
/// Cold resets tried before giving up on the ATR.
const RESETS: usize = 3;
/// The IFSD asked for: small, so the card chains its longer answers.
const IFSD: u8 = 8;
/// The test values the host program checks: the simulated card's factory PUK and the new PIN.
/// A real firmware gets them from its user (keypad, host command), never from its image.
const PUK: &[u8] = b"12345678";
const NEW_PIN: &[u8] = b"802517";

/// The driver's send and receive buffers: short APDUs only (the PIV unblock's longest command is
/// RESET RETRY COUNTER, 21 bytes; its longest answer SELECT's, under 64).
const SEND_LEN: usize = 64;
const RECV_LEN: usize = 128;

/// Why the run failed, for the report.
enum Failure {
    /// No valid ATR after [`RESETS`] cold resets.
    NoAtr,
    /// The ATR does not offer T=1.
    NotT1,
    /// The IFSD negotiation failed.
    Ifsd(T1Error<UartError<ErrorKind>>),
    /// The PIN or PUK broke the firmware's own policy (a build error).
    Input,
    /// The unblock failed.
    Unblock(cardunlock_core::driver::Error<T1Error<UartError<ErrorKind>>>),
}

/// Cold reset: asks for the ATR until a valid one comes; returns its length in `atr`.
async fn reset(port: &mut Usart, atr: &mut [u8; MAX_ATR_LEN]) -> Result<usize, Failure> {
    for _ in 0..RESETS {
        atr.fill(0);
        if port.write_all(&[RESET_REQUEST]).await.is_err() || port.flush().await.is_err() {
            continue;
        }
        if let Ok(n) = port.read_until_idle(atr) {
            if atr.get(..n).is_some_and(|a| Atr::parse(a).is_ok()) {
                return Ok(n);
            }
        }
    }
    Err(Failure::NoAtr)
}

/// Reset, ATR, IFSD, then the PIV PUK unblock; gives the port back for its counts.
async fn unblock(mut port: Usart) -> (Result<u32, Failure>, Usart) {
    let mut atr = [0u8; MAX_ATR_LEN];
    let params = match reset(&mut port, &mut atr).await {
        Ok(n) => match atr.get(..n).map(Atr::parse) {
            Some(Ok(a)) if a.offers_protocol(Protocol::T1) => T1Params {
                ifsd: IFSD,
                ..T1Params::from_atr(&a)
            },
            _ => return (Err(Failure::NotT1), port),
        },
        Err(e) => return (Err(e), port),
    };
    let mut t1 = T1::new(params);
    let mut io = Uart::new(port, params.edc).with_wait_hook(Usart::set_multiplier);
    if let Err(e) = t1.negotiate_ifsd(&mut io).await {
        return (Err(Failure::Ifsd(e)), io.into_inner());
    }
    let input = NewPin::<PivPin>::confirmed(&PinPolicy::PIV, NEW_PIN, NEW_PIN, PinContext::NONE)
        .ok()
        .zip(PivPuk::new(PUK).ok());
    let Some((new_pin, puk)) = input else {
        return (Err(Failure::Input), io.into_inner());
    };
    let mut flow = PivUnblock::new(&puk, &new_pin);
    let mut driver: Driver<_, SEND_LEN, RECV_LEN> = Driver::with_buffers(UartT1::new(t1, io));
    let result = driver.run_without_admin(&mut flow).await;
    let commands = driver.commands_sent();
    let port = driver.into_inner().into_inner().into_inner();
    (result.map(|()| commands).map_err(Failure::Unblock), port)
}

/// Runs the unblock to its end (no executor needed: the port is polled).
#[inline(never)]
fn run(port: Usart) -> (Result<u32, Failure>, Usart) {
    embassy_futures::block_on(unblock(port))
}

#[entry]
fn main() -> ! {
    let Some(peripherals) = cortex_m::Peripherals::take() else {
        debug::exit(debug::EXIT_FAILURE);
        loop {
            cortex_m::asm::bkpt();
        }
    };
    clock::start(peripherals.SYST);
    let port = Usart::init(READ_TIMEOUT_MS, IDLE_MS);
    let before = stack::paint();
    let start = clock::now_ms();
    let (result, port) = run(port);
    let ms = clock::now_ms().wrapping_sub(start);
    let peak = stack::peak();
    let s = port.stats();

    match &result {
        Ok(commands) => {
            hprintln!(
                "firmware-uart: PIV unblock over T=1: OK ({} APDUs, {} ms)",
                commands,
                ms
            )
        }
        Err(Failure::NoAtr) => hprintln!("firmware-uart: FAILED: no valid ATR"),
        Err(Failure::NotT1) => hprintln!("firmware-uart: FAILED: the ATR offers no T=1"),
        Err(Failure::Ifsd(e)) => hprintln!("firmware-uart: FAILED: IFSD: {}", e),
        Err(Failure::Input) => hprintln!("firmware-uart: FAILED: PIN or PUK refused"),
        Err(Failure::Unblock(e)) => hprintln!("firmware-uart: FAILED: {}", e),
    }
    hprintln!(
        "firmware-uart: port: {} timeouts, {} garbled, {} drained; {} bytes sent, {} received",
        s.timeouts,
        s.garbled,
        s.drained,
        s.sent,
        s.received
    );
    hprintln!(
        "firmware-uart: stack: peak {} bytes (from reset; {} in use before the run)",
        peak,
        before
    );
    debug::exit(if result.is_ok() {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::bkpt();
    }
}
