//! The one hex helper: parse what people type (spaces, colons, dashes allowed), format for
//! machines (lowercase, no separators) and for reading out over the phone (`1A2B 3C4D`).

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
            Self::NotHex(c) => write!(f, "{c:?} is not a hex digit"),
        }
    }
}

impl std::error::Error for HexError {}

/// Parses hex, ignoring spaces, tabs, colons and dashes between digits.
pub fn parse(s: &str) -> Result<Vec<u8>, HexError> {
    let mut digits = Vec::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ' ' | ':' | '-' | '\t' | '\r' | '\n' => {}
            c => digits.push(c.to_digit(16).ok_or(HexError::NotHex(c))? as u8),
        }
    }
    if digits.len() % 2 != 0 {
        return Err(HexError::OddLength);
    }
    Ok(digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect())
}

/// Lowercase hex, no separators (identities, wire format).
pub fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
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
        assert_eq!(encode(&[0x0A, 0xFF]), "0aff");
        assert_eq!(grouped(&[0xB5, 0xA8, 0x5C, 0x0F, 0x02]), "B5A8 5C0F 02");
        assert_eq!(grouped(&[]), "");
    }
}
