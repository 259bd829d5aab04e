//! A firmware-like binary: runs the PIV PUK unblock flow of `cardunlock-core` over a transport
//! that stands in for a card UART (it replays a card's answers), on a Cortex-M4F, with no heap.
//! Built in CI to prove the core is `no_std` and to report its flash size; with the feature
//! `stack` it instead runs the PIV and GIDS unblocks on a painted stack under QEMU and prints
//! their peak stack use. With the feature
//! `ccid` the unblock runs through the CCID session of `cardunlock-ccid` over an in-memory
//! `embedded-io-async` pipe to a CCID reader (`cardunlock_ccid::loopback`) with that card in its
//! slot: the whole CCID path a firmware links, with its USB host stack in the reader's place.
#![no_std]
#![no_main]

use cardunlock_core::driver::{Driver, SHORT_RECV_LEN, SHORT_SEND_LEN};
use cardunlock_core::flow::PivUnblock;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::secret::{NewPin, PinContext, PivPin, PivPuk};
use cardunlock_core::{ErrorKind, Transport};

/// The driver as a firmware that speaks short APDUs sizes it: buffers for one short command
/// and one short response instead of the defaults' extended ones (1 KiB of response).
type ShortDriver<T> = Driver<T, SHORT_SEND_LEN, SHORT_RECV_LEN>;
use cortex_m_rt::entry;

/// Halts on a panic, like `panic-halt`, but keeps the panic's message and location
/// observable: with them dropped every `panic_const_*` entry compiles to the same bytes and
/// LLVM folds them into one symbol of any of their names, which would hide a real panic
/// path behind the async guard's name from `scripts/firmware-panics.sh`.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    core::hint::black_box(info);
    loop {
        cortex_m::asm::bkpt();
    }
}

#[cfg(feature = "stack")]
mod card_answers;
#[cfg(feature = "stack")]
mod stack;

/// Answers every command with `90 00`, the way a card accepting SELECT, RESET RETRY COUNTER
/// and VERIFY does. A real firmware puts its ISO 7816-3 UART driver here.
struct ReplayCard;

impl Transport for ReplayCard {
    type Error = ErrorKind;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
        // Keep the command observable so the optimizer cannot drop the encoder.
        let ok = core::hint::black_box(command).len() >= 4;
        let out = response.get_mut(..2).ok_or(ErrorKind::ResponseTooLong)?;
        out.copy_from_slice(if ok { &[0x90, 0x00] } else { &[0x6F, 0x00] });
        Ok(2)
    }
}

/// Replays fixed card answers in order, whatever the command.
#[cfg(feature = "stack")]
struct ReplayAnswers {
    answers: &'static [&'static [u8]],
    next: usize,
}

#[cfg(feature = "stack")]
impl Transport for ReplayAnswers {
    type Error = ErrorKind;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
        let _ = core::hint::black_box(command);
        let answer = self.answers.get(self.next).ok_or(ErrorKind::Other)?;
        self.next += 1;
        let out = response
            .get_mut(..answer.len())
            .ok_or(ErrorKind::ResponseTooLong)?;
        out.copy_from_slice(answer);
        Ok(answer.len())
    }
}

/// The PIV PUK unblock (policy check, SELECT, RESET RETRY COUNTER, VERIFY) to completion.
#[cfg(feature = "stack")]
#[inline(never)]
fn run_piv() -> bool {
    embassy_futures::block_on(async {
        let new_pin: NewPin<PivPin> =
            NewPin::confirmed(&PinPolicy::PIV, b"840259", b"840259", PinContext::NONE)
                .map_err(|_| ())?;
        let puk = PivPuk::new(b"12345678").map_err(|_| ())?;
        let mut flow = PivUnblock::new(&puk, &new_pin);
        let mut driver: ShortDriver<_> = Driver::with_buffers(core::hint::black_box(ReplayCard));
        driver.run_without_admin(&mut flow).await.map_err(|_| ())
    })
    .is_ok()
}

/// The GIDS admin-key unblock (policy check, SELECT, MSE SET, 3DES mutual authentication with
/// the card's cryptogram checked, RESET RETRY COUNTER, VERIFY) to completion, against the
/// simulated card's recorded answers.

/// The recorded run's "random" bytes, every byte the same, so the replayed card answers fit.
/// A measurement stand-in only: a real firmware hands `LocalKey` its hardware RNG.
#[cfg(any(feature = "gids", feature = "stack"))]
struct ReplayRng(u8);

#[cfg(any(feature = "gids", feature = "stack"))]
impl cardunlock_core::rand_core::RngCore for ReplayRng {
    fn next_u32(&mut self) -> u32 {
        u32::from_ne_bytes([self.0; 4])
    }

    fn next_u64(&mut self) -> u64 {
        u64::from_ne_bytes([self.0; 8])
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(self.0);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), cardunlock_core::rand_core::Error> {
        dest.fill(self.0);
        Ok(())
    }
}

#[cfg(any(feature = "gids", feature = "stack"))]
impl cardunlock_core::rand_core::CryptoRng for ReplayRng {}
#[cfg(feature = "stack")]
#[inline(never)]
fn run_gids() -> bool {
    embassy_futures::block_on(async {
        let pin = card_answers::NEW_GIDS_PIN;
        let new_pin: NewPin =
            NewPin::confirmed(&PinPolicy::GIDS, pin, pin, PinContext::NONE).map_err(|_| ())?;
        let key = cardunlock_core::crypto::AdminKey::piv_default();
        let mut responder =
            cardunlock_core::flow::LocalKey::new(key, ReplayRng(card_answers::GIDS_Z1_BYTE));
        let mut flow = cardunlock_core::flow::GidsUnblock::new(&new_pin, card_answers::GIDS_R1);
        let mut driver: ShortDriver<_> =
            Driver::with_buffers(core::hint::black_box(ReplayAnswers {
                answers: &card_answers::GIDS_UNBLOCK,
                next: 0,
            }));
        driver.run(&mut flow, &mut responder).await.map_err(|_| ())
    })
    .is_ok()
}

/// Runs each unblock on a freshly painted stack and prints its peak stack use.
#[cfg(feature = "stack")]
fn measure() -> ! {
    use core::fmt::Write;
    let mut ok = true;
    for (name, run) in [
        ("PIV PUK unblock", run_piv as fn() -> bool),
        ("GIDS admin-key unblock", run_gids),
    ] {
        let before = stack::paint();
        let done = run();
        let peak = stack::peak();
        ok &= done;
        let mut line = stack::Line::new();
        let _ = write!(
            line,
            "stack: {name}: peak {peak} bytes (from reset; {before} in use before the flow){}",
            if done { "" } else { " FAILED" }
        );
        line.print();
    }
    stack::exit(ok)
}

#[cfg(feature = "stack")]
#[entry]
fn main() -> ! {
    measure()
}

#[cfg(not(feature = "stack"))]
#[entry]
fn main() -> ! {
    let result = embassy_futures::block_on(async {
        let new_pin: NewPin<PivPin> =
            NewPin::confirmed(&PinPolicy::PIV, b"840259", b"840259", PinContext::NONE)
                .map_err(|_| ())?;
        let puk = PivPuk::new(b"12345678").map_err(|_| ())?;
        let mut flow = PivUnblock::new(&puk, &new_pin);
        #[cfg(not(feature = "ccid"))]
        let mut driver: ShortDriver<_> = Driver::with_buffers(ReplayCard);
        #[cfg(feature = "ccid")]
        let mut driver: ShortDriver<_> = {
            use cardunlock_ccid::session::{NoControl, Session};
            use cardunlock_ccid::{
                clock::NoTimeout, descriptor::ClassDescriptor, loopback::Loopback,
            };
            const ATR: &[u8] = &[0x3B, 0x80, 0x80, 0x01, 0x01];
            let reader = Loopback::new(ReplayCard, ATR);
            let descriptor = ClassDescriptor::TYPICAL;
            let mut session: Session<_, _, NoControl> =
                Session::new(reader, NoTimeout, NoControl, &descriptor, 0).map_err(|_| ())?;
            session.power_on().await.map_err(|_| ())?;
            Driver::with_buffers(session)
        };
        driver.run_without_admin(&mut flow).await.map_err(|_| ())?;
        #[cfg(feature = "gids")]
        {
            // The replayed answers carry no card random, so this run stops at the first GENERAL
            // AUTHENTICATE; it is here so the GIDS flow and 3DES are linked and measured.
            let key = cardunlock_core::crypto::AdminKey::piv_default();
            let mut responder = cardunlock_core::flow::LocalKey::new(key, ReplayRng(0x5A));
            let gids_pin: NewPin =
                NewPin::unconfirmed(&PinPolicy::GIDS, b"Xk9w2", PinContext::NONE)
                    .map_err(|_| ())?;
            let mut flow = cardunlock_core::flow::GidsUnblock::new(&gids_pin, [0x21; 16]);
            let _ = driver.run(&mut flow, &mut responder).await;
        }
        Ok::<(), ()>(())
    });
    loop {
        if result.is_ok() {
            cortex_m::asm::wfi();
        } else {
            cortex_m::asm::bkpt();
        }
    }
}
