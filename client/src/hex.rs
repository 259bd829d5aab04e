//! Hex as people type it and read it out: parse what they type (spaces, colons, dashes
//! allowed; the digits are then the `hex` crate's to decode) and format for reading out over
//! the phone (`1A2B 3C4D`). Machines' hex (the wire, identities) is the `hex` crate's
//! `encode` and the contract's byte types (`cardunlock_protocol::bytes`).

use std::fmt::Write;

/// Why a text is not hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HexError {
    /// An odd number of hex digits.
    OddLength,
    /// A character that is not a hex digit or an allowed separator.
    NotHex(char),
}

impl std::fmt::Display for HexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OddLength => f.write_str("odd number of hex digits"),
            Self::NotHex(c) => write!(f, "'{}' is not a hex digit", c.escape_default()),
        }
    }
}

impl std::error::Error for HexError {}

/// Parses hex, ignoring spaces, tabs, colons and dashes between digits.
pub fn parse(s: &str) -> Result<Vec<u8>, HexError> {
    let digits: String = s
        .chars()
        .filter(|c| !matches!(c, ' ' | ':' | '-' | '\t' | '\r' | '\n'))
        .collect();
    if let Some(c) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(HexError::NotHex(c));
    }
    hex::decode(&digits).map_err(|_| HexError::OddLength)
}

/// Uppercase hex in groups of four digits, as read out over the phone: `1A2B 3C4D ...`.
pub fn grouped(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 5 / 2);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 2 == 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b:02X}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_people_type_and_formats_both_ways() {
        assert_eq!(
            parse("D4BD 9B1D:a5-d2").unwrap(),
            [0xD4, 0xBD, 0x9B, 0x1D, 0xA5, 0xD2]
        );
        assert_eq!(parse("D4B"), Err(HexError::OddLength));
        assert_eq!(parse("ZZ"), Err(HexError::NotHex('Z')));
        assert_eq!(parse("é1"), Err(HexError::NotHex('é')));
        assert_eq!(
            parse("ZZ").unwrap_err().to_string(),
            "'Z' is not a hex digit"
        );
        assert_eq!(grouped(&[0xB5, 0xA8, 0x5C, 0x0F, 0x02]), "B5A8 5C0F 02");
        assert_eq!(grouped(&[]), "");
    }
}
