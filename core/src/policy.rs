//! The PIN policy, checked before any command reaches the card, so a PIN the policy rejects never
//! costs a retry.
//!
//! [`PinPolicy::check`] reports every violation at once, each as a typed [`Violation`], so a UI can
//! list them all. Nothing here allocates, and the result holds no PIN bytes.

use crate::crypto::ct_eq;

/// The characters a PIN may contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Charset {
    /// `0`–`9` only (PIV).
    Digits,
    /// ASCII letters and digits (GIDS).
    Alphanumeric,
    /// Printable ASCII, space (`0x20`) to `~` (`0x7E`).
    PrintableAscii,
}

impl Charset {
    /// Whether the byte `c` is allowed in a PIN (a UI can filter key presses with it).
    pub const fn allows(self, c: u8) -> bool {
        match self {
            Self::Digits => c.is_ascii_digit(),
            Self::Alphanumeric => c.is_ascii_alphanumeric(),
            Self::PrintableAscii => matches!(c, 0x20..=0x7E),
        }
    }
}

/// Common PINs refused when [`PinPolicy::builtin_blocklist`] is on: the top of published PIN
/// frequency studies (4 to 10 digits), including the two FIPS 201-3 names (`000000`,
/// `123456`). Repeated characters and straight runs are also caught by their own rules.
#[rustfmt::skip]
pub const BUILTIN_BLOCKLIST: &[&str] = &[
    // 4 digits
    "1234", "0000", "1111", "1212", "7777", "1004", "2000", "4444", "2222", "6969", "9999", "3333",
    "5555", "6666", "1122", "1313", "8888", "4321", "2001", "1010", "2580", "1470", "0852",
    // 6 digits
    "123456", "000000", "111111", "123123", "121212", "112233", "654321", "123321", "666666",
    "696969", "159753", "147258", "789456", "777777", "888888", "999999", "555555", "520520",
    "123654", "159357", "110110", "987654", "131313", "102030", "123789", "258000", "147852",
    "456123", "741852", "753951", "852456", "101010", "222222", "121314", "252525",
    // 7 to 10 digits
    "1234567", "7654321", "1111111", "5201314", "12345678", "11111111", "88888888", "87654321",
    "00000000", "12341234", "11223344", "13131313", "12121212", "123456789", "987654321",
    "147258369", "1234567890", "0987654321",
];

/// A PIN policy. `PinPolicy::PIV` and `PinPolicy::GIDS` are the profile defaults; a server can
/// hand out its own (the fields are public).
#[derive(Clone, Copy, Debug)]
pub struct PinPolicy<'a> {
    /// Minimum length in bytes (characters: every allowed character is one ASCII byte).
    pub min_len: usize,
    /// Maximum length in bytes.
    pub max_len: usize,
    /// The allowed characters.
    pub charset: Charset,
    /// Refuse a PIN of one character repeated (`111111`, `aaaa`; letters ignoring case).
    pub forbid_repeated: bool,
    /// Refuse a PIN that is one ascending or descending run by step 1, at least 3 long, of
    /// digits or of letters (`123456`, `654321`, `abcdef`, `ZYX`; letters ignoring case).
    pub forbid_sequences: bool,
    /// Refuse the PINs of [`BUILTIN_BLOCKLIST`].
    pub builtin_blocklist: bool,
    /// More refused PINs (the organisation's own), matched ignoring ASCII case.
    pub custom_blocklist: &'a [&'a str],
}

impl PinPolicy<'static> {
    /// PIV (SP 800-73): 6 to 8 digits, every check on, the built-in blocklist.
    pub const PIV: Self = Self {
        min_len: 6,
        max_len: 8,
        charset: Charset::Digits,
        forbid_repeated: true,
        forbid_sequences: true,
        builtin_blocklist: true,
        custom_blocklist: &[],
    };

    /// GIDS: 4 to 15 letters and digits, every check on, the built-in blocklist.
    pub const GIDS: Self = Self {
        min_len: 4,
        max_len: 15,
        charset: Charset::Alphanumeric,
        forbid_repeated: true,
        forbid_sequences: true,
        builtin_blocklist: true,
        custom_blocklist: &[],
    };
}

/// One way a new PIN breaks the policy. The variants are listed in the order
/// [`PinPolicy::check`] reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Violation {
    /// Shorter than the policy's minimum length.
    TooShort {
        /// The minimum length.
        min: usize,
    },
    /// Longer than the policy's maximum length.
    TooLong {
        /// The maximum length.
        max: usize,
    },
    /// At least one character outside the policy's [`Charset`] (reported once).
    InvalidCharacter,
    /// One character repeated (`111111`).
    RepeatedCharacter,
    /// An ascending or descending run (`123456`, `654321`).
    Sequence,
    /// On the built-in list of common PINs.
    CommonPin,
    /// On the organisation's own blocklist.
    CustomBlocklisted,
    /// The same as the old PIN.
    SameAsOldPin,
    /// The same as the PUK.
    SameAsPuk,
    /// The confirmation differs from the new PIN.
    ConfirmationMismatch,
}

impl core::fmt::Display for Violation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooShort { min } => write!(f, "The PIN must have at least {min} characters."),
            Self::TooLong { max } => write!(f, "The PIN must have at most {max} characters."),
            Self::InvalidCharacter => {
                f.write_str("The PIN contains characters that are not allowed.")
            }
            Self::RepeatedCharacter => {
                f.write_str("The PIN must not be a single repeated character.")
            }
            Self::Sequence => {
                f.write_str("The PIN must not be an ascending or descending sequence.")
            }
            Self::CommonPin => f.write_str("The PIN is too common; choose a less predictable one."),
            Self::CustomBlocklisted => f.write_str("The PIN is forbidden by your organisation."),
            Self::SameAsOldPin => f.write_str("The new PIN must differ from the old PIN."),
            Self::SameAsPuk => f.write_str("The PIN must differ from the PUK."),
            Self::ConfirmationMismatch => f.write_str("The PIN and its confirmation do not match."),
        }
    }
}

/// Every violation [`PinPolicy::check`] found, in the order of [`Violation`]'s variants.
///
/// A bitset plus the two lengths: small, `Copy`, and free of PIN bytes.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Violations {
    bits: u16,
    min: usize,
    max: usize,
}

impl Violations {
    /// No violation.
    pub fn is_empty(&self) -> bool {
        self.bits == 0
    }

    /// How many violations.
    pub fn len(&self) -> usize {
        self.bits.count_ones() as usize
    }

    /// The violations, in a fixed order (that of [`Violation`]'s variants).
    pub fn iter(&self) -> impl Iterator<Item = Violation> + '_ {
        (0..VARIANTS).filter_map(move |i| self.at(i))
    }

    /// Whether `v` is among the violations (`TooShort` / `TooLong` with the same length).
    pub fn contains(&self, v: &Violation) -> bool {
        self.iter().any(|found| found == *v)
    }

    pub(crate) fn insert(&mut self, v: Violation) {
        match v {
            Violation::TooShort { min } => self.min = min,
            Violation::TooLong { max } => self.max = max,
            _ => {}
        }
        self.bits |= 1 << index(v);
    }

    fn at(&self, i: u8) -> Option<Violation> {
        if self.bits & (1 << i) == 0 {
            return None;
        }
        Some(match i {
            0 => Violation::TooShort { min: self.min },
            1 => Violation::TooLong { max: self.max },
            2 => Violation::InvalidCharacter,
            3 => Violation::RepeatedCharacter,
            4 => Violation::Sequence,
            5 => Violation::CommonPin,
            6 => Violation::CustomBlocklisted,
            7 => Violation::SameAsOldPin,
            8 => Violation::SameAsPuk,
            _ => Violation::ConfirmationMismatch,
        })
    }
}

impl core::fmt::Display for Violations {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("the new PIN does not meet the PIN policy:")?;
        for violation in self.iter() {
            write!(f, " {violation}")?;
        }
        Ok(())
    }
}

impl core::error::Error for Violations {}

impl core::fmt::Debug for Violations {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Violations {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "[");
        for (n, v) in self.iter().enumerate() {
            if n > 0 {
                defmt::write!(f, ", ");
            }
            defmt::write!(f, "{}", v);
        }
        defmt::write!(f, "]");
    }
}

const VARIANTS: u8 = 10;

const fn index(v: Violation) -> u8 {
    match v {
        Violation::TooShort { .. } => 0,
        Violation::TooLong { .. } => 1,
        Violation::InvalidCharacter => 2,
        Violation::RepeatedCharacter => 3,
        Violation::Sequence => 4,
        Violation::CommonPin => 5,
        Violation::CustomBlocklisted => 6,
        Violation::SameAsOldPin => 7,
        Violation::SameAsPuk => 8,
        Violation::ConfirmationMismatch => 9,
    }
}

/// What a new PIN must differ from besides the policy's own rules: the old PIN and the PUK, when
/// the caller knows them. Built with [`PinContext::NONE`] and its builder methods.
///
/// ```
/// use cardunlock_core::policy::PinContext;
/// let known = PinContext::NONE.puk(b"12345678");
/// # let _ = known;
/// ```
#[derive(Clone, Copy, Default)]
pub struct PinContext<'a> {
    old_pin: Option<&'a [u8]>,
    puk: Option<&'a [u8]>,
}

impl<'a> PinContext<'a> {
    /// Nothing known besides the new PIN.
    pub const NONE: Self = Self {
        old_pin: None,
        puk: None,
    };

    /// The new PIN must differ from this old PIN.
    pub const fn old_pin(self, old_pin: &'a [u8]) -> Self {
        Self {
            old_pin: Some(old_pin),
            ..self
        }
    }

    /// The new PIN must differ from this PUK.
    pub const fn puk(self, puk: &'a [u8]) -> Self {
        Self {
            puk: Some(puk),
            ..self
        }
    }
}

impl core::fmt::Debug for PinContext<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Whether each is known, never the values.
        f.debug_struct("PinContext")
            .field("old_pin", &self.old_pin.is_some())
            .field("puk", &self.puk.is_some())
            .finish()
    }
}

impl PinPolicy<'_> {
    /// Checks `new_pin` (the bytes as typed, no padding) and its `confirmation`, against the
    /// old PIN and the PUK when `context` knows them ([`PinContext::NONE`]: neither).
    ///
    /// Reports every violation, not just the first. The comparisons with the old PIN, the PUK
    /// and the confirmation are constant time.
    pub fn check(
        &self,
        new_pin: &[u8],
        confirmation: &[u8],
        context: PinContext<'_>,
    ) -> Result<(), Violations> {
        let mut found = Violations::default();
        let mut report = |hit: bool, v: Violation| {
            if hit {
                found.insert(v);
            }
        };
        let len = new_pin.len();
        report(
            len < self.min_len,
            Violation::TooShort { min: self.min_len },
        );
        report(len > self.max_len, Violation::TooLong { max: self.max_len });
        let charset = self.charset;
        report(
            !new_pin.iter().all(|&c| charset.allows(c)),
            Violation::InvalidCharacter,
        );
        report(
            self.forbid_repeated && is_repeated(new_pin),
            Violation::RepeatedCharacter,
        );
        report(
            self.forbid_sequences && is_sequence(new_pin),
            Violation::Sequence,
        );
        report(
            self.builtin_blocklist && listed(BUILTIN_BLOCKLIST, new_pin),
            Violation::CommonPin,
        );
        report(
            listed(self.custom_blocklist, new_pin),
            Violation::CustomBlocklisted,
        );
        report(
            context.old_pin.is_some_and(|old| ct_eq(new_pin, old)),
            Violation::SameAsOldPin,
        );
        report(
            context.puk.is_some_and(|puk| ct_eq(new_pin, puk)),
            Violation::SameAsPuk,
        );
        report(
            !ct_eq(new_pin, confirmation),
            Violation::ConfirmationMismatch,
        );
        if found.is_empty() {
            Ok(())
        } else {
            Err(found)
        }
    }
}

/// At least two characters, all the same (letters ignoring case).
fn is_repeated(pin: &[u8]) -> bool {
    match pin.split_first() {
        Some((first, rest)) if !rest.is_empty() => {
            rest.iter().all(|c| c.eq_ignore_ascii_case(first))
        }
        _ => false,
    }
}

/// At least three characters, all digits or all letters (ignoring case), each one more than the
/// one before, or each one less.
fn is_sequence(pin: &[u8]) -> bool {
    if pin.len() < 3 {
        return false;
    }
    let all_digits = pin.iter().all(u8::is_ascii_digit);
    let all_letters = pin.iter().all(u8::is_ascii_alphabetic);
    if !all_digits && !all_letters {
        return false;
    }
    let step =
        |a: &u8, b: &u8| i16::from(b.to_ascii_lowercase()) - i16::from(a.to_ascii_lowercase());
    let ascending = pin
        .windows(2)
        .all(|w| matches!(w, [a, b] if step(a, b) == 1));
    let descending = pin
        .windows(2)
        .all(|w| matches!(w, [a, b] if step(a, b) == -1));
    ascending || descending
}

/// Whether `pin` is on `list`, ignoring ASCII case. Blocklists are public: not constant time.
fn listed(list: &[&str], pin: &[u8]) -> bool {
    list.iter()
        .any(|entry| entry.as_bytes().eq_ignore_ascii_case(pin))
}

#[cfg(test)]
mod tests;
