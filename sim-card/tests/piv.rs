//! PIV profile: SELECT, PIN/PUK handling, metadata, data objects.

mod common;

use cardunlock_sim::{Config, PivConfig, SimCard, DEFAULT_MGMT_KEY};
use common::*;
use hex_literal::hex;

const APT_OK: [u8; 21] = hex!("61 11 4F 06 00 00 10 00 01 00 79 07 4F 05 A0 00 00 03 08 90 00");

fn factory() -> SimCard {
    SimCard::new(Config::Piv(PivConfig::factory()))
}

fn selected(cfg: PivConfig) -> SimCard {
    let mut card = SimCard::new(Config::Piv(cfg));
    select_piv(&mut card);
    card
}

fn verify(pin: &[u8]) -> Vec<u8> {
    apdu(0x00, 0x20, 0x00, 0x80, &piv_field(pin), None)
}

fn rrc(puk: &[u8], new_pin: &[u8]) -> Vec<u8> {
    let mut data = piv_field(puk);
    data.extend_from_slice(&piv_field(new_pin));
    apdu(0x00, 0x2C, 0x00, 0x80, &data, None)
}

fn rrc_raw(puk: &[u8; 8], new_pin: &[u8; 8]) -> Vec<u8> {
    let mut data = puk.to_vec();
    data.extend_from_slice(new_pin);
    apdu(0x00, 0x2C, 0x00, 0x80, &data, None)
}

fn change(p2: u8, old: &[u8], new: &[u8]) -> Vec<u8> {
    let mut data = piv_field(old);
    data.extend_from_slice(&piv_field(new));
    apdu(0x00, 0x24, 0x00, p2, &data, None)
}

const STATUS: [u8; 4] = hex!("00 20 00 80");

#[test]
fn factory_state() {
    let card = factory();
    assert!(card.pin_is(b"123456"));
    assert!(card.puk_is(b"12345678"));
    assert!(card.mgmt_key_is(cardunlock_sim::Algorithm::TripleDes, &DEFAULT_MGMT_KEY));
    assert!(!card.mgmt_key_is(cardunlock_sim::Algorithm::Aes192, &DEFAULT_MGMT_KEY));
    assert_eq!(card.pin_tries_left(), 3);
    assert_eq!(card.puk_tries_left(), Some(3));
    assert_eq!(card.admin_tries_left(), None);
    assert_eq!(card.profile(), cardunlock_sim::Profile::Piv);
    assert!(!card.is_selected());
}

#[test]
fn select_accepts_truncated_full_and_versioned_aid() {
    let mut card = factory();
    scenario(
        &mut card,
        &[
            // yubico-piv-tool: 5-byte AID, Le absent.
            (&hex!("00 A4 04 00 05 A0 00 00 03 08"), &APT_OK),
            // docs/card-facts.md / OpenSC: 9-byte AID with Le.
            (
                &hex!("00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 00"),
                &APT_OK,
            ),
            // Full AID with version.
            (
                &hex!("00 A4 04 00 0B A0 00 00 03 08 00 00 10 00 01 00"),
                &APT_OK,
            ),
            // 7 bytes: still a prefix.
            (&hex!("00 A4 04 00 07 A0 00 00 03 08 00 00"), &APT_OK),
            // P2 0C: no response data.
            (&hex!("00 A4 04 0C 05 A0 00 00 03 08"), &hex!("90 00")),
            // Too short, wrong, too long.
            (&hex!("00 A4 04 00 04 A0 00 00 03"), &hex!("6A 82")),
            (&hex!("00 A4 04 00 05 A0 00 00 03 97"), &hex!("6A 82")),
            (
                &hex!("00 A4 04 00 0C A0 00 00 03 08 00 00 10 00 01 00 00"),
                &hex!("6A 82"),
            ),
            (&hex!("00 A4 04 00"), &hex!("6A 82")),
            // Wrong P1 / P2.
            (&hex!("00 A4 00 00 02 3F 00"), &hex!("6A 86")),
            (&hex!("00 A4 04 02 05 A0 00 00 03 08"), &hex!("6A 86")),
        ],
    );
}

#[test]
fn failed_select_keeps_current_selection() {
    let mut card = selected(PivConfig::factory());
    assert_eq!(sw(&mut card, &verify(b"123456")), 0x9000);
    assert_eq!(
        sw(&mut card, &hex!("00 A4 04 00 05 A0 00 00 03 97")),
        0x6A82
    );
    assert!(card.is_selected());
    assert_eq!(sw(&mut card, &STATUS), 0x9000);
}

#[test]
fn nothing_selected_answers_6985() {
    let mut card = factory();
    for cmd in [
        &STATUS[..],
        &verify(b"123456"),
        &hex!("00 F8 00 00"),
        &hex!("00 87 03 9B 04 7C 02 81 00"),
        &hex!("00 CB 3F FF 05 5C 03 5F C1 02 00"),
    ] {
        assert_eq!(sw(&mut card, cmd), 0x6985, "{cmd:02X?}");
    }
    // Unknown INS stays 6D 00 even when nothing is selected.
    assert_eq!(sw(&mut card, &hex!("00 DB 3F FF")), 0x6D00);
    assert_eq!(card.pin_tries_left(), 3);
}

#[test]
fn wrong_pin_counts_down_and_blocks() {
    let mut card = selected(PivConfig::factory());
    scenario(
        &mut card,
        &[
            (&STATUS, &hex!("63 C3")),
            (&verify(b"000000"), &hex!("63 C2")),
            (&STATUS, &hex!("63 C2")),
            (&verify(b"000001"), &hex!("63 C1")),
            (&verify(b"000002"), &hex!("69 83")),
            (&STATUS, &hex!("69 83")),
            // Blocked: even the right PIN is refused.
            (&verify(b"123456"), &hex!("69 83")),
        ],
    );
    assert_eq!(card.pin_tries_left(), 0);
    card.reset();
    select_piv(&mut card);
    assert_eq!(sw(&mut card, &STATUS), 0x6983);
}

#[test]
fn correct_pin_resets_counter_and_verifies() {
    let mut card = selected(PivConfig::factory());
    assert_eq!(sw(&mut card, &verify(b"654321")), 0x63C2);
    assert_eq!(sw(&mut card, &verify(b"123456")), 0x9000);
    assert_eq!(card.pin_tries_left(), 3);
    assert!(card.pin_verified());
    assert_eq!(sw(&mut card, &STATUS), 0x9000);
    // P1 = FF resets the verified status.
    assert_eq!(sw(&mut card, &hex!("00 20 FF 80")), 0x9000);
    assert_eq!(sw(&mut card, &STATUS), 0x63C3);
    // A wrong PIN after a right one drops the verified status.
    assert_eq!(sw(&mut card, &verify(b"123456")), 0x9000);
    assert_eq!(sw(&mut card, &verify(b"111111")), 0x63C2);
    assert_eq!(sw(&mut card, &STATUS), 0x63C2);
    // SELECT drops it too.
    assert_eq!(sw(&mut card, &verify(b"123456")), 0x9000);
    select_piv(&mut card);
    assert_eq!(sw(&mut card, &STATUS), 0x63C3);
}

#[test]
fn eight_digit_pin_without_padding() {
    let mut cfg = PivConfig::factory();
    cfg.pin = b"87654321".to_vec();
    let mut card = selected(cfg);
    assert_eq!(
        sw(&mut card, &hex!("00 20 00 80 08 38 37 36 35 34 33 32 31")),
        0x9000
    );
}

#[test]
fn malformed_verify_costs_no_try() {
    let mut card = selected(PivConfig::factory());
    scenario(
        &mut card,
        &[
            // 7 bytes of data.
            (&hex!("00 20 00 80 07 31 32 33 34 35 36 FF"), &hex!("6A 80")),
            // 9 bytes of data.
            (
                &hex!("00 20 00 80 09 31 32 33 34 35 36 FF FF FF"),
                &hex!("6A 80"),
            ),
            // 5-digit PIN.
            (
                &hex!("00 20 00 80 08 31 32 33 34 35 FF FF FF"),
                &hex!("6A 80"),
            ),
            // Non-FF after the padding started.
            (
                &hex!("00 20 00 80 08 31 32 33 34 35 36 FF 37"),
                &hex!("6A 80"),
            ),
            // P1 FF with data.
            (
                &hex!("00 20 FF 80 08 31 32 33 34 35 36 FF FF"),
                &hex!("6A 80"),
            ),
            // Wrong references / P1.
            (
                &hex!("00 20 00 81 08 31 32 33 34 35 36 37 38"),
                &hex!("6A 88"),
            ),
            (&hex!("00 20 00 00"), &hex!("6A 88")),
            (&hex!("00 20 01 80"), &hex!("6A 86")),
            (&STATUS, &hex!("63 C3")),
        ],
    );
    assert_eq!(card.pin_tries_left(), 3);
}

#[test]
fn blocked_config() {
    let mut card = selected(PivConfig::factory().blocked());
    assert_eq!(card.pin_tries_left(), 0);
    assert_eq!(sw(&mut card, &STATUS), 0x6983);
    assert_eq!(sw(&mut card, &verify(b"123456")), 0x6983);
}

#[test]
fn reset_retry_counter_unblocks_and_leaves_pin_unverified() {
    let mut card = selected(PivConfig::factory().blocked());
    // One wrong PUK first, to see the PUK counter reset too.
    assert_eq!(sw(&mut card, &rrc(b"00000000", b"246810")), 0x63C2);
    assert_eq!(card.puk_tries_left(), Some(2));
    assert_eq!(sw(&mut card, &rrc(b"12345678", b"246810")), 0x9000);
    assert!(card.pin_is(b"246810"));
    assert!(!card.pin_is(b"123456"));
    assert_eq!(card.pin_tries_left(), 3);
    assert_eq!(card.puk_tries_left(), Some(3));
    assert!(!card.pin_verified());
    // Unverified: the status query reports tries, not 90 00.
    assert_eq!(sw(&mut card, &STATUS), 0x63C3);
    assert_eq!(sw(&mut card, &verify(b"123456")), 0x63C2);
    assert_eq!(sw(&mut card, &verify(b"246810")), 0x9000);
}

#[test]
fn reset_retry_counter_drops_a_verified_status() {
    let mut card = selected(PivConfig::factory());
    assert_eq!(sw(&mut card, &verify(b"123456")), 0x9000);
    assert_eq!(sw(&mut card, &rrc(b"12345678", b"13572468")), 0x9000);
    assert!(!card.pin_verified());
    assert_eq!(sw(&mut card, &STATUS), 0x63C3);
}

#[test]
fn wrong_puk_counts_down_and_blocks() {
    let mut card = selected(PivConfig::factory().blocked());
    scenario(
        &mut card,
        &[
            (&rrc(b"11111111", b"246810"), &hex!("63 C2")),
            (&rrc(b"22222222", b"246810"), &hex!("63 C1")),
            (&rrc(b"33333333", b"246810"), &hex!("69 83")),
            (&rrc(b"12345678", b"246810"), &hex!("69 83")),
        ],
    );
    assert_eq!(card.puk_tries_left(), Some(0));
    assert!(card.pin_is(b"123456"));
    // Still blocked after a power cycle.
    card.reset();
    select_piv(&mut card);
    assert_eq!(sw(&mut card, &rrc(b"12345678", b"246810")), 0x6983);
    // GET METADATA reports the PUK counter.
    let (data, s) = tx(&mut card, &hex!("00 F7 00 81"));
    assert_eq!(s, 0x9000);
    assert_eq!(data, hex!("01 01 FF 05 01 01 06 02 03 00"));
}

#[test]
fn malformed_new_pin_costs_no_try() {
    let mut card = selected(PivConfig::factory().blocked());
    for new_pin in [
        &hex!("31 32 33 34 35 FF FF FF"), // 5 digits
        &hex!("FF FF FF FF FF FF FF FF"), // empty
        &hex!("31 32 33 FF 34 35 36 FF"), // FF inside
        &hex!("31 32 33 34 35 36 FF 00"), // padding not FF
    ] {
        // Even with a WRONG PUK the format error comes first: no PUK try burnt.
        let wrong_puk = rrc_raw(b"99999999", new_pin);
        assert_eq!(sw(&mut card, &wrong_puk), 0x6A80, "{new_pin:02X?}");
        let right_puk = rrc_raw(b"12345678", new_pin);
        assert_eq!(sw(&mut card, &right_puk), 0x6A80, "{new_pin:02X?}");
    }
    // Malformed PUK field, wrong lengths.
    assert_eq!(
        sw(
            &mut card,
            &rrc_raw(&hex!("31 32 33 FF FF FF FF FF"), b"24681012")
        ),
        0x6A80
    );
    assert_eq!(
        sw(&mut card, &hex!("00 2C 00 80 08 31 32 33 34 35 36 37 38")),
        0x6A80
    );
    assert_eq!(sw(&mut card, &hex!("00 2C 00 80")), 0x6A80);
    assert_eq!(card.puk_tries_left(), Some(3));
    assert_eq!(card.pin_tries_left(), 0);
    // Wrong P1 / P2.
    assert_eq!(
        sw(&mut card, &apdu(0, 0x2C, 0x01, 0x80, &[0; 16], None)),
        0x6A86
    );
    assert_eq!(
        sw(&mut card, &apdu(0, 0x2C, 0x00, 0x81, &[0; 16], None)),
        0x6A88
    );
}

#[test]
fn pin_complexity_refuses_trivial_pins_without_a_try() {
    let mut cfg = PivConfig::factory().blocked();
    cfg.enforce_pin_complexity = true;
    let mut card = selected(cfg);
    for trivial in [
        &b"123456"[..],
        b"000000",
        b"111111",
        b"654321",
        b"12345678",
        b"99999999",
    ] {
        assert_eq!(
            sw(&mut card, &rrc(b"12345678", trivial)),
            0x6985,
            "{trivial:?}"
        );
        // Complexity is checked before the PUK: a wrong PUK does not burn a try either.
        assert_eq!(
            sw(&mut card, &rrc(b"00000000", trivial)),
            0x6985,
            "{trivial:?}"
        );
    }
    assert_eq!(card.puk_tries_left(), Some(3));
    // A malformed PIN is still 6A 80 (format before complexity).
    assert_eq!(sw(&mut card, &rrc(b"12345678", b"11111")), 0x6A80);
    assert_eq!(sw(&mut card, &rrc(b"12345678", b"90210384")), 0x9000);
    assert!(card.pin_is(b"90210384"));
    // CHANGE REFERENCE DATA of the PIN is checked too.
    assert_eq!(sw(&mut card, &change(0x80, b"90210384", b"222222")), 0x6985);
    assert_eq!(card.pin_tries_left(), 3);
}

#[test]
fn without_complexity_trivial_pins_are_accepted() {
    let mut card = selected(PivConfig::factory().blocked());
    assert_eq!(sw(&mut card, &rrc(b"12345678", b"000000")), 0x9000);
    assert!(card.pin_is(b"000000"));
}

#[test]
fn change_pin() {
    let mut card = selected(PivConfig::factory());
    assert_eq!(sw(&mut card, &change(0x80, b"123456", b"8675309")), 0x9000);
    assert!(card.pin_is(b"8675309"));
    assert!(card.pin_verified());
    assert_eq!(sw(&mut card, &STATUS), 0x9000);
    scenario(
        &mut card,
        &[
            (&change(0x80, b"123456", b"111111"), &hex!("63 C2")),
            (&STATUS, &hex!("63 C2")),
            // Malformed new value: no try burnt, even with a wrong old value.
            (&change(0x80, b"000000", b"12345"), &hex!("6A 80")),
            // Malformed old value: no try burnt.
            (&change(0x80, b"12345", b"123456"), &hex!("6A 80")),
            (&STATUS, &hex!("63 C2")),
            (&change(0x80, b"123456", b"111111"), &hex!("63 C1")),
            (&change(0x80, b"123456", b"111111"), &hex!("69 83")),
            (&change(0x80, b"8675309", b"111111"), &hex!("69 83")),
        ],
    );
    assert!(card.pin_is(b"8675309"));
    assert_eq!(
        sw(&mut card, &apdu(0, 0x24, 0x00, 0x82, &[0x31; 16], None)),
        0x6A88
    );
    assert_eq!(
        sw(&mut card, &apdu(0, 0x24, 0x01, 0x80, &[0x31; 16], None)),
        0x6A86
    );
}

#[test]
fn change_puk() {
    let mut card = selected(PivConfig::factory());
    // docs/card-facts.md: 00 24 00 81 10 <old PUK 8> <new PUK 8>.
    assert_eq!(
        sw(
            &mut card,
            &hex!("00 24 00 81 10 31 32 33 34 35 36 37 38 38 37 36 35 34 33 32 31")
        ),
        0x9000
    );
    assert!(card.puk_is(b"87654321"));
    // 6-byte PUK with padding is fine; a 5-byte one is not.
    assert_eq!(sw(&mut card, &change(0x81, b"87654321", b"A1B2C3")), 0x9000);
    assert!(card.puk_is(b"A1B2C3"));
    assert_eq!(sw(&mut card, &change(0x81, b"A1B2C3", b"A1B2C")), 0x6A80);
    assert_eq!(
        sw(&mut card, &change(0x81, b"wrongpuk", b"A1B2C3D4")),
        0x63C2
    );
    assert_eq!(card.puk_tries_left(), Some(2));
    assert_eq!(card.pin_tries_left(), 3);
    // The new PUK unblocks.
    assert_eq!(sw(&mut card, &rrc(b"A1B2C3", b"13572468")), 0x9000);
    assert_eq!(card.puk_tries_left(), Some(3));
}

#[test]
fn metadata() {
    let mut card = selected(PivConfig::factory());
    scenario(
        &mut card,
        &[
            (
                &hex!("00 F7 00 9B"),
                &hex!("01 01 03 02 02 00 01 05 01 01 90 00"),
            ),
            (
                &hex!("00 F7 00 80"),
                &hex!("01 01 FF 05 01 01 06 02 03 03 90 00"),
            ),
            (
                &hex!("00 F7 00 81 00"),
                &hex!("01 01 FF 05 01 01 06 02 03 03 90 00"),
            ),
            (&verify(b"999999"), &hex!("63 C2")),
            (
                &hex!("00 F7 00 80"),
                &hex!("01 01 FF 05 01 01 06 02 03 02 90 00"),
            ),
            (&hex!("00 F7 00 9A"), &hex!("6A 88")),
            (&hex!("00 F7 01 80"), &hex!("6A 86")),
            (&change(0x80, b"123456", b"24681357"), &hex!("90 00")),
            (
                &hex!("00 F7 00 80"),
                &hex!("01 01 FF 05 01 00 06 02 03 03 90 00"),
            ),
        ],
    );
}

#[test]
fn metadata_for_aes192_default_key_and_custom_key() {
    let mut cfg = PivConfig::factory();
    cfg.mgmt_algorithm = cardunlock_sim::Algorithm::Aes192;
    let mut card = selected(cfg.clone());
    assert_eq!(
        tx(&mut card, &hex!("00 F7 00 9B")).0,
        hex!("01 01 0A 02 02 00 01 05 01 01")
    );
    cfg.mgmt_algorithm = cardunlock_sim::Algorithm::Aes128;
    cfg.mgmt_key = vec![0x42; 16];
    let mut card = selected(cfg);
    assert_eq!(
        tx(&mut card, &hex!("00 F7 00 9B")).0,
        hex!("01 01 08 02 02 00 01 05 01 00")
    );
}

#[test]
fn no_metadata_card() {
    let mut cfg = PivConfig::factory();
    cfg.supports_metadata = false;
    let mut card = selected(cfg);
    assert_eq!(sw(&mut card, &hex!("00 F7 00 9B")), 0x6D00);
    assert_eq!(
        tx(&mut card, &hex!("00 FD 00 00")),
        (hex!("04 03 07").to_vec(), 0x9000)
    );
}

#[test]
fn serial_and_version() {
    let mut cfg = PivConfig::factory();
    cfg.serial = 0x0102_0304;
    let mut card = selected(cfg);
    scenario(
        &mut card,
        &[
            (&hex!("00 F8 00 00"), &hex!("01 02 03 04 90 00")),
            (&hex!("00 F8 00 00 00"), &hex!("01 02 03 04 90 00")),
            (&hex!("00 FD 00 00"), &hex!("05 07 01 90 00")),
            (&hex!("00 F8 01 00"), &hex!("6A 86")),
        ],
    );
}

#[test]
fn chuid_and_discovery() {
    let mut cfg = PivConfig::factory();
    cfg.guid = hex!("00 11 22 33 44 55 66 77 88 99 AA BB CC DD EE FF");
    let mut card = selected(cfg);
    let chuid = hex!(
        "53 3B"
        "30 19 D4 E7 39 DA 73 9C ED 39 CE 73 9D 83 68 58 21 08 42 10 84 21 C8 42 10 C3 EB"
        "34 10 00 11 22 33 44 55 66 77 88 99 AA BB CC DD EE FF"
        "35 08 32 30 33 35 31 32 33 31"
        "3E 00 FE 00"
    );
    let (data, s) = tx(&mut card, &hex!("00 CB 3F FF 05 5C 03 5F C1 02 00"));
    assert_eq!(s, 0x9000);
    assert_eq!(data, chuid);
    // Le absent too.
    let (data, _) = tx(&mut card, &hex!("00 CB 3F FF 05 5C 03 5F C1 02"));
    assert_eq!(data, chuid);
    scenario(
        &mut card,
        &[
            (
                &hex!("00 CB 3F FF 03 5C 01 7E 00"),
                &hex!("7E 12 4F 0B A0 00 00 03 08 00 00 10 00 01 00 5F 2F 02 40 00 90 00"),
            ),
            // Certificates and other objects are absent.
            (&hex!("00 CB 3F FF 05 5C 03 5F C1 05 00"), &hex!("6A 82")),
            (&hex!("00 CB 3F FF 05 5C 03 5F C1 07 00"), &hex!("6A 82")),
            // Malformed tag lists, wrong P1-P2.
            (&hex!("00 CB 3F FF 05 5C 04 5F C1 02 00"), &hex!("6A 80")),
            (&hex!("00 CB 3F FF 03 5D 01 7E 00"), &hex!("6A 80")),
            (&hex!("00 CB 3F FF 00"), &hex!("6A 80")),
            (&hex!("00 CB 3F 00 03 5C 01 7E 00"), &hex!("6A 86")),
        ],
    );
}

#[test]
fn unknown_instructions() {
    let mut card = selected(PivConfig::factory());
    for ins in [0xDBu8, 0xFA, 0xFB, 0xF9, 0x84, 0x82, 0x22, 0xCA, 0x00] {
        assert_eq!(
            sw(&mut card, &[0x00, ins, 0x00, 0x00]),
            0x6D00,
            "INS {ins:02X}"
        );
    }
}
