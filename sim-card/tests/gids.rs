//! GIDS profile: the admin-key mutual authentication computed on the host side here (as OpenSC's
//! `gids_authenticate_admin` does it), PIN status, VERIFY and RESET RETRY COUNTER.

mod common;

use cardunlock_sim::{Config, GidsConfig, SimCard, DEFAULT_MGMT_KEY};
use common::*;
use hex_literal::hex;

const MSE_ADMIN: [u8; 8] = hex!("00 22 C1 A4 03 83 01 80");
const PIN_STATUS: [u8; 10] = hex!("00 CB 3F FF 04 5C 02 7F 71 00");

fn card(cfg: GidsConfig) -> SimCard {
    let mut card = SimCard::new(Config::Gids(cfg));
    select_gids(&mut card);
    card
}

/// Step 1: send R1, get R2.
fn step1(card: &mut SimCard, r1: &[u8; 16]) -> (Vec<u8>, u16) {
    let mut cmd = hex!("00 87 00 00 14 7C 12 81 10").to_vec();
    cmd.extend_from_slice(r1);
    cmd.push(0x00);
    tx(card, &cmd)
}

/// Step 2 cryptogram: 3DES-CBC(IV 0) of R2 || R1 || Z1 (7 random bytes then 80).
fn step2_cmd(key: &[u8; 24], r1: &[u8; 16], r2: &[u8], z1_last: u8) -> Vec<u8> {
    let mut plain = r2.to_vec();
    plain.extend_from_slice(r1);
    plain.extend_from_slice(&[0x13, 0x57, 0x9B, 0xDF, 0x24, 0x68, 0xAC]);
    plain.push(z1_last);
    let enc = tdes_cbc(key, &plain, true);
    let mut cmd = hex!("00 87 00 00 2C 7C 2A 82 28").to_vec();
    cmd.extend_from_slice(&enc);
    cmd.push(0x00);
    cmd
}

/// The whole exchange with host key `key`; returns step 2's SW. On success, checks the card's
/// cryptogram decrypts to R1 || R2 || Z2 with the 80 padding byte.
fn admin_auth(card: &mut SimCard, key: &[u8; 24]) -> u16 {
    assert_eq!(sw(card, &MSE_ADMIN), 0x9000);
    let r1: [u8; 16] = hex!("A1A2A3A4A5A6A7A8B1B2B3B4B5B6B7B8");
    let (data, s) = step1(card, &r1);
    if s != 0x9000 {
        return s;
    }
    let r2 = template_value(&data, 0x81);
    assert_eq!(r2.len(), 16);
    let (data, s) = tx(card, &step2_cmd(key, &r1, &r2, 0x80));
    if s == 0x9000 {
        assert_eq!(data.len(), 44);
        let cryptogram = template_value(&data, 0x82);
        let plain = tdes_cbc(key, &cryptogram, false);
        assert_eq!(&plain[..16], &r1);
        assert_eq!(&plain[16..32], &r2[..]);
        assert_eq!(plain[39], 0x80);
    } else {
        assert!(data.is_empty());
    }
    s
}

#[test]
fn select_variants() {
    let mut card = SimCard::new(Config::Gids(GidsConfig::factory()));
    let fci = hex!("61 0D 4F 0B A0 00 00 03 97 42 54 46 59 02 01 90 00");
    scenario(
        &mut card,
        &[
            (&PIN_STATUS, &hex!("69 85")),
            (&hex!("00 A4 04 00 09 A0 00 00 03 97 42 54 46 59 00"), &fci),
            (
                &hex!("00 A4 04 00 0B A0 00 00 03 97 42 54 46 59 02 01 00"),
                &fci,
            ),
            (&hex!("00 A4 04 00 0A A0 00 00 03 97 42 54 46 59 02"), &fci),
            (
                &hex!("00 A4 04 0C 09 A0 00 00 03 97 42 54 46 59"),
                &hex!("90 00"),
            ),
            (
                &hex!("00 A4 04 00 08 A0 00 00 03 97 42 54 46"),
                &hex!("6A 82"),
            ),
            (
                &hex!("00 A4 04 00 0B A0 00 00 03 97 42 54 46 59 01 01"),
                &hex!("6A 82"),
            ),
            (&hex!("00 A4 04 00 05 A0 00 00 03 08"), &hex!("6A 82")),
            (&hex!("00 A4 00 00 02 3F 00"), &hex!("6A 86")),
        ],
    );
    assert_eq!(card.profile(), cardunlock_sim::Profile::Gids);
}

#[test]
fn pin_status_and_verify() {
    let mut card = card(GidsConfig::factory());
    scenario(
        &mut card,
        &[
            (&PIN_STATUS, &hex!("7F 71 06 97 01 03 93 01 03 90 00")),
            (&hex!("00 20 00 80"), &hex!("63 C3")),
            (&hex!("00 20 00 80 04 30 30 30 30"), &hex!("63 C2")),
            (&PIN_STATUS, &hex!("7F 71 06 97 01 02 93 01 03 90 00")),
            (&hex!("00 20 00 80 04 31 32 33 34"), &hex!("90 00")),
            (&hex!("00 20 00 80"), &hex!("90 00")),
            (&PIN_STATUS, &hex!("7F 71 06 97 01 03 93 01 03 90 00")),
            // OpenSC's logout.
            (&hex!("00 20 00 82"), &hex!("90 00")),
            (&hex!("00 20 00 80"), &hex!("63 C3")),
            // Length outside 4..=15: refused without a try.
            (&hex!("00 20 00 80 03 31 32 33"), &hex!("6A 80")),
            (
                &hex!("00 20 00 80 10 31 32 33 34 31 32 33 34 31 32 33 34 31 32 33 34"),
                &hex!("6A 80"),
            ),
            // FF-padded PIV-style PIN is just a wrong raw PIN here.
            (
                &hex!("00 20 00 80 08 31 32 33 34 FF FF FF FF"),
                &hex!("63 C2"),
            ),
            (&hex!("00 20 00 80 05 31 32 33 34 35"), &hex!("63 C1")),
            (&hex!("00 20 00 80 04 31 32 33 35"), &hex!("69 83")),
            (&hex!("00 20 00 80 04 31 32 33 34"), &hex!("69 83")),
            (&PIN_STATUS, &hex!("7F 71 06 97 01 00 93 01 03 90 00")),
            // Other references and P1.
            (&hex!("00 20 00 81 04 31 32 33 34"), &hex!("6A 88")),
            (&hex!("00 20 01 80"), &hex!("6A 86")),
            // Other data objects.
            (&hex!("00 CB 3F FF 04 5C 02 7F 73 00"), &hex!("6A 82")),
            (&hex!("00 CB A0 00 04 5C 02 DF 20 00"), &hex!("6A 82")),
            (&hex!("00 CB A0 11 04 5C 02 DF 1F 00"), &hex!("6A 82")),
            (&hex!("00 CB 3F FF 02 5C 02 00"), &hex!("6A 80")),
        ],
    );
}

#[test]
fn admin_auth_then_unblock() {
    let mut card = card(GidsConfig::factory().blocked());
    assert_eq!(sw(&mut card, &hex!("00 20 00 80 04 31 32 33 34")), 0x6983);
    assert_eq!(admin_auth(&mut card, &DEFAULT_MGMT_KEY), 0x9000);
    assert!(card.admin_authenticated());
    assert_eq!(
        sw(&mut card, &hex!("00 2C 02 80 06 39 38 37 36 35 34")),
        0x9000
    );
    assert!(card.pin_is(b"987654"));
    assert_eq!(card.pin_tries_left(), 3);
    assert!(!card.pin_verified());
    assert_eq!(sw(&mut card, &hex!("00 20 00 80")), 0x63C3);
    assert_eq!(
        sw(&mut card, &hex!("00 20 00 80 06 39 38 37 36 35 34")),
        0x9000
    );
    // The admin status lasts until SELECT: a second unblock works.
    assert_eq!(sw(&mut card, &hex!("00 2C 02 80 04 31 31 32 32")), 0x9000);
    select_gids(&mut card);
    assert!(!card.admin_authenticated());
    assert_eq!(sw(&mut card, &hex!("00 2C 02 80 04 31 31 32 32")), 0x6982);
}

#[test]
fn unblock_checks() {
    let mut card = card(GidsConfig::factory().blocked());
    scenario(
        &mut card,
        &[
            (&hex!("00 2C 02 80 04 31 32 33 34"), &hex!("69 82")),
            (&hex!("00 2C 00 80 04 31 32 33 34"), &hex!("6A 86")),
            (&hex!("00 2C 02 81 04 31 32 33 34"), &hex!("6A 88")),
        ],
    );
    assert_eq!(admin_auth(&mut card, &DEFAULT_MGMT_KEY), 0x9000);
    scenario(
        &mut card,
        &[
            (&hex!("00 2C 02 80 03 31 32 33"), &hex!("6A 80")),
            (
                &hex!("00 2C 02 80 10 31 32 33 34 31 32 33 34 31 32 33 34 31 32 33 34"),
                &hex!("6A 80"),
            ),
            (&hex!("00 2C 02 80"), &hex!("6A 80")),
            (
                &hex!("00 2C 02 80 0F 31 32 33 34 31 32 33 34 31 32 33 34 31 32 33"),
                &hex!("90 00"),
            ),
        ],
    );
    assert!(card.pin_is(b"123412341234123"));
}

#[test]
fn wrong_admin_key_counts_down_and_blocks() {
    let mut cfg = GidsConfig::factory();
    cfg.admin_max_tries = 3;
    cfg.admin_tries_left = 3;
    let mut card = card(cfg);
    let wrong = [0x33u8; 24];
    assert_eq!(admin_auth(&mut card, &wrong), 0x63C2);
    assert_eq!(card.admin_tries_left(), Some(2));
    // A right key resets the counter.
    assert_eq!(admin_auth(&mut card, &DEFAULT_MGMT_KEY), 0x9000);
    assert_eq!(card.admin_tries_left(), Some(3));
    assert_eq!(admin_auth(&mut card, &wrong), 0x63C2);
    assert!(!card.admin_authenticated());
    assert_eq!(admin_auth(&mut card, &wrong), 0x63C1);
    assert_eq!(admin_auth(&mut card, &wrong), 0x6983);
    assert_eq!(card.admin_tries_left(), Some(0));
    // Blocked: step 1 already refuses, the right key cannot help, and reset keeps it.
    assert_eq!(admin_auth(&mut card, &DEFAULT_MGMT_KEY), 0x6983);
    card.reset();
    select_gids(&mut card);
    assert_eq!(admin_auth(&mut card, &DEFAULT_MGMT_KEY), 0x6983);
    assert_eq!(card.admin_tries_left(), Some(0));
}

#[test]
fn factory_admin_counter_is_ten() {
    let mut card = card(GidsConfig::factory());
    assert_eq!(card.admin_tries_left(), Some(10));
    assert_eq!(admin_auth(&mut card, &[0x44; 24]), 0x63C9);
}

#[test]
fn cryptogram_checks() {
    let key = DEFAULT_MGMT_KEY;
    let r1 = [0x11u8; 16];
    let mut card = card(GidsConfig::factory());
    assert_eq!(sw(&mut card, &MSE_ADMIN), 0x9000);

    // Bad padding byte.
    let (data, _) = step1(&mut card, &r1);
    let r2 = template_value(&data, 0x81);
    assert_eq!(sw(&mut card, &step2_cmd(&key, &r1, &r2, 0x00)), 0x63C9);

    // R1 and R2 swapped (the card's own order).
    let (data, _) = step1(&mut card, &r1);
    let r2 = template_value(&data, 0x81);
    let mut swapped = [0u8; 16];
    swapped.copy_from_slice(&r2);
    assert_eq!(sw(&mut card, &step2_cmd(&key, &swapped, &r1, 0x80)), 0x63C8);

    // ECB instead of CBC (the minidriver spec's mistake): wrong.
    let (data, _) = step1(&mut card, &r1);
    let r2 = template_value(&data, 0x81);
    let mut plain = r2.clone();
    plain.extend_from_slice(&r1);
    plain.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 0x80]);
    let ecb = ecb_encrypt(cardunlock_sim::Algorithm::TripleDes, &key, &plain);
    let mut cmd = hex!("00 87 00 00 2C 7C 2A 82 28").to_vec();
    cmd.extend_from_slice(&ecb);
    assert_eq!(sw(&mut card, &cmd), 0x63C7);
    assert_eq!(card.admin_tries_left(), Some(7));
}

#[test]
fn general_authenticate_preconditions_and_single_use() {
    let key = DEFAULT_MGMT_KEY;
    let r1 = [0x22u8; 16];
    let mut card = card(GidsConfig::factory());
    // No MSE SET yet.
    assert_eq!(step1(&mut card, &r1).1, 0x6985);
    scenario(
        &mut card,
        &[
            (&hex!("00 22 C1 A4 03 83 01 81"), &hex!("6A 88")),
            (&hex!("00 22 41 B6 03 83 01 80"), &hex!("6A 86")),
            (&hex!("00 22 C1 A4 03 84 01 80"), &hex!("6A 80")),
            (&hex!("00 22 C1 A4 04 83 02 80 00"), &hex!("6A 80")),
            (&MSE_ADMIN, &hex!("90 00")),
            // Step 2 before step 1.
            (&step2_cmd(&key, &r1, &[0u8; 16], 0x80), &hex!("69 85")),
            // Wrong structures.
            (&hex!("00 87 00 00 06 7C 04 81 02 00 00 00"), &hex!("6A 80")),
            (&hex!("00 87 01 00 04 7C 02 81 00 00"), &hex!("6A 86")),
        ],
    );
    assert_eq!(card.admin_tries_left(), Some(10));

    // Another command between the steps drops the randoms.
    let (data, _) = step1(&mut card, &r1);
    let r2 = template_value(&data, 0x81);
    assert_eq!(tx(&mut card, &PIN_STATUS).1, 0x9000);
    assert_eq!(sw(&mut card, &step2_cmd(&key, &r1, &r2, 0x80)), 0x6985);

    // Replaying a successful step 2 is refused.
    let (data, _) = step1(&mut card, &r1);
    let r2 = template_value(&data, 0x81);
    let cmd = step2_cmd(&key, &r1, &r2, 0x80);
    assert_eq!(tx(&mut card, &cmd).1, 0x9000);
    assert_eq!(sw(&mut card, &cmd), 0x6985);

    // SELECT drops the randoms and the MSE selection.
    let (data, _) = step1(&mut card, &r1);
    let r2 = template_value(&data, 0x81);
    select_gids(&mut card);
    assert_eq!(sw(&mut card, &step2_cmd(&key, &r1, &r2, 0x80)), 0x6985);
    assert_eq!(step1(&mut card, &r1).1, 0x6985);
    assert_eq!(card.admin_tries_left(), Some(10));
}

#[test]
fn reset_drops_admin_status_and_keeps_counters() {
    let mut card = card(GidsConfig::factory());
    assert_eq!(admin_auth(&mut card, &[0x77; 24]), 0x63C9);
    assert_eq!(sw(&mut card, &hex!("00 20 00 80 04 39 39 39 39")), 0x63C2);
    assert_eq!(admin_auth(&mut card, &DEFAULT_MGMT_KEY), 0x9000);
    card.reset();
    assert!(!card.admin_authenticated());
    assert_eq!(card.pin_tries_left(), 2);
    assert_eq!(sw(&mut card, &hex!("00 2C 02 80 04 31 32 33 34")), 0x6985);
    select_gids(&mut card);
    assert_eq!(sw(&mut card, &hex!("00 2C 02 80 04 31 32 33 34")), 0x6982);
    assert_eq!(card.admin_tries_left(), Some(10));
}

#[test]
fn custom_admin_key_and_different_randoms_per_seed() {
    let mut cfg = GidsConfig::factory();
    cfg.admin_key = hex!("0123456789ABCDEF 23456789ABCDEF01 456789ABCDEF0123");
    let key = cfg.admin_key;
    let mut a = card(cfg.clone());
    assert!(a.mgmt_key_is(cardunlock_sim::Algorithm::TripleDes, &key));
    assert_eq!(admin_auth(&mut a, &DEFAULT_MGMT_KEY), 0x63C9);
    assert_eq!(admin_auth(&mut a, &key), 0x9000);

    // Same seed, same R2 (deterministic); other seed, other R2.
    let r2 = |cfg: GidsConfig| {
        let mut c = card(cfg);
        sw(&mut c, &MSE_ADMIN);
        step1(&mut c, &[0; 16]).0
    };
    let mut other = cfg.clone();
    other.seed ^= 1;
    assert_eq!(r2(cfg.clone()), r2(cfg.clone()));
    assert_ne!(r2(cfg), r2(other));
}

#[test]
fn unknown_instructions() {
    let mut card = card(GidsConfig::factory());
    for ins in [0x84u8, 0x82, 0xF8, 0xF7, 0xDB, 0x47] {
        assert_eq!(
            sw(&mut card, &[0x00, ins, 0x00, 0x00]),
            0x6D00,
            "INS {ins:02X}"
        );
    }
}

#[test]
fn serial_is_the_identity() {
    let mut card = card(GidsConfig::factory());
    let serial = GidsConfig::factory().serial;
    let mut select = vec![0x00, 0xA4, 0x04, 0x00, 0x09];
    select.extend_from_slice(&cardunlock_sim::GIDS_AID[..9]);
    assert!(card.transmit(&select).ends_with(&[0x90, 0x00]));
    let r = card.transmit(&[0x00, 0xCA, 0x01, 0x00, 0x00]);
    assert_eq!(&r[..16], &serial[..]);
    assert_eq!(&r[16..], &[0x90, 0x00]);
    assert_eq!(sw(&mut card, &[0x00, 0xCA, 0x02, 0x00, 0x00]), 0x6A88);
}

/// The read-only minidriver file system OpenSC's PKCS#15 emulation (`pkcs15-gids.c`) reads before
/// it lists the PIN: masterfile, cardid (the serial), cardapps, cardcf, an empty container map.
#[test]
fn minidriver_file_system_for_opensc() {
    let mut card = card(GidsConfig::factory());
    // Masterfile: version 01, then 28-byte records (directory[9], file name[9], 2 bytes of
    // padding, DO and FI as little-endian u32), as the minidriver's initialisation writes them.
    let (data, s) = tx(&mut card, &hex!("00 CB A0 00 04 5C 02 DF 1F 00"));
    assert_eq!(s, 0x9000);
    assert_eq!(&data[..4], &hex!("DF 1F 81 8D"));
    let masterfile = &data[4..];
    assert_eq!(masterfile.len(), 1 + 5 * 28);
    assert_eq!(masterfile[0], 0x01);
    let records = [
        hex!("6D73637000000000 00 0000000000000000 00 0000 00000000 00A00000"),
        hex!("0000000000000000 00 6361726469640000 00 0000 20DF0000 12A00000"),
        hex!("0000000000000000 00 6361726461707073 00 0000 21DF0000 10A00000"),
        hex!("0000000000000000 00 6361726463660000 00 0000 22DF0000 10A00000"),
        hex!("6D73637000000000 00 636D617066696C65 00 0000 23DF0000 10A00000"),
    ];
    for (i, record) in records.iter().enumerate() {
        assert_eq!(&masterfile[1 + 28 * i..][..28], record, "record {i}");
    }
    let serial = GidsConfig::factory().serial;
    let mut cardid = hex!("DF 20 10").to_vec();
    cardid.extend_from_slice(&serial);
    cardid.extend_from_slice(&hex!("90 00"));
    scenario(
        &mut card,
        &[
            (&hex!("00 CB A0 12 04 5C 02 DF 20 00"), &cardid),
            (
                &hex!("00 CB A0 10 04 5C 02 DF 21 00"),
                &hex!("DF 21 08 6D 73 63 70 00 00 00 00 90 00"),
            ),
            (
                &hex!("00 CB A0 10 04 5C 02 DF 22 00"),
                &hex!("DF 22 06 00 00 00 00 00 00 90 00"),
            ),
            (
                &hex!("00 CB A0 10 04 5C 02 DF 23 00"),
                &hex!("DF 23 00 90 00"),
            ),
            // Le absent: the data all the same.
            (&hex!("00 CB A0 10 04 5C 02 DF 23"), &hex!("DF 23 00 90 00")),
            // A data object of another EF.
            (&hex!("00 CB A0 10 04 5C 02 DF 20 00"), &hex!("6A 82")),
            // Read-only: no PUT DATA.
            (&hex!("00 DB A0 10 05 DF 22 02 00 01"), &hex!("6D 00")),
        ],
    );
    // Readable without PIN or admin key; reading costs nothing.
    assert!(!card.pin_verified() && !card.admin_authenticated());
    assert_eq!(card.pin_tries_left(), 3);
    assert_eq!(card.admin_tries_left(), Some(10));
    // Not before SELECT.
    card.reset();
    assert_eq!(
        sw(&mut card, &hex!("00 CB A0 00 04 5C 02 DF 1F 00")),
        0x6985
    );
}
