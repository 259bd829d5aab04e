//! PIN and PUK values whose constructors enforce the spec limits, so a malformed value cannot be
//! sent to a card. All are zeroized on drop, print as `<redacted>` and are not `Clone`: a flow
//! borrows the one copy the caller holds.
//!
//! - [`Pin`] and [`Puk`]: a PIN or PUK as typed (GIDS, ISO, vendor profiles).
//! - [`PivPin`] and [`PivPuk`]: the PIV PIN and PUK, FF-padded to 8 bytes. Two types, so a
//!   command that takes both cannot be given them the wrong way round.
//! - [`NewPin`]: a new PIN that passed a [`PinPolicy`] (and its confirmation, when the device
//!   has a second entry), in the format of the card profile that will take it.

use zeroize::{Zeroize, ZeroizeOnDrop};

pub use crate::policy::PinContext;
use crate::policy::{PinPolicy, Violation, Violations};

mod piv;

pub use piv::{PivPin, PivPuk};

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

/// A PIN format: how a card profile holds a PIN, built from the PIN as typed. [`NewPin`] takes
/// the format of the profile it is for ([`Pin`] for GIDS, ISO and most vendor cards, [`PivPin`]
/// for PIV); a vendor whose card wants another encoding implements this for its own type.
pub trait PinFormat: Sized {
    /// The PIN as typed (no padding) in this format, or why the profile cannot take it.
    fn from_typed(pin: &[u8]) -> Result<Self, SecretError>;
}

/// A PIN as typed: 1 to [`MAX_PIN_LEN`] bytes, no padding.
#[derive(Zeroize, ZeroizeOnDrop)]
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

impl PinFormat for Pin {
    fn from_typed(pin: &[u8]) -> Result<Self, SecretError> {
        Self::new(pin)
    }
}

impl core::fmt::Debug for Pin {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// A PUK (or other unblocking secret) as typed, for profiles that take it unpadded (vendor
/// applets): 1 to [`MAX_PIN_LEN`] bytes. Its own type, so a command that takes a PUK and a PIN
/// cannot be given them the wrong way round.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Puk(Pin);

impl Puk {
    /// A PUK of 1 to [`MAX_PIN_LEN`] bytes.
    pub fn new(puk: &[u8]) -> Result<Self, SecretError> {
        Pin::new(puk).map(Self)
    }

    /// The PUK bytes. Send them to a card, never to a log.
    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }
}

impl core::fmt::Debug for Puk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Puk(<redacted>)")
    }
}

/// A new PIN that passed a [`PinPolicy`], in the format `P` of the card profile that takes it
/// ([`Pin`] by default; [`PivPin`] for PIV). Flows that set a PIN take only this type, so a PIN
/// the policy refuses never reaches a card (and never costs a retry).
///
/// Whether the PIN was confirmed is said by the constructor: [`NewPin::confirmed`] when the
/// person typed it twice, [`NewPin::unconfirmed`] for a device without a second entry (a
/// firmware with a PIN pad that confirms otherwise, a provisioning script).
///
/// ```
/// use cardunlock_core::policy::PinPolicy;
/// use cardunlock_core::secret::{NewPin, PinContext, PivPin};
///
/// let pin: NewPin<PivPin> =
///     NewPin::confirmed(&PinPolicy::PIV, b"840259", b"840259", PinContext::NONE.puk(b"12345678"))
///         .unwrap();
/// # let _ = pin;
/// assert!(NewPin::<PivPin>::confirmed(&PinPolicy::PIV, b"840259", b"840258", PinContext::NONE)
///     .is_err());
/// ```
pub struct NewPin<P = Pin>(P);

impl<P: PinFormat> NewPin<P> {
    /// Checks `new_pin` against `policy` and `context`, and that `confirmation` (the second entry)
    /// is the same. Every violation is reported, a format the profile cannot take included
    /// ([`Violation::TooShort`], [`Violation::TooLong`], [`Violation::InvalidCharacter`]).
    pub fn confirmed(
        policy: &PinPolicy<'_>,
        new_pin: &[u8],
        confirmation: &[u8],
        context: PinContext<'_>,
    ) -> Result<Self, Violations> {
        let checked = policy.check(new_pin, confirmation, context);
        Self::format(new_pin, checked)
    }

    /// Checks `new_pin` against `policy` and `context`, with no confirmation: for a device
    /// without a second entry. Every violation is reported.
    pub fn unconfirmed(
        policy: &PinPolicy<'_>,
        new_pin: &[u8],
        context: PinContext<'_>,
    ) -> Result<Self, Violations> {
        let checked = policy.check(new_pin, new_pin, context);
        Self::format(new_pin, checked)
    }

    /// The policy's verdict joined with the profile's format: all violations together, a length
    /// bound reported once, the stricter of the policy's and the format's.
    fn format(new_pin: &[u8], checked: Result<(), Violations>) -> Result<Self, Violations> {
        let mut found = checked.err().unwrap_or_default();
        let e = match P::from_typed(new_pin) {
            Ok(pin) if found.is_empty() => return Ok(Self(pin)),
            Ok(_) => return Err(found),
            Err(e) => e,
        };
        let reported = |pick: fn(Violation) -> Option<usize>| found.iter().find_map(pick);
        let violation = match e {
            SecretError::Length { min, .. } if new_pin.len() < min => {
                let policy_min = reported(|v| match v {
                    Violation::TooShort { min } => Some(min),
                    _ => None,
                });
                Violation::TooShort {
                    min: policy_min.map_or(min, |m| m.max(min)),
                }
            }
            SecretError::Length { max, .. } => {
                let policy_max = reported(|v| match v {
                    Violation::TooLong { max } => Some(max),
                    _ => None,
                });
                Violation::TooLong {
                    max: policy_max.map_or(max, |m| m.min(max)),
                }
            }
            SecretError::Character => Violation::InvalidCharacter,
        };
        found.insert(violation);
        Err(found)
    }

    /// The PIN, in the profile's format.
    pub fn pin(&self) -> &P {
        &self.0
    }
}

impl<P> core::fmt::Debug for NewPin<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("NewPin(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn debug_never_shows_values() {
        let mut s: heapless::String<128> = heapless::String::new();
        let new_pin: NewPin =
            NewPin::unconfirmed(&PinPolicy::GIDS, b"Xk9w2", PinContext::NONE).unwrap();
        write!(
            s,
            "{:?} {:?} {:?} {:?} {:?}",
            Pin::new(b"424242").unwrap(),
            Puk::new(b"87654321").unwrap(),
            new_pin,
            PinContext::NONE.puk(b"87654321").old_pin(b"1357"),
            PivPuk::new(b"87654321").unwrap()
        )
        .unwrap();
        for secret in ["424242", "Xk9w2", "8765", "1357", "52"] {
            assert!(!s.contains(secret), "{s}");
        }
    }

    #[test]
    fn new_pin_needs_policy_and_confirmation() {
        let ok = NewPin::<Pin>::confirmed(&PinPolicy::PIV, b"840259", b"840259", PinContext::NONE)
            .unwrap();
        assert_eq!(ok.pin().expose(), b"840259");
        let mismatch =
            NewPin::<Pin>::confirmed(&PinPolicy::PIV, b"840259", b"840258", PinContext::NONE);
        assert!(mismatch
            .err()
            .unwrap()
            .contains(&Violation::ConfirmationMismatch));
        assert!(
            NewPin::<Pin>::confirmed(&PinPolicy::PIV, b"123456", b"123456", PinContext::NONE)
                .is_err()
        );
    }

    #[test]
    fn unconfirmed_still_checks_the_policy_and_the_context() {
        let ok = NewPin::<Pin>::unconfirmed(&PinPolicy::GIDS, b"Xk9w2", PinContext::NONE).unwrap();
        assert_eq!(ok.pin().expose(), b"Xk9w2");
        let context = PinContext::NONE.old_pin(b"Xk9w2").puk(b"Xk9w2");
        let v = NewPin::<Pin>::unconfirmed(&PinPolicy::GIDS, b"Xk9w2", context)
            .err()
            .unwrap();
        assert!(v.contains(&Violation::SameAsOldPin) && v.contains(&Violation::SameAsPuk));
        assert!(!v.contains(&Violation::ConfirmationMismatch));
        assert!(NewPin::<Pin>::unconfirmed(&PinPolicy::GIDS, b"1111", PinContext::NONE).is_err());
    }

    #[test]
    fn the_profile_format_is_part_of_the_verdict() {
        // A lax policy lets letters through; a PIV PIN is digits only, so the PIV format refuses.
        let lax = PinPolicy {
            charset: crate::policy::Charset::Alphanumeric,
            ..PinPolicy::PIV
        };
        let v = NewPin::<PivPin>::confirmed(&lax, b"84a259", b"84a259", PinContext::NONE)
            .err()
            .unwrap();
        assert_eq!(
            v.iter().collect::<heapless::Vec<_, 4>>(),
            [Violation::InvalidCharacter]
        );
        // ... while the generic format takes it.
        assert!(NewPin::<Pin>::confirmed(&lax, b"84a259", b"84a259", PinContext::NONE).is_ok());
        // A length the policy allows but PIV does not, with the policy's own findings kept.
        let long = PinPolicy {
            max_len: 12,
            ..PinPolicy::PIV
        };
        let v = NewPin::<PivPin>::confirmed(&long, b"8402591375", b"8402591376", PinContext::NONE)
            .err()
            .unwrap();
        assert!(v.contains(&Violation::TooLong { max: 8 }), "{v:?}");
        assert!(v.contains(&Violation::ConfirmationMismatch), "{v:?}");
        // Both refuse the length: the stricter bound is the one reported.
        let v = NewPin::<PivPin>::confirmed(
            &long,
            b"8402591375137",
            b"8402591375137",
            PinContext::NONE,
        )
        .err()
        .unwrap();
        assert!(v.contains(&Violation::TooLong { max: 8 }), "{v:?}");
        let v = NewPin::<Pin>::unconfirmed(&PinPolicy::GIDS, b"", PinContext::NONE)
            .err()
            .unwrap();
        assert!(v.contains(&Violation::TooShort { min: 4 }), "{v:?}");
    }
}
