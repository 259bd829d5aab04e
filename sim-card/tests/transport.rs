//! Transport-level behaviour shared by all profiles: APDU parsing, extended length, command
//! chaining, GET RESPONSE, strict Le, reset, ATRs, Debug redaction.

mod common;

use cardunlock_sim::{
    Config, GidsConfig, IsoConfig, Options, PivConfig, Profile, SimCard, ATR_GIDS, ATR_ISO_ADMIN,
    ATR_PIV,
};
use common::*;
use hex_literal::hex;

const GET_CHUID: [u8; 11] = hex!("00 CB 3F FF 05 5C 03 5F C1 02 00");

fn all_profiles() -> [SimCard; 3] {
    [
        SimCard::new(Config::Piv(PivConfig::factory())),
        SimCard::new(Config::Gids(GidsConfig::factory())),
        SimCard::new(Config::Iso(IsoConfig::factory())),
    ]
}

fn piv_with(options: Options) -> SimCard {
    SimCard::with_options(Config::Piv(PivConfig::factory()), options)
}

fn chuid() -> Vec<u8> {
    let mut card = SimCard::new(Config::Piv(PivConfig::factory()));
    select_piv(&mut card);
    let (data, s) = tx(&mut card, &GET_CHUID);
    assert_eq!(s, 0x9000);
    assert_eq!(data.len(), 61);
    data
}

#[test]
fn malformed_lengths_answer_6700() {
    for mut card in all_profiles() {
        for apdu in [
            &[][..],
            &hex!("00"),
            &hex!("00 A4 04"),
            // Lc says 9, 5 bytes follow.
            &hex!("00 A4 04 00 09 A0 00 00 03 08"),
            // Lc 2 with 4 bytes.
            &hex!("00 20 00 80 02 31 32 33 34"),
            // 00 then one byte: neither short nor extended.
            &hex!("00 20 00 80 00 08"),
            // Extended Lc 0.
            &hex!("00 20 00 80 00 00 00 31"),
            // Extended Lc 4, 3 bytes.
            &hex!("00 20 00 80 00 00 04 31 32 33"),
            // Extended case 4 with a 1-byte Le.
            &hex!("00 20 00 80 00 00 02 31 32 00"),
        ] {
            assert_eq!(card.transmit(apdu), [0x67, 0x00], "{apdu:02X?}");
        }
    }
}

#[test]
fn class_and_instruction_errors() {
    for mut card in all_profiles() {
        for cla in [0x80u8, 0x84, 0x0C, 0x01, 0x90, 0xFF, 0x20] {
            assert_eq!(
                card.transmit(&[cla, 0xA4, 0x04, 0x00]),
                [0x6E, 0x00],
                "CLA {cla:02X}"
            );
        }
        assert_eq!(card.transmit(&hex!("00 12 00 00")), [0x6D, 0x00]);
        assert_eq!(
            card.transmit(&hex!("00 12 00 00 02 01 02 00")),
            [0x6D, 0x00]
        );
    }
}

#[test]
fn nothing_selected_answers_6985_in_every_profile() {
    let cmds: [(&[u8], Profile); 6] = [
        (&hex!("00 20 00 80"), Profile::Piv),
        (&hex!("00 F8 00 00"), Profile::Piv),
        (&hex!("00 CB 3F FF 04 5C 02 7F 71 00"), Profile::Gids),
        (&hex!("00 22 C1 A4 03 83 01 80"), Profile::Gids),
        (&hex!("00 84 00 00 08"), Profile::IsoAdmin),
        (&hex!("00 CA 01 00 00"), Profile::IsoAdmin),
    ];
    for mut card in all_profiles() {
        for (cmd, profile) in cmds {
            if card.profile() == profile {
                assert_eq!(card.transmit(cmd), [0x69, 0x85], "{cmd:02X?}");
            }
        }
    }
}

#[test]
fn le_absent_still_returns_data() {
    let mut card = SimCard::new(Config::Piv(PivConfig::factory()));
    select_piv(&mut card);
    assert_eq!(card.transmit(&hex!("00 FD 00 00")), hex!("05 07 01 90 00"));
    assert_eq!(
        card.transmit(&hex!("00 CB 3F FF 05 5C 03 5F C1 02")).len(),
        63
    );
}

#[test]
fn extended_length_apdus() {
    let mut card = SimCard::new(Config::Piv(PivConfig::factory()));
    // Case 4E SELECT.
    let r = card.transmit(&hex!(
        "00 A4 04 00 00 00 09 A0 00 00 03 08 00 00 10 00 00 00"
    ));
    assert_eq!(
        r,
        hex!("61 11 4F 06 00 00 10 00 01 00 79 07 4F 05 A0 00 00 03 08 90 00")
    );
    // Case 3E VERIFY.
    assert_eq!(
        card.transmit(&hex!("00 20 00 80 00 00 08 31 32 33 34 35 36 FF FF")),
        [0x90, 0x00]
    );
    // Case 2E.
    assert_eq!(card.transmit(&hex!("00 F8 00 00 00 00 00")).len(), 6);
    // Case 4E GET DATA returns all 61 bytes plus SW.
    let (data, s) = tx(
        &mut card,
        &hex!("00 CB 3F FF 00 00 05 5C 03 5F C1 02 00 00"),
    );
    assert_eq!((data, s), (chuid(), 0x9000));
    // Extended RESET RETRY COUNTER.
    let mut rrc = hex!("00 2C 00 80 00 00 10").to_vec();
    rrc.extend_from_slice(&piv_field(b"12345678"));
    rrc.extend_from_slice(&piv_field(b"97531864"));
    assert_eq!(card.transmit(&rrc), [0x90, 0x00]);
    assert!(card.pin_is(b"97531864"));
}

#[test]
fn get_response_chaining() {
    let expected = chuid();
    let mut card = piv_with(Options {
        max_response_data: 16,
        ..Options::default()
    });
    // The SELECT answer (19 bytes) is chunked too.
    let r = card.transmit(&hex!("00 A4 04 00 05 A0 00 00 03 08"));
    assert_eq!(&r[16..], &[0x61, 0x03]);
    assert_eq!(
        card.transmit(&hex!("00 C0 00 00 03")),
        hex!("00 03 08 90 00")
    );

    let r = card.transmit(&GET_CHUID);
    assert_eq!(r.len(), 18);
    assert_eq!(&r[..16], &expected[..16]);
    assert_eq!(&r[16..], &[0x61, 45]);
    let mut all = r[..16].to_vec();
    // Le smaller than the part size: exactly Le bytes.
    let r = card.transmit(&hex!("00 C0 00 00 05"));
    assert_eq!(&r[5..], &[0x61, 40]);
    all.extend_from_slice(&r[..5]);
    // Le 00 = 256, capped by max_response_data.
    let r = card.transmit(&hex!("00 C0 00 00 00"));
    assert_eq!(&r[16..], &[0x61, 24]);
    all.extend_from_slice(&r[..16]);
    // Le absent.
    let r = card.transmit(&hex!("00 C0 00 00"));
    assert_eq!(&r[16..], &[0x61, 8]);
    all.extend_from_slice(&r[..16]);
    let r = card.transmit(&hex!("00 C0 00 00 08"));
    assert_eq!(&r[8..], &[0x90, 0x00]);
    all.extend_from_slice(&r[..8]);
    assert_eq!(all, expected);
    // Nothing left.
    assert_eq!(card.transmit(&hex!("00 C0 00 00 00")), [0x69, 0x85]);
}

#[test]
fn other_command_drops_pending_response() {
    let mut card = piv_with(Options {
        max_response_data: 16,
        ..Options::default()
    });
    card.transmit(&hex!("00 A4 04 00 05 A0 00 00 03 08"));
    let r = card.transmit(&GET_CHUID);
    assert_eq!(r[16], 0x61);
    // Wrong P1-P2 keeps it.
    assert_eq!(card.transmit(&hex!("00 C0 01 00 00")), [0x6A, 0x86]);
    assert_eq!(card.transmit(&hex!("00 FD 00 00")), hex!("05 07 01 90 00"));
    assert_eq!(card.transmit(&hex!("00 C0 00 00 00")), [0x69, 0x85]);
    // A reset drops it too.
    card.transmit(&hex!("00 A4 04 00 05 A0 00 00 03 08"));
    card.transmit(&GET_CHUID);
    card.reset();
    assert_eq!(card.transmit(&hex!("00 C0 00 00 00")), [0x69, 0x85]);
}

#[test]
fn max_response_data_of_one_byte() {
    let expected = chuid();
    let mut card = piv_with(Options {
        max_response_data: 0, // clamped to 1
        ..Options::default()
    });
    let mut r = card.transmit(&hex!("00 A4 04 00 05 A0 00 00 03 08"));
    while r[r.len() - 2] == 0x61 {
        r = card.transmit(&[0x00, 0xC0, 0x00, 0x00, r[r.len() - 1]]);
    }
    let mut all = Vec::new();
    let mut r = card.transmit(&GET_CHUID);
    loop {
        assert!(r.len() <= 3);
        all.extend_from_slice(&r[..r.len() - 2]);
        if r[r.len() - 2] != 0x61 {
            break;
        }
        r = card.transmit(&hex!("00 C0 00 00 00"));
    }
    assert_eq!(all, expected);
}

#[test]
fn strict_le_answers_6cxx() {
    let expected = chuid();
    let mut card = piv_with(Options {
        strict_le: true,
        ..Options::default()
    });
    assert_eq!(
        card.transmit(&hex!("00 A4 04 00 05 A0 00 00 03 08 05")),
        [0x6C, 0x13]
    );
    // The host re-sends with the exact Le (the card executes the command again).
    assert_eq!(
        card.transmit(&hex!("00 A4 04 00 05 A0 00 00 03 08 13"))
            .len(),
        21
    );
    let mut cmd = GET_CHUID;
    cmd[10] = 0x10;
    assert_eq!(card.transmit(&cmd), [0x6C, 0x3D]);
    cmd[10] = 0x3D;
    assert_eq!(tx(&mut card, &cmd), (expected.clone(), 0x9000));
    // Larger Le, Le 00, Le absent and extended Le are fine.
    cmd[10] = 0xFF;
    assert_eq!(tx(&mut card, &cmd).0, expected);
    assert_eq!(tx(&mut card, &GET_CHUID).0, expected);
    assert_eq!(tx(&mut card, &GET_CHUID[..10]).0, expected);
    assert_eq!(
        tx(
            &mut card,
            &hex!("00 CB 3F FF 00 00 05 5C 03 5F C1 02 00 05")
        )
        .0,
        expected
    );
    assert_eq!(card.transmit(&hex!("00 F8 00 00 02")), [0x6C, 0x04]);
    // Without strict_le a short Le is ignored.
    let mut lax = piv_with(Options::default());
    select_piv(&mut lax);
    cmd[10] = 0x10;
    assert_eq!(tx(&mut lax, &cmd).0, expected);
}

#[test]
fn command_chaining() {
    let mut card = SimCard::new(Config::Piv(PivConfig::factory()));
    select_piv(&mut card);
    // VERIFY in two parts.
    assert_eq!(
        card.transmit(&hex!("10 20 00 80 03 31 32 33")),
        [0x90, 0x00]
    );
    assert_eq!(card.transmit(&hex!("10 20 00 80 02 34 35")), [0x90, 0x00]);
    assert_eq!(
        card.transmit(&hex!("00 20 00 80 03 36 FF FF")),
        [0x90, 0x00]
    );
    assert!(card.pin_verified());
    // A different INS mid-chain: 68 83 and the chain is gone.
    assert_eq!(
        card.transmit(&hex!("10 20 00 80 04 31 32 33 34")),
        [0x90, 0x00]
    );
    assert_eq!(card.transmit(&hex!("00 F8 00 00")), [0x68, 0x83]);
    assert_eq!(
        card.transmit(&hex!("00 20 00 80 04 35 36 FF FF")),
        [0x6A, 0x80]
    );
    // GET RESPONSE mid-chain is a different INS too.
    assert_eq!(
        card.transmit(&hex!("10 20 00 80 04 31 32 33 34")),
        [0x90, 0x00]
    );
    assert_eq!(card.transmit(&hex!("00 C0 00 00 00")), [0x68, 0x83]);
    assert_eq!(card.pin_tries_left(), 3);
    // Chained data counts: a wrong PIN assembled from parts costs a try.
    assert_eq!(
        card.transmit(&hex!("10 20 00 80 04 39 39 39 39")),
        [0x90, 0x00]
    );
    assert_eq!(
        card.transmit(&hex!("00 20 00 80 04 39 39 FF FF")),
        [0x63, 0xC2]
    );
    // Chained GET DATA returns data on the last part.
    assert_eq!(card.transmit(&hex!("10 CB 3F FF 02 5C 03")), [0x90, 0x00]);
    assert_eq!(
        tx(&mut card, &hex!("00 CB 3F FF 03 5F C1 02 00")).0,
        chuid()
    );
}

#[test]
fn chained_management_key_response() {
    use cardunlock_sim::{Algorithm, DEFAULT_MGMT_KEY};
    let mut card = SimCard::new(Config::Piv(PivConfig::factory()));
    select_piv(&mut card);
    let (data, _) = tx(&mut card, &hex!("00 87 03 9B 04 7C 02 81 00"));
    let r = ecb_encrypt(
        Algorithm::TripleDes,
        &DEFAULT_MGMT_KEY,
        &template_value(&data, 0x81),
    );
    let full = template(&[(0x82, &r)]);
    let (a, b) = full.split_at(5);
    assert_eq!(
        sw(&mut card, &apdu(0x10, 0x87, 0x03, 0x9B, a, None)),
        0x9000
    );
    assert_eq!(
        sw(&mut card, &apdu(0x00, 0x87, 0x03, 0x9B, b, None)),
        0x9000
    );
    assert!(card.admin_authenticated());
}

#[test]
fn chain_limit() {
    let mut card = SimCard::new(Config::Piv(PivConfig::factory()));
    select_piv(&mut card);
    let mut part = hex!("10 DB 3F FF 00 FF FF").to_vec();
    part.extend_from_slice(&[0u8; 0xFFFF]);
    assert_eq!(card.transmit(&part), [0x90, 0x00]);
    assert_eq!(card.transmit(&hex!("10 DB 3F FF 02 01 02")), [0x6A, 0x84]);
    // The chain is gone.
    assert_eq!(card.transmit(&hex!("00 DB 3F FF 02 01 02")), [0x6D, 0x00]);
}

#[test]
fn reset_keeps_counters_and_drops_session() {
    let mut card = SimCard::new(Config::Piv(PivConfig::factory()));
    select_piv(&mut card);
    assert_eq!(
        sw(
            &mut card,
            &apdu(0, 0x20, 0, 0x80, &piv_field(b"000000"), None)
        ),
        0x63C2
    );
    assert_eq!(
        sw(&mut card, &apdu(0, 0x2C, 0, 0x80, &[0x30; 16], None)),
        0x63C2
    );
    card.reset();
    assert_eq!(card.pin_tries_left(), 2);
    assert_eq!(card.puk_tries_left(), Some(2));
    assert!(!card.is_selected());
    assert_eq!(card.transmit(&hex!("00 20 00 80")), [0x69, 0x85]);
    select_piv(&mut card);
    assert_eq!(card.transmit(&hex!("00 20 00 80")), [0x63, 0xC2]);
    // Verified status dropped.
    assert_eq!(
        sw(
            &mut card,
            &apdu(0, 0x20, 0, 0x80, &piv_field(b"123456"), None)
        ),
        0x9000
    );
    card.reset();
    select_piv(&mut card);
    assert!(!card.pin_verified());
    assert_eq!(card.transmit(&hex!("00 20 00 80")), [0x63, 0xC3]);
    // A chain is dropped.
    assert_eq!(
        card.transmit(&hex!("10 20 00 80 04 31 32 33 34")),
        [0x90, 0x00]
    );
    card.reset();
    select_piv(&mut card);
    assert_eq!(
        card.transmit(&hex!("00 20 00 80 04 35 36 FF FF")),
        [0x6A, 0x80]
    );
}

#[test]
fn commands_seen_counts_every_apdu() {
    let mut card = SimCard::new(Config::Piv(PivConfig::factory()));
    assert_eq!(card.commands_seen(), 0);
    card.transmit(&[]);
    card.transmit(&hex!("80 00 00 00"));
    select_piv(&mut card);
    card.transmit(&hex!("10 20 00 80 01 31"));
    card.reset();
    card.transmit(&hex!("00 C0 00 00 00"));
    assert_eq!(card.commands_seen(), 5);
}

#[test]
fn atrs_are_well_formed() {
    assert_eq!(
        ATR_PIV,
        hex!("3B FD 13 00 00 81 31 FE 15 80 73 C0 21 C0 57 59 75 62 69 4B 65 79 40")
    );
    for (card, atr) in all_profiles()
        .iter()
        .zip([&ATR_PIV[..], &ATR_GIDS, &ATR_ISO_ADMIN])
    {
        assert_eq!(card.atr(), atr);
        assert_eq!(atr[0], 0x3B, "direct convention");
        // T=1 is offered, so TCK is present: XOR of T0..TCK is zero.
        assert_eq!(atr[1..].iter().fold(0u8, |a, b| a ^ b), 0, "{atr:02X?}");
        // Historical byte count matches T0's low nibble.
        let k = usize::from(atr[1] & 0x0F);
        let y1 = atr[1] >> 4;
        let mut i = 2 + (y1.count_ones() as usize);
        let mut td = if y1 & 0x8 != 0 {
            Some(atr[i - 1])
        } else {
            None
        };
        while let Some(t) = td {
            let y = t >> 4;
            i += y.count_ones() as usize;
            td = if y & 0x8 != 0 { Some(atr[i - 1]) } else { None };
        }
        assert_eq!(atr.len(), i + k + 1, "{atr:02X?}");
    }
}

#[test]
fn debug_output_is_redacted() {
    let mut piv = PivConfig::factory();
    piv.pin = b"739182".to_vec();
    piv.puk = b"55443322".to_vec();
    piv.mgmt_key = vec![0xA7; 24];
    let mut gids = GidsConfig::factory();
    gids.pin = b"739182".to_vec();
    gids.admin_key = [0xA7; 24];
    let mut iso = IsoConfig::factory();
    iso.pin = b"739182".to_vec();
    iso.admin_key = vec![0xA7; 24];
    let outputs = [
        format!("{piv:?}"),
        format!("{gids:?}"),
        format!("{iso:?}"),
        format!("{:?}", Config::Piv(piv.clone())),
        format!("{:?}", SimCard::new(Config::Piv(piv))),
        format!("{:?}", SimCard::new(Config::Gids(gids))),
        format!("{:#?}", SimCard::new(Config::Iso(iso))),
    ];
    for out in outputs {
        assert!(out.contains("redacted"), "{out}");
        for secret in [
            "739182",
            "55, 51, 57, 49, 56, 50", // b"739182"
            "53, 53, 52, 52",         // b"5544"
            "55443322",
            "167", // 0xA7
            "a7",
            "A7",
        ] {
            assert!(!out.contains(secret), "{secret} leaked in {out}");
        }
    }
}

#[test]
fn profiles_and_inspection() {
    let [piv, gids, iso] = all_profiles();
    assert_eq!(piv.profile(), Profile::Piv);
    assert_eq!(gids.profile(), Profile::Gids);
    assert_eq!(iso.profile(), Profile::IsoAdmin);
    assert_eq!(gids.puk_tries_left(), None);
    assert!(!gids.puk_is(b"12345678"));
    assert!(gids.pin_is(b"1234"));
    assert!(iso.pin_is(b"1234"));
    assert_eq!(iso.admin_tries_left(), Some(10));
    assert_eq!(piv.options(), Options::default());
    assert_eq!(Options::default().max_response_data, 256);
    assert!(!Options::default().strict_le);
}
