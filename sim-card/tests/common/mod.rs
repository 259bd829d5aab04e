//! Test helpers: APDU building, the host side of every exchange (the core's admin key, code
//! independent of the card's), and scenario running.
#![allow(dead_code)]

use cardunlock_core::crypto::{AdminKey, Algorithm as HostAlgorithm};
use cardunlock_sim::{Algorithm, SimCard};

/// Build a short APDU (data may be empty; `le` None = absent).
pub fn apdu(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8], le: Option<u8>) -> Vec<u8> {
    let mut v = vec![cla, ins, p1, p2];
    if !data.is_empty() {
        v.push(u8::try_from(data.len()).expect("short APDU"));
        v.extend_from_slice(data);
    }
    if let Some(le) = le {
        v.push(le);
    }
    v
}

/// Send and split into (data, SW).
pub fn tx(card: &mut SimCard, apdu: &[u8]) -> (Vec<u8>, u16) {
    let r = card.transmit(apdu);
    assert!(r.len() >= 2, "response shorter than a status word");
    let (data, sw) = r.split_at(r.len() - 2);
    (data.to_vec(), u16::from_be_bytes([sw[0], sw[1]]))
}

/// Send and return only the SW (asserting there is no data).
pub fn sw(card: &mut SimCard, apdu: &[u8]) -> u16 {
    let (data, sw) = tx(card, apdu);
    assert!(data.is_empty(), "unexpected data {data:02X?} with {sw:04X}");
    sw
}

/// Run command -> expected full response (data + SW) steps.
pub fn scenario(card: &mut SimCard, steps: &[(&[u8], &[u8])]) {
    for (i, (cmd, expected)) in steps.iter().enumerate() {
        let got = card.transmit(cmd);
        assert_eq!(
            &got[..],
            *expected,
            "step {i}: command {cmd:02X?} answered {got:02X?}"
        );
    }
}

/// An FF-padded 8-byte PIV PIN/PUK field.
pub fn piv_field(value: &[u8]) -> Vec<u8> {
    let mut f = value.to_vec();
    f.resize(8, 0xFF);
    f
}

pub fn select_piv(card: &mut SimCard) {
    let (_, s) = tx(card, &hex_literal::hex!("00 A4 04 00 05 A0 00 00 03 08"));
    assert_eq!(s, 0x9000);
}

pub fn select_gids(card: &mut SimCard) {
    let (_, s) = tx(
        card,
        &hex_literal::hex!("00 A4 04 00 09 A0 00 00 03 97 42 54 46 59 00"),
    );
    assert_eq!(s, 0x9000);
}

pub fn select_iso(card: &mut SimCard) {
    let s = sw(
        card,
        &hex_literal::hex!("00 A4 04 0C 08 F0 43 55 4E 4C 4F 43 4B"),
    );
    assert_eq!(s, 0x9000);
}

/// The host side's key: the core's admin key (the card's own crypto is separate code), so the
/// workspace has one host-side ECB / CBC implementation.
fn host_key(alg: Algorithm, key: &[u8]) -> AdminKey {
    let alg = match alg {
        Algorithm::TripleDes => HostAlgorithm::TripleDes,
        Algorithm::Aes128 => HostAlgorithm::Aes128,
        Algorithm::Aes192 => HostAlgorithm::Aes192,
        Algorithm::Aes256 => HostAlgorithm::Aes256,
    };
    AdminKey::new(alg, key).expect("key length")
}

/// Host-side ECB encryption.
pub fn ecb_encrypt(alg: Algorithm, key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    host_key(alg, key)
        .encrypt_ecb(&mut out)
        .expect("whole blocks");
    out
}

/// Host-side ECB decryption.
pub fn ecb_decrypt(alg: Algorithm, key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    host_key(alg, key)
        .decrypt_ecb(&mut out)
        .expect("whole blocks");
    out
}

/// Host-side 3DES-CBC with a zero IV, as OpenSC's `gids_authenticate_admin` does it.
pub fn tdes_cbc(key: &[u8; 24], data: &[u8], encrypt: bool) -> Vec<u8> {
    let key = host_key(Algorithm::TripleDes, key);
    let mut out = data.to_vec();
    if encrypt {
        key.cbc_encrypt(&[0; 8], &mut out).expect("whole blocks");
    } else {
        key.cbc_decrypt(&[0; 8], &mut out).expect("whole blocks");
    }
    out
}

/// Parse `7C L <tag> L <value>` (short lengths) and return the value of `tag`.
pub fn template_value(data: &[u8], tag: u8) -> Vec<u8> {
    assert_eq!(
        data[0], 0x7C,
        "not a dynamic authentication template: {data:02X?}"
    );
    assert_eq!(usize::from(data[1]), data.len() - 2, "7C length");
    assert_eq!(data[2], tag, "inner tag");
    assert_eq!(usize::from(data[3]), data.len() - 4, "inner length");
    data[4..].to_vec()
}

/// `7C L (tag L value)*`.
pub fn template(items: &[(u8, &[u8])]) -> Vec<u8> {
    let mut inner = Vec::new();
    for (tag, value) in items {
        inner.push(*tag);
        inner.push(u8::try_from(value.len()).expect("short"));
        inner.extend_from_slice(value);
    }
    let mut out = vec![0x7C, u8::try_from(inner.len()).expect("short")];
    out.extend_from_slice(&inner);
    out
}
