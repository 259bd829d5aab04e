//! The PIN policy as it travels in the `start` reply.

use cardunlock_core::policy::{Charset, PinPolicy};
use serde::{Deserialize, Serialize};

/// The characters a PIN may contain, as the wire names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PinCharset {
    /// `digits`: `0`-`9`.
    #[serde(rename = "digits")]
    Digits,
    /// `alphanumeric`: ASCII letters and digits.
    #[serde(rename = "alphanumeric")]
    Alphanumeric,
    /// `printable`: printable ASCII, space to `~` (`printable_ascii` is read too).
    #[serde(rename = "printable", alias = "printable_ascii")]
    Printable,
}

impl From<Charset> for PinCharset {
    fn from(c: Charset) -> Self {
        match c {
            Charset::Digits => Self::Digits,
            Charset::Alphanumeric => Self::Alphanumeric,
            Charset::PrintableAscii => Self::Printable,
        }
    }
}

impl From<PinCharset> for Charset {
    fn from(c: PinCharset) -> Self {
        match c {
            PinCharset::Digits => Self::Digits,
            PinCharset::Alphanumeric => Self::Alphanumeric,
            PinCharset::Printable => Self::PrintableAscii,
        }
    }
}

fn yes() -> bool {
    true
}

/// [`PinPolicy`] on the wire. Missing checks default to on (the safe side).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinPolicyWire {
    /// Minimum length.
    pub min_len: usize,
    /// Maximum length.
    pub max_len: usize,
    /// Allowed characters.
    pub charset: PinCharset,
    /// Refuse one character repeated.
    #[serde(default = "yes")]
    pub forbid_repeated: bool,
    /// Refuse straight runs.
    #[serde(default = "yes")]
    pub forbid_sequences: bool,
    /// Refuse the core's built-in blocklist.
    #[serde(default = "yes")]
    pub builtin_blocklist: bool,
    /// The organisation's own refused PINs.
    #[serde(default)]
    pub custom_blocklist: Vec<String>,
}

impl From<&PinPolicy<'_>> for PinPolicyWire {
    fn from(p: &PinPolicy<'_>) -> Self {
        Self {
            min_len: p.min_len,
            max_len: p.max_len,
            charset: p.charset.into(),
            forbid_repeated: p.forbid_repeated,
            forbid_sequences: p.forbid_sequences,
            builtin_blocklist: p.builtin_blocklist,
            custom_blocklist: p.custom_blocklist.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

impl PinPolicyWire {
    /// Runs `f` with this policy as the core's [`PinPolicy`] (which borrows its blocklist).
    pub fn with_core<R>(&self, f: impl FnOnce(&PinPolicy<'_>) -> R) -> R {
        let blocklist: Vec<&str> = self.custom_blocklist.iter().map(String::as_str).collect();
        let policy = PinPolicy {
            min_len: self.min_len,
            max_len: self.max_len,
            charset: self.charset.into(),
            forbid_repeated: self.forbid_repeated,
            forbid_sequences: self.forbid_sequences,
            builtin_blocklist: self.builtin_blocklist,
            custom_blocklist: &blocklist,
        };
        f(&policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_policies_round_trip() {
        for core in [PinPolicy::PIV, PinPolicy::GIDS] {
            let wire = PinPolicyWire::from(&core);
            let json = serde_json::to_string(&wire).unwrap();
            let back: PinPolicyWire = serde_json::from_str(&json).unwrap();
            assert_eq!(back, wire);
            back.with_core(|p| {
                assert_eq!(p.min_len, core.min_len);
                assert_eq!(p.max_len, core.max_len);
                assert_eq!(p.charset, core.charset);
                let same = |pin: &[u8]| {
                    p.check(pin, pin, cardunlock_core::policy::PinContext::NONE)
                        .is_ok()
                        == core
                            .check(pin, pin, cardunlock_core::policy::PinContext::NONE)
                            .is_ok()
                };
                assert!(same(b"123456") && same(b"480371") && same(b"ab12"));
            });
        }
    }

    #[test]
    fn custom_blocklist_reaches_the_core() {
        let wire: PinPolicyWire = serde_json::from_str(
            r#"{"min_len":4,"max_len":8,"charset":"printable_ascii","custom_blocklist":["acme2024"]}"#,
        )
        .unwrap();
        assert_eq!(wire.charset, PinCharset::Printable);
        assert!(wire.forbid_repeated && wire.builtin_blocklist);
        wire.with_core(|p| {
            assert!(p
                .check(
                    b"acme2024",
                    b"acme2024",
                    cardunlock_core::policy::PinContext::NONE
                )
                .is_err());
            assert!(p
                .check(
                    b"q7#kP2v!",
                    b"q7#kP2v!",
                    cardunlock_core::policy::PinContext::NONE
                )
                .is_ok());
        });
    }
}
