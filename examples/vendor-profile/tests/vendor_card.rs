//! The vendor flow against a small simulated Example Corp applet, over the core's driver.

use cardunlock_core::apdu::Command;
use cardunlock_core::driver::{Driver, Error};
use cardunlock_core::flow::FlowError;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::secret::{NewPin, PinContext, Puk};
use cardunlock_core::sw::Status;
use cardunlock_core::{ErrorKind, Transport};
use cardunlock_vendor_example::{unblock, AID, CLA_PROPRIETARY, INS_RESET_PIN, PIN_REF};
use embassy_futures::block_on;

/// The applet: a PIN (blocked or not), a PUK with its tries, and every command it received.
struct VendorCard {
    selected: bool,
    pin: Vec<u8>,
    pin_tries: u8,
    puk: Vec<u8>,
    puk_tries: u8,
    seen: Vec<Vec<u8>>,
}

impl VendorCard {
    fn blocked() -> Self {
        Self {
            selected: false,
            pin: b"1234".to_vec(),
            pin_tries: 0,
            puk: b"87654321".to_vec(),
            puk_tries: 3,
            seen: Vec::new(),
        }
    }

    fn answer(&mut self, apdu: &[u8]) -> u16 {
        let Ok(cmd) = Command::parse(apdu) else {
            return 0x6700;
        };
        match (cmd.cla, cmd.ins, cmd.p2) {
            (0x00, 0xA4, _) => {
                self.selected = cmd.data == AID;
                if self.selected {
                    0x9000
                } else {
                    0x6A82
                }
            }
            _ if !self.selected => 0x6D00,
            (CLA_PROPRIETARY, INS_RESET_PIN, PIN_REF) => self.reset(cmd.data),
            (0x00, 0x20, PIN_REF) => {
                if self.pin_tries == 0 {
                    0x6983
                } else if cmd.data == self.pin.as_slice() {
                    0x9000
                } else {
                    self.pin_tries -= 1;
                    0x63C0 | u16::from(self.pin_tries)
                }
            }
            _ => 0x6D00,
        }
    }

    fn reset(&mut self, data: &[u8]) -> u16 {
        let Some((&n, rest)) = data.split_first() else {
            return 0x6700;
        };
        let Some((puk, pin)) = rest.split_at_checked(usize::from(n)) else {
            return 0x6700;
        };
        if self.puk_tries == 0 {
            return 0x6983;
        }
        if puk != self.puk.as_slice() {
            self.puk_tries -= 1;
            return 0x63C0 | u16::from(self.puk_tries);
        }
        if !(4..=8).contains(&pin.len()) {
            return 0x6A80;
        }
        self.puk_tries = 3;
        self.pin = pin.to_vec();
        self.pin_tries = 3;
        0x9000
    }
}

impl Transport for &mut VendorCard {
    type Error = ErrorKind;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
        self.seen.push(command.to_vec());
        let sw = self.answer(command).to_be_bytes();
        response
            .get_mut(..2)
            .ok_or(ErrorKind::ResponseTooLong)?
            .copy_from_slice(&sw);
        Ok(2)
    }
}

fn new_pin(pin: &[u8]) -> NewPin {
    NewPin::confirmed(&PinPolicy::GIDS, pin, pin, PinContext::NONE).unwrap()
}

/// The vendor unblock with `puk`, setting `pin` (checked against the GIDS policy).
fn run<T: Transport, const SEND: usize, const RECV: usize>(
    driver: &mut Driver<T, SEND, RECV>,
    puk: &[u8],
    pin: &[u8],
) -> Result<(), Error<T::Error>> {
    block_on(unblock(driver, &Puk::new(puk).unwrap(), &new_pin(pin)))
}

#[test]
fn vendor_unblock_sets_the_new_pin() {
    let mut card = VendorCard::blocked();
    let mut driver = Driver::new(&mut card);
    run(&mut driver, b"87654321", b"Xk9w2").unwrap();
    assert_eq!(card.pin, b"Xk9w2");
    assert_eq!(card.pin_tries, 3);
    let headers: Vec<[u8; 4]> = card.seen.iter().map(|c| [c[0], c[1], c[2], c[3]]).collect();
    assert_eq!(
        headers,
        [
            [0x00, 0xA4, 0x04, 0x00],
            [0x80, 0x5E, 0x00, 0x80],
            [0x00, 0x20, 0x00, 0x80]
        ]
    );
    // The reset command carries PUK length, PUK and new PIN, built in the driver's buffer.
    assert_eq!(&card.seen[1][4..], b"\x0e\x0887654321Xk9w2");
}

#[test]
fn wrong_puk_costs_one_try_and_is_reported_like_piv() {
    let mut card = VendorCard::blocked();
    let mut driver = Driver::new(&mut card);
    let got = run(&mut driver, b"11112222", b"Xk9w2");
    assert_eq!(got, Err(Error::Flow(FlowError::WrongPuk { tries_left: 2 })));
    assert_eq!(card.puk_tries, 2);
    assert_eq!(card.pin, b"1234", "nothing changed");
    assert_eq!(card.seen.len(), 2, "no VERIFY after a refused reset");
}

#[test]
fn blocked_puk_and_refused_pin_are_typed() {
    let mut card = VendorCard::blocked();
    card.puk_tries = 0;
    let mut driver = Driver::new(&mut card);
    let got = run(&mut driver, b"87654321", b"Xk9w2");
    assert_eq!(got, Err(Error::Flow(FlowError::PukBlocked)));

    // A PIN the card's own rules refuse (9 characters) costs no PUK try.
    let mut card = VendorCard::blocked();
    let mut driver = Driver::new(&mut card);
    let got = run(&mut driver, b"87654321", b"Xk9w2Lp7q");
    assert_eq!(
        got,
        Err(Error::Flow(FlowError::NewPinRejected(
            Status::IncorrectData
        )))
    );
    assert_eq!(card.puk_tries, 3);
}

#[test]
fn a_card_without_the_applet_is_not_touched() {
    // The flow stops at its own SELECT on a card without the applet.
    struct NoApplet;
    impl Transport for NoApplet {
        type Error = ErrorKind;
        async fn transmit(&mut self, _: &[u8], r: &mut [u8]) -> Result<usize, ErrorKind> {
            r[..2].copy_from_slice(&[0x6A, 0x82]);
            Ok(2)
        }
    }
    let mut driver = Driver::new(NoApplet);
    let got = run(&mut driver, b"87654321", b"Xk9w2");
    assert_eq!(
        got,
        Err(Error::Flow(FlowError::ApplicationNotFound(
            Status::NotFound
        )))
    );
    assert_eq!(driver.commands_sent(), 1);
}

#[test]
fn a_command_too_long_for_the_driver_buffer_is_refused_not_truncated() {
    // A 32-byte PUK and a 32-byte PIN make 65 bytes of reset data: one more than the driver
    // lends a flow. Nothing is cut off and no PUK try is spent.
    let mut card = VendorCard::blocked();
    let mut driver = Driver::new(&mut card);
    let long_pin = *b"Xk9w2Lp7qR4tZ8mN3vB6cH1jD5fG0sAe";
    let lax = PinPolicy {
        max_len: 32,
        ..PinPolicy::GIDS
    };
    let got = block_on(unblock(
        &mut driver,
        &Puk::new(&[b'1'; 32]).unwrap(),
        &NewPin::confirmed(&lax, &long_pin, &long_pin, PinContext::NONE).unwrap(),
    ));
    assert_eq!(
        got,
        Err(Error::Flow(FlowError::Encode(
            cardunlock_core::apdu::EncodeError::BufferTooSmall(65)
        )))
    );
    assert_eq!(card.seen.len(), 1, "only the SELECT reached the card");
    assert_eq!(card.puk_tries, 3);
}

#[test]
fn vendor_unblock_with_short_apdu_buffers() {
    // A firmware sizes the driver for this card: the reset command is 5 + 14 bytes.
    let mut card = VendorCard::blocked();
    let mut driver: Driver<_, 24, 16> = Driver::with_buffers(&mut card);
    run(&mut driver, b"87654321", b"Xk9w2").unwrap();
    assert_eq!(card.pin, b"Xk9w2");
}
