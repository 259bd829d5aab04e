//! Byte fields of the contract: hex on the wire, checked bytes in memory. Each is decoded once,
//! when the message is parsed (a malformed one fails the parse, which both sides report as a bad
//! request), and written back as lowercase hex, so the JSON is the same as a hex `String`'s.

use serde::{Deserialize, Serialize};

/// A hex field that is not what the contract allows. Names the field's length, never its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BytesError {
    /// What the field holds ("card identity", "challenge block", ...).
    pub what: &'static str,
    /// Fewest bytes allowed.
    pub min: usize,
    /// Most bytes allowed.
    pub max: usize,
}

impl core::fmt::Display for BytesError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.min == self.max {
            write!(f, "{} must be {} hex digits", self.what, 2 * self.min)
        } else {
            write!(
                f,
                "{} must be {} to {} bytes of hex",
                self.what, self.min, self.max
            )
        }
    }
}

impl std::error::Error for BytesError {}

/// Hex text as bytes, `min..=max` of them (either case on input).
fn decode(text: &str, what: &'static str, min: usize, max: usize) -> Result<Vec<u8>, BytesError> {
    let err = BytesError { what, min, max };
    if text.len() > 2 * max {
        return Err(err);
    }
    match hex::decode(text) {
        Ok(bytes) if (min..=max).contains(&bytes.len()) => Ok(bytes),
        _ => Err(err),
    }
}

/// Declares a byte newtype with its bounds, serde as hex and the usual accessors.
macro_rules! hex_bytes {
    ($(#[$doc:meta])* $name:ident, $what:literal, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Vec<u8>);

        impl $name {
            /// Fewest bytes allowed.
            pub const MIN: usize = $min;
            /// Most bytes allowed.
            pub const MAX: usize = $max;

            /// Checks the length of `bytes`.
            pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, BytesError> {
                let bytes = bytes.into();
                if (Self::MIN..=Self::MAX).contains(&bytes.len()) {
                    Ok(Self(bytes))
                } else {
                    Err(Self::error())
                }
            }

            /// The bytes.
            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }

            /// Lowercase hex, as on the wire.
            pub fn to_hex(&self) -> String {
                hex::encode(&self.0)
            }

            fn error() -> BytesError {
                BytesError {
                    what: $what,
                    min: Self::MIN,
                    max: Self::MAX,
                }
            }
        }

        impl core::str::FromStr for $name {
            type Err = BytesError;

            fn from_str(text: &str) -> Result<Self, BytesError> {
                decode(text, $what, Self::MIN, Self::MAX).map(Self)
            }
        }

        impl TryFrom<String> for $name {
            type Error = BytesError;

            fn try_from(text: String) -> Result<Self, BytesError> {
                text.parse()
            }
        }

        impl TryFrom<&str> for $name {
            type Error = BytesError;

            fn try_from(text: &str) -> Result<Self, BytesError> {
                text.parse()
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.to_hex()
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }
    };
}

hex_bytes!(
    /// A card identity: CHUID GUID, FASC-N or serial, 1 to 64 bytes (as `cardunlock status`
    /// prints it).
    CardIdentity,
    "card identity",
    1,
    64
);

hex_bytes!(
    /// A card's admin challenge, one cipher block: 8 bytes (3DES) or 16 (AES). The server checks
    /// it against the card's algorithm.
    Block,
    "block",
    8,
    16
);

hex_bytes!(
    /// A GIDS mutual-authentication random (R1, the host's, or R2, the card's): 16 bytes.
    GidsRandom,
    "GIDS random",
    16,
    16
);

hex_bytes!(
    /// A GIDS card's cryptogram, `3DES-CBC_K(R1 || R2 || Z2)`: 40 bytes.
    GidsCryptogram,
    "cryptogram",
    40,
    40
);

hex_bytes!(
    /// The 32 random bytes a PIV card signs to prove it is present
    /// ([`crate::presence::digest`]).
    Nonce,
    "nonce",
    crate::presence::NONCE_LEN,
    crate::presence::NONCE_LEN
);

impl TryFrom<&cardunlock_core::piv::CardId> for CardIdentity {
    type Error = BytesError;

    /// The identity a card's status read found (refused when it is empty).
    fn try_from(id: &cardunlock_core::piv::CardId) -> Result<Self, BytesError> {
        Self::new(id.as_bytes())
    }
}

impl From<[u8; crate::presence::NONCE_LEN]> for Nonce {
    fn from(bytes: [u8; crate::presence::NONCE_LEN]) -> Self {
        Self(bytes.to_vec())
    }
}

impl Nonce {
    /// The nonce as the array [`crate::presence::digest`] takes.
    pub fn to_array(&self) -> [u8; crate::presence::NONCE_LEN] {
        let mut out = [0u8; crate::presence::NONCE_LEN];
        out.copy_from_slice(&self.0);
        out
    }
}

hex_bytes!(
    /// A PIV card's Card Authentication public key (slot 9E), an uncompressed SEC1 P-256
    /// point: 65 bytes, `04 || X || Y`. The length is checked here; that the point is on the
    /// curve, by whoever verifies with it.
    CardAuthKey,
    "card_auth_key",
    65,
    65
);

/// Longest challenge text accepted, in characters: 32 hex digits with room for the spaces
/// (or tabs, new lines) a person puts between groups.
pub const MAX_CHALLENGE_TEXT: usize = 96;

/// A challenge that is not 8 or 16 bytes of hex. Names the rule, never the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChallengeError;

impl core::fmt::Display for ChallengeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(
            "the challenge must be 8 bytes (16 hex digits, 3DES) or 16 bytes (32 hex digits, \
             AES); spaces between digits are allowed",
        )
    }
}

impl std::error::Error for ChallengeError {}

/// An ISO card's offline admin challenge as the user reads it to an operator: 8 bytes (3DES)
/// or 16 bytes (AES). Parsed from hex with any whitespace between the digits (either case);
/// written back as compact lowercase hex. Whether the length fits the card's algorithm is
/// the server's check. Not a secret: the user reads it aloud.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Challenge(Vec<u8>);

impl Challenge {
    /// The lengths allowed, in bytes: one 3DES block or one AES block.
    pub const LENGTHS: [usize; 2] = [8, 16];

    /// Checks the length of `bytes`.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, ChallengeError> {
        let bytes = bytes.into();
        if Self::LENGTHS.contains(&bytes.len()) {
            Ok(Self(bytes))
        } else {
            Err(ChallengeError)
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Compact lowercase hex, as on the wire.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl core::str::FromStr for Challenge {
    type Err = ChallengeError;

    fn from_str(text: &str) -> Result<Self, ChallengeError> {
        if text.len() > MAX_CHALLENGE_TEXT {
            return Err(ChallengeError);
        }
        let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        hex::decode(digits)
            .map_err(|_| ChallengeError)
            .and_then(Self::new)
    }
}

impl TryFrom<String> for Challenge {
    type Error = ChallengeError;

    fn try_from(text: String) -> Result<Self, ChallengeError> {
        text.parse()
    }
}

impl TryFrom<&str> for Challenge {
    type Error = ChallengeError;

    fn try_from(text: &str) -> Result<Self, ChallengeError> {
        text.parse()
    }
}

impl From<Challenge> for String {
    fn from(value: Challenge) -> Self {
        value.to_hex()
    }
}

impl AsRef<[u8]> for Challenge {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl core::fmt::Display for Challenge {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl core::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Challenge({})", self.to_hex())
    }
}

/// Longest card signature kept, in bytes (a DER P-256 signature is at most 72).
pub const MAX_SIGNATURE_LEN: usize = 80;

/// A PIV card's DER ECDSA signature of the session's nonce, as `prove` carries it.
///
/// Unlike the other byte fields, a malformed signature does not fail the parse: every PIV card
/// that has not proved itself gets one and the same refusal, so a signature that is not hex (or
/// too long) is kept as one that cannot verify, and the server refuses it like a wrong one. Any
/// of them is written back as it came.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct Signature(SignatureForm);

#[derive(Clone, PartialEq, Eq)]
enum SignatureForm {
    Der(Vec<u8>),
    TooLong(String),
    Unreadable(String),
}

impl Signature {
    /// A DER signature.
    pub fn der(bytes: impl Into<Vec<u8>>) -> Self {
        let bytes = bytes.into();
        if bytes.len() > MAX_SIGNATURE_LEN {
            Self(SignatureForm::TooLong(hex::encode(bytes)))
        } else {
            Self(SignatureForm::Der(bytes))
        }
    }

    /// The DER bytes; `None` when the text was not hex or longer than [`MAX_SIGNATURE_LEN`].
    pub fn as_der(&self) -> Option<&[u8]> {
        match &self.0 {
            SignatureForm::Der(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// Whether it is longer than [`MAX_SIGNATURE_LEN`] bytes.
    pub fn is_too_long(&self) -> bool {
        matches!(self.0, SignatureForm::TooLong(_))
    }
}

impl From<String> for Signature {
    fn from(text: String) -> Self {
        if text.len() > 2 * MAX_SIGNATURE_LEN {
            return Self(SignatureForm::TooLong(text));
        }
        match hex::decode(&text) {
            Ok(bytes) => Self(SignatureForm::Der(bytes)),
            Err(_) => Self(SignatureForm::Unreadable(text)),
        }
    }
}

impl From<Signature> for String {
    fn from(s: Signature) -> Self {
        match s.0 {
            SignatureForm::Der(bytes) => hex::encode(bytes),
            SignatureForm::TooLong(text) | SignatureForm::Unreadable(text) => text,
        }
    }
}

impl core::fmt::Debug for Signature {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match &self.0 {
            SignatureForm::Der(bytes) => write!(f, "Signature({})", hex::encode(bytes)),
            SignatureForm::TooLong(_) => f.write_str("Signature(too long)"),
            SignatureForm::Unreadable(_) => f.write_str("Signature(not hex)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the bounds and the hex check hold at parse time, and that what is written back
    /// is the lowercase hex a `String` field carried.
    #[test]
    fn fields_are_checked_when_parsed() {
        let id: CardIdentity = serde_json::from_str("\"0A0b\"").unwrap();
        assert_eq!(id.as_bytes(), [0x0a, 0x0b]);
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"0a0b\"");
        for bad in ["\"\"", "\"abc\"", "\"zz\"", "303"] {
            assert!(serde_json::from_str::<CardIdentity>(bad).is_err(), "{bad}");
        }
        let long = format!("\"{}\"", "00".repeat(65));
        assert!(serde_json::from_str::<CardIdentity>(&long).is_err());
        assert!("00".repeat(64).parse::<CardIdentity>().is_ok());

        assert!("00".repeat(7).parse::<Block>().is_err());
        assert!("00".repeat(8).parse::<Block>().is_ok());
        assert!("00".repeat(16).parse::<Block>().is_ok());
        assert!("00".repeat(17).parse::<Block>().is_err());
        assert!("zz".repeat(16).parse::<GidsRandom>().is_err());
        assert!("00".repeat(41).parse::<GidsCryptogram>().is_err());
        assert!("0".repeat(81).parse::<GidsCryptogram>().is_err());
        let nonce: Nonce = "aB".repeat(32).parse().unwrap();
        assert_eq!(nonce.to_array(), [0xab; 32]);
        assert!("ab".repeat(31).parse::<Nonce>().is_err());
        assert_eq!(
            "zz".parse::<Block>().unwrap_err().to_string(),
            "block must be 8 to 16 bytes of hex"
        );
        assert_eq!(
            GidsRandom::new([0u8; 15]).unwrap_err().to_string(),
            "GIDS random must be 32 hex digits"
        );
    }

    /// Proves a challenge is checked when the message is parsed: spaces allowed, only 8 or 16
    /// bytes, never more text than a person types; written back as compact lowercase hex; the
    /// error names the rule and not the value.
    #[test]
    fn challenges_are_checked_when_parsed() {
        let c: Challenge = serde_json::from_str("\"D4BD 9B1D\\tA5D2 6cda\"").unwrap();
        assert_eq!(
            c.as_bytes(),
            [0xd4, 0xbd, 0x9b, 0x1d, 0xa5, 0xd2, 0x6c, 0xda]
        );
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"d4bd9b1da5d26cda\"");
        let back: Challenge = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert_eq!(Challenge::new([0u8; 16]).unwrap().to_hex(), "00".repeat(16));
        let bad = [
            String::new(),
            "00".repeat(7),
            "00".repeat(9),
            "00".repeat(15),
            "00".repeat(17),
            "0".repeat(15),
            "zz".repeat(8),
            "0x".to_owned() + &"00".repeat(8),
            format!("{}{}", "00".repeat(8), " ".repeat(MAX_CHALLENGE_TEXT)),
        ];
        for text in &bad {
            assert_eq!(text.parse::<Challenge>(), Err(ChallengeError), "{text:?}");
            let json = serde_json::to_string(text).unwrap();
            let e = serde_json::from_str::<Challenge>(&json).unwrap_err();
            assert!(
                e.to_string().starts_with(&ChallengeError.to_string()),
                "{e}"
            );
        }
        assert!(serde_json::from_str::<Challenge>("8").is_err());
        let e = "secretzz".repeat(2).parse::<Challenge>().unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(Challenge::new(vec![0u8; 12]).is_err());
    }

    /// Proves a malformed signature still parses (so it gets the uniform refusal) but never
    /// yields bytes to verify, and that a good one round-trips.
    #[test]
    fn signatures_keep_the_uniform_refusal() {
        let good: Signature = serde_json::from_str("\"3006020101020101\"").unwrap();
        assert_eq!(good.as_der(), Some(&[0x30, 6, 2, 1, 1, 2, 1, 1][..]));
        assert_eq!(
            serde_json::to_string(&good).unwrap(),
            "\"3006020101020101\""
        );
        let bad: Signature = serde_json::from_str("\"zz\"").unwrap();
        assert_eq!(bad.as_der(), None);
        assert!(!bad.is_too_long());
        assert_eq!(serde_json::to_string(&bad).unwrap(), "\"zz\"");
        let text = format!("\"{}\"", "00".repeat(MAX_SIGNATURE_LEN + 1));
        let long: Signature = serde_json::from_str(&text).unwrap();
        assert!(long.is_too_long() && long.as_der().is_none());
        assert_eq!(serde_json::to_string(&long).unwrap(), text);
        assert!(Signature::der(vec![0; MAX_SIGNATURE_LEN + 1]).is_too_long());
    }
}
