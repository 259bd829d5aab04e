//! The Card Authentication key (9E): the simulated card signs for real (the signature verifies
//! under the key it reports and fails under another digest), without the PIN; an empty slot
//! refuses to sign; GENERATE needs the management key and fills the slot; the certificate object.

mod common;

use cardunlock_sim::{Config, PivConfig, SimCard};
use common::*;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};

fn sign_apdu(digest: &[u8; 32]) -> Vec<u8> {
    let mut inner = vec![0x82, 0x00, 0x81, 0x20];
    inner.extend_from_slice(digest);
    let mut data = vec![0x7C, inner.len() as u8];
    data.extend_from_slice(&inner);
    apdu(0x00, 0x87, 0x11, 0x9E, &data, Some(0x00))
}

fn signature(reply: &[u8]) -> Signature {
    assert_eq!(reply[0], 0x7C);
    assert_eq!(reply[2], 0x82);
    Signature::from_der(&reply[4..4 + usize::from(reply[3])]).unwrap()
}

/// Proves the card signs with the key it reports, with no PIN verified (a card that returned a
/// fixed or a wrong signature fails here).
#[test]
fn signs_the_digest_with_its_key_without_the_pin() {
    let cfg = PivConfig::factory().blocked();
    let public = cfg.card_auth_public_key().unwrap();
    let mut card = SimCard::new(Config::Piv(cfg));
    select_piv(&mut card);
    let digest = [0x42u8; 32];
    let (reply, status) = tx(&mut card, &sign_apdu(&digest));
    assert_eq!(status, 0x9000);
    let key = VerifyingKey::from_sec1_bytes(&public).unwrap();
    let sig = signature(&reply);
    key.verify_prehash(&digest, &sig).unwrap();
    assert!(key.verify_prehash(&[0x43u8; 32], &sig).is_err());
    assert_eq!(card.card_auth_public_key(), Some(public));
}

/// Proves an empty slot does not sign, GENERATE needs the management key, and the generated
/// key is the one that then signs.
#[test]
fn empty_slot_refuses_and_generate_fills_it() {
    let mut cfg = PivConfig::factory();
    cfg.card_auth_key = None;
    let mut card = SimCard::new(Config::Piv(cfg));
    select_piv(&mut card);
    assert_eq!(sw(&mut card, &sign_apdu(&[1; 32])), 0x6985);
    let generate = apdu(
        0x00,
        0x47,
        0x00,
        0x9E,
        &[0xAC, 0x03, 0x80, 0x01, 0x11],
        Some(0x00),
    );
    assert_eq!(sw(&mut card, &generate), 0x6982);
    assert!(card.card_auth_public_key().is_none());
    mgmt_authenticate_default(&mut card);
    let (reply, status) = tx(&mut card, &generate);
    assert_eq!(status, 0x9000);
    assert_eq!(&reply[..5], &[0x7F, 0x49, 0x43, 0x86, 0x41]);
    let point = &reply[5..];
    assert_eq!(
        Some(point),
        card.card_auth_public_key().as_ref().map(|p| &p[..])
    );
    let (reply, status) = tx(&mut card, &sign_apdu(&[1; 32]));
    assert_eq!(status, 0x9000);
    VerifyingKey::from_sec1_bytes(point)
        .unwrap()
        .verify_prehash(&[1; 32], &signature(&reply))
        .unwrap();
}

/// The certificate object: `6A 82` when empty, `53 .. 70 <cert> 71 01 00 FE 00` when set.
#[test]
fn certificate_object() {
    let get = apdu(
        0x00,
        0xCB,
        0x3F,
        0xFF,
        &[0x5C, 0x03, 0x5F, 0xC1, 0x01],
        Some(0x00),
    );
    let mut card = SimCard::new(Config::Piv(PivConfig::factory()));
    select_piv(&mut card);
    assert_eq!(sw(&mut card, &get), 0x6A82);
    let mut cfg = PivConfig::factory();
    cfg.card_auth_certificate = Some(vec![0x30, 0x01, 0x00]);
    let mut card = SimCard::new(Config::Piv(cfg));
    select_piv(&mut card);
    let (reply, status) = tx(&mut card, &get);
    assert_eq!(status, 0x9000);
    assert_eq!(
        reply,
        [0x53, 0x0A, 0x70, 0x03, 0x30, 0x01, 0x00, 0x71, 0x01, 0x00, 0xFE, 0x00]
    );
}

/// Single management-key authentication with the factory 3DES key.
fn mgmt_authenticate_default(card: &mut SimCard) {
    let alg = cardunlock_sim::Algorithm::TripleDes;
    let (reply, status) = tx(
        card,
        &apdu(
            0x00,
            0x87,
            0x03,
            0x9B,
            &[0x7C, 0x02, 0x81, 0x00],
            Some(0x00),
        ),
    );
    assert_eq!(status, 0x9000);
    let challenge = template_value(&reply, 0x81);
    let response = ecb_encrypt(alg, &cardunlock_sim::DEFAULT_MGMT_KEY, &challenge);
    let data = template(&[(0x82, &response)]);
    assert_eq!(sw(card, &apdu(0x00, 0x87, 0x03, 0x9B, &data, None)), 0x9000);
}
