//! Command-line values that are secrets (PUK, PIN, admin keys, security answers): wiped on drop
//! and never shown by `Debug`.

use std::convert::Infallible;
use std::str::FromStr;

use zeroize::Zeroizing;

/// A secret given on the command line or in the environment.
#[derive(Clone)]
pub struct SecretArg(Zeroizing<String>);

impl SecretArg {
    /// The value, to hand to the card or the key parser.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for SecretArg {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Infallible> {
        Ok(Self(Zeroizing::new(s.to_string())))
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s: SecretArg = "12345678".parse().unwrap();
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(s.expose(), "12345678");
    }
}
