//! Why an ISO profile's values, or an algorithm's name, are refused.

use std::fmt;

use super::MAX_NAME_LEN;
use crate::hex::HexError;

/// An admin key algorithm name that is none of the known ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownAlgorithm {
    given: String,
    card_allowed: bool,
}

impl UnknownAlgorithm {
    pub(super) fn new(given: &str, card_allowed: bool) -> Self {
        Self {
            given: given.to_string(),
            card_allowed,
        }
    }

    /// The name as given.
    pub fn given(&self) -> &str {
        &self.given
    }
}

impl fmt::Display for UnknownAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "algorithm {:?}: use 3des, aes128, aes192, aes256",
            self.given
        )?;
        if self.card_allowed {
            f.write_str(" or card (as the card reports)")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownAlgorithm {}

/// Why an ISO profile is refused: each variant names the field it is about ([`Self::field`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProfileError {
    /// The name is empty or longer than [`MAX_NAME_LEN`].
    NameLength(String),
    /// The name has a character other than ASCII letters, digits, `.`, `_`, `-`.
    NameCharacters(String),
    /// Another profile has this name already (letter case ignored).
    DuplicateName(String),
    /// The AID is not hex.
    AidHex {
        /// The AID as given.
        aid: String,
        /// What is wrong with its digits.
        reason: HexError,
    },
    /// The AID is not 1 to 16 bytes long.
    AidLength {
        /// The AID as given.
        aid: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A key or PIN reference is not a byte.
    Reference {
        /// `admin-key-ref` or `pin-ref`.
        field: &'static str,
        /// The value given.
        value: i64,
    },
    /// The algorithm is unknown.
    Algorithm(UnknownAlgorithm),
}

impl ProfileError {
    /// The field of the profile the error is about: `name`, `aid`, `admin-key-ref`, `pin-ref`
    /// or `algorithm`.
    pub fn field(&self) -> &'static str {
        match self {
            Self::NameLength(_) | Self::NameCharacters(_) | Self::DuplicateName(_) => "name",
            Self::AidHex { .. } | Self::AidLength { .. } => "aid",
            Self::Reference { field, .. } => field,
            Self::Algorithm(_) => "algorithm",
        }
    }
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NameLength(name) => {
                write!(f, "name {name:?}: give 1 to {MAX_NAME_LEN} characters")
            }
            Self::NameCharacters(name) => write!(
                f,
                "name {name:?}: use only letters, digits, '.', '_' and '-'"
            ),
            Self::DuplicateName(name) => {
                write!(f, "name {name:?}: a profile has that name already")
            }
            Self::AidHex { aid, reason } => write!(f, "aid {aid:?}: {reason}"),
            Self::AidLength { aid, len } => {
                write!(f, "aid {aid:?}: an AID has 1 to 16 bytes, this one {len}")
            }
            Self::Reference { field, value } => {
                write!(f, "{field} {value}: give a byte, 0x00 to 0xFF")
            }
            Self::Algorithm(e) => e.fmt(f),
        }
    }
}

// The cause is part of the message (`aid "..": odd number of hex digits`), so not a `source`.
impl std::error::Error for ProfileError {}

impl From<UnknownAlgorithm> for ProfileError {
    fn from(e: UnknownAlgorithm) -> Self {
        Self::Algorithm(e)
    }
}
