//! A firmware-like binary: runs the PIV PUK unblock flow of `cardunlock-core` over a transport
//! that stands in for a card UART (`cardunlock_testkit::Replay` of the simulated card's recorded
//! exchanges, every command the core sends checked against them), on a Cortex-M4F, with no heap.
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
use cardunlock_testkit::{Exchange, Replay};

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

// Each image replays some of these: the default one the PIV exchanges only.
#[allow(dead_code)]
mod card_answers;
#[cfg(feature = "stack")]
mod stack;

#[cfg(feature = "stack")]
/// The card: replays `exchanges` in order and refuses a command other than the recorded one.
/// A real firmware puts its ISO 7816-3 UART driver here.
fn card(
    exchanges: &'static [Exchange<'static>],
) -> Replay<core::iter::Copied<core::slice::Iter<'static, Exchange<'static>>>> {
    Replay::new(exchanges.iter().copied())
}

/// What the card answers after the PIV unblock in the default image: with `gids`, the GIDS
/// unblock's exchanges.
#[cfg(not(feature = "stack"))]
const AFTER_PIV: &[Exchange<'static>] = if cfg!(feature = "gids") {
    &card_answers::GIDS_UNBLOCK
} else {
    &[]
};

/// The PIV PUK unblock (policy check, SELECT, RESET RETRY COUNTER, VERIFY) to completion.
#[cfg(feature = "stack")]
#[inline(never)]
fn run_piv() -> bool {
    embassy_futures::block_on(async {
        let pin = card_answers::NEW_PIV_PIN;
        let new_pin: NewPin<PivPin> =
            NewPin::confirmed(&PinPolicy::PIV, pin, pin, PinContext::NONE).map_err(|_| ())?;
        let puk = PivPuk::new(card_answers::PUK).map_err(|_| ())?;
        let mut flow = PivUnblock::new(&puk, &new_pin);
        let mut driver: ShortDriver<_> =
            Driver::with_buffers(core::hint::black_box(card(&card_answers::PIV_UNBLOCK)));
        driver.run_without_admin(&mut flow).await.map_err(|_| ())
    })
    .is_ok()
}

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

/// The GIDS admin-key unblock (policy check, SELECT, MSE SET, 3DES mutual authentication with
/// the card's cryptogram checked, RESET RETRY COUNTER, VERIFY) to completion, against the
/// simulated card's recorded exchanges.
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
            Driver::with_buffers(core::hint::black_box(card(&card_answers::GIDS_UNBLOCK)));
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
        let pin = card_answers::NEW_PIV_PIN;
        let new_pin: NewPin<PivPin> =
            NewPin::confirmed(&PinPolicy::PIV, pin, pin, PinContext::NONE).map_err(|_| ())?;
        let puk = PivPuk::new(card_answers::PUK).map_err(|_| ())?;
        let mut flow = PivUnblock::new(&puk, &new_pin);
        let card = Replay::new(card_answers::PIV_UNBLOCK.iter().chain(AFTER_PIV).copied());
        #[cfg(not(feature = "ccid"))]
        let mut driver: ShortDriver<_> = Driver::with_buffers(card);
        #[cfg(feature = "ccid")]
        let mut driver: ShortDriver<_> = {
            use cardunlock_ccid::session::{NoControl, Session};
            use cardunlock_ccid::{
                clock::NoTimeout, descriptor::ClassDescriptor, loopback::Loopback,
            };
            const ATR: &[u8] = &[0x3B, 0x80, 0x80, 0x01, 0x01];
            let reader = Loopback::new(card, ATR);
            let descriptor = ClassDescriptor::TYPICAL;
            let mut session: Session<_, _, NoControl> =
                Session::new(reader, NoTimeout, NoControl, &descriptor, 0).map_err(|_| ())?;
            session.power_on().await.map_err(|_| ())?;
            Driver::with_buffers(session)
        };
        driver.run_without_admin(&mut flow).await.map_err(|_| ())?;
        #[cfg(feature = "gids")]
        {
            // The simulated GIDS card's exchanges follow the PIV ones: the whole GIDS flow runs,
            // 3DES and the card-cryptogram check included.
            let key = cardunlock_core::crypto::AdminKey::piv_default();
            let mut responder =
                cardunlock_core::flow::LocalKey::new(key, ReplayRng(card_answers::GIDS_Z1_BYTE));
            let gids_pin: NewPin = NewPin::unconfirmed(
                &PinPolicy::GIDS,
                card_answers::NEW_GIDS_PIN,
                PinContext::NONE,
            )
            .map_err(|_| ())?;
            let mut flow =
                cardunlock_core::flow::GidsUnblock::new(&gids_pin, card_answers::GIDS_R1);
            driver
                .run(&mut flow, &mut responder)
                .await
                .map_err(|_| ())?;
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
