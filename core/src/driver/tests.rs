use super::*;
use crate::flow::{NoAdmin, PivUnblock};
use crate::policy::PinPolicy;
use crate::secret::{NewPin, PinContext, PivPuk};

/// Answers `90 00` to everything.
struct Ok9000;

impl Transport for Ok9000 {
    type Error = ErrorKind;

    async fn transmit(&mut self, _: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
        response[..2].copy_from_slice(&[0x90, 0x00]);
        Ok(2)
    }
}

/// Answers `6C 08` to everything, counting commands and recording the longest one.
#[derive(Default)]
struct AlwaysWrongLe {
    sent: usize,
}

impl Transport for AlwaysWrongLe {
    type Error = ErrorKind;

    async fn transmit(&mut self, _: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
        self.sent += 1;
        response[..2].copy_from_slice(&[0x6C, 0x08]);
        Ok(2)
    }
}

#[test]
fn a_command_with_a_secret_is_never_resent_on_6c() {
    let mut driver = Driver::new(AlwaysWrongLe::default());
    let pin = [0x31; 8];
    for ins in [0x20, 0x24, 0x2C, 0x82, 0x87, 0xFF] {
        let cmd = Command::new(0, ins, 0, 0x80).with_data(&pin);
        let r = embassy_futures::block_on(driver.transceive(&cmd)).unwrap();
        assert_eq!(r.status, Status::WrongLe(8), "ins {ins:02X}");
    }
    assert_eq!(
        driver.transport().sent,
        6,
        "one APDU per command, no resend"
    );
}

#[test]
fn a_command_without_secret_is_resent_at_most_once() {
    let mut driver = Driver::new(AlwaysWrongLe::default());
    let got = embassy_futures::block_on(driver.transceive(&crate::piv::get_serial()));
    assert_eq!(got, Err(Error::Protocol(ProtocolError::Loop)));
    assert_eq!(driver.transport().sent, 2);
}

/// Claims extended length; records the length of every command and answers `90 00`.
#[derive(Default)]
struct Extended {
    lengths: heapless::Vec<usize, 8>,
}

impl Transport for Extended {
    type Error = ErrorKind;

    async fn transmit(&mut self, cmd: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
        self.lengths.push(cmd.len()).map_err(|_| ErrorKind::Other)?;
        response[..2].copy_from_slice(&[0x90, 0x00]);
        Ok(2)
    }

    fn supports_extended_length(&self) -> bool {
        true
    }
}

#[test]
fn extended_length_chains_what_the_buffer_cannot_hold() {
    let mut driver = Driver::new(Extended::default());
    let data = [0x5A; 600];
    let cmd = Command::new(0, 0xDB, 0x3F, 0xFF).with_data(&data);
    let r = embassy_futures::block_on(driver.transceive(&cmd)).unwrap();
    assert_eq!(r.status, Status::Success);
    // 255 + 255 + 90 bytes, each a short APDU.
    assert_eq!(&driver.transport().lengths[..], &[260, 260, 95]);
    // What fits the buffer goes out as one extended APDU.
    let mut driver = Driver::new(Extended::default());
    let cmd = Command::new(0, 0xDB, 0x3F, 0xFF).with_data(&data[..256]);
    embassy_futures::block_on(driver.transceive(&cmd)).unwrap();
    assert_eq!(&driver.transport().lengths[..], &[4 + 3 + 256]);
}

#[test]
fn errors_print_their_inner_errors_with_display() {
    use core::fmt::Write;
    let mut s: heapless::String<128> = heapless::String::new();
    let e: Error<ErrorKind, crate::flow::NoAdminKey> = Error::Transport(ErrorKind::CardRemoved);
    write!(s, "{e}").unwrap();
    assert_eq!(s.as_str(), "card transport: the card was removed");
    s.clear();
    let e: Error<ErrorKind, crate::flow::NoAdminKey> = Error::Responder(crate::flow::NoAdminKey);
    write!(s, "{e}").unwrap();
    assert_eq!(
        s.as_str(),
        "admin response: this operation has no admin key"
    );
    s.clear();
    let e: Error<ErrorKind, crate::flow::NoAdminKey> =
        ProtocolError::ChainRefused(Status::WrongLength).into();
    write!(s, "{e}").unwrap();
    assert!(
        s.starts_with("card protocol: the card refused a chained part"),
        "{s}"
    );
    assert!(!s.contains("ChainRefused"), "{s}");
    s.clear();
    let e = FlowError::UnexpectedStatus {
        step: crate::flow::Step::SetManagementKey,
        status: Status::WrongLength,
    };
    write!(s, "{e}").unwrap();
    assert!(s.ends_with("at SET MANAGEMENT KEY"), "{s}");
    assert_eq!(e.kind(), crate::flow::FlowErrorKind::Protocol);
    assert_eq!(
        FlowError::WrongPuk { tries_left: 2 }.kind(),
        crate::flow::FlowErrorKind::WrongSecret
    );
}

#[test]
fn no_pin_or_puk_is_left_in_the_send_buffer() {
    let pin = NewPin::confirmed(&PinPolicy::PIV, b"840259", b"840259", PinContext::NONE).unwrap();
    let puk = PivPuk::new(b"12345678").unwrap();
    let mut flow = PivUnblock::new(&puk, &pin);
    let mut driver = Driver::new(Ok9000);
    embassy_futures::block_on(driver.run(&mut flow, &mut NoAdmin)).unwrap();
    assert_eq!(driver.commands_sent(), 3);
    let contains = |needle: &[u8]| {
        let found = |buf: &[u8]| buf.windows(needle.len()).any(|w| w == needle);
        found(&driver.link.tx) || found(&driver.flow_buf)
    };
    assert!(!contains(b"12345678"), "the PUK stayed in the driver");
    assert!(!contains(b"840259"), "the PIN stayed in the driver");
}
