//! Wire names: card profiles and admin-key algorithms, with their conversions to the core's.

use cardunlock_core::crypto::Algorithm;
use cardunlock_core::flow::Profile as CoreProfile;
use cardunlock_core::policy::PinPolicy as CorePinPolicy;
use serde::{Deserialize, Serialize};

/// A name that is not one of the contract's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseNameError {
    /// What was being parsed ("profile", "algorithm").
    pub what: &'static str,
    /// The accepted names, comma separated.
    pub expected: &'static str,
}

impl core::fmt::Display for ParseNameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} must be {}", self.what, self.expected)
    }
}

impl std::error::Error for ParseNameError {}

/// A card profile: `piv`, `gids` or `iso`: the one profile type of the server, the client, the
/// CLI and the window. Converts to and from [`cardunlock_core::flow::Profile`] (whose ISO
/// variant is `IsoAdmin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// PIV (SP 800-73): unlocked with the PUK.
    Piv,
    /// GIDS: unlocked after admin-key mutual authentication.
    Gids,
    /// ISO 7816-4 admin challenge-response.
    Iso,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Self; 3] = [Self::Piv, Self::Gids, Self::Iso];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Piv => "piv",
            Self::Gids => "gids",
            Self::Iso => "iso",
        }
    }

    /// The profile a wire name names (`None` for any other text; [`str::parse`] says why).
    pub fn parse(name: &str) -> Option<Self> {
        name.parse().ok()
    }

    /// The PIN policy a card of this profile is held to: PIV's for PIV cards, GIDS' for GIDS
    /// and ISO cards.
    pub const fn pin_policy(self) -> CorePinPolicy<'static> {
        match self {
            Self::Piv => CorePinPolicy::PIV,
            Self::Gids | Self::Iso => CorePinPolicy::GIDS,
        }
    }
}

impl From<CoreProfile> for Profile {
    fn from(p: CoreProfile) -> Self {
        match p {
            CoreProfile::Piv => Self::Piv,
            CoreProfile::Gids => Self::Gids,
            CoreProfile::IsoAdmin => Self::Iso,
        }
    }
}

impl From<Profile> for CoreProfile {
    fn from(p: Profile) -> Self {
        match p {
            Profile::Piv => Self::Piv,
            Profile::Gids => Self::Gids,
            Profile::Iso => Self::IsoAdmin,
        }
    }
}

impl core::fmt::Display for Profile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for Profile {
    type Err = ParseNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or(ParseNameError {
                what: "profile",
                expected: "piv, gids or iso",
            })
    }
}

/// An admin-key algorithm as the wire names it: `3des`, `aes128`, `aes192`, `aes256`.
/// Converts to and from [`cardunlock_core::crypto::Algorithm`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlgorithmName {
    /// `3des`.
    #[serde(rename = "3des")]
    TripleDes,
    /// `aes128`.
    #[serde(rename = "aes128")]
    Aes128,
    /// `aes192`.
    #[serde(rename = "aes192")]
    Aes192,
    /// `aes256`.
    #[serde(rename = "aes256")]
    Aes256,
}

impl AlgorithmName {
    /// Every algorithm.
    pub const ALL: [Self; 4] = [Self::TripleDes, Self::Aes128, Self::Aes192, Self::Aes256];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TripleDes => "3des",
            Self::Aes128 => "aes128",
            Self::Aes192 => "aes192",
            Self::Aes256 => "aes256",
        }
    }

    /// The core's algorithm.
    pub const fn algorithm(self) -> Algorithm {
        match self {
            Self::TripleDes => Algorithm::TripleDes,
            Self::Aes128 => Algorithm::Aes128,
            Self::Aes192 => Algorithm::Aes192,
            Self::Aes256 => Algorithm::Aes256,
        }
    }

    /// The wire name of a core algorithm (`None` for one the contract does not name).
    pub fn of(algorithm: Algorithm) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.algorithm() == algorithm)
    }

    /// The wire name of a core algorithm.
    pub fn name_of(algorithm: Algorithm) -> &'static str {
        Self::of(algorithm).map_or("unknown", Self::as_str)
    }
}

impl From<AlgorithmName> for Algorithm {
    fn from(a: AlgorithmName) -> Self {
        a.algorithm()
    }
}

impl core::fmt::Display for AlgorithmName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for AlgorithmName {
    type Err = ParseNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or(ParseNameError {
                what: "algorithm",
                expected: "3des, aes128, aes192 or aes256",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in AlgorithmName::ALL {
            assert_eq!(a.as_str().parse::<AlgorithmName>(), Ok(a));
            assert_eq!(AlgorithmName::of(a.algorithm()), Some(a));
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.as_str()));
        }
        for p in Profile::ALL {
            assert_eq!(p.as_str().parse::<Profile>(), Ok(p));
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
        }
        for core in [CoreProfile::Piv, CoreProfile::Gids, CoreProfile::IsoAdmin] {
            let wire = Profile::from(core);
            assert_eq!(CoreProfile::from(wire), core);
            assert_eq!(wire.as_str(), core.name());
            assert_eq!(Profile::parse(core.name()), Some(wire));
        }
        assert_eq!(Profile::parse("isoadmin"), None);
        assert!("des".parse::<AlgorithmName>().is_err());
        assert!("PIV".parse::<Profile>().is_err());
    }
}
