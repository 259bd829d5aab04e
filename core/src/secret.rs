//! PIN and PUK values whose constructors enforce the spec limits, so a malformed value cannot be
//! sent to a card. All are zeroized on drop and print as `<redacted>`.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::policy::{PinPolicy, Violations};

/// Why a PIN or PUK value was refused before it reached a card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SecretError {
    /// Shorter or longer than the profile allows.
    Length {
        /// Smallest accepted length.
        min: usize,
        /// Largest accepted length.
        max: usize,
    },
    /// A character the profile does not accept (PIV PINs are digits).
    Character,
}

impl core::fmt::Display for SecretError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Length { min, max } => write!(f, "must be {min} to {max} characters long"),
            Self::Character => f.write_str("contains a character the card does not accept"),
        }
    }
}

impl core::error::Error for SecretError {}

/// Largest PIN or reference data the core handles (GIDS allows up to 127 on paper; cards use 16).
pub const MAX_PIN_LEN: usize = 32;

/// A PIN as typed: 1 to [`MAX_PIN_LEN`] bytes, no padding.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Pin {
    bytes: [u8; MAX_PIN_LEN],
    len: u8,
}

impl Pin {
    /// A PIN of 1 to [`MAX_PIN_LEN`] bytes.
    pub fn new(pin: &[u8]) -> Result<Self, SecretError> {
        if pin.is_empty() || pin.len() > MAX_PIN_LEN {
            return Err(SecretError::Length {
                min: 1,
                max: MAX_PIN_LEN,
            });
        }
        let mut bytes = [0u8; MAX_PIN_LEN];
        bytes[..pin.len()].copy_from_slice(pin);
        Ok(Self {
            bytes,
            len: pin.len() as u8,
        })
    }

    /// The PIN bytes. Send them to a card, never to a log.
    pub fn expose(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl core::fmt::Debug for Pin {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// A new PIN that passed a [`PinPolicy`] and its confirmation. Flows that set a PIN take only
/// this type, so a PIN the policy refuses never reaches a card (and never costs a retry).
#[derive(Clone, Debug)]
pub struct NewPin(Pin);

impl NewPin {
    /// Checks `new_pin` and `confirmation` against `policy` (and the old PIN / PUK when known).
    /// Every violation is reported.
    pub fn new(
        policy: &PinPolicy<'_>,
        new_pin: &[u8],
        confirmation: &[u8],
        old_pin: Option<&[u8]>,
        puk: Option<&[u8]>,
    ) -> Result<Self, Violations> {
        policy.check(new_pin, confirmation, old_pin, puk)?;
        // The policy bounds lengths; still refuse what no card takes.
        Pin::new(new_pin).map(Self).map_err(|_| {
            let mut v = Violations::default();
            v.insert(crate::policy::Violation::TooLong { max: MAX_PIN_LEN });
            v
        })
    }

    /// The PIN.
    pub fn pin(&self) -> &Pin {
        &self.0
    }
}

/// PIV reference data (PIN or PUK): 8 bytes, the value padded with `FF`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PivReference([u8; 8]);

impl PivReference {
    fn padded(value: &[u8], min: usize, digits_only: bool) -> Result<Self, SecretError> {
        if value.len() < min || value.len() > 8 {
            return Err(SecretError::Length { min, max: 8 });
        }
        if value.contains(&0xFF) || (digits_only && !value.iter().all(u8::is_ascii_digit)) {
            return Err(SecretError::Character);
        }
        let mut out = [0xFF; 8];
        out[..value.len()].copy_from_slice(value);
        Ok(Self(out))
    }

    /// A PIV PIN: 6 to 8 ASCII digits (SP 800-73-4 Part 2 §2.4.3).
    pub fn pin(pin: &[u8]) -> Result<Self, SecretError> {
        Self::padded(pin, 6, true)
    }

    /// A PIV PUK: 6 to 8 bytes (8 on a factory card; YubiKeys accept 6 to 8), FF-padded.
    pub fn puk(puk: &[u8]) -> Result<Self, SecretError> {
        Self::padded(puk, 6, false)
    }

    /// The padded 8 bytes, as they go in the command.
    pub fn padded_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl core::fmt::Debug for PivReference {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PivReference(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn piv_pin_is_digits_padded() {
        assert_eq!(
            PivReference::pin(b"123456").unwrap().padded_bytes(),
            b"123456\xFF\xFF"
        );
        assert_eq!(
            PivReference::pin(b"12345").err(),
            Some(SecretError::Length { min: 6, max: 8 })
        );
        assert_eq!(
            PivReference::pin(b"12345a").err(),
            Some(SecretError::Character)
        );
        assert_eq!(
            PivReference::pin(b"123456789").err(),
            Some(SecretError::Length { min: 6, max: 8 })
        );
        assert_eq!(
            PivReference::puk(b"12345678").unwrap().padded_bytes(),
            b"12345678"
        );
        assert_eq!(
            PivReference::puk(b"abc\xFFdef").err(),
            Some(SecretError::Character)
        );
    }

    #[test]
    fn debug_never_shows_values() {
        let mut s: heapless::String<64> = heapless::String::new();
        write!(
            s,
            "{:?} {:?}",
            Pin::new(b"424242").unwrap(),
            PivReference::puk(b"87654321").unwrap()
        )
        .unwrap();
        assert!(
            !s.contains("424242") && !s.contains("52") && !s.contains("8765"),
            "{s}"
        );
    }

    #[test]
    fn new_pin_needs_policy_and_confirmation() {
        let ok = NewPin::new(&PinPolicy::PIV, b"840259", b"840259", None, None).unwrap();
        assert_eq!(ok.pin().expose(), b"840259");
        assert!(NewPin::new(&PinPolicy::PIV, b"840259", b"840258", None, None).is_err());
        assert!(NewPin::new(&PinPolicy::PIV, b"123456", b"123456", None, None).is_err());
    }
}
