//! Command APDU parsing (ISO/IEC 7816-3 cases 1-4, short and extended) and the card's reply.
//!
//! This is the card's own parser, independent of `cardunlock-core`, so the two check each other.

use zeroize::Zeroizing;

use crate::sw;

/// The Le field as it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Le {
    /// One byte; `00` means 256.
    Short(u8),
    /// Two bytes; `00 00` means 65536.
    Extended(u16),
}

impl Le {
    /// The number of bytes Le asks for.
    pub(crate) fn ne(self) -> usize {
        match self {
            Le::Short(0) => 256,
            Le::Short(n) => usize::from(n),
            Le::Extended(0) => 65536,
            Le::Extended(n) => usize::from(n),
        }
    }
}

/// A parsed command, borrowing its data from the APDU bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Command<'a> {
    pub(crate) cla: u8,
    pub(crate) ins: u8,
    pub(crate) p1: u8,
    pub(crate) p2: u8,
    pub(crate) data: &'a [u8],
    pub(crate) le: Option<Le>,
}

impl<'a> Command<'a> {
    /// Parse a command APDU. `None` when the length fields do not match the APDU length.
    pub(crate) fn parse(apdu: &'a [u8]) -> Option<Self> {
        let (header, body) = apdu.split_first_chunk::<4>()?;
        let [cla, ins, p1, p2] = *header;
        let (data, le): (&[u8], Option<Le>) = match body {
            // Case 1.
            [] => (&[], None),
            // Case 2 short.
            [le] => (&[], Some(Le::Short(*le))),
            // Cases 3 and 4 short.
            [lc, rest @ ..] if *lc != 0 => {
                let lc = usize::from(*lc);
                if rest.len() == lc {
                    (rest, None)
                } else if rest.len() == lc + 1 {
                    (&rest[..lc], Some(Le::Short(rest[lc])))
                } else {
                    return None;
                }
            }
            // Case 2 extended: 00 Le1 Le2.
            [0, hi, lo] => (&[], Some(Le::Extended(u16::from_be_bytes([*hi, *lo])))),
            // Cases 3 and 4 extended: 00 Lc1 Lc2 data [Le1 Le2].
            [0, hi, lo, rest @ ..] => {
                let lc = usize::from(u16::from_be_bytes([*hi, *lo]));
                if lc == 0 {
                    return None;
                }
                if rest.len() == lc {
                    (rest, None)
                } else if rest.len() == lc + 2 {
                    let le = u16::from_be_bytes([rest[lc], rest[lc + 1]]);
                    (&rest[..lc], Some(Le::Extended(le)))
                } else {
                    return None;
                }
            }
            // `00 xx`: neither short nor extended.
            _ => return None,
        };
        Some(Command {
            cla,
            ins,
            p1,
            p2,
            data,
            le,
        })
    }

    /// `P1 P2` as one big-endian number.
    pub(crate) fn p1p2(&self) -> u16 {
        u16::from_be_bytes([self.p1, self.p2])
    }
}

/// What an application answers: response data (possibly empty) and a status word.
pub(crate) struct Reply {
    pub(crate) data: Zeroizing<Vec<u8>>,
    pub(crate) sw: u16,
}

impl Reply {
    /// A status word without data.
    pub(crate) fn sw(sw: u16) -> Self {
        Reply {
            data: Zeroizing::new(Vec::new()),
            sw,
        }
    }

    /// Data with `90 00`.
    pub(crate) fn ok(data: Vec<u8>) -> Self {
        Reply {
            data: Zeroizing::new(data),
            sw: sw::OK,
        }
    }
}

impl From<u16> for Reply {
    fn from(sw: u16) -> Self {
        Reply::sw(sw)
    }
}

/// Append a status word to response data.
pub(crate) fn with_sw(mut data: Vec<u8>, sw: u16) -> Vec<u8> {
    data.extend_from_slice(&sw.to_be_bytes());
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        let c = Command::parse(&[0, 0xA4, 4, 0]).unwrap();
        assert!(c.data.is_empty() && c.le.is_none());
        let c = Command::parse(&[0, 0xCA, 1, 0, 0]).unwrap();
        assert_eq!(c.le, Some(Le::Short(0)));
        assert_eq!(c.le.unwrap().ne(), 256);
        let c = Command::parse(&[0, 0x20, 0, 0x80, 2, 1, 2]).unwrap();
        assert_eq!(c.data, &[1, 2]);
        assert!(c.le.is_none());
        let c = Command::parse(&[0, 0x20, 0, 0x80, 2, 1, 2, 7]).unwrap();
        assert_eq!(c.le, Some(Le::Short(7)));
        let c = Command::parse(&[0, 0xCA, 1, 0, 0, 1, 0]).unwrap();
        assert_eq!(c.le, Some(Le::Extended(256)));
        let c = Command::parse(&[0, 0xCA, 1, 0, 0, 0, 0]).unwrap();
        assert_eq!(c.le.unwrap().ne(), 65536);
        let c = Command::parse(&[0, 0x20, 0, 0x80, 0, 0, 2, 1, 2]).unwrap();
        assert_eq!(c.data, &[1, 2]);
        assert!(c.le.is_none());
        let c = Command::parse(&[0, 0x20, 0, 0x80, 0, 0, 2, 1, 2, 0, 9]).unwrap();
        assert_eq!(c.data, &[1, 2]);
        assert_eq!(c.le, Some(Le::Extended(9)));
    }

    #[test]
    fn malformed() {
        for apdu in [
            &[][..],
            &[0, 0xA4, 4],
            &[0, 0x20, 0, 0x80, 0, 5],
            &[0, 0x20, 0, 0x80, 3, 1, 2],
            &[0, 0x20, 0, 0x80, 1, 1, 2, 3],
            &[0, 0x20, 0, 0x80, 0, 0, 0, 1],
            &[0, 0x20, 0, 0x80, 0, 0, 2, 1],
            &[0, 0x20, 0, 0x80, 0, 0, 2, 1, 2, 3],
        ] {
            assert!(Command::parse(apdu).is_none(), "{apdu:02X?}");
        }
    }
}
