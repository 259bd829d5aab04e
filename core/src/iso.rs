//! ISO 7816-4 admin challenge-response (Windows minidriver style): GET CHALLENGE, EXTERNAL
//! AUTHENTICATE with the admin key, RESET RETRY COUNTER. The answer to the challenge is the only
//! thing the admin key is needed for, so an operator or a server can give it without the key
//! reaching the workstation.

use crate::apdu::Command;
use crate::crypto::Algorithm;
use crate::secret::Pin;

/// How a given ISO admin card is addressed: application, references and key algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IsoProfile<'a> {
    /// AID to select.
    pub aid: &'a [u8],
    /// Reference of the admin key (P2 of EXTERNAL AUTHENTICATE).
    pub admin_key_ref: u8,
    /// Reference of the user PIN (P2 of VERIFY and RESET RETRY COUNTER).
    pub pin_ref: u8,
    /// The admin key algorithm: sets the challenge length (8 for 3DES, 16 for AES).
    pub algorithm: Algorithm,
}

impl<'a> IsoProfile<'a> {
    /// SELECT the application (the command borrows the AID, not the profile).
    pub const fn select(&self) -> Command<'a> {
        Command::new(0x00, 0xA4, 0x04, 0x00)
            .with_data(self.aid)
            .with_le(256)
    }

    /// GET CHALLENGE for one block of the admin key's cipher: `00 84 00 00 08` or `10`.
    pub const fn get_challenge(&self) -> Command<'static> {
        Command::new(0x00, 0x84, 0x00, 0x00).with_le(self.algorithm.block_len())
    }

    /// EXTERNAL AUTHENTICATE: `00 82 00 <key ref> <len> <E_K(challenge)>`.
    pub const fn external_authenticate<'b>(&self, response: &'b [u8]) -> Command<'b> {
        Command::new(0x00, 0x82, 0x00, self.admin_key_ref).with_data(response)
    }

    /// RESET RETRY COUNTER with new reference data only: `00 2C 02 <pin ref> <len> <new PIN>`.
    pub fn reset_retry_counter<'b>(&self, new_pin: &'b Pin) -> Command<'b> {
        Command::new(0x00, 0x2C, 0x02, self.pin_ref).with_data(new_pin.expose())
    }

    /// Changes the admin key after a successful EXTERNAL AUTHENTICATE:
    /// `00 24 01 <key ref> <len> <key>` (vendor-specific; the simulated ISO admin card's form).
    pub fn change_admin_key<'b>(&self, new_key: &'b crate::crypto::AdminKey) -> Command<'b> {
        Command::new(0x00, 0x24, 0x01, self.admin_key_ref).with_data(new_key.expose_bytes())
    }

    /// VERIFY without data: the PIN retry status.
    pub const fn verify_status(&self) -> Command<'static> {
        Command::new(0x00, 0x20, 0x00, self.pin_ref)
    }

    /// VERIFY with the PIN.
    pub fn verify_pin<'b>(&self, pin: &'b Pin) -> Command<'b> {
        Command::new(0x00, 0x20, 0x00, self.pin_ref).with_data(pin.expose())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::apdu::test_bytes as bytes;
    use hex_literal::hex;

    /// Key 01, PIN 80, 3DES, on the simulated card's AID.
    pub(crate) const TEST_PROFILE: IsoProfile<'static> = IsoProfile {
        aid: &[0xF0, 0x43, 0x55, 0x4E, 0x4C, 0x4F, 0x43, 0x4B],
        admin_key_ref: 0x01,
        pin_ref: 0x80,
        algorithm: Algorithm::TripleDes,
    };

    #[test]
    fn exact_bytes() {
        let p = TEST_PROFILE;
        assert_eq!(&bytes(&p.get_challenge())[..], &hex!("00 84 00 00 08"));
        let aes = IsoProfile {
            algorithm: Algorithm::Aes128,
            ..p
        };
        assert_eq!(&bytes(&aes.get_challenge())[..], &hex!("00 84 00 00 10"));
        assert_eq!(
            &bytes(&p.external_authenticate(&hex!("B5A85C0F0207FCF1")))[..],
            &hex!("00 82 00 01 08 B5 A8 5C 0F 02 07 FC F1")
        );
        let pin = Pin::new(b"2468").unwrap();
        assert_eq!(
            &bytes(&p.reset_retry_counter(&pin))[..],
            &hex!("00 2C 02 80 04 32 34 36 38")
        );
        assert_eq!(&bytes(&p.verify_status())[..], &hex!("00 20 00 80"));
    }
}
