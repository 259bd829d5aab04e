use super::*;
use hex_literal::hex;

fn enc(cmd: &Command) -> heapless::Vec<u8, 70000> {
    let mut buf = [0u8; 70000];
    let n = cmd.encode(&mut buf).unwrap();
    assert_eq!(n, cmd.encoded_len());
    heapless::Vec::from_slice(&buf[..n]).unwrap()
}

#[test]
fn four_short_cases() {
    let c1 = Command::new(0x00, 0x20, 0x00, 0x80);
    assert_eq!(&enc(&c1)[..], &hex!("00 20 00 80"));
    let c2 = Command::new(0x00, 0xF8, 0, 0).with_le(256);
    assert_eq!(&enc(&c2)[..], &hex!("00 F8 00 00 00"));
    let aid = hex!("A0 00 00 03 08 00 00 10 00");
    let c3 = Command::new(0x00, 0xA4, 0x04, 0x00).with_data(&aid);
    assert_eq!(
        &enc(&c3)[..],
        &hex!("00 A4 04 00 09 A0 00 00 03 08 00 00 10 00")
    );
    let c4 = c3.with_le(256);
    assert_eq!(
        &enc(&c4)[..],
        &hex!("00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 00")
    );
}

#[test]
fn extended_cases_are_big_endian() {
    let data = [0xAB; 300];
    let c3 = Command::new(0x00, 0xDB, 0x3F, 0xFF).with_data(&data);
    let bytes = enc(&c3);
    assert_eq!(&bytes[..7], &hex!("00 DB 3F FF 00 01 2C"));
    assert_eq!(bytes.len(), 7 + 300);
    let c4 = c3.with_le(65_536);
    let bytes = enc(&c4);
    assert_eq!(&bytes[bytes.len() - 2..], &hex!("00 00"));
    let c2 = Command::new(0x00, 0xCB, 0x3F, 0xFF).with_le(1000);
    assert_eq!(&enc(&c2)[..], &hex!("00 CB 3F FF 00 03 E8"));
    // Short data with a long Le switches the whole command to extended.
    let c4b = Command::new(0, 0xCB, 0x3F, 0xFF)
        .with_data(&[0x5C])
        .with_le(512);
    assert_eq!(&enc(&c4b)[..], &hex!("00 CB 3F FF 00 00 01 5C 02 00"));
}

#[test]
fn round_trips() {
    let data = [7u8; 600];
    for nc in [0usize, 1, 255, 256, 600] {
        for le in [0usize, 1, 255, 256, 257, 65_536] {
            let cmd = Command::new(0x10, 0x2C, 0x00, 0x80)
                .with_data(&data[..nc])
                .with_le(le);
            let bytes = enc(&cmd);
            assert_eq!(Command::parse(&bytes).unwrap(), cmd, "nc={nc} le={le}");
        }
    }
}

#[test]
fn encode_errors() {
    let cmd = Command::new(0, 0xA4, 4, 0).with_data(&[1, 2, 3]);
    assert_eq!(
        cmd.encode(&mut [0u8; 7]),
        Err(EncodeError::BufferTooSmall(8))
    );
    assert_eq!(
        cmd.with_le(70_000).encode(&mut [0u8; 16]),
        Err(EncodeError::TooLong)
    );
}

#[test]
fn the_cursor_never_truncates() {
    let mut buf = [0u8; 4];
    let mut w = Cursor::new(&mut buf);
    w.put(&[1, 2, 3]).unwrap();
    assert_eq!(w.put(&[4, 5]).unwrap_err(), EncodeError::BufferTooSmall(5));
    assert_eq!(w.len(), 3, "a failed write moves nothing");
    w.put(&[4]).unwrap();
    assert_eq!(w.finish(), &[1, 2, 3, 4]);
}

#[test]
fn only_commands_without_secrets_may_be_resent() {
    assert!(may_resend(&Command::new(0, 0x84, 0, 0).with_le(8)));
    assert!(may_resend(&crate::piv::select()));
    assert!(may_resend(&crate::piv::get_chuid()));
    let pin = [0x31; 8];
    for ins in [0x20, 0x24, 0x2C, 0x82, 0x87, 0xFF, 0x5E] {
        assert!(!may_resend(&Command::new(0, ins, 0, 0x80).with_data(&pin)));
    }
}

#[test]
fn parse_errors() {
    assert_eq!(Command::parse(&hex!("00 A4 04")), Err(ParseError::TooShort));
    assert_eq!(
        Command::parse(&hex!("00 A4 04 00 05 A0 00")),
        Err(ParseError::LengthMismatch)
    );
    assert_eq!(Response::parse(&[0x90]), Err(ParseError::TooShort));
    let r = Response::parse(&hex!("01 02 63 C2")).unwrap();
    assert_eq!(r.data, &[1, 2]);
    assert_eq!(r.status.tries_left(), Some(2));
}

#[test]
fn traces_redact_secrets() {
    use core::fmt::Write;
    let cmd = hex!("00 2C 00 80 10 31 32 33 34 35 36 37 38 36 35 34 33 32 31 FF FF");
    let mut s: heapless::String<128> = heapless::String::new();
    write!(s, "{}", RedactedCommand(&cmd)).unwrap();
    assert_eq!(s.as_str(), "00 2C 00 80 <16 bytes redacted>");
    s.clear();
    write!(s, "{}", RedactedCommand(&hex!("00 A4 04 00 01 A0"))).unwrap();
    assert_eq!(s.as_str(), "00 A4 04 00 01 A0");
    s.clear();
    let data = hex!("31 32 33 34 35 36 FF FF");
    write!(s, "{:?}", Command::new(0, 0x20, 0, 0x80).with_data(&data)).unwrap();
    assert!(!s.contains("49"), "{s}");
    assert!(s.contains("data_len: 8"));
}

proptest::proptest! {
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        if let Ok(cmd) = Command::parse(&bytes) {
            // What parses re-encodes (canonically) to a command that parses the same.
            let mut buf = [0u8; 700];
            let n = cmd.encode(&mut buf).unwrap();
            proptest::prop_assert_eq!(Command::parse(&buf[..n]).unwrap(), cmd);
        }
        let _ = Response::parse(&bytes);
    }

    #[test]
    fn encode_parse_round_trip(
        header in proptest::prelude::any::<[u8; 4]>(),
        data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        le in 0usize..=65_536,
    ) {
        let cmd = Command::new(header[0], header[1], header[2], header[3]).with_data(&data).with_le(le);
        let mut buf = [0u8; 500];
        let n = cmd.encode(&mut buf).unwrap();
        proptest::prop_assert_eq!(Command::parse(&buf[..n]).unwrap(), cmd);
    }
}
