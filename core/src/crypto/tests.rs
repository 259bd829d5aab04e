use super::*;
use core::fmt::Write;
use hex_literal::hex;
use proptest::prelude::*;

const DEFAULT: [u8; 24] = hex!("010203040506070801020304050607080102030405060708");
/// NIST SP 800-67 rev. 2 example keys K1, K2, K3 (three different parts).
const THREE_PART: [u8; 24] = hex!("0123456789ABCDEF 23456789ABCDEF01 456789ABCDEF0123");
const SEQ16: [u8; 16] = hex!("000102030405060708090A0B0C0D0E0F");

fn key(alg: Algorithm, bytes: &[u8]) -> AdminKey {
    AdminKey::new(alg, bytes).unwrap()
}

fn enc<const N: usize>(k: &AdminKey, mut block: [u8; N]) -> [u8; N] {
    k.encrypt_ecb(&mut block).unwrap();
    block
}

fn dec<const N: usize>(k: &AdminKey, mut block: [u8; N]) -> [u8; N] {
    k.decrypt_ecb(&mut block).unwrap();
    block
}

#[test]
fn design_vectors_3des_default_key() {
    let k = AdminKey::piv_default();
    assert!(k.ct_eq(&key(Algorithm::TripleDes, &DEFAULT)));
    let rows = [
        (hex!("D4BD9B1DA5D26CDA"), hex!("B5A85C0F0207FCF1")),
        (hex!("0000000000000000"), hex!("B073DC3FB209536D")),
        (hex!("1122334455667788"), hex!("6C5E94DCADD39F1D")),
        (hex!("1A0443DF8C72D551"), hex!("61E204AE335B3258")),
    ];
    for (plain, cipher) in rows {
        assert_eq!(enc(&k, plain), cipher);
        assert_eq!(dec(&k, cipher), plain);
    }
}

#[test]
fn design_vector_3des_repeated_key() {
    let k = key(Algorithm::TripleDes, &tile::<24>(&hex!("1122334455667788")));
    assert_eq!(enc(&k, hex!("0001020304050607")), hex!("9AB9B188B16A6240"));
    assert_eq!(dec(&k, hex!("9AB9B188B16A6240")), hex!("0001020304050607"));
}

#[cfg(feature = "aes")]
#[test]
fn design_vectors_aes() {
    let rows: [(Algorithm, &[u8], [u8; 16]); 3] = [
        (
            Algorithm::Aes128,
            &hex!("11223344556677881122334455667788"),
            hex!("667B4A8F5921D46630426D94B0041D00"),
        ),
        (
            Algorithm::Aes192,
            &DEFAULT,
            hex!("3F92E2FCE73F9D83187C140D035F7EDC"),
        ),
        (
            Algorithm::Aes256,
            &tile::<32>(&hex!("1122334455667788")),
            hex!("B8A84A8CBE8D810D3161322B6448D203"),
        ),
    ];
    for (alg, bytes, cipher) in rows {
        let k = key(alg, bytes);
        assert_eq!(enc(&k, SEQ16), cipher, "{alg:?}");
        assert_eq!(dec(&k, cipher), SEQ16, "{alg:?}");
    }
}

#[test]
fn three_part_3des_key() {
    // Expected value computed twice: `openssl enc -des-ede3 -nopad -K <key>` (OpenSSL 3.0.19)
    // and pycryptodome 4.4 `DES3.new(key, DES3.MODE_ECB)`; it is also the ciphertext of the
    // NIST SP 800-67 rev. 2 example ("The qufck brown fox jump").
    let k = key(Algorithm::TripleDes, &THREE_PART);
    let plain = *b"The qufck brown fox jump";
    let cipher = hex!("A826FD8CE53B855F CCE21C8112256FE6 68D5C05DD9B6B900");
    assert_eq!(enc(&k, plain), cipher);
    assert_eq!(dec(&k, cipher), plain);
}

#[test]
fn cbc_vectors_and_round_trip() {
    // Computed with `openssl enc -des-ede3-cbc -nopad -K <key> -iv <iv>` and cross-checked with
    // pycryptodome (`DES3` CBC for the three-part key, single `DES` CBC with key 0102..08 for
    // the default key, which is single DES in effect).
    let plain = hex!("00112233445566778899AABBCCDDEEFF0123456789ABCDEF");
    let cases = [
        (
            key(Algorithm::TripleDes, &THREE_PART),
            hex!("F0E1D2C3B4A59687"),
            hex!("F22A2655AB15F33E0EA89370CFD33DC3D673EE04E7B0D22B"),
        ),
        (
            AdminKey::piv_default(),
            [0; 8],
            hex!("26604D88E55BD3E7A174FE8D5019B35A79350F42FA0871AF"),
        ),
    ];
    for (k, iv, cipher) in cases {
        let mut data = plain;
        k.cbc_encrypt(&iv, &mut data).unwrap();
        assert_eq!(data, cipher);
        k.cbc_decrypt(&iv, &mut data).unwrap();
        assert_eq!(data, plain);
    }
}

#[test]
fn cbc_refuses_aes_and_partial_blocks() {
    let aes = key(Algorithm::Aes128, &SEQ16);
    let mut data = [0u8; 16];
    assert_eq!(
        aes.cbc_encrypt(&[0; 8], &mut data),
        Err(CryptoError::WrongAlgorithm)
    );
    assert_eq!(
        aes.cbc_decrypt(&[0; 8], &mut data),
        Err(CryptoError::WrongAlgorithm)
    );
    let k = AdminKey::piv_default();
    for len in [0, 7, 9, 15] {
        let mut data = [0u8; 16];
        let data = &mut data[..len];
        assert_eq!(k.cbc_encrypt(&[0; 8], data), Err(CryptoError::BlockLength));
        assert_eq!(k.cbc_decrypt(&[0; 8], data), Err(CryptoError::BlockLength));
    }
}

/// Proves a build without the `aes` feature refuses AES keys' block operations with
/// `CryptoError::Unsupported` (no silent pass-through of the data) and keeps 3DES.
#[cfg(not(feature = "aes"))]
#[test]
fn without_aes_an_aes_key_is_unsupported() {
    for alg in [Algorithm::Aes128, Algorithm::Aes192, Algorithm::Aes256] {
        let k = key(alg, &[0x42; 32][..alg.key_len()]);
        let mut data = [0x5Au8; 16];
        assert_eq!(k.encrypt_ecb(&mut data), Err(CryptoError::Unsupported));
        assert_eq!(k.decrypt_ecb(&mut data), Err(CryptoError::Unsupported));
        assert_eq!(data, [0x5A; 16]);
    }
    let k = key(Algorithm::TripleDes, &DEFAULT);
    let mut data = [0x5Au8; 8];
    k.encrypt_ecb(&mut data).unwrap();
    assert_ne!(data, [0x5A; 8]);
}

#[cfg(feature = "aes")]
#[test]
fn wrong_key_and_block_lengths() {
    for alg in ALGS {
        for len in [0, 8, 15, 17, 23, 25, 31, 33] {
            let bytes = [0x42u8; 33];
            let ok = len == alg.key_len();
            assert_eq!(
                AdminKey::new(alg, &bytes[..len]).is_ok(),
                ok,
                "{alg:?} {len}"
            );
        }
        let k = key(alg, &[0x42; 32][..alg.key_len()]);
        let mut data = [0u8; 48];
        for len in 0..=48 {
            let ok = len != 0 && len % alg.block_len() == 0;
            let want = if ok {
                Ok(())
            } else {
                Err(CryptoError::BlockLength)
            };
            assert_eq!(k.encrypt_ecb(&mut data[..len]), want, "{alg:?} {len}");
            assert_eq!(k.decrypt_ecb(&mut data[..len]), want, "{alg:?} {len}");
        }
    }
}

#[test]
fn multi_block_ecb_is_per_block() {
    let k = AdminKey::piv_default();
    let mut two = hex!("D4BD9B1DA5D26CDA D4BD9B1DA5D26CDA");
    k.encrypt_ecb(&mut two).unwrap();
    assert_eq!(two, hex!("B5A85C0F0207FCF1 B5A85C0F0207FCF1"));
}

#[test]
fn piv_ids() {
    for alg in ALGS {
        assert_eq!(Algorithm::from_piv_id(alg.piv_id()), Some(alg));
    }
    assert_eq!(Algorithm::from_piv_id(0x00), Some(Algorithm::TripleDes));
    assert_eq!(Algorithm::from_piv_id(0x0A), Some(Algorithm::Aes192));
    for id in [0x01, 0x07, 0x11, 0x14, 0x9B, 0xFF] {
        assert_eq!(Algorithm::from_piv_id(id), None);
    }
}

#[test]
fn debug_hides_key_bytes() {
    let k = key(Algorithm::Aes256, &tile::<32>(&hex!("DEADBEEF")));
    let mut s = heapless::String::<128>::new();
    write!(s, "{k:?}").unwrap();
    assert_eq!(s.as_str(), "AdminKey { algorithm: Aes256, .. }");
    s.clear();
    write!(s, "{:?}", AdminKey::piv_default()).unwrap();
    assert_eq!(s.as_str(), "AdminKey { algorithm: TripleDes, .. }");
    s.clear();
    write!(s, "{k:#?}").unwrap();
    for needle in ["DE", "de", "222", "173", "0x"] {
        assert!(!s.contains(needle), "{s}");
    }
}

#[test]
fn ct_eq_compares_algorithm_and_bytes() {
    let a = AdminKey::piv_default();
    assert!(a.ct_eq(&AdminKey::piv_default()));
    assert!(!a.ct_eq(&key(Algorithm::Aes192, &DEFAULT)));
    assert!(!a.ct_eq(&key(Algorithm::TripleDes, &THREE_PART)));
    assert_eq!(key(Algorithm::Aes192, &DEFAULT).expose_bytes(), &DEFAULT);
    assert!(ct_eq(b"123456", b"123456"));
    assert!(!ct_eq(b"123456", b"123457"));
    assert!(!ct_eq(b"123456", b"1234567"));
    assert!(ct_eq(b"", b""));
}

#[test]
fn from_hex_accepts_separators_and_case() {
    let k = AdminKey::from_hex(
        Algorithm::TripleDes,
        "01:02:03:04:05:06:07:08 0102030405060708\t01020304050607 08",
    )
    .unwrap();
    assert!(k.ct_eq(&AdminKey::piv_default()));
    let upper = AdminKey::from_hex(Algorithm::Aes128, "AABBCCDDEEFF00112233445566778899");
    let lower = AdminKey::from_hex(Algorithm::Aes128, "aabbccddeeff00112233445566778899");
    assert!(upper.unwrap().ct_eq(&lower.unwrap()));
}

#[test]
fn from_hex_errors() {
    use CryptoError::*;
    let d = "010203040506070801020304050607080102030405060708";
    let cases: [(&str, CryptoError); 8] = [
        ("", KeyLength),
        (&d[..46], KeyLength),
        (
            "01020304050607080102030405060708010203040506070801",
            KeyLength,
        ),
        (&d[..47], InvalidHex),
        (
            "0x0102030405060708010203040506070801020304050607",
            InvalidHex,
        ),
        (
            "01020304050607080102030405060708010203040506070g",
            InvalidHex,
        ),
        (
            "01-02-03-04-05-06-07-08-01-02-03-04-05-06-07-08",
            InvalidHex,
        ),
        (
            "0102030405060708010203040506070801020304050607é",
            InvalidHex,
        ),
    ];
    for (hex, err) in cases {
        assert_eq!(
            AdminKey::from_hex(Algorithm::TripleDes, hex).unwrap_err(),
            err,
            "{hex}"
        );
    }
    // 64 digits is too long for 3DES but right for AES-256.
    let zeros = [b'0'; 64];
    let long = core::str::from_utf8(&zeros).unwrap();
    assert_eq!(
        AdminKey::from_hex(Algorithm::TripleDes, long).unwrap_err(),
        KeyLength
    );
    assert!(AdminKey::from_hex(Algorithm::Aes256, long).is_ok());
}

proptest! {
    #[cfg(feature = "aes")]
    #[test]
    fn ecb_round_trips(alg in 0..4usize, k in any::<[u8; 32]>(), data in any::<[u8; 64]>(),
                       blocks in 1..=4usize) {
        let alg = ALGS[alg];
        let k = key(alg, &k[..alg.key_len()]);
        let len = blocks * alg.block_len();
        let mut buf = data;
        k.encrypt_ecb(&mut buf[..len]).unwrap();
        prop_assert_ne!(&buf[..len], &data[..len]);
        k.decrypt_ecb(&mut buf[..len]).unwrap();
        prop_assert_eq!(buf, data);
        k.decrypt_ecb(&mut buf[..len]).unwrap();
        k.encrypt_ecb(&mut buf[..len]).unwrap();
        prop_assert_eq!(buf, data);
    }

    #[test]
    fn cbc_round_trips(k in any::<[u8; 24]>(), iv in any::<[u8; 8]>(), data in any::<[u8; 40]>(),
                       blocks in 1..=5usize) {
        let k = key(Algorithm::TripleDes, &k);
        let len = blocks * 8;
        let mut buf = data;
        k.cbc_encrypt(&iv, &mut buf[..len]).unwrap();
        k.cbc_decrypt(&iv, &mut buf[..len]).unwrap();
        prop_assert_eq!(buf, data);
    }

    #[test]
    fn from_hex_never_panics(alg in 0..4usize, any_text in ".{0,100}",
                             hexish in "[0-9a-fA-F :\\t-]{0,80}") {
        for text in [&any_text, &hexish] {
            let alg = ALGS[alg];
            if let Ok(k) = AdminKey::from_hex(alg, text) {
                prop_assert_eq!(k.expose_bytes().len(), alg.key_len());
            }
        }
    }
}

const ALGS: [Algorithm; 4] = [
    Algorithm::TripleDes,
    Algorithm::Aes128,
    Algorithm::Aes192,
    Algorithm::Aes256,
];

/// `part` repeated to fill `N` bytes (no alloc in this crate, not even in tests).
fn tile<const N: usize>(part: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.chunks_mut(part.len())
        .for_each(|c| c.copy_from_slice(&part[..c.len()]));
    out
}
