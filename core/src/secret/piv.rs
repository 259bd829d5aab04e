//! The PIV PIN and PUK (SP 800-73-4 Part 2 §2.4.3): 8 bytes of reference data, the value padded
//! with `FF`. Two types, so a PUK cannot be sent where the PIN goes.

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{PinFormat, SecretError};

/// The value padded with `FF` to 8 bytes, after the length and character checks.
fn padded(value: &[u8], digits_only: bool) -> Result<[u8; 8], SecretError> {
    if value.len() < 6 || value.len() > 8 {
        return Err(SecretError::Length { min: 6, max: 8 });
    }
    if value.contains(&0xFF) || (digits_only && !value.iter().all(u8::is_ascii_digit)) {
        return Err(SecretError::Character);
    }
    let mut out = [0xFF; 8];
    out[..value.len()].copy_from_slice(value);
    Ok(out)
}

/// A PIV PIN: 6 to 8 ASCII digits, FF-padded to 8 bytes.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct PivPin([u8; 8]);

impl PivPin {
    /// A PIV PIN: 6 to 8 ASCII digits (SP 800-73-4 Part 2 §2.4.3).
    pub fn new(pin: &[u8]) -> Result<Self, SecretError> {
        padded(pin, true).map(Self)
    }

    /// The padded 8 bytes, as they go in the command.
    pub fn padded_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl PinFormat for PivPin {
    fn from_typed(pin: &[u8]) -> Result<Self, SecretError> {
        Self::new(pin)
    }
}

impl core::fmt::Debug for PivPin {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PivPin(<redacted>)")
    }
}

/// A PIV PUK: 6 to 8 bytes (8 on a factory card; YubiKeys accept 6 to 8), FF-padded to 8 bytes.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct PivPuk([u8; 8]);

impl PivPuk {
    /// A PIV PUK of 6 to 8 bytes, none of them `FF` (the padding byte).
    pub fn new(puk: &[u8]) -> Result<Self, SecretError> {
        padded(puk, false).map(Self)
    }

    /// The padded 8 bytes, as they go in the command.
    pub fn padded_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl core::fmt::Debug for PivPuk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PivPuk(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piv_pin_is_digits_padded() {
        assert_eq!(
            PivPin::new(b"123456").unwrap().padded_bytes(),
            b"123456\xFF\xFF"
        );
        assert_eq!(
            PivPin::new(b"12345").err(),
            Some(SecretError::Length { min: 6, max: 8 })
        );
        assert_eq!(PivPin::new(b"12345a").err(), Some(SecretError::Character));
        assert_eq!(
            PivPin::new(b"123456789").err(),
            Some(SecretError::Length { min: 6, max: 8 })
        );
    }

    #[test]
    fn piv_puk_is_any_byte_but_the_padding() {
        assert_eq!(
            PivPuk::new(b"12345678").unwrap().padded_bytes(),
            b"12345678"
        );
        assert_eq!(
            PivPuk::new(b"abc#ef").unwrap().padded_bytes(),
            b"abc#ef\xFF\xFF"
        );
        assert_eq!(
            PivPuk::new(b"abc\xFFdef").err(),
            Some(SecretError::Character)
        );
        assert_eq!(
            PivPuk::new(b"12345").err(),
            Some(SecretError::Length { min: 6, max: 8 })
        );
    }
}
