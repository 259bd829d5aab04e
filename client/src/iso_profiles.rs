//! The ISO admin profiles a workstation tries, from its configuration: a list of named profiles
//! (name, AID, admin key reference, PIN reference, algorithm or "as the card reports").
//!
//! The CLI and the window read a TOML file (`--iso-profiles FILE`, else [`default_path`]; an
//! absent default file means no ISO profile); the Windows credential provider reads the same
//! values from the registry and builds them with [`IsoProfileEntry::new`]. Either way they are
//! validated here, once:
//!
//! ```toml
//! [[profile]]
//! name = "acme-minidriver"      # letters, digits, '.', '_', '-'; at most 64; unique
//! aid = "A0 00 00 01 23 45"     # 1 to 16 bytes, hex (spaces and colons allowed)
//! admin-key-ref = 0x01          # P2 of EXTERNAL AUTHENTICATE
//! pin-ref = 0x80                # P2 of VERIFY and RESET RETRY COUNTER
//! algorithm = "aes128"          # 3des, aes128, aes192, aes256; "card" or absent: as the card reports
//! ```
//!
//! A status read tries PIV, GIDS, then each profile in the file's order (one SELECT each). With
//! the `demo` feature (which links the simulated card) the simulator's profile is added last.

use std::path::{Path, PathBuf};

use cardunlock_core::crypto::Algorithm;
use cardunlock_core::iso::IsoProfile;
use cardunlock_protocol::files::{read_checked_text, FileError, FileKind};
use serde::Deserialize;
use toml::Spanned;

use crate::failure::{Failure, Kind};

mod error;
pub use error::{ProfileError, UnknownAlgorithm};

/// Where the workstation's ISO profiles are when `--iso-profiles` is not given.
pub fn default_path() -> PathBuf {
    if cfg!(windows) {
        let data = std::env::var_os("ProgramData").unwrap_or_else(|| r"C:\ProgramData".into());
        PathBuf::from(data)
            .join("cardunlock")
            .join("iso-profiles.toml")
    } else {
        PathBuf::from("/etc/cardunlock/iso-profiles.toml")
    }
}

/// The longest profile name (the server stores it with the card).
pub const MAX_NAME_LEN: usize = 64;

/// One named ISO admin profile, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsoProfileEntry {
    name: String,
    aid: Vec<u8>,
    admin_key_ref: u8,
    pin_ref: u8,
    algorithm: Option<Algorithm>,
}

/// Whether `name` can name a profile: 1 to [`MAX_NAME_LEN`] ASCII letters, digits, `.`, `_`, `-`.
pub fn check_name(name: &str) -> Result<(), ProfileError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(ProfileError::NameLength(name.to_string()));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(ProfileError::NameCharacters(name.to_string()));
    }
    Ok(())
}

/// An admin key algorithm as people write it: `3des` (`tdes`), `aes128`, `AES-192`, ...;
/// `card` means "as the card reports" (`None`). Every place that reads an algorithm's name
/// (the ISO profiles file, the command line, the credential provider's registry values) reads
/// it with this.
pub fn parse_algorithm(s: &str) -> Result<Option<Algorithm>, UnknownAlgorithm> {
    match normalized(s).as_str() {
        "card" => Ok(None),
        name => named(name)
            .ok_or_else(|| UnknownAlgorithm::new(s, true))
            .map(Some),
    }
}

/// As [`parse_algorithm`], where "as the card reports" is no choice (the default already):
/// `card` is refused.
pub fn parse_named_algorithm(s: &str) -> Result<Algorithm, UnknownAlgorithm> {
    named(&normalized(s)).ok_or_else(|| UnknownAlgorithm::new(s, false))
}

fn normalized(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace(['-', '_'], "")
}

fn named(normalized: &str) -> Option<Algorithm> {
    match normalized {
        "3des" | "tdes" | "des3" | "tripledes" => Some(Algorithm::TripleDes),
        "aes128" => Some(Algorithm::Aes128),
        "aes192" => Some(Algorithm::Aes192),
        "aes256" => Some(Algorithm::Aes256),
        _ => None,
    }
}

fn reference(field: &'static str, value: i64) -> Result<u8, ProfileError> {
    u8::try_from(value).map_err(|_| ProfileError::Reference { field, value })
}

impl IsoProfileEntry {
    /// A profile from its values as written: `aid` in hex, the references as numbers,
    /// `algorithm` as [`parse_algorithm`] reads it (`None`: as the card reports).
    pub fn new(
        name: &str,
        aid: &str,
        admin_key_ref: i64,
        pin_ref: i64,
        algorithm: Option<&str>,
    ) -> Result<Self, ProfileError> {
        check_name(name)?;
        let aid_bytes = crate::hex::parse(aid).map_err(|reason| ProfileError::AidHex {
            aid: aid.to_string(),
            reason,
        })?;
        if !(1..=16).contains(&aid_bytes.len()) {
            return Err(ProfileError::AidLength {
                aid: aid.to_string(),
                len: aid_bytes.len(),
            });
        }
        Ok(Self {
            name: name.to_string(),
            aid: aid_bytes,
            admin_key_ref: reference("admin-key-ref", admin_key_ref)?,
            pin_ref: reference("pin-ref", pin_ref)?,
            algorithm: algorithm.map(parse_algorithm).transpose()?.flatten(),
        })
    }

    /// The profile's name (what the server records for the card).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The application identifier selected.
    pub fn aid(&self) -> &[u8] {
        &self.aid
    }

    /// The admin key algorithm configured (`None`: as the card reports).
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.algorithm
    }

    /// The core's command set for this profile. The algorithm: `override_alg` (the command
    /// line's), else the configured one, else `reported` (the card's), else 3DES.
    pub fn profile(
        &self,
        override_alg: Option<Algorithm>,
        reported: Option<Algorithm>,
    ) -> IsoProfile<'_> {
        IsoProfile {
            aid: &self.aid,
            admin_key_ref: self.admin_key_ref,
            pin_ref: self.pin_ref,
            algorithm: override_alg
                .or(self.algorithm)
                .or(reported)
                .unwrap_or(Algorithm::TripleDes),
        }
    }
}

/// A configuration problem, with the line of the file it is on when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line of the file (`None`: not from a file, or the whole file).
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    profile: Vec<Spanned<RawProfile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawProfile {
    name: Spanned<String>,
    aid: Spanned<String>,
    admin_key_ref: Spanned<i64>,
    pin_ref: Spanned<i64>,
    algorithm: Option<Spanned<String>>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The ISO admin profiles of a workstation, in the order they are tried; names are unique.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IsoProfiles {
    entries: Vec<IsoProfileEntry>,
}

impl IsoProfiles {
    /// No ISO profile: only PIV and GIDS cards are recognised.
    pub const fn none() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// What a workstation has without configuration: none, or with the `demo` feature the
    /// simulated card's profile.
    pub fn builtin() -> Self {
        #[allow(unused_mut)]
        let mut profiles = Self::none();
        #[cfg(feature = "demo")]
        profiles.add_simulator();
        profiles
    }

    /// The profile an online unlock uses for an ISO card that answered on `answered`: the one
    /// the server names (`named`, recorded at enrollment), which must be configured here with
    /// the same AID; else (a card enrolled without a name) the one that answered. Checked
    /// before any try is spent.
    pub fn resolve<'p>(
        &'p self,
        answered: &'p IsoProfileEntry,
        named: Option<&str>,
    ) -> Result<&'p IsoProfileEntry, Failure> {
        let Some(name) = named else {
            return Ok(answered);
        };
        let entry =
            self.get(name).ok_or_else(|| {
                Failure::new(
                    Kind::Refused,
                    format!(
                    "ISO profile: the unlock server says this card uses the ISO profile {name:?}, \
                     which this workstation does not have (it has: {}). The card was not \
                     touched; ask your administrator to add it to the workstation's ISO profiles.",
                    if self.is_empty() { "none".into() } else { self.names() }
                ),
                )
            })?;
        if entry.aid != answered.aid {
            return Err(Failure::new(
                Kind::Refused,
                format!(
                    "ISO profile: the unlock server says this card uses the ISO profile {name:?}, \
                     whose AID {} is not the one the card answered on ({}, profile {:?}). The \
                     card was not touched; ask your administrator to check the ISO profiles.",
                    hex::encode(&entry.aid),
                    hex::encode(&answered.aid),
                    answered.name
                ),
            ));
        }
        Ok(entry)
    }

    /// The profiles given, in order; two with the same name (letter case ignored) are refused.
    pub fn from_entries(entries: Vec<IsoProfileEntry>) -> Result<Self, ProfileError> {
        let mut profiles = Self::none();
        for e in entries {
            profiles.push(e)?;
        }
        Ok(profiles)
    }

    fn push(&mut self, entry: IsoProfileEntry) -> Result<(), ProfileError> {
        if self.get(&entry.name).is_some() {
            return Err(ProfileError::DuplicateName(entry.name));
        }
        self.entries.push(entry);
        Ok(())
    }

    /// Parses the TOML form (see the module documentation); errors name the line.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let file: File = toml::from_str(text).map_err(|e| ConfigError {
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().trim().to_string(),
        })?;
        let mut profiles = Self::none();
        for raw in file.profile {
            let at = |span: std::ops::Range<usize>, e: ProfileError| ConfigError {
                line: Some(line_of(text, span.start)),
                message: e.to_string(),
            };
            let raw = raw.into_inner();
            let field_span = |e: &ProfileError| {
                let spans = [
                    ("name", raw.name.span()),
                    ("aid", raw.aid.span()),
                    ("admin-key-ref", raw.admin_key_ref.span()),
                    ("pin-ref", raw.pin_ref.span()),
                ];
                spans
                    .into_iter()
                    .find(|(field, _)| e.field() == *field)
                    .map(|(_, s)| s)
                    .or_else(|| raw.algorithm.as_ref().map(Spanned::span))
                    .unwrap_or_else(|| raw.name.span())
            };
            let entry = IsoProfileEntry::new(
                raw.name.get_ref(),
                raw.aid.get_ref(),
                *raw.admin_key_ref.get_ref(),
                *raw.pin_ref.get_ref(),
                raw.algorithm.as_ref().map(|a| a.get_ref().as_str()),
            )
            .map_err(|e| at(field_span(&e), e))?;
            profiles.push(entry).map_err(|e| at(raw.name.span(), e))?;
        }
        Ok(profiles)
    }

    /// Reads the profiles of a workstation: `path` if given (it must exist), else
    /// [`default_path`] if it exists, else none. The file must be a regular file owned by this
    /// user or root that group and others cannot write (as the pinned certificate). With the `demo` feature the simulated card's
    /// profile is added last.
    pub fn load(path: Option<&Path>) -> Result<Self, Failure> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (default_path(), false),
        };
        // Checked as the pinned certificate is: whoever can write the file chooses which AIDs
        // and references the workstation uses.
        let read = read_checked_text(&path, "ISO profiles", FileKind::Trusted);
        let mut profiles = match read {
            Ok(text) => Self::parse(&text)
                .map_err(|e| Failure::new(Kind::Usage, format!("{}: {e}", path.display())))?,
            Err(FileError::Missing(_)) if !required => Self::none(),
            Err(e) => {
                return Err(Failure::new(
                    Kind::Usage,
                    format!("cannot read the ISO profiles: {e}"),
                ))
            }
        };
        for sim in Self::builtin().entries {
            // A name taken already: the configured profile stays.
            let _ = profiles.push(sim);
        }
        Ok(profiles)
    }

    /// Adds the simulated card's profile (named [`SIMULATOR`]) unless a profile has that name.
    #[cfg(feature = "demo")]
    pub fn add_simulator(&mut self) {
        let sim = cardunlock_sim::ISO_PROFILE;
        let entry = IsoProfileEntry {
            name: SIMULATOR.to_string(),
            aid: sim.aid.to_vec(),
            admin_key_ref: sim.admin_key_ref,
            pin_ref: sim.pin_ref,
            algorithm: None,
        };
        // A name taken already: the configured profile stays.
        let _ = self.push(entry);
    }

    /// The profile named `name` (letter case ignored).
    pub fn get(&self, name: &str) -> Option<&IsoProfileEntry> {
        self.entries
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(name))
    }

    /// The profiles in the order they are tried.
    pub fn entries(&self) -> &[IsoProfileEntry] {
        &self.entries
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The core's command sets to probe, in order (algorithm as [`IsoProfileEntry::profile`]).
    pub fn probes(&self, override_alg: Option<Algorithm>) -> Vec<IsoProfile<'_>> {
        self.entries
            .iter()
            .map(|e| e.profile(override_alg, None))
            .collect()
    }

    /// The names, for messages: `acme, sim`.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.entries.iter().map(|e| e.name.as_str()).collect();
        names.join(", ")
    }
}

/// The name of the simulated card's profile (builds with the `demo` feature).
#[cfg(feature = "demo")]
pub const SIMULATOR: &str = "cardunlock-sim";

#[cfg(test)]
#[path = "iso_profiles/tests.rs"]
mod tests;
