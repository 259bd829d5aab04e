//! Milliseconds since boot from SysTick: one interrupt per millisecond counts them. The USART
//! driver's read timeouts (a lost byte is a read that times out) and the report's run time come
//! from here.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;

/// The core clock of the STM32F405 on QEMU's netduinoplus2 board (its `SYSCLK_FRQ`).
pub const CORE_HZ: u32 = 168_000_000;

static MILLIS: AtomicU32 = AtomicU32::new(0);

/// Starts the millisecond tick: SysTick on the core clock, reloading every millisecond.
pub fn start(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(CORE_HZ / 1000 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Milliseconds since [`start`] (wraps after 49 days; compare with `wrapping_sub`).
pub fn now_ms() -> u32 {
    MILLIS.load(Ordering::Relaxed)
}

/// Whether `ms` milliseconds have passed since `since` (a [`now_ms`] reading).
pub fn elapsed(since: u32, ms: u32) -> bool {
    now_ms().wrapping_sub(since) >= ms
}

#[exception]
fn SysTick() {
    // Single core, and only this handler writes: a load and a store suffice (no CAS on the
    // counter is needed, and thumbv7em has them anyway).
    MILLIS.store(
        MILLIS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}
