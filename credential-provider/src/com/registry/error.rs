//! Why the registry's configuration cannot be used: the registry or a security descriptor
//! cannot be read, or what was read is refused ([`ConfigError`]).

use std::fmt;

use crate::config::{self, ConfigError};

/// Why an object's owner and DACL cannot be read.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Descriptor {
    /// Neither a handle nor a path was given.
    NothingToCheck,
    /// `GetSecurityInfo` / `GetNamedSecurityInfoW` failed with this Win32 error code.
    Unreadable(u32),
    /// A SID cannot be converted to its string form.
    Sid(windows::core::Error),
    /// A SID's string form is not UTF-16.
    SidNotUtf16,
    /// The DACL's entry `index` cannot be read.
    Ace {
        /// Its position in the DACL.
        index: u32,
        /// Why.
        source: windows::core::Error,
    },
    /// The DACL's entry `index` has a type the rule does not understand (refused, not guessed).
    AceType {
        /// Its position in the DACL.
        index: u32,
        /// Its `AceType`.
        kind: u8,
    },
}

impl fmt::Display for Descriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NothingToCheck => f.write_str("nothing to check"),
            Self::Unreadable(code) => {
                write!(f, "its security descriptor cannot be read ({code})")
            }
            Self::Sid(e) => write!(f, "SID: {e}"),
            Self::SidNotUtf16 => f.write_str("SID: not UTF-16"),
            Self::Ace { index, source } => write!(f, "ACE {index}: {source}"),
            Self::AceType { index, kind } => {
                write!(f, "ACE {index}: type {kind} is not understood")
            }
        }
    }
}

/// Why the provider's configuration cannot be used; each names the key, value or file.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RegistryError {
    /// The configuration key cannot be opened (Win32 error code): the unlock is not configured.
    NotConfigured(u32),
    /// A key (`what`) cannot be opened.
    CannotOpen {
        /// The key's full name.
        what: String,
        /// The Win32 error code.
        code: u32,
    },
    /// A value of the configuration key cannot be read.
    ValueUnreadable {
        /// The value's name.
        name: String,
        /// The Win32 error code.
        code: u32,
    },
    /// A key's subkeys cannot be listed.
    Subkeys {
        /// The key's full name.
        what: String,
        /// The Win32 error code.
        code: u32,
    },
    /// The owner and DACL of `what` cannot be read.
    Descriptor {
        /// The key or file.
        what: String,
        /// Why.
        detail: Descriptor,
    },
    /// The certificate file cannot be read.
    Certificate {
        /// Its path.
        path: String,
        /// Why.
        source: std::sync::Arc<std::io::Error>,
    },
    /// An error reading the subkey `at`.
    Within {
        /// The subkey's full name.
        at: String,
        /// The error.
        source: Box<RegistryError>,
    },
    /// What was read is refused.
    Config(ConfigError),
}

impl RegistryError {
    pub(super) fn value_unreadable(name: &str, code: u32) -> Self {
        Self::ValueUnreadable {
            name: name.to_string(),
            code,
        }
    }
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = config::KEY;
        match self {
            Self::NotConfigured(code) => write!(
                f,
                "HKLM\\{key} cannot be opened ({code}): the unlock is not configured"
            ),
            Self::CannotOpen { what, code } => write!(f, "{what} cannot be opened ({code})"),
            Self::ValueUnreadable { name, code } => {
                write!(f, "HKLM\\{key}\\{name}: cannot be read ({code})")
            }
            Self::Subkeys { what, code } => {
                write!(f, "{what}: its subkeys cannot be listed ({code})")
            }
            Self::Descriptor { what, detail } => write!(f, "{what}: {detail}"),
            Self::Certificate { path, source } => write!(f, "{path}: {source}"),
            Self::Within { at, source } => write!(f, "{at}: {source}"),
            Self::Config(e) => e.fmt(f),
        }
    }
}

// Each cause is part of the message, so none is a `source`.
impl std::error::Error for RegistryError {}

impl From<ConfigError> for RegistryError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}
