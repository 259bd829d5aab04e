//! Peak stack measurement (feature `stack`): the free stack is painted with a pattern before a
//! flow runs, and the deepest word the flow overwrote is found afterwards. The figures are
//! printed through ARM semihosting, so this build runs under a debugger or QEMU
//! (`qemu-system-arm -M netduinoplus2 -semihosting ...`, see `.ci/run`), not on a bare board.

use core::arch::asm;
use core::fmt::Write;

extern "C" {
    /// Top of the stack (cortex-m-rt's link.x).
    static _stack_start: u32;
    /// Lowest address the stack may reach: the end of `.bss` / `.uninit` (cortex-m-rt 0.7.4+).
    static _stack_end: u32;
}

const PAINT: u32 = 0x5A17_C0DE;
/// Bytes under the painter's stack pointer left alone (its own frame and call).
const GUARD: usize = 128;

#[allow(unused_unsafe)] // needed before Rust 1.82
fn top() -> usize {
    // SAFETY: only the symbol's address is taken, never its value.
    unsafe { core::ptr::addr_of!(_stack_start) as usize }
}

#[allow(unused_unsafe)]
fn bottom() -> usize {
    // SAFETY: as above.
    unsafe { core::ptr::addr_of!(_stack_end) as usize }
}

fn sp() -> usize {
    let sp: usize;
    // SAFETY: reads the stack pointer, no side effect.
    unsafe { asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// Paints the free stack below the caller's frame; returns the bytes in use at the call
/// (from the top of the stack: reset handler, `main` and its futures).
#[inline(never)]
pub fn paint() -> usize {
    let sp = sp();
    let mut p = bottom();
    while p + GUARD < sp {
        // SAFETY: [bottom, sp - GUARD) is stack nobody uses yet: below the live frames.
        unsafe { (p as *mut u32).write_volatile(PAINT) };
        p += 4;
    }
    top() - sp
}

/// The deepest stack use since [`paint`], in bytes from the top of the stack.
#[inline(never)]
pub fn peak() -> usize {
    let mut p = bottom();
    // SAFETY: reads painted stack words; none is in use below the caller's frame.
    while p < top() && unsafe { (p as *const u32).read_volatile() } == PAINT {
        p += 4;
    }
    top() - p
}

/// Semihosting SYS_WRITE0: writes a NUL-terminated string to the host's console.
fn write0(s: &[u8]) {
    // SAFETY: `bkpt 0xAB` is the semihosting call; r1 points to a NUL-terminated string.
    unsafe {
        asm!("bkpt 0xAB", inout("r0") 0x04usize => _, in("r1") s.as_ptr(), options(nostack));
    }
}

/// Semihosting SYS_EXIT: ends the emulation, `ok` as the exit status.
pub fn exit(ok: bool) -> ! {
    let reason: usize = if ok { 0x2_0026 } else { 0x2_0024 };
    // SAFETY: as above; r1 holds the reason code (ADP_Stopped_ApplicationExit / RunTimeError).
    unsafe { asm!("bkpt 0xAB", in("r0") 0x18usize, in("r1") reason, options(nostack)) };
    loop {
        cortex_m::asm::bkpt();
    }
}

/// A line printed through semihosting (a fixed buffer: no heap).
pub struct Line {
    buf: [u8; 128],
    len: usize,
}

impl Line {
    /// An empty line.
    pub const fn new() -> Self {
        Self {
            buf: [0; 128],
            len: 0,
        }
    }

    /// Prints the line and a newline.
    pub fn print(mut self) {
        let _ = self.write_str("\n");
        let end = self.len.min(self.buf.len() - 1);
        self.buf[end] = 0;
        write0(&self.buf[..=end]);
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.buf.len() - 1 - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}
