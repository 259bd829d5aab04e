//! ATR parsing against real-world ATRs and malformed ones, the CCID protocol data derived from
//! them, and the PPS exchange.

use cardunlock_ccid::atr::{
    self, Atr, AtrError, CcidParameters, Convention, Edc, PpsError, PpsOutcome, PpsRequest,
    Protocol,
};
use hex_literal::hex;
use proptest::prelude::*;

/// A YubiKey 5 (PIV over CCID): T=1 only, TA1 13, IFSC 254, BWI 1, CWI 5, "YubiKey".
const YUBIKEY: [u8; 23] =
    hex!("3B FD 13 00 00 81 31 FE 15 80 73 C0 21 C0 57 59 75 62 69 4B 65 79 40");
/// QEMU's ccid-card-passthru default ATR (an Athena card): T=0 and T=1 offered, T=15 global
/// byte, TC1 FF.
const QEMU_PASSTHRU: [u8; 15] = hex!("3B D5 18 FF 80 91 FE 1F C3 80 73 C8 21 13 08");
/// A Gemalto T=0 card of the PIV era: no TD1 (T=0 only, no TCK), TA1 96.
const GEMALTO_T0: [u8; 18] = hex!("3B 7D 96 00 00 80 31 80 65 B0 83 11 D0 A9 83 00 90 00");
/// An inverse convention T=0 card.
const INVERSE: [u8; 9] = hex!("3F 65 25 00 2C 09 69 90 00");
/// A T=1 card with CRC, IFSC 32, BWI 4, CWI 5 (CRC cards are rare; this one is built by hand).
const T1_CRC: [u8; 8] = hex!("3B 80 81 71 20 45 01 14");

#[test]
fn yubikey() {
    let atr = Atr::parse(&YUBIKEY).unwrap();
    assert_eq!(atr.convention(), Convention::Direct);
    assert_eq!(atr.fidi(), 0x13);
    assert_eq!(atr.fi(), Some(372));
    assert_eq!(atr.di(), Some(4));
    assert_eq!(atr.fmax_khz(), Some(5_000));
    assert_eq!(atr.extra_guard_time(), 0);
    assert!(atr.offers(1));
    assert!(!atr.offers(0));
    assert_eq!(atr.default_protocol(), Some(Protocol::T1));
    assert_eq!(atr.specific_mode(), None);
    assert_eq!(atr.t1_ifsc(), 254);
    assert_eq!((atr.t1_bwi(), atr.t1_cwi()), (1, 5));
    assert_eq!(atr.t1_edc(), Edc::Lrc);
    assert!(atr.historical_bytes().ends_with(b"YubiKey"));
    assert_eq!(atr.historical_bytes().len(), 13);
    assert_eq!(atr.tck(), Some(0x40));
    assert_eq!(
        atr.ccid_parameters(Protocol::T1, atr.fidi()),
        CcidParameters::T1(hex!("13 10 00 15 00 FE 00"))
    );
}

#[test]
fn the_simulated_cards_atrs_parse() {
    for raw in [
        &cardunlock_sim::ATR_PIV[..],
        &cardunlock_sim::ATR_GIDS[..],
        &cardunlock_sim::ATR_ISO_ADMIN[..],
    ] {
        let atr = Atr::parse(raw).unwrap();
        assert!(atr.offers(1), "{raw:02X?}");
    }
    // GIDS: TD1 names T=0 first, TD2 T=1, with no T=1 bytes: the defaults.
    let gids = Atr::parse(&cardunlock_sim::ATR_GIDS).unwrap();
    assert_eq!(gids.default_protocol(), Some(Protocol::T0));
    assert_eq!(gids.t1_ifsc(), 32);
    assert_eq!((gids.t1_bwi(), gids.t1_cwi()), (4, 13));
    assert!(gids.historical_bytes().ends_with(b"SimGIDS"));
}

#[test]
fn qemu_passthru() {
    let atr = Atr::parse(&QEMU_PASSTHRU).unwrap();
    assert_eq!(atr.fidi(), 0x18);
    assert_eq!(atr.fi(), Some(372));
    assert_eq!(atr.di(), Some(12));
    assert_eq!(atr.extra_guard_time(), 0xFF);
    assert!(atr.offers(0) && atr.offers(1) && atr.offers(15));
    assert_eq!(atr.default_protocol(), Some(Protocol::T0));
    // TA3 follows TD2 (T=1): IFSC.
    assert_eq!(atr.t1_ifsc(), 254);
    // TA4 follows TD3 (T=15): clock stop "no preference", classes A and B.
    assert_eq!(atr.clock_stop(), 3);
    assert_eq!(atr.class_indicator(), Some(3));
    assert_eq!(atr.historical_bytes(), hex!("80 73 C8 21 13"));
    assert_eq!(
        atr.ccid_parameters(Protocol::T0, 0x18),
        CcidParameters::T0(hex!("18 00 FF 0A 03"))
    );
    assert_eq!(
        atr.ccid_parameters(Protocol::T1, 0x18).as_bytes(),
        hex!("18 10 FF 4D 03 FE 00")
    );
}

#[test]
fn t0_card_without_tck() {
    let atr = Atr::parse(&GEMALTO_T0).unwrap();
    assert_eq!(atr.tck(), None);
    assert!(atr.offers(0));
    assert!(!atr.offers(1));
    assert_eq!(atr.default_protocol(), Some(Protocol::T0));
    assert_eq!((atr.fi(), atr.di()), (Some(512), Some(32)));
    assert_eq!(atr.fmax_khz(), Some(5_000));
    assert_eq!(atr.t0_waiting_integer(), 10);
    assert_eq!(atr.historical_bytes().len(), 13);
    let params = atr.ccid_parameters(Protocol::T0, atr.fidi());
    assert_eq!(params.protocol(), Protocol::T0);
    assert_eq!(params.as_bytes(), hex!("96 00 00 0A 00"));
}

#[test]
fn inverse_convention() {
    let atr = Atr::parse(&INVERSE).unwrap();
    assert_eq!(atr.convention(), Convention::Inverse);
    assert_eq!(atr.tb1(), Some(0x25));
    assert_eq!(atr.fidi(), atr::DEFAULT_FIDI);
    assert_eq!(atr.historical_bytes(), hex!("2C 09 69 90 00"));
    // bmTCCKST0 bit 1: inverse convention.
    assert_eq!(
        atr.ccid_parameters(Protocol::T0, 0x11).as_bytes(),
        hex!("11 02 00 0A 00")
    );
}

#[test]
fn t1_with_crc() {
    let atr = Atr::parse(&T1_CRC).unwrap();
    assert_eq!(atr.t1_edc(), Edc::Crc);
    assert_eq!(atr.t1_ifsc(), 32);
    assert_eq!((atr.t1_bwi(), atr.t1_cwi()), (4, 5));
    // bmTCCKST1 = 0x10 | CRC.
    assert_eq!(
        atr.ccid_parameters(Protocol::T1, 0x11).as_bytes(),
        hex!("11 11 00 45 00 20 00")
    );
}

#[test]
fn specific_mode_from_ta2() {
    // TD1 10: TA2 present, T=0; TA2 = 01: specific mode T=1, can change, Fi/Di from TA1.
    let raw = hex!("3B 90 95 10 01 00");
    let tck = raw[1..5].iter().fold(0, |a, b| a ^ b);
    let mut bytes = raw.to_vec();
    bytes[5] = tck;
    let atr = Atr::parse(&bytes).unwrap();
    let mode = atr.specific_mode().unwrap();
    assert_eq!(mode.protocol, 1);
    assert!(mode.can_change);
    assert!(!mode.implicit_fidi);
    assert_eq!(atr.default_protocol(), Some(Protocol::T1));
}

#[test]
fn fi_di_tables() {
    assert_eq!(atr::fi(0x96), Some(512));
    assert_eq!(atr::di(0x96), Some(32));
    assert_eq!(atr::fi(0xD0), Some(2048));
    assert_eq!(atr::fmax_khz(0xA0), Some(7_500));
    assert_eq!(atr::fi(0x70), None);
    assert_eq!(atr::di(0x10), None);
    assert_eq!(atr::di(0x18), Some(12));
    assert_eq!(atr::di(0x19), Some(20));
    assert_eq!(atr::di(0x1A), None);
}

#[test]
fn malformed_atrs_are_refused() {
    assert_eq!(Atr::parse(&[]), Err(AtrError::Empty));
    assert_eq!(Atr::parse(&[0x3C, 0x00]), Err(AtrError::InvalidTs(0x3C)));
    assert_eq!(Atr::parse(&[0x3B]), Err(AtrError::Truncated));
    // TA1 announced, missing.
    assert_eq!(Atr::parse(&[0x3B, 0x10]), Err(AtrError::Truncated));
    // Historical bytes missing.
    assert_eq!(Atr::parse(&YUBIKEY[..10]), Err(AtrError::Truncated));
    // T=1 offered, TCK missing.
    assert_eq!(
        Atr::parse(&YUBIKEY[..YUBIKEY.len() - 1]),
        Err(AtrError::MissingTck)
    );
    // TCK wrong.
    let mut bad = YUBIKEY;
    bad[22] ^= 1;
    assert_eq!(
        Atr::parse(&bad),
        Err(AtrError::TckMismatch {
            expected: 0x40,
            found: 0x41
        })
    );
    // A corrupted historical byte shows as a TCK mismatch.
    let mut bad = YUBIKEY;
    bad[15] ^= 0x80;
    assert!(matches!(
        Atr::parse(&bad),
        Err(AtrError::TckMismatch { .. })
    ));
    // Bytes after the end.
    let mut long = GEMALTO_T0.to_vec();
    long.extend_from_slice(&[0x00, 0x00]);
    assert_eq!(Atr::parse(&long), Err(AtrError::TrailingBytes));
    // Errors read well.
    assert_eq!(
        AtrError::InvalidTs(0x3C).to_string(),
        "invalid ATR: TS is 3C, not 3B or 3F"
    );
}

#[test]
fn pps_accepted_as_sent() {
    let req = PpsRequest::new(Protocol::T1, Some(0x13));
    assert_eq!(req.as_bytes(), hex!("FF 11 13 FD"));
    let outcome = req.check_response(req.as_bytes()).unwrap();
    assert_eq!(
        outcome,
        PpsOutcome {
            protocol: Protocol::T1,
            fidi: 0x13,
            as_requested: true
        }
    );
    let req = PpsRequest::new(Protocol::T0, None);
    assert_eq!(req.as_bytes(), hex!("FF 00 FF"));
    assert!(req.check_response(&hex!("FF 00 FF")).unwrap().as_requested);
}

#[test]
fn pps_counter_proposal_keeps_default_rates() {
    // The card drops PPS1: protocol accepted, Fi/Di stay 372/1.
    let req = PpsRequest::new(Protocol::T1, Some(0x96));
    let outcome = req.check_response(&hex!("FF 01 FE")).unwrap();
    assert_eq!(outcome.fidi, atr::DEFAULT_FIDI);
    assert!(!outcome.as_requested);
    assert_eq!(outcome.protocol, Protocol::T1);
}

#[test]
fn pps_failures() {
    let req = PpsRequest::new(Protocol::T1, Some(0x96));
    // Another protocol.
    assert_eq!(
        req.check_response(&hex!("FF 00 FF")),
        Err(PpsError::Refused)
    );
    // Another PPS1.
    assert_eq!(
        req.check_response(&hex!("FF 11 95 7B")),
        Err(PpsError::Refused)
    );
    // Bad PCK.
    assert_eq!(
        req.check_response(&hex!("FF 11 96 00")),
        Err(PpsError::BadPck(0x00))
    );
    // PPS2 the request did not have.
    assert_eq!(
        req.check_response(&hex!("FF 31 96 00 58")),
        Err(PpsError::Refused)
    );
    assert_eq!(req.check_response(&[]), Err(PpsError::Truncated));
    assert_eq!(req.check_response(&hex!("FF 11")), Err(PpsError::Truncated));
    assert_eq!(
        req.check_response(&hex!("FE 11 96 79")),
        Err(PpsError::Malformed)
    );
}

proptest! {
    #[test]
    fn parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
        let _ = Atr::parse(&bytes);
    }

    #[test]
    fn parsing_never_panics_on_plausible_prefixes(
        ts in prop_oneof![Just(0x3Bu8), Just(0x3F)],
        rest in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut bytes = vec![ts];
        bytes.extend_from_slice(&rest);
        if let Ok(atr) = Atr::parse(&bytes) {
            // Whatever parses is consistent.
            prop_assert!(atr.historical_bytes().len() <= 15);
            prop_assert_eq!(atr.as_bytes(), &bytes[..]);
            let _ = atr.ccid_parameters(Protocol::T1, atr.fidi());
        }
    }

    #[test]
    fn built_t1_atrs_round_trip(
        hist in proptest::collection::vec(any::<u8>(), 0..15),
        ifsc in 1u8..=254,
        bwi in 0u8..=9,
        cwi in 0u8..=15,
        crc in any::<bool>(),
    ) {
        let mut bytes = vec![0x3B, 0x80 | hist.len() as u8, 0x81, 0x71, ifsc, (bwi << 4) | cwi, u8::from(crc)];
        bytes.extend_from_slice(&hist);
        let tck = bytes[1..].iter().fold(0, |a, b| a ^ b);
        bytes.push(tck);
        let atr = Atr::parse(&bytes).unwrap();
        prop_assert_eq!(atr.t1_ifsc(), ifsc);
        prop_assert_eq!((atr.t1_bwi(), atr.t1_cwi()), (bwi, cwi));
        prop_assert_eq!(atr.t1_edc(), if crc { Edc::Crc } else { Edc::Lrc });
        prop_assert_eq!(atr.historical_bytes(), &hist[..]);
        // Any single flipped bit after TS is caught (by TCK or by the structure).
        for i in 1..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            prop_assert!(Atr::parse(&bad).is_err(), "flip in byte {}", i);
        }
    }

    #[test]
    fn pps_round_trip(t1 in any::<bool>(), fidi in proptest::option::of(any::<u8>())) {
        let protocol = if t1 { Protocol::T1 } else { Protocol::T0 };
        let req = PpsRequest::new(protocol, fidi);
        prop_assert_eq!(req.as_bytes().iter().fold(0u8, |a, b| a ^ b), 0);
        let outcome = req.check_response(req.as_bytes()).unwrap();
        prop_assert!(outcome.as_requested || fidi == Some(atr::DEFAULT_FIDI));
        prop_assert_eq!(outcome.fidi, fidi.unwrap_or(atr::DEFAULT_FIDI));
        prop_assert_eq!(outcome.protocol, protocol);
        prop_assert_eq!(req.protocol(), protocol);
        prop_assert_eq!(req.fidi(), fidi);
    }

    #[test]
    fn pps_check_never_panics(resp in proptest::collection::vec(any::<u8>(), 0..8), fidi in any::<u8>()) {
        let _ = PpsRequest::new(Protocol::T1, Some(fidi)).check_response(&resp);
    }
}
