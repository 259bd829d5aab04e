//! A firmware-like binary: runs the PIV PUK unblock flow of `cardunlock-core` over a transport
//! that stands in for a card UART (it replays a card's answers), on a Cortex-M4F, with no heap.
//! Built in CI to prove the core is `no_std` and to report its flash size. With the feature
//! `ccid` the unblock runs through the CCID session of `cardunlock-ccid` over an in-memory
//! `embedded-io-async` pipe to a CCID reader (`cardunlock_ccid::loopback`) with that card in its
//! slot: the whole CCID path a firmware links, with its USB host stack in the reader's place.
#![no_std]
#![no_main]

use cardunlock_core::flow::{NoAdmin, PivUnblock};
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::secret::{NewPin, PivReference};
use cardunlock_core::{driver::Driver, ErrorKind, Transport};
use cortex_m_rt::entry;
use panic_halt as _;

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

#[entry]
fn main() -> ! {
    let result = embassy_futures::block_on(async {
        let new_pin =
            NewPin::new(&PinPolicy::PIV, b"840259", b"840259", None, None).map_err(|_| ())?;
        let puk = PivReference::puk(b"12345678").map_err(|_| ())?;
        let mut flow = PivUnblock::new(puk, &new_pin).map_err(|_| ())?;
        #[cfg(not(feature = "ccid"))]
        let mut driver = Driver::new(ReplayCard);
        #[cfg(feature = "ccid")]
        let mut driver = {
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
            Driver::new(session)
        };
        driver.run(&mut flow, &mut NoAdmin).await.map_err(|_| ())?;
        #[cfg(feature = "gids")]
        {
            // The replayed answers carry no card random, so this run stops at the first GENERAL
            // AUTHENTICATE; it is here so the GIDS flow and 3DES are linked and measured.
            let key = cardunlock_core::crypto::AdminKey::piv_default();
            let mut responder =
                cardunlock_core::flow::LocalKey::new(key, |b: &mut [u8]| b.fill(0x5A));
            let mut flow = cardunlock_core::flow::GidsUnblock::new(&new_pin, [0x21; 16]);
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
