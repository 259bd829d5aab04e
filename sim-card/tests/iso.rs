//! ISO 7816-4 admin profile: GET CHALLENGE / EXTERNAL AUTHENTICATE with 3DES and AES admin keys,
//! RESET RETRY COUNTER, VERIFY, GET DATA.

mod common;

use cardunlock_sim::{Algorithm, Config, IsoConfig, SimCard, DEFAULT_MGMT_KEY};
use common::*;
use hex_literal::hex;

fn card(cfg: IsoConfig) -> SimCard {
    let mut card = SimCard::new(Config::Iso(cfg));
    select_iso(&mut card);
    card
}

fn with_key(alg: Algorithm, key: &[u8]) -> IsoConfig {
    let mut cfg = IsoConfig::factory();
    cfg.admin_algorithm = alg;
    cfg.admin_key = key.to_vec();
    cfg
}

fn get_challenge(card: &mut SimCard, len: u8) -> Vec<u8> {
    let (data, s) = tx(card, &[0x00, 0x84, 0x00, 0x00, len]);
    assert_eq!(s, 0x9000);
    assert_eq!(data.len(), usize::from(len));
    data
}

fn external_auth(card: &mut SimCard, key_ref: u8, response: &[u8]) -> u16 {
    sw(card, &apdu(0x00, 0x82, 0x00, key_ref, response, None))
}

/// Challenge, host-computed response (the operator's job), EXTERNAL AUTHENTICATE.
fn admin_auth(card: &mut SimCard, alg: Algorithm, host_key: &[u8]) -> u16 {
    let c = get_challenge(card, alg.block_len() as u8);
    external_auth(card, 0x01, &ecb_encrypt(alg, host_key, &c))
}

const KEYS: [(Algorithm, &[u8]); 4] = [
    (Algorithm::TripleDes, &DEFAULT_MGMT_KEY),
    (Algorithm::Aes128, &hex!("11223344556677881122334455667788")),
    (Algorithm::Aes192, &DEFAULT_MGMT_KEY),
    (
        Algorithm::Aes256,
        &hex!("1122334455667788112233445566778811223344556677881122334455667788"),
    ),
];

#[test]
fn select_variants() {
    let mut card = SimCard::new(Config::Iso(IsoConfig::factory()));
    scenario(
        &mut card,
        &[
            (&hex!("00 84 00 00 08"), &hex!("69 85")),
            (
                &hex!("00 A4 04 00 08 F0 43 55 4E 4C 4F 43 4B 00"),
                &hex!("6F 0A 84 08 F0 43 55 4E 4C 4F 43 4B 90 00"),
            ),
            (&hex!("00 A4 00 0C 02 3F 00"), &hex!("90 00")),
            (
                &hex!("00 A4 00 00 02 3F 00"),
                &hex!("6F 04 83 02 3F 00 90 00"),
            ),
            (&hex!("00 A4 00 0C"), &hex!("90 00")),
            (&hex!("00 A4 04 00 07 F0 43 55 4E 4C 4F 43"), &hex!("6A 82")),
            (&hex!("00 A4 00 00 02 3F 01"), &hex!("6A 82")),
            (&hex!("00 A4 08 00 02 3F 00"), &hex!("6A 86")),
            (
                &hex!("00 A4 04 04 08 F0 43 55 4E 4C 4F 43 4B"),
                &hex!("6A 86"),
            ),
        ],
    );
    assert!(card.is_selected());
    assert_eq!(card.profile(), cardunlock_sim::Profile::IsoAdmin);
}

#[test]
fn challenge_length_follows_the_key() {
    let mut des = card(IsoConfig::factory());
    get_challenge(&mut des, 8);
    assert_eq!(sw(&mut des, &hex!("00 84 00 00 10")), 0x6700);
    assert_eq!(sw(&mut des, &hex!("00 84 00 00 00")), 0x6700);
    assert_eq!(sw(&mut des, &hex!("00 84 00 00")), 0x6700);
    // An extended Le of 8 is still 8: accepted.
    let (d, s) = tx(&mut des, &hex!("00 84 00 00 00 00 08"));
    assert_eq!((d.len(), s), (8, 0x9000));
    assert_eq!(sw(&mut des, &hex!("00 84 01 00 08")), 0x6A86);
    let a = get_challenge(&mut des, 8);
    let b = get_challenge(&mut des, 8);
    assert_ne!(a, b);

    let mut aes = card(with_key(Algorithm::Aes128, &[0x42; 16]));
    get_challenge(&mut aes, 16);
    assert_eq!(sw(&mut aes, &hex!("00 84 00 00 08")), 0x6700);
}

#[test]
fn external_authenticate_all_algorithms_right_and_wrong_key() {
    for (alg, key) in KEYS {
        let mut c = card(with_key(alg, key));
        assert_eq!(admin_auth(&mut c, alg, key), 0x9000, "{alg:?}");
        assert!(c.admin_authenticated());
        assert!(c.mgmt_key_is(alg, key));

        let mut wrong = key.to_vec();
        wrong[3] ^= 0x20;
        let mut c = card(with_key(alg, key));
        assert_eq!(admin_auth(&mut c, alg, &wrong), 0x63C9, "{alg:?}");
        assert!(!c.admin_authenticated());
        assert_eq!(c.admin_tries_left(), Some(9));
    }
}

#[test]
fn design_vector_as_operator_response() {
    // The offline flow: the card's challenge read out as 16 hex characters, the operator's
    // response. With a chosen key, the vector of docs/card-facts.md shows the operator computation.
    let key = hex!("1122334455667788 1122334455667788 1122334455667788");
    assert_eq!(
        ecb_encrypt(Algorithm::TripleDes, &key, &hex!("0001020304050607")),
        hex!("9AB9B188B16A6240")
    );
    let mut c = card(with_key(Algorithm::TripleDes, &key));
    assert_eq!(admin_auth(&mut c, Algorithm::TripleDes, &key), 0x9000);
}

#[test]
fn admin_counter_blocks_and_resets() {
    let mut cfg = IsoConfig::factory();
    cfg.admin_max_tries = 3;
    cfg.admin_tries_left = 3;
    let mut c = card(cfg);
    let alg = Algorithm::TripleDes;
    assert_eq!(admin_auth(&mut c, alg, &[0x10; 24]), 0x63C2);
    assert_eq!(admin_auth(&mut c, alg, &DEFAULT_MGMT_KEY), 0x9000);
    assert_eq!(c.admin_tries_left(), Some(3));
    assert_eq!(admin_auth(&mut c, alg, &[0x10; 24]), 0x63C2);
    assert_eq!(admin_auth(&mut c, alg, &[0x10; 24]), 0x63C1);
    assert_eq!(admin_auth(&mut c, alg, &[0x10; 24]), 0x6983);
    assert_eq!(admin_auth(&mut c, alg, &DEFAULT_MGMT_KEY), 0x6983);
    c.reset();
    select_iso(&mut c);
    assert_eq!(admin_auth(&mut c, alg, &DEFAULT_MGMT_KEY), 0x6983);
    assert_eq!(c.admin_tries_left(), Some(0));
}

#[test]
fn external_authenticate_preconditions() {
    let alg = Algorithm::TripleDes;
    let mut c = card(IsoConfig::factory());
    // No challenge.
    assert_eq!(external_auth(&mut c, 0x01, &[0; 8]), 0x6985);
    // Wrong key reference: refused, challenge consumed, no try burnt.
    let ch = get_challenge(&mut c, 8);
    let r = ecb_encrypt(alg, &DEFAULT_MGMT_KEY, &ch);
    assert_eq!(external_auth(&mut c, 0x02, &r), 0x6A88);
    assert_eq!(external_auth(&mut c, 0x01, &r), 0x6985);
    // Wrong length: 6A 80, no try burnt, challenge consumed.
    let ch = get_challenge(&mut c, 8);
    let r = ecb_encrypt(alg, &DEFAULT_MGMT_KEY, &ch);
    assert_eq!(external_auth(&mut c, 0x01, &r[..4]), 0x6A80);
    assert_eq!(external_auth(&mut c, 0x01, &r), 0x6985);
    assert_eq!(sw(&mut c, &apdu(0, 0x82, 0x01, 0x01, &r, None)), 0x6A86);
    assert_eq!(c.admin_tries_left(), Some(10));
}

#[test]
fn challenge_is_single_use() {
    let alg = Algorithm::TripleDes;
    let mut c = card(IsoConfig::factory());
    let ch = get_challenge(&mut c, 8);
    let r = ecb_encrypt(alg, &DEFAULT_MGMT_KEY, &ch);
    assert_eq!(external_auth(&mut c, 0x01, &r), 0x9000);
    // Replay.
    assert_eq!(external_auth(&mut c, 0x01, &r), 0x6985);
    // Consumed by a wrong attempt too.
    let ch = get_challenge(&mut c, 8);
    assert_eq!(external_auth(&mut c, 0x01, &[0; 8]), 0x63C9);
    let r = ecb_encrypt(alg, &DEFAULT_MGMT_KEY, &ch);
    assert_eq!(external_auth(&mut c, 0x01, &r), 0x6985);
}

#[test]
fn challenge_is_dropped_by_other_commands_and_select() {
    let alg = Algorithm::Aes256;
    let key = KEYS[3].1;
    let between: [&[u8]; 5] = [
        &hex!("00 CA 01 00 00"),
        &hex!("00 20 00 80"),
        &hex!("00 A4 04 0C 08 F0 43 55 4E 4C 4F 43 4B"),
        &hex!("00 B0 00 00 00"),
        &hex!("00 84"),
    ];
    for cmd in between {
        let mut c = card(with_key(alg, key));
        let ch = get_challenge(&mut c, 16);
        c.transmit(cmd);
        let r = ecb_encrypt(alg, key, &ch);
        assert_eq!(external_auth(&mut c, 0x01, &r), 0x6985, "{cmd:02X?}");
    }
    // reset() too.
    let mut c = card(with_key(alg, key));
    let ch = get_challenge(&mut c, 16);
    c.reset();
    select_iso(&mut c);
    assert_eq!(
        external_auth(&mut c, 0x01, &ecb_encrypt(alg, key, &ch)),
        0x6985
    );
}

#[test]
fn unblock_consumes_the_admin_status() {
    let alg = Algorithm::TripleDes;
    let mut c = card(IsoConfig::factory().blocked());
    assert_eq!(sw(&mut c, &hex!("00 20 00 80")), 0x6983);
    assert_eq!(sw(&mut c, &hex!("00 2C 02 80 04 35 36 37 38")), 0x6982);
    assert_eq!(admin_auth(&mut c, alg, &DEFAULT_MGMT_KEY), 0x9000);
    // Bad lengths keep the admin status.
    assert_eq!(sw(&mut c, &hex!("00 2C 02 80 03 35 36 37")), 0x6A80);
    assert_eq!(
        sw(
            &mut c,
            &hex!("00 2C 02 80 11 31 32 33 34 35 36 37 38 31 32 33 34 35 36 37 38 39")
        ),
        0x6A80
    );
    assert_eq!(sw(&mut c, &hex!("00 2C 02 81 04 35 36 37 38")), 0x6A88);
    assert_eq!(sw(&mut c, &hex!("00 2C 00 80 04 35 36 37 38")), 0x6A86);
    assert!(c.admin_authenticated());
    // 16 bytes is the maximum.
    assert_eq!(
        sw(
            &mut c,
            &hex!("00 2C 02 80 10 31 32 33 34 35 36 37 38 31 32 33 34 35 36 37 38")
        ),
        0x9000
    );
    assert!(c.pin_is(b"1234567812345678"));
    assert_eq!(c.pin_tries_left(), 3);
    assert!(!c.admin_authenticated());
    assert!(!c.pin_verified());
    assert_eq!(sw(&mut c, &hex!("00 2C 02 80 04 35 36 37 38")), 0x6982);
    assert_eq!(sw(&mut c, &hex!("00 20 00 80")), 0x63C3);
    assert_eq!(
        sw(
            &mut c,
            &hex!("00 20 00 80 10 31 32 33 34 35 36 37 38 31 32 33 34 35 36 37 38")
        ),
        0x9000
    );
}

#[test]
fn verify_and_references() {
    let mut cfg = IsoConfig::factory();
    cfg.pin_ref = 0x81;
    cfg.admin_key_ref = 0x0B;
    let mut c = card(cfg);
    scenario(
        &mut c,
        &[
            (&hex!("00 20 00 80 04 31 32 33 34"), &hex!("6A 88")),
            (&hex!("00 20 00 81"), &hex!("63 C3")),
            (&hex!("00 20 00 81 04 31 32 33 30"), &hex!("63 C2")),
            (&hex!("00 20 00 81 03 31 32 33"), &hex!("6A 80")),
            (&hex!("00 20 00 81 04 31 32 33 34"), &hex!("90 00")),
            (&hex!("00 20 00 81"), &hex!("90 00")),
        ],
    );
    assert_eq!(c.pin_tries_left(), 3);
    let ch = get_challenge(&mut c, 8);
    let r = ecb_encrypt(Algorithm::TripleDes, &DEFAULT_MGMT_KEY, &ch);
    assert_eq!(external_auth(&mut c, 0x0B, &r), 0x9000);
    assert_eq!(sw(&mut c, &hex!("00 2C 02 81 04 39 39 39 39")), 0x9000);
    assert!(c.pin_is(b"9999"));
}

#[test]
fn wrong_pin_blocks() {
    let mut c = card(IsoConfig::factory());
    scenario(
        &mut c,
        &[
            (&hex!("00 20 00 80 04 30 30 30 30"), &hex!("63 C2")),
            (&hex!("00 20 00 80 04 30 30 30 30"), &hex!("63 C1")),
            (&hex!("00 20 00 80 04 30 30 30 30"), &hex!("69 83")),
            (&hex!("00 20 00 80 04 31 32 33 34"), &hex!("69 83")),
        ],
    );
    assert_eq!(c.pin_tries_left(), 0);
}

#[test]
fn get_data_serial() {
    let mut cfg = IsoConfig::factory();
    cfg.serial = hex!("00112233445566778899AABBCCDDEEFF");
    let mut c = card(cfg);
    assert_eq!(
        tx(&mut c, &hex!("00 CA 01 00 00")),
        (hex!("00112233445566778899AABBCCDDEEFF").to_vec(), 0x9000)
    );
    assert_eq!(tx(&mut c, &hex!("00 CA 01 00")).1, 0x9000);
    assert_eq!(sw(&mut c, &hex!("00 CA 9F 7F 00")), 0x6A88);
}

#[test]
fn unknown_instructions() {
    let mut c = card(IsoConfig::factory());
    for ins in [0x87u8, 0x22, 0xCB, 0xF8, 0xB0] {
        assert_eq!(
            sw(&mut c, &[0x00, ins, 0x00, 0x00]),
            0x6D00,
            "INS {ins:02X}"
        );
    }
}
