//! The PIN policy as it travels in the `start` reply and as the front ends hold it.

use cardunlock_core::policy::{Charset, PinContext, PinPolicy as CorePinPolicy};
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

/// A PIN policy that owns its blocklist: the core's [`cardunlock_core::policy::PinPolicy`]
/// (which borrows it) as the `start` reply carries it and as the window and the login tile
/// check a PIN while it is typed. Missing checks default to on (the safe side).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinPolicy {
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

impl From<&CorePinPolicy<'_>> for PinPolicy {
    fn from(p: &CorePinPolicy<'_>) -> Self {
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

impl PinPolicy {
    /// Runs `f` with this policy as the core's [`cardunlock_core::policy::PinPolicy`] (which
    /// borrows its blocklist).
    pub fn with_core<R>(&self, f: impl FnOnce(&CorePinPolicy<'_>) -> R) -> R {
        let blocklist: Vec<&str> = self.custom_blocklist.iter().map(String::as_str).collect();
        let policy = CorePinPolicy {
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

    /// Every way `pin` and `confirmation` break the policy, as sentences (empty: acceptable).
    pub fn violations(&self, pin: &str, confirmation: &str) -> Vec<String> {
        self.with_core(|policy| {
            match policy.check(pin.as_bytes(), confirmation.as_bytes(), PinContext::NONE) {
                Ok(()) => Vec::new(),
                Err(found) => found.iter().map(|v| v.to_string()).collect(),
            }
        })
    }

    /// The rules in one line, shown above the PIN fields.
    pub fn describe(&self) -> String {
        let chars = match self.charset {
            PinCharset::Digits => "digits",
            PinCharset::Alphanumeric => "letters and digits",
            PinCharset::Printable => "characters",
        };
        let mut rules = vec![format!("{} to {} {chars}", self.min_len, self.max_len)];
        if self.forbid_repeated {
            rules.push("not one repeated character".into());
        }
        if self.forbid_sequences {
            rules.push("no ascending or descending sequence".into());
        }
        if self.builtin_blocklist || !self.custom_blocklist.is_empty() {
            rules.push("not a common PIN".into());
        }
        rules.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_policies_round_trip() {
        for core in [CorePinPolicy::PIV, CorePinPolicy::GIDS] {
            let wire = PinPolicy::from(&core);
            let json = serde_json::to_string(&wire).unwrap();
            let back: PinPolicy = serde_json::from_str(&json).unwrap();
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

    /// Proves the front ends' check is the core's (a repeated PIN, a sequence, a mismatch and a
    /// wrong length are each refused, a good PIN is not) and that the one-line rules follow
    /// the policy's switches.
    #[test]
    fn front_ends_check_and_describe_with_the_core() {
        let piv = PinPolicy::from(&CorePinPolicy::PIV);
        assert!(piv.violations("480371", "480371").is_empty());
        for (pin, confirm) in [
            ("111111", "111111"),
            ("123456", "123456"),
            ("480371", "480372"),
            ("48", "48"),
        ] {
            assert!(!piv.violations(pin, confirm).is_empty(), "{pin}");
        }
        assert_eq!(
            piv.describe(),
            format!(
                "{} to {} digits; not one repeated character; no ascending or descending \
                 sequence; not a common PIN",
                piv.min_len, piv.max_len
            )
        );
        let lax = PinPolicy {
            forbid_repeated: false,
            forbid_sequences: false,
            builtin_blocklist: false,
            charset: PinCharset::Printable,
            ..piv.clone()
        };
        assert!(lax.violations("111111", "111111").is_empty());
        assert_eq!(
            lax.describe(),
            format!("{} to {} characters", piv.min_len, piv.max_len)
        );
    }

    #[test]
    fn custom_blocklist_reaches_the_core() {
        let wire: PinPolicy = serde_json::from_str(
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
