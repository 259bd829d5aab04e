//! How a card vendor adds a profile to cardunlock without touching the core.
//!
//! The "Example Corp" applet (AID `F0 45 58 43 4F 52 50`) has its own PIN reset command,
//! `80 5E 00 80 <n> <PUK length> <PUK> <new PIN>`: it answers `90 00`, `63 CX` for a wrong PUK
//! with X tries left, `69 83` when the PUK is blocked and `6A 80` when it refuses the new PIN.
//! A VERIFY `00 20 00 80` with the new PIN then proves the card took it.
//!
//! [`VendorUnblock`] is a sans-IO [`Flow`]: it borrows the caller's PUK and new PIN (no copy),
//! builds each command in the buffer the driver lends it (wiped after the exchange), reads the
//! answers with the core's helpers, and reports errors as the core's [`FlowError`], so callers
//! (a CLI, a server, a firmware) handle this card like the built-in ones. [`unblock`] is the
//! entry point, run over any [`Transport`] by the core's [`Driver`].
//!
//! The shortest correct unblock, from what the person typed to the card's answer:
//!
//! ```no_run
//! # async fn run<T: cardunlock_core::Transport>(reader: T) {
//! use cardunlock_core::{driver::Driver, policy::PinPolicy, secret::{NewPin, PinContext, Puk}};
//!
//! let puk = Puk::new(b"87654321").expect("1 to 32 bytes");
//! let Ok(new_pin) = NewPin::confirmed(&PinPolicy::GIDS, b"Xk9w2", b"Xk9w2", PinContext::NONE)
//! else {
//!     return; // every violation listed; nothing was sent
//! };
//! let mut driver = Driver::new(reader);
//! match cardunlock_vendor_example::unblock(&mut driver, &puk, &new_pin).await {
//!     Ok(()) => {}
//!     Err(e) => {
//!         let _tries_left = e.tries_left(); // a wrong PUK: how many are left
//!     }
//! }
//! # }
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use cardunlock_core::apdu::{Command, Cursor};
use cardunlock_core::driver::{Driver, Error};
use cardunlock_core::flow::{self, Action, Event, Flow, FlowError, Step};
use cardunlock_core::secret::{NewPin, Pin, Puk};
use cardunlock_core::Transport;

/// The applet's identifier.
pub const AID: [u8; 7] = [0xF0, 0x45, 0x58, 0x43, 0x4F, 0x52, 0x50];
/// CLA of the vendor's proprietary commands.
pub const CLA_PROPRIETARY: u8 = 0x80;
/// INS of the vendor's PIN reset command.
pub const INS_RESET_PIN: u8 = 0x5E;
/// Reference of the user PIN.
pub const PIN_REF: u8 = 0x80;

/// SELECT the applet: `00 A4 04 00 07 <AID> 00`.
pub const fn select() -> Command<'static> {
    Command::new(0x00, 0xA4, 0x04, 0x00)
        .with_data(&AID)
        .with_le(256)
}

/// The vendor's PIN reset, its data built in `buf`: `80 5E 00 80 <n> <PUK length> <PUK>
/// <new PIN>`. Fails (nothing written past `buf`) when `buf` is too small.
pub fn reset_pin<'b>(
    buf: &'b mut [u8],
    puk: &Puk,
    new_pin: &Pin,
) -> Result<Command<'b>, cardunlock_core::apdu::EncodeError> {
    let puk = puk.expose();
    let mut w = Cursor::new(buf);
    w.put(&[puk.len() as u8])?.put(puk)?.put(new_pin.expose())?;
    Ok(Command::new(CLA_PROPRIETARY, INS_RESET_PIN, 0x00, PIN_REF).with_data(w.finish()))
}

/// VERIFY with the PIN: `00 20 00 80 <n> <PIN>`.
pub fn verify_pin(pin: &Pin) -> Command<'_> {
    Command::new(0x00, 0x20, 0x00, PIN_REF).with_data(pin.expose())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Select,
    Reset,
    Verify,
    Done,
}

/// Example Corp's unblock: SELECT, the vendor PIN reset with the PUK, VERIFY with the new PIN.
/// A wrong PUK costs exactly the one try the card counts, and is reported with the tries left.
pub struct VendorUnblock<'a> {
    puk: &'a Puk,
    new_pin: &'a Pin,
    state: State,
}

impl core::fmt::Debug for VendorUnblock<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never the PUK or the PIN.
        f.debug_struct("VendorUnblock")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<'a> VendorUnblock<'a> {
    /// An unblock with `puk`, setting `new_pin` (which passed the PIN policy). Both are borrowed
    /// while it runs.
    pub fn new(puk: &'a Puk, new_pin: &'a NewPin) -> Self {
        Self {
            puk,
            new_pin: new_pin.pin(),
            state: State::Select,
        }
    }
}

impl Flow for VendorUnblock<'_> {
    type Output = ();

    fn action<'a>(&'a mut self, buf: &'a mut [u8]) -> Result<Action<'a, ()>, FlowError> {
        Ok(match self.state {
            State::Select => Action::Send(select()),
            State::Reset => Action::Send(reset_pin(buf, self.puk, self.new_pin)?),
            State::Verify => Action::Send(verify_pin(self.new_pin)),
            State::Done => Action::Done(()),
        })
    }

    fn handle(&mut self, event: Event<'_>) -> Result<(), FlowError> {
        let status = flow::response(event)?.status;
        self.state = match self.state {
            State::Select if status.is_success() => State::Reset,
            State::Select => return Err(FlowError::ApplicationNotFound(status)),
            State::Reset if status.is_success() => State::Verify,
            // 63 CX, 69 83, 6A 80 ...: the same errors as a PIV PUK unblock.
            State::Reset => return Err(flow::puk_reset_error(status, Step::Vendor)),
            State::Verify if status.is_success() => State::Done,
            State::Verify => return Err(FlowError::NewPinNotAccepted(status)),
            State::Done => return Err(FlowError::UnexpectedEvent),
        };
        Ok(())
    }
}

/// Unblocks an Example Corp card over `driver` (of any buffer size) with `puk`, setting
/// `new_pin`. No admin key takes part, so the error names no admin responder.
pub async fn unblock<T: Transport, const SEND: usize, const RECV: usize>(
    driver: &mut Driver<T, SEND, RECV>,
    puk: &Puk,
    new_pin: &NewPin,
) -> Result<(), Error<T::Error>> {
    driver
        .run_without_admin(&mut VendorUnblock::new(puk, new_pin))
        .await
}
