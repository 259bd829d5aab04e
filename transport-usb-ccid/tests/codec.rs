//! The CCID codec and class descriptor: spec vectors, round trips, and parsing that never
//! panics on any bytes.

use cardunlock_ccid::codec::{
    chain, msg_type, ClockStatus, CodecError, CommandStatus, Header, IccStatus, Interrupt,
    ProtocolData, Request, RequestKind, Response, ResponseKind, SlotChange, SlotError, Status,
    T0Params, T1Params, Voltage, HEADER_LEN,
};
use cardunlock_ccid::descriptor::{features, ClassDescriptor, DescriptorError, ExchangeLevel};
use hex_literal::hex;
use proptest::prelude::*;

#[test]
fn request_vectors() {
    let mut buf = [0u8; 64];
    let n = Request::new(0, 7, RequestKind::IccPowerOn(Voltage::V3))
        .encode(&mut buf)
        .unwrap();
    assert_eq!(&buf[..n], hex!("62 00000000 00 07 02 0000"));
    let n = Request::new(
        1,
        0xFF,
        RequestKind::XfrBlock {
            bwi: 4,
            level: chain::BEGIN,
            data: &hex!("00A40400"),
        },
    )
    .encode(&mut buf)
    .unwrap();
    assert_eq!(&buf[..n], hex!("6F 04000000 01 FF 04 0100 00A40400"));
    let n = Request::new(0, 2, RequestKind::Abort)
        .encode(&mut buf)
        .unwrap();
    assert_eq!(&buf[..n], hex!("72 00000000 00 02 000000"));
    let n = Request::new(
        0,
        3,
        RequestKind::SetParameters {
            protocol: 1,
            data: &hex!("1310004500FE00"),
        },
    )
    .encode(&mut buf)
    .unwrap();
    assert_eq!(&buf[..n], hex!("61 07000000 00 03 01 0000 1310004500FE00"));
    let n = Request::new(
        0,
        9,
        RequestKind::SetDataRateAndClockFrequency {
            clock_khz: 4000,
            data_rate: 10752,
        },
    )
    .encode(&mut buf)
    .unwrap();
    assert_eq!(
        &buf[..n],
        hex!("73 08000000 00 09 000000 A00F0000 002A0000")
    );
}

#[test]
fn response_vectors() {
    // DataBlock, card active, ok, chain "begins", 2 bytes.
    let r = Response::parse(&hex!("80 02000000 00 05 00 00 01 9000")).unwrap();
    assert_eq!(r.seq, 5);
    assert_eq!(r.status, Status::OK);
    assert_eq!(
        r.kind,
        ResponseKind::DataBlock {
            chain: 1,
            data: &hex!("9000")
        }
    );
    // SlotStatus: no card, failed with ICC_MUTE.
    let r = Response::parse(&hex!("81 00000000 00 01 42 FE 00")).unwrap();
    assert_eq!(r.status.icc, IccStatus::Absent);
    assert_eq!(r.status.command, CommandStatus::Failed(SlotError::IccMute));
    assert_eq!(
        r.kind,
        ResponseKind::SlotStatus {
            clock: ClockStatus::Running
        }
    );
    // Time extension x 3.
    let r = Response::parse(&hex!("80 00000000 00 01 80 03 00")).unwrap();
    assert_eq!(r.status.command, CommandStatus::TimeExtension(3));
    // usbd-ccid answers errors with the command's own type (0x6C): still readable.
    let r = Response::parse(&hex!("6C 00000000 00 01 40 05 00")).unwrap();
    assert_eq!(
        r.status.command,
        CommandStatus::Failed(SlotError::BadParameter(5))
    );
    assert!(matches!(r.kind, ResponseKind::Other { msg_type: 0x6C, .. }));
    // Reserved ICC status.
    assert_eq!(
        Response::parse(&hex!("81 00000000 00 01 03 00 00")),
        Err(CodecError::BadStatus(3))
    );
    // dwLength says more than given / less than given.
    assert_eq!(
        Response::parse(&hex!("80 03000000 00 01 00 00 00 9000")),
        Err(CodecError::Truncated { needed: 13 })
    );
    assert_eq!(
        Response::parse(&hex!("80 01000000 00 01 00 00 00 9000")),
        Err(CodecError::TrailingBytes)
    );
}

#[test]
fn header_tells_how_much_to_read() {
    let h = Header::parse(&hex!("80 0F010000 00 01 00 00 00")).unwrap();
    assert_eq!(h.length, 0x010F);
    assert_eq!(h.message_len(), 0x010F + 10);
    assert_eq!(
        Header::parse(&hex!("80 0F01")),
        Err(CodecError::Truncated { needed: 10 })
    );
}

#[test]
fn encoding_never_truncates() {
    let data = [0u8; 100];
    let req = Request::new(
        0,
        0,
        RequestKind::XfrBlock {
            bwi: 0,
            level: 0,
            data: &data,
        },
    );
    let mut small = [0u8; 109];
    assert_eq!(
        req.encode(&mut small),
        Err(CodecError::BufferTooSmall { needed: 110 })
    );
    assert_eq!(small, [0u8; 109], "nothing written");
    let mut exact = [0u8; 110];
    assert_eq!(req.encode(&mut exact), Ok(110));
}

#[test]
fn slot_error_bytes() {
    let named = [
        (SlotError::CommandAborted, 0xFF),
        (SlotError::IccMute, 0xFE),
        (SlotError::XfrParityError, 0xFD),
        (SlotError::XfrOverrun, 0xFC),
        (SlotError::HardwareError, 0xFB),
        (SlotError::BadAtrTs, 0xF8),
        (SlotError::BadAtrTck, 0xF7),
        (SlotError::IccProtocolNotSupported, 0xF6),
        (SlotError::IccClassNotSupported, 0xF5),
        (SlotError::ProcedureByteConflict, 0xF4),
        (SlotError::DeactivatedProtocol, 0xF3),
        (SlotError::BusyWithAutoSequence, 0xF2),
        (SlotError::PinTimeout, 0xF0),
        (SlotError::PinCancelled, 0xEF),
        (SlotError::CmdSlotBusy, 0xE0),
        (SlotError::CommandNotSupported, 0x00),
    ];
    for (e, b) in named {
        assert_eq!(SlotError::from_byte(b), e);
        assert_eq!(e.to_byte(), b);
        assert!(!e.to_string().is_empty());
    }
    assert_eq!(SlotError::from_byte(0x07), SlotError::BadParameter(7));
    assert_eq!(SlotError::from_byte(0x80), SlotError::Other(0x80));
    assert_eq!(
        SlotError::BadParameter(7).to_string(),
        "bad parameter at offset 7"
    );
}

#[test]
fn interrupt_messages() {
    // Slot 0 present and changed, slot 1 absent and changed, slot 2 present.
    let i = Interrupt::parse(&hex!("50 1B")).unwrap();
    let Interrupt::SlotChange(c) = i else {
        panic!()
    };
    assert!(c.present(0) && c.changed(0));
    assert!(!c.present(1) && c.changed(1));
    assert!(c.present(2) && !c.changed(2));
    assert!(!c.present(40));
    let mut buf = [0u8; 8];
    let n = SlotChange::encode(&[(true, true), (false, true), (true, false)], &mut buf).unwrap();
    assert_eq!(&buf[..n], hex!("50 1B"));
    assert_eq!(
        Interrupt::parse(&hex!("51 00 04 01")).unwrap(),
        Interrupt::HardwareError {
            slot: 0,
            seq: 4,
            code: 1
        }
    );
    assert_eq!(
        Interrupt::parse(&hex!("51 00")),
        Err(CodecError::Truncated { needed: 4 })
    );
    assert_eq!(
        Interrupt::parse(&hex!("52 00")),
        Err(CodecError::UnknownType(0x52))
    );
}

#[test]
fn protocol_data() {
    let t1 = ProtocolData::parse(1, &hex!("1310004500FE00")).unwrap();
    let ProtocolData::T1(p) = t1 else { panic!() };
    assert_eq!(
        (p.fi_di, p.tcck, p.waiting_integers, p.ifsc),
        (0x13, 0x10, 0x45, 0xFE)
    );
    assert_eq!(
        ProtocolData::parse(0, &hex!("1310004500FE00")),
        Err(CodecError::BadField)
    );
    assert_eq!(
        ProtocolData::parse(2, &hex!("1100000A00")),
        Err(CodecError::BadField)
    );
}

/// A typical reader descriptor as it comes off the wire (Gemalto-like, TPDU level).
const WIRE: [u8; 54] = hex!(
    "36 21 1001 00 07 03000000 C0120000 C0120000 00 672A0000 CE990C00 00 FE000000"
    "00000000 00000000 BA040100 0F010000 00 00 0000 00 01"
);

#[test]
fn descriptor_vector() {
    let d = ClassDescriptor::parse(&WIRE).unwrap();
    assert_eq!(d.bcd_ccid, 0x0110);
    assert_eq!(d.voltage_support, 0x07);
    assert_eq!(d.protocols, 3);
    assert_eq!(d.default_clock_khz, 4800);
    assert_eq!(d.data_rate, 10855);
    assert_eq!(d.max_ifsd, 254);
    assert_eq!(d.features, 0x0001_04BA);
    assert_eq!(d.max_message_length, 271);
    assert_eq!(d.max_busy_slots, 1);
    assert_eq!(d.exchange_level(), ExchangeLevel::Tpdu);
    assert!(d.auto_voltage() && d.auto_parameters() && d.auto_pps() && d.auto_ifsd());
    assert!(!d.auto_negotiation());
    assert_eq!(d.encode(), WIRE);
    // In a vendor-class interface some readers give it type 0xFF.
    let mut vendor = WIRE;
    vendor[1] = 0xFF;
    assert_eq!(
        ClassDescriptor::parse(&vendor).unwrap().descriptor_type,
        0xFF
    );
    let mut other = WIRE;
    other[1] = 0x24;
    assert_eq!(
        ClassDescriptor::parse(&other),
        Err(DescriptorError::BadType(0x24))
    );
    assert_eq!(
        ClassDescriptor::parse(&WIRE[..53]),
        Err(DescriptorError::BadLength)
    );
    // Found after other class-specific descriptors.
    let mut extra = hex!("05 24 00 10 01").to_vec();
    extra.extend_from_slice(&WIRE);
    assert_eq!(ClassDescriptor::find(&extra).unwrap(), d);
    assert_eq!(
        ClassDescriptor::find(&hex!("05 24 00 10 01")),
        Err(DescriptorError::NotFound)
    );
}

#[test]
fn exchange_levels() {
    let d = ClassDescriptor::TYPICAL;
    assert_eq!(d.exchange_level(), ExchangeLevel::ShortExtendedApdu);
    for level in [
        ExchangeLevel::Character,
        ExchangeLevel::Tpdu,
        ExchangeLevel::ShortApdu,
        ExchangeLevel::ShortExtendedApdu,
    ] {
        assert_eq!(d.with_level(level).exchange_level(), level);
    }
    let mut d = ClassDescriptor::TYPICAL;
    d.features = features::LEVEL_SHORT_APDU | features::LEVEL_TPDU;
    assert_eq!(d.exchange_level(), ExchangeLevel::ShortApdu);
}

fn voltage() -> impl Strategy<Value = Voltage> {
    prop_oneof![
        Just(Voltage::Auto),
        Just(Voltage::V5),
        Just(Voltage::V3),
        Just(Voltage::V1_8)
    ]
}

fn status() -> impl Strategy<Value = Status> {
    let icc = prop_oneof![
        Just(IccStatus::Active),
        Just(IccStatus::Inactive),
        Just(IccStatus::Absent)
    ];
    let cmd = prop_oneof![
        Just(CommandStatus::Ok),
        any::<u8>().prop_map(|b| CommandStatus::Failed(SlotError::from_byte(b))),
        any::<u8>().prop_map(CommandStatus::TimeExtension),
    ];
    (icc, cmd).prop_map(|(icc, command)| Status::new(icc, command))
}

fn descriptor() -> impl Strategy<Value = ClassDescriptor> {
    (any::<[u8; 54]>(), prop_oneof![Just(0x21u8), Just(0xFF)]).prop_map(|(mut b, t)| {
        b[0] = 54;
        b[1] = t;
        ClassDescriptor::parse(&b).unwrap()
    })
}

proptest! {
    #[test]
    fn request_round_trip(slot: u8, seq: u8, data in proptest::collection::vec(any::<u8>(), 0..300),
                          which in 0u8..14, v in voltage(), a: u8, b: u8, c: u8, w: u16, x: u32, y: u32) {
        let kind = match which {
            0 => RequestKind::IccPowerOn(v),
            1 => RequestKind::IccPowerOff,
            2 => RequestKind::GetSlotStatus,
            3 => RequestKind::XfrBlock { bwi: a, level: w, data: &data },
            4 => RequestKind::GetParameters,
            5 => RequestKind::ResetParameters,
            6 => RequestKind::SetParameters { protocol: a, data: &data },
            7 => RequestKind::Escape(&data),
            8 => RequestKind::IccClock { stop: a & 1 == 1 },
            9 => RequestKind::T0Apdu { changes: a, class_get_response: b, class_envelope: c },
            10 => RequestKind::Secure { bwi: a, level: w, data: &data },
            11 => RequestKind::Mechanical { function: a },
            12 => RequestKind::Abort,
            _ => RequestKind::SetDataRateAndClockFrequency { clock_khz: x, data_rate: y },
        };
        let req = Request::new(slot, seq, kind);
        let mut buf = vec![0u8; HEADER_LEN + data.len() + 8];
        let n = req.encode(&mut buf).unwrap();
        prop_assert_eq!(Request::parse(&buf[..n]), Ok(req));
        prop_assert_eq!(Header::parse(&buf).unwrap().message_len(), n);
        // One byte less is an error, never a truncated message.
        prop_assert_eq!(req.encode(&mut buf[..n - 1]), Err(CodecError::BufferTooSmall { needed: n }));
    }

    #[test]
    fn response_round_trip(slot: u8, seq: u8, st in status(), chain: u8, clock: u8, protocol: u8,
                           data in proptest::collection::vec(any::<u8>(), 0..300), which in 0u8..6,
                           c: u32, r: u32, other_type in 0x85u8..=0xFF) {
        let kind = match which {
            0 => ResponseKind::DataBlock { chain, data: &data },
            1 => ResponseKind::SlotStatus { clock: ClockStatus::from_byte(clock) },
            2 => ResponseKind::Parameters { protocol, data: &data },
            3 => ResponseKind::Escape(&data),
            4 => ResponseKind::DataRateAndClockFrequency { clock_khz: c, data_rate: r },
            _ => ResponseKind::Other { msg_type: other_type, specific: chain, data: &data },
        };
        let resp = Response { slot, seq, status: st, kind };
        let mut buf = vec![0u8; HEADER_LEN + data.len() + 8];
        let n = resp.encode(&mut buf).unwrap();
        prop_assert_eq!(Response::parse(&buf[..n]), Ok(resp));
        let (s, e) = st.to_bytes();
        prop_assert_eq!(Status::from_bytes(s, e), Ok(st));
    }

    #[test]
    fn parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Header::parse(&bytes);
        let _ = Request::parse(&bytes);
        let _ = Response::parse(&bytes);
        let _ = Interrupt::parse(&bytes);
        let _ = ClassDescriptor::parse(&bytes);
        let _ = ClassDescriptor::find(&bytes);
        if let Some((&p, rest)) = bytes.split_first() {
            let _ = ProtocolData::parse(p, rest);
        }
        if let Ok(Interrupt::SlotChange(c)) = Interrupt::parse(&bytes) {
            for s in 0..=255u8 { let _ = (c.present(s), c.changed(s)); }
        }
        if let Ok(h) = Header::parse(&bytes) {
            let body = bytes.get(HEADER_LEN..).unwrap_or(&[]);
            let _ = Response::from_parts(&h, body);
        }
    }

    #[test]
    fn header_plus_body_parses_like_the_whole(bytes in proptest::collection::vec(any::<u8>(), 10..300)) {
        // A stream reader takes the header, then dwLength bytes: the same verdict as parsing it whole.
        let h = Header::parse(&bytes).unwrap();
        let whole = Response::parse(&bytes);
        if h.message_len() == bytes.len() {
            prop_assert_eq!(Response::from_parts(&h, &bytes[HEADER_LEN..]), whole);
        } else {
            prop_assert!(whole.is_err());
        }
    }

    #[test]
    fn descriptor_round_trip(d in descriptor()) {
        prop_assert_eq!(ClassDescriptor::parse(&d.encode()), Ok(d));
    }

    #[test]
    fn protocol_data_round_trip(b: [u8; 7], t0: bool) {
        let p = if t0 {
            ProtocolData::T0(T0Params { fi_di: b[0], tcck: b[1], guard_time: b[2], waiting_integer: b[3], clock_stop: b[4] })
        } else {
            ProtocolData::T1(T1Params { fi_di: b[0], tcck: b[1], guard_time: b[2], waiting_integers: b[3], clock_stop: b[4], ifsc: b[5], nad: b[6] })
        };
        let mut buf = [0u8; 7];
        let n = p.encode(&mut buf).unwrap();
        prop_assert_eq!(ProtocolData::parse(p.protocol(), &buf[..n]), Ok(p));
    }

    #[test]
    fn slot_change_round_trip(slots in proptest::collection::vec(any::<(bool, bool)>(), 1..64)) {
        let mut buf = [0u8; 20];
        let n = SlotChange::encode(&slots, &mut buf).unwrap();
        let Ok(Interrupt::SlotChange(c)) = Interrupt::parse(&buf[..n]) else { panic!() };
        for (i, (p, ch)) in slots.iter().enumerate() {
            prop_assert_eq!(c.present(i as u8), *p);
            prop_assert_eq!(c.changed(i as u8), *ch);
        }
        prop_assert_eq!(Interrupt::SlotChange(c).encode(&mut [0u8; 20]), Ok(n));
    }
}

#[test]
fn msg_types_are_distinct() {
    let all = [
        msg_type::ICC_POWER_ON,
        msg_type::ICC_POWER_OFF,
        msg_type::GET_SLOT_STATUS,
        msg_type::XFR_BLOCK,
        msg_type::GET_PARAMETERS,
        msg_type::RESET_PARAMETERS,
        msg_type::SET_PARAMETERS,
        msg_type::ESCAPE,
        msg_type::ICC_CLOCK,
        msg_type::T0_APDU,
        msg_type::SECURE,
        msg_type::MECHANICAL,
        msg_type::ABORT,
        msg_type::SET_DATA_RATE_AND_CLOCK,
        msg_type::DATA_BLOCK,
        msg_type::SLOT_STATUS,
        msg_type::PARAMETERS,
        msg_type::ESCAPE_REPLY,
        msg_type::DATA_RATE_AND_CLOCK,
    ];
    let set: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(set.len(), all.len());
}
