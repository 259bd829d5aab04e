//! GIDS (Microsoft Generic Identity Device Specification) commands for the admin-key unblock:
//! SELECT, the PIN status data object, MSE SET for the admin key, the two GENERAL AUTHENTICATE
//! steps of mutual authentication, and RESET RETRY COUNTER with new reference data only.
//!
//! The mutual authentication follows the exchange OpenSC's `card-gids.c` implements (its
//! comments note where the spec text is wrong): host random R1 under tag 81, card random R2 under
//! tag 81, then `3DES-CBC_K(IV 0, R2 || R1 || Z1)` under tag 82 and the card's
//! `3DES-CBC_K(IV 0, R1 || R2 || Z2)` back, Z being 7 random bytes and `80`.

use crate::apdu::{Command, Cursor, EncodeError};
use crate::secret::Pin;
use crate::tlv;

/// The GIDS application identifier prefix (`A0 00 00 03 97 42 54 46 59`).
pub const AID: [u8; 9] = [0xA0, 0x00, 0x00, 0x03, 0x97, 0x42, 0x54, 0x46, 0x59];
/// Reference of the user PIN.
pub const PIN_REF: u8 = 0x80;
/// Reference of the admin key.
pub const ADMIN_KEY_REF: u8 = 0x80;
const INS_GENERAL_AUTHENTICATE: u8 = 0x87;

/// Length of each random of the mutual authentication.
pub const RANDOM_LEN: usize = 16;
/// Length of each cryptogram of the mutual authentication.
pub const CRYPTOGRAM_LEN: usize = 40;

/// SELECT the GIDS application: `00 A4 04 00 09 A0 00 00 03 97 42 54 46 59 00`.
pub const fn select() -> Command<'static> {
    Command::new(0x00, 0xA4, 0x04, 0x00)
        .with_data(&AID)
        .with_le(256)
}

const PIN_STATUS_REQUEST: [u8; 4] = [0x5C, 0x02, 0x7F, 0x71];

/// GET DATA of the PIN status object: `00 CB 3F FF 04 5C 02 7F 71 00`.
pub const fn get_pin_status() -> Command<'static> {
    Command::new(0x00, 0xCB, 0x3F, 0xFF)
        .with_data(&PIN_STATUS_REQUEST)
        .with_le(256)
}

/// GET DATA of the card serial (`00 CA 01 00 00`), the identity of GIDS and ISO admin cards in
/// the simulated card and many vendor cards.
pub const fn get_serial() -> Command<'static> {
    Command::new(0x00, 0xCA, 0x01, 0x00).with_le(256)
}

/// Tries left and tries allowed, from the PIN status object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PinStatus {
    /// Tries left (tag 97, or 9F17 on older cards).
    pub tries_left: u8,
    /// Tries allowed (tag 93), when present.
    pub max_tries: Option<u8>,
}

/// Parses `7F 71 <len> 97 01 <left> 93 01 <max>`.
pub fn parse_pin_status(data: &[u8]) -> Option<PinStatus> {
    let (outer, _) = tlv::read(data).ok()?;
    let inner = if outer.tag == 0x7F71 {
        outer.value
    } else {
        data
    };
    let mut left = None;
    let mut max = None;
    for item in tlv::iter(inner) {
        let item = item.ok()?;
        match (item.tag, item.value) {
            (0x97 | 0x9F17, [x]) => left = Some(*x),
            (0x93, [x]) => max = Some(*x),
            _ => {}
        }
    }
    Some(PinStatus {
        tries_left: left?,
        max_tries: max,
    })
}

const MSE_SET_ADMIN: [u8; 3] = [0x83, 0x01, ADMIN_KEY_REF];

/// MANAGE SECURITY ENVIRONMENT SET for authentication with the admin key:
/// `00 22 C1 A4 03 83 01 80`.
pub const fn mse_set_admin() -> Command<'static> {
    Command::new(0x00, 0x22, 0xC1, 0xA4).with_data(&MSE_SET_ADMIN)
}

/// GENERAL AUTHENTICATE step 1: `00 87 00 00 14 7C 12 81 10 <R1> 00`, the data written into
/// `buf` (20 bytes needed).
pub fn authenticate_step1<'b>(
    buf: &'b mut [u8],
    r1: &[u8; RANDOM_LEN],
) -> Result<Command<'b>, EncodeError> {
    let mut w = Cursor::new(buf);
    w.put(&[0x7C, 0x12, 0x81, 0x10])?.put(r1)?;
    Ok(Command::new(0x00, INS_GENERAL_AUTHENTICATE, 0x00, 0x00)
        .with_data(w.finish())
        .with_le(256))
}

/// The card's random R2 from the step-1 answer `7C 12 81 10 <R2>`.
pub fn parse_step1(data: &[u8]) -> Option<&[u8; RANDOM_LEN]> {
    match data {
        [0x7C, 0x12, 0x81, 0x10, r2 @ ..] => r2.try_into().ok(),
        _ => None,
    }
}

/// GENERAL AUTHENTICATE step 2: `00 87 00 00 2C 7C 2A 82 28 <cryptogram> 00`, the data
/// written into `buf` (44 bytes needed).
pub fn authenticate_step2<'b>(
    buf: &'b mut [u8],
    cryptogram: &[u8; CRYPTOGRAM_LEN],
) -> Result<Command<'b>, EncodeError> {
    let mut w = Cursor::new(buf);
    w.put(&[0x7C, 0x2A, 0x82, 0x28])?.put(cryptogram)?;
    Ok(Command::new(0x00, INS_GENERAL_AUTHENTICATE, 0x00, 0x00)
        .with_data(w.finish())
        .with_le(256))
}

/// The card's cryptogram from the step-2 answer `7C 2A 82 28 <40 bytes>`.
pub fn parse_step2(data: &[u8]) -> Option<&[u8; CRYPTOGRAM_LEN]> {
    match data {
        [0x7C, 0x2A, 0x82, 0x28, c @ ..] => c.try_into().ok(),
        _ => None,
    }
}

/// RESET RETRY COUNTER with new reference data only: `00 2C 02 80 <len> <new PIN>`.
pub fn reset_retry_counter(new_pin: &Pin) -> Command<'_> {
    Command::new(0x00, 0x2C, 0x02, PIN_REF).with_data(new_pin.expose())
}

/// Changes the admin key after a successful admin authentication: `00 24 01 80 <len> <key>`.
/// Key-change commands are vendor-specific; this is the one cardunlock's simulated GIDS card
/// implements (CHANGE REFERENCE DATA with P1 = 01 "new admin key").
pub fn change_admin_key(new_key: &crate::crypto::AdminKey) -> Command<'_> {
    Command::new(0x00, 0x24, 0x01, ADMIN_KEY_REF).with_data(new_key.expose_bytes())
}

/// VERIFY with the PIN (raw bytes, no padding).
pub fn verify_pin(pin: &Pin) -> Command<'_> {
    Command::new(0x00, 0x20, 0x00, PIN_REF).with_data(pin.expose())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apdu::test_bytes as bytes;
    use hex_literal::hex;

    #[test]
    fn exact_bytes_from_the_design() {
        assert_eq!(
            &bytes(&select())[..],
            &hex!("00 A4 04 00 09 A0 00 00 03 97 42 54 46 59 00")
        );
        assert_eq!(
            &bytes(&get_pin_status())[..],
            &hex!("00 CB 3F FF 04 5C 02 7F 71 00")
        );
        assert_eq!(
            &bytes(&mse_set_admin())[..],
            &hex!("00 22 C1 A4 03 83 01 80")
        );
        let mut b1 = [0u8; 20];
        assert_eq!(
            &bytes(&authenticate_step1(&mut b1, &[0x11; 16]).unwrap())[..9],
            &hex!("00 87 00 00 14 7C 12 81 10")
        );
        let mut b2 = [0u8; 44];
        let cmd = authenticate_step2(&mut b2, &[0x22; 40]).unwrap();
        assert_eq!(&bytes(&cmd)[..9], &hex!("00 87 00 00 2C 7C 2A 82 28"));
        let pin = Pin::new(b"4711").unwrap();
        assert_eq!(
            &bytes(&reset_retry_counter(&pin))[..],
            &hex!("00 2C 02 80 04 34 37 31 31")
        );
    }

    #[test]
    fn parses_answers() {
        let s = parse_pin_status(&hex!("7F 71 06 97 01 02 93 01 03")).unwrap();
        assert_eq!(
            s,
            PinStatus {
                tries_left: 2,
                max_tries: Some(3)
            }
        );
        assert_eq!(parse_pin_status(&hex!("7F 71 03 93 01 03")), None);
        let mut r = [0u8; 20];
        r[..4].copy_from_slice(&hex!("7C 12 81 10"));
        assert!(parse_step1(&r).is_some());
        assert!(parse_step1(&r[..19]).is_none());
        assert!(parse_step2(&r).is_none());
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100)) {
            let _ = parse_pin_status(&data);
            let _ = parse_step1(&data);
            let _ = parse_step2(&data);
        }
    }
}
