//! PIV management-key (9B) authentication, single and mutual, for every algorithm, with the
//! host side computed here; the test vectors of docs/card-facts.md; SET MANAGEMENT KEY.

mod common;

use cardunlock_sim::{Algorithm, Config, Options, PivConfig, SimCard, DEFAULT_MGMT_KEY};
use common::*;
use hex_literal::hex;

const ALL: [Algorithm; 4] = [
    Algorithm::TripleDes,
    Algorithm::Aes128,
    Algorithm::Aes192,
    Algorithm::Aes256,
];

fn key_for(alg: Algorithm) -> Vec<u8> {
    match alg {
        Algorithm::TripleDes => hex!("0123456789ABCDEF 23456789ABCDEF01 456789ABCDEF0123").to_vec(),
        Algorithm::Aes128 => hex!("11223344556677881122334455667788").to_vec(),
        Algorithm::Aes192 => DEFAULT_MGMT_KEY.to_vec(),
        Algorithm::Aes256 => {
            hex!("1122334455667788112233445566778811223344556677881122334455667788").to_vec()
        }
    }
}

fn card_with(alg: Algorithm, key: &[u8]) -> SimCard {
    let mut cfg = PivConfig::factory();
    cfg.mgmt_algorithm = alg;
    cfg.mgmt_key = key.to_vec();
    let mut card = SimCard::new(Config::Piv(cfg));
    select_piv(&mut card);
    card
}

fn ga(alg: Algorithm, data: &[u8]) -> Vec<u8> {
    apdu(0x00, 0x87, alg.piv_id(), 0x9B, data, Some(0x00))
}

/// Single (external) authentication as OpenSC's `piv_general_external_authenticate`.
fn single_auth(card: &mut SimCard, alg: Algorithm, host_key: &[u8]) -> u16 {
    let (data, s) = tx(card, &ga(alg, &hex!("7C 02 81 00")));
    assert_eq!(s, 0x9000);
    let challenge = template_value(&data, 0x81);
    assert_eq!(challenge.len(), alg.block_len());
    let response = ecb_encrypt(alg, host_key, &challenge);
    sw(card, &ga(alg, &template(&[(0x82, &response)])))
}

/// Mutual authentication as yubico-piv-tool / OpenSC do it; `trailer` appends `82 00`.
/// Returns the SW and, on success, checks the card's answer to our challenge.
fn mutual_auth(card: &mut SimCard, alg: Algorithm, host_key: &[u8], trailer: bool) -> u16 {
    let (data, s) = tx(card, &ga(alg, &hex!("7C 02 80 00")));
    assert_eq!(s, 0x9000);
    let encrypted_witness = template_value(&data, 0x80);
    assert_eq!(encrypted_witness.len(), alg.block_len());
    let witness = ecb_decrypt(alg, host_key, &encrypted_witness);
    let challenge: Vec<u8> = (0..alg.block_len() as u8)
        .map(|i| i.wrapping_mul(37))
        .collect();
    let mut items: Vec<(u8, &[u8])> = vec![(0x80, &witness), (0x81, &challenge)];
    if trailer {
        items.push((0x82, &[]));
    }
    let (data, s) = tx(card, &ga(alg, &template(&items)));
    if s == 0x9000 {
        let answer = template_value(&data, 0x82);
        assert_eq!(answer, ecb_encrypt(alg, host_key, &challenge));
    } else {
        assert!(data.is_empty());
    }
    s
}

#[test]
fn single_auth_all_algorithms_right_and_wrong_key() {
    for alg in ALL {
        let key = key_for(alg);
        let mut card = card_with(alg, &key);
        assert_eq!(single_auth(&mut card, alg, &key), 0x9000, "{alg:?}");
        assert!(card.admin_authenticated(), "{alg:?}");

        let mut wrong = key.clone();
        wrong[0] ^= 0x01 << 1; // not just a DES parity bit
        let mut card = card_with(alg, &key);
        assert_eq!(single_auth(&mut card, alg, &wrong), 0x6982, "{alg:?}");
        assert!(!card.admin_authenticated(), "{alg:?}");
    }
}

#[test]
fn mutual_auth_all_algorithms_right_and_wrong_key() {
    for alg in ALL {
        let key = key_for(alg);
        for trailer in [false, true] {
            let mut card = card_with(alg, &key);
            assert_eq!(
                mutual_auth(&mut card, alg, &key, trailer),
                0x9000,
                "{alg:?}"
            );
            assert!(card.admin_authenticated());

            let mut wrong = key.clone();
            wrong[5] ^= 0x10;
            let mut card = card_with(alg, &key);
            assert_eq!(
                mutual_auth(&mut card, alg, &wrong, trailer),
                0x6982,
                "{alg:?}"
            );
            assert!(!card.admin_authenticated());
        }
    }
}

#[test]
fn factory_key_with_alg_00_and_default_3des() {
    let mut card = SimCard::new(Config::Piv(PivConfig::factory()));
    select_piv(&mut card);
    // P1 00 is accepted for 3DES.
    let (data, s) = tx(&mut card, &hex!("00 87 00 9B 04 7C 02 81 00"));
    assert_eq!(s, 0x9000);
    let c = template_value(&data, 0x81);
    let r = ecb_encrypt(Algorithm::TripleDes, &DEFAULT_MGMT_KEY, &c);
    let mut cmd = hex!("00 87 00 9B 0C 7C 0A 82 08").to_vec();
    cmd.extend_from_slice(&r);
    assert_eq!(sw(&mut card, &cmd), 0x9000);
    assert!(card.admin_authenticated());
}

#[test]
fn failed_attempt_clears_authenticated_status() {
    let key = key_for(Algorithm::TripleDes);
    let mut card = card_with(Algorithm::TripleDes, &key);
    assert_eq!(single_auth(&mut card, Algorithm::TripleDes, &key), 0x9000);
    assert_eq!(
        single_auth(&mut card, Algorithm::TripleDes, &[0x55; 24]),
        0x6982
    );
    assert!(!card.admin_authenticated());
}

/// Mutual authentication with a chosen host challenge: the card's answer is E_K(challenge).
fn card_encrypts(alg: Algorithm, key: &[u8], block: &[u8]) -> Vec<u8> {
    let mut card = card_with(alg, key);
    let (data, _) = tx(&mut card, &ga(alg, &hex!("7C 02 80 00")));
    let witness = ecb_decrypt(alg, key, &template_value(&data, 0x80));
    let (data, s) = tx(
        &mut card,
        &ga(alg, &template(&[(0x80, &witness), (0x81, block)])),
    );
    assert_eq!(s, 0x9000);
    template_value(&data, 0x82)
}

/// (algorithm, key, plaintext block, ciphertext block).
type Vector<'a> = (Algorithm, &'a [u8], &'a [u8], &'a [u8]);

#[test]
fn design_test_vectors_through_the_card() {
    let k = DEFAULT_MGMT_KEY;
    let k3 = hex!("1122334455667788 1122334455667788 1122334455667788");
    let a128 = hex!("11223344556677881122334455667788");
    let a256 = hex!("1122334455667788112233445566778811223344556677881122334455667788");
    let seq = hex!("000102030405060708090A0B0C0D0E0F");
    let vectors: [Vector; 8] = [
        (
            Algorithm::TripleDes,
            &k,
            &hex!("D4BD9B1DA5D26CDA"),
            &hex!("B5A85C0F0207FCF1"),
        ),
        (
            Algorithm::TripleDes,
            &k,
            &hex!("0000000000000000"),
            &hex!("B073DC3FB209536D"),
        ),
        (
            Algorithm::TripleDes,
            &k,
            &hex!("1122334455667788"),
            &hex!("6C5E94DCADD39F1D"),
        ),
        // D_K(61E204AE335B3258) = 1A0443DF8C72D551, i.e. E_K(1A04..) = 61E2...
        (
            Algorithm::TripleDes,
            &k,
            &hex!("1A0443DF8C72D551"),
            &hex!("61E204AE335B3258"),
        ),
        (
            Algorithm::TripleDes,
            &k3,
            &hex!("0001020304050607"),
            &hex!("9AB9B188B16A6240"),
        ),
        (
            Algorithm::Aes128,
            &a128,
            &seq,
            &hex!("667B4A8F5921D46630426D94B0041D00"),
        ),
        (
            Algorithm::Aes192,
            &k,
            &seq,
            &hex!("3F92E2FCE73F9D83187C140D035F7EDC"),
        ),
        (
            Algorithm::Aes256,
            &a256,
            &seq,
            &hex!("B8A84A8CBE8D810D3161322B6448D203"),
        ),
    ];
    for (alg, key, plain, cipher) in vectors {
        // The host helper agrees with the vector...
        assert_eq!(ecb_encrypt(alg, key, plain), cipher, "host {alg:?}");
        // ...and so does the card.
        assert_eq!(
            card_encrypts(alg, key, plain),
            cipher,
            "card {alg:?} {plain:02X?}"
        );
    }
    assert_eq!(
        ecb_decrypt(Algorithm::TripleDes, &k, &hex!("61E204AE335B3258")),
        hex!("1A0443DF8C72D551")
    );
}

#[test]
fn three_part_3des_key_sp800_67_vector() {
    // SP 800-67 example: three different key parts (the default key is single DES in disguise).
    let key = key_for(Algorithm::TripleDes);
    assert_eq!(
        card_encrypts(Algorithm::TripleDes, &key, b"The qufc"),
        hex!("A826FD8CE53B855F")
    );
    assert_eq!(
        card_encrypts(Algorithm::TripleDes, &key, b"k brown "),
        hex!("CCE21C8112256FE6")
    );
    // A key with K1 = K2 = K3 taken from the first part must not authenticate.
    let mut single = key[..8].to_vec();
    single.extend_from_slice(&key[..8]);
    single.extend_from_slice(&key[..8]);
    let mut card = card_with(Algorithm::TripleDes, &key);
    assert_eq!(
        single_auth(&mut card, Algorithm::TripleDes, &single),
        0x6982
    );
}

#[test]
fn algorithm_and_key_reference_checks() {
    let mut card = SimCard::new(Config::Piv(PivConfig::factory()));
    select_piv(&mut card);
    scenario(
        &mut card,
        &[
            // AES-192 id on a 3DES card (YubiKey 5.7 confusion): 6A 80.
            (&hex!("00 87 0A 9B 04 7C 02 81 00"), &hex!("6A 80")),
            (&hex!("00 87 08 9B 04 7C 02 81 00"), &hex!("6A 80")),
            (&hex!("00 87 07 9B 04 7C 02 81 00"), &hex!("6A 80")),
            // Key reference other than 9B.
            (&hex!("00 87 03 9A 04 7C 02 81 00"), &hex!("6A 86")),
            (&hex!("00 87 03 9D 04 7C 02 80 00"), &hex!("6A 86")),
            // Template errors.
            (&hex!("00 87 03 9B 04 7D 02 81 00"), &hex!("6A 80")),
            (&hex!("00 87 03 9B 04 7C 03 81 00"), &hex!("6A 80")),
            (&hex!("00 87 03 9B 05 7C 02 81 00 00"), &hex!("6A 80")),
            (&hex!("00 87 03 9B 04 7C 02 83 00"), &hex!("6A 80")),
            (&hex!("00 87 03 9B 06 7C 04 80 00 81 00"), &hex!("6A 80")),
            (&hex!("00 87 03 9B 04 7C 02 82 00"), &hex!("6A 80")),
            (&hex!("00 87 03 9B 02 7C 00"), &hex!("6A 80")),
            (&hex!("00 87 03 9B"), &hex!("6A 80")),
        ],
    );
    // AES card: 3DES ids refused.
    let mut card = card_with(Algorithm::Aes128, &key_for(Algorithm::Aes128));
    assert_eq!(sw(&mut card, &hex!("00 87 03 9B 04 7C 02 81 00")), 0x6A80);
    assert_eq!(sw(&mut card, &hex!("00 87 00 9B 04 7C 02 81 00")), 0x6A80);
}

#[test]
fn response_without_challenge_is_refused() {
    let alg = Algorithm::TripleDes;
    let key = key_for(alg);
    let mut card = card_with(alg, &key);
    assert_eq!(
        sw(&mut card, &ga(alg, &template(&[(0x82, &[0u8; 8])]))),
        0x6985
    );
    assert_eq!(
        sw(
            &mut card,
            &ga(alg, &template(&[(0x80, &[0u8; 8]), (0x81, &[0u8; 8])]))
        ),
        0x6985
    );
    // A challenge is pending, but the host answers as if it were a witness (and vice versa).
    tx(&mut card, &ga(alg, &hex!("7C 02 81 00")));
    assert_eq!(
        sw(
            &mut card,
            &ga(alg, &template(&[(0x80, &[0u8; 8]), (0x81, &[0u8; 8])]))
        ),
        0x6985
    );
    tx(&mut card, &ga(alg, &hex!("7C 02 80 00")));
    assert_eq!(
        sw(&mut card, &ga(alg, &template(&[(0x82, &[0u8; 8])]))),
        0x6985
    );
}

#[test]
fn wrong_response_length_is_6a80() {
    let alg = Algorithm::Aes128;
    let key = key_for(alg);
    let mut card = card_with(alg, &key);
    let (data, _) = tx(&mut card, &ga(alg, &hex!("7C 02 81 00")));
    let c = template_value(&data, 0x81);
    let r = ecb_encrypt(alg, &key, &c);
    assert_eq!(
        sw(&mut card, &ga(alg, &template(&[(0x82, &r[..8])]))),
        0x6A80
    );
    // The challenge was consumed by that attempt.
    assert_eq!(sw(&mut card, &ga(alg, &template(&[(0x82, &r)]))), 0x6985);
}

/// Get a challenge, run `between`, then answer it correctly; returns the final SW.
fn answer_after(between: &[&[u8]]) -> u16 {
    let alg = Algorithm::TripleDes;
    let key = key_for(alg);
    let mut card = card_with(alg, &key);
    let (data, _) = tx(&mut card, &ga(alg, &hex!("7C 02 81 00")));
    let r = ecb_encrypt(alg, &key, &template_value(&data, 0x81));
    for cmd in between {
        card.transmit(cmd);
    }
    sw(&mut card, &ga(alg, &template(&[(0x82, &r)])))
}

#[test]
fn challenge_is_dropped_by_select_and_other_commands() {
    assert_eq!(answer_after(&[]), 0x9000);
    assert_eq!(
        answer_after(&[&hex!("00 A4 04 00 05 A0 00 00 03 08")]),
        0x6985
    );
    // Even a failed SELECT.
    assert_eq!(
        answer_after(&[&hex!("00 A4 04 00 05 A0 00 00 03 09")]),
        0x6985
    );
    assert_eq!(answer_after(&[&hex!("00 20 00 80")]), 0x6985);
    assert_eq!(answer_after(&[&hex!("00 F8 00 00")]), 0x6985);
    assert_eq!(answer_after(&[&hex!("00 47 00 9A")]), 0x6985);
    assert_eq!(answer_after(&[&hex!("00 20 00")]), 0x6985);
    assert_eq!(answer_after(&[&hex!("80 F8 00 00")]), 0x6985);
    // A second challenge request replaces the first.
    assert_eq!(answer_after(&[&hex!("00 87 03 9B 04 7C 02 81 00")]), 0x6982);
}

#[test]
fn witness_is_dropped_by_select() {
    let alg = Algorithm::Aes256;
    let key = key_for(alg);
    let mut card = card_with(alg, &key);
    let (data, _) = tx(&mut card, &ga(alg, &hex!("7C 02 80 00")));
    let w = ecb_decrypt(alg, &key, &template_value(&data, 0x80));
    select_piv(&mut card);
    let cmd = ga(alg, &template(&[(0x80, &w), (0x81, &[7u8; 16])]));
    assert_eq!(sw(&mut card, &cmd), 0x6985);
}

#[test]
fn select_and_reset_drop_authenticated_status() {
    let alg = Algorithm::TripleDes;
    let key = key_for(alg);
    let mut card = card_with(alg, &key);
    assert_eq!(single_auth(&mut card, alg, &key), 0x9000);
    select_piv(&mut card);
    assert!(!card.admin_authenticated());
    assert_eq!(mutual_auth(&mut card, alg, &key, false), 0x9000);
    card.reset();
    assert!(!card.admin_authenticated());
}

#[test]
fn replayed_response_is_refused() {
    let alg = Algorithm::TripleDes;
    let key = key_for(alg);
    let mut card = card_with(alg, &key);
    let (data, _) = tx(&mut card, &ga(alg, &hex!("7C 02 81 00")));
    let answer = ga(
        alg,
        &template(&[(0x82, &ecb_encrypt(alg, &key, &template_value(&data, 0x81)))]),
    );
    assert_eq!(sw(&mut card, &answer), 0x9000);
    assert_eq!(sw(&mut card, &answer), 0x6985);
    // A new challenge differs, so the old answer is wrong for it.
    let (data2, _) = tx(&mut card, &ga(alg, &hex!("7C 02 81 00")));
    assert_ne!(data, data2);
    assert_eq!(sw(&mut card, &answer), 0x6982);

    // Mutual: replaying the witness answer.
    let (data, _) = tx(&mut card, &ga(alg, &hex!("7C 02 80 00")));
    let w = ecb_decrypt(alg, &key, &template_value(&data, 0x80));
    let answer = ga(alg, &template(&[(0x80, &w), (0x81, &[1u8; 8])]));
    assert_eq!(tx(&mut card, &answer).1, 0x9000);
    assert_eq!(sw(&mut card, &answer), 0x6985);
}

#[test]
fn challenge_survives_get_response() {
    // With tiny responses the host must fetch the challenge with GET RESPONSE before answering.
    let alg = Algorithm::Aes128;
    let key = key_for(alg);
    let mut cfg = PivConfig::factory();
    cfg.mgmt_algorithm = alg;
    cfg.mgmt_key = key.clone();
    let options = Options {
        max_response_data: 8,
        ..Options::default()
    };
    let mut card = SimCard::with_options(Config::Piv(cfg), options);
    select_piv_chunked(&mut card);
    let mut data = card.transmit(&ga(alg, &hex!("7C 02 81 00")));
    let mut all = Vec::new();
    loop {
        let (part, s) = data.split_at(data.len() - 2);
        all.extend_from_slice(part);
        if s[0] != 0x61 {
            assert_eq!(s, [0x90, 0x00]);
            break;
        }
        data = card.transmit(&[0x00, 0xC0, 0x00, 0x00, s[1]]);
    }
    assert_eq!(all.len(), 20);
    let r = ecb_encrypt(alg, &key, &template_value(&all, 0x81));
    assert_eq!(sw(&mut card, &ga(alg, &template(&[(0x82, &r)]))), 0x9000);
}

fn select_piv_chunked(card: &mut SimCard) {
    let r = card.transmit(&hex!("00 A4 04 00 05 A0 00 00 03 08"));
    assert_eq!(r[r.len() - 2], 0x61);
}

#[test]
fn set_management_key() {
    let alg = Algorithm::TripleDes;
    let mut card = card_with(alg, &DEFAULT_MGMT_KEY);
    let new3des = key_for(Algorithm::TripleDes);
    let mut set3des = hex!("00 FF FF FF 1B 03 9B 18").to_vec();
    set3des.extend_from_slice(&new3des);
    // Not authenticated.
    assert_eq!(sw(&mut card, &set3des), 0x6982);
    assert_eq!(single_auth(&mut card, alg, &DEFAULT_MGMT_KEY), 0x9000);
    assert_eq!(sw(&mut card, &set3des), 0x9000);
    assert!(card.mgmt_key_is(Algorithm::TripleDes, &new3des));
    // The old key no longer works, the new one does.
    assert_eq!(single_auth(&mut card, alg, &DEFAULT_MGMT_KEY), 0x6982);
    assert_eq!(single_auth(&mut card, alg, &new3des), 0x9000);
    assert_eq!(
        tx(&mut card, &hex!("00 F7 00 9B")).0,
        hex!("01 01 03 02 02 00 01 05 01 00")
    );

    // Switch to each AES length.
    for new_alg in [Algorithm::Aes128, Algorithm::Aes192, Algorithm::Aes256] {
        let key = key_for(new_alg);
        let mut cmd = vec![
            0x00,
            0xFF,
            0xFF,
            0xFF,
            (key.len() + 3) as u8,
            new_alg.piv_id(),
            0x9B,
        ];
        cmd.push(key.len() as u8);
        cmd.extend_from_slice(&key);
        assert_eq!(sw(&mut card, &cmd), 0x9000, "{new_alg:?}");
        assert!(card.mgmt_key_is(new_alg, &key));
        assert_eq!(tx(&mut card, &hex!("00 F7 00 9B")).0[2], new_alg.piv_id());
        assert_eq!(
            mutual_auth(&mut card, new_alg, &key, false),
            0x9000,
            "{new_alg:?}"
        );
    }
    // Touch-required P2 FE works; malformed requests do not change the key.
    let keep = key_for(Algorithm::Aes256);
    let bad: [&[u8]; 5] = [
        &hex!("00 FF FF FF 13 08 9B 18 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"),
        &hex!("00 FF FF FF 13 08 9A 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"),
        &hex!("00 FF FF FF 13 00 9B 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"),
        &hex!("00 FF FF FF 12 08 9B 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"),
        &hex!("00 FF FF FF 02 03 9B"),
    ];
    for cmd in bad {
        assert_eq!(sw(&mut card, cmd), 0x6A80, "{cmd:02X?}");
    }
    assert_eq!(sw(&mut card, &hex!("00 FF FF 00 02 03 9B")), 0x6A86);
    assert!(card.mgmt_key_is(Algorithm::Aes256, &keep));
    let mut touch = hex!("00 FF FF FE 1B 03 9B 18").to_vec();
    touch.extend_from_slice(&DEFAULT_MGMT_KEY);
    assert_eq!(sw(&mut card, &touch), 0x9000);
    assert!(card.mgmt_key_is(Algorithm::TripleDes, &DEFAULT_MGMT_KEY));
}

#[test]
fn misconfigured_key_length_answers_6f00() {
    let mut card = card_with(Algorithm::Aes256, &[0x11; 16]);
    assert_eq!(sw(&mut card, &hex!("00 87 0C 9B 04 7C 02 81 00")), 0x6F00);
}

#[test]
fn management_key_cannot_unblock_the_pin() {
    // docs/card-facts.md: only the PUK unblocks a PIV PIN.
    let mut card = SimCard::new(Config::Piv(PivConfig::factory().blocked()));
    select_piv(&mut card);
    assert_eq!(
        single_auth(&mut card, Algorithm::TripleDes, &DEFAULT_MGMT_KEY),
        0x9000
    );
    assert_eq!(
        sw(&mut card, &hex!("00 2C 02 80 06 31 32 33 34 35 36")),
        0x6A86
    );
    assert_eq!(card.pin_tries_left(), 0);
}
