//! PIN formats as the cards check them.

use zeroize::{Zeroize, Zeroizing};

use crate::apdu::Command;
use crate::applet::Access;
use crate::crypto::ct_eq;
use crate::sw;

/// A PIV PIN/PUK field: 8 bytes, a 6-8 byte value then `FF` padding only. Returns the value.
pub(crate) fn piv_value(field: &[u8]) -> Option<&[u8]> {
    if field.len() != 8 {
        return None;
    }
    let n = field.iter().position(|&b| b == 0xFF).unwrap_or(8);
    let (value, pad) = field.split_at(n);
    ((6..=8).contains(&n) && pad.iter().all(|&b| b == 0xFF)).then_some(value)
}

/// The 8-byte FF-padded form of a stored PIV PIN/PUK; `None` if it is longer than 8 bytes.
pub(crate) fn piv_padded(value: &[u8]) -> Option<Zeroizing<[u8; 8]>> {
    if value.len() > 8 {
        return None;
    }
    let mut out = Zeroizing::new([0xFF; 8]);
    out[..value.len()].copy_from_slice(value);
    Some(out)
}

/// YubiKey-style trivial PIN: one repeated character, an ascending or descending run
/// (`123456`, `654321`, `345678`), or a few very common values.
pub(crate) fn is_trivial(pin: &[u8]) -> bool {
    const COMMON: [&[u8]; 5] = [b"123123", b"121212", b"112233", b"password", b"12341234"];
    let Some((&first, rest)) = pin.split_first() else {
        return true;
    };
    let repeated = rest.iter().all(|&b| b == first);
    let ascending = pin.windows(2).all(|w| w[1] == w[0].wrapping_add(1));
    let descending = pin.windows(2).all(|w| w[1] == w[0].wrapping_sub(1));
    repeated || ascending || descending || COMMON.contains(&pin)
}

/// VERIFY of a PIN, once the applet has read its format (`well_formed`): empty data asks for
/// the status; a malformed PIN is refused with `6A 80` without costing a try; `matches`
/// compares it with the stored one (in constant time). `max`, `left`: the PIN's tries.
pub(crate) fn verify(
    data: &[u8],
    well_formed: bool,
    matches: impl FnOnce() -> bool,
    max: u8,
    left: &mut u8,
    verified: &mut bool,
) -> u16 {
    if data.is_empty() {
        return if *left == 0 {
            sw::AUTH_BLOCKED
        } else if *verified {
            sw::OK
        } else {
            sw::tries_left(*left)
        };
    }
    if !well_formed {
        return sw::WRONG_DATA;
    }
    if *left == 0 {
        return sw::AUTH_BLOCKED;
    }
    if matches() {
        *left = max;
        *verified = true;
        sw::OK
    } else {
        *verified = false;
        sw::wrong_try(left)
    }
}

/// The PIN of an admin-key applet (GIDS, ISO): raw (unpadded), `len` bytes long.
pub(crate) struct RawPin<'a> {
    /// The stored PIN.
    pub(crate) value: &'a mut Vec<u8>,
    /// Tries left.
    pub(crate) left: &'a mut u8,
    /// Tries a good PIN restores.
    pub(crate) max: u8,
    /// Lengths VERIFY and RESET RETRY COUNTER accept.
    pub(crate) len: core::ops::RangeInclusive<usize>,
}

impl RawPin<'_> {
    /// VERIFY `data` (see [`verify`]).
    pub(crate) fn verify(self, data: &[u8], verified: &mut bool) -> u16 {
        let stored = &*self.value;
        let well_formed = self.len.contains(&data.len());
        verify(
            data,
            well_formed,
            || ct_eq(stored, data),
            self.max,
            self.left,
            verified,
        )
    }

    /// RESET RETRY COUNTER `00 2C 02 <pin_ref> <new PIN>` (P1 = 02: new reference data only),
    /// allowed once the admin key authenticated: the new PIN replaces the old one (wiped) and
    /// its tries are restored; the session's PIN is no longer verified.
    pub(crate) fn reset(self, cmd: &Command<'_>, pin_ref: u8, access: &mut Access) -> u16 {
        if cmd.p1 != 0x02 {
            return sw::WRONG_P1P2;
        }
        if cmd.p2 != pin_ref {
            return sw::REF_NOT_FOUND;
        }
        if !access.admin_authenticated {
            return sw::SECURITY_NOT_SATISFIED;
        }
        if !self.len.contains(&cmd.data.len()) {
            return sw::WRONG_DATA;
        }
        self.value.zeroize();
        *self.value = cmd.data.to_vec();
        *self.left = self.max;
        access.pin_verified = false;
        sw::OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piv_format() {
        assert_eq!(piv_value(b"123456\xFF\xFF"), Some(&b"123456"[..]));
        assert_eq!(piv_value(b"12345678"), Some(&b"12345678"[..]));
        assert_eq!(piv_value(b"12345\xFF\xFF\xFF"), None);
        assert_eq!(piv_value(b"123456\xFF7"), None);
        assert_eq!(piv_value(b"1234567"), None);
        assert_eq!(&*piv_padded(b"123456").unwrap(), b"123456\xFF\xFF");
        assert!(piv_padded(b"123456789").is_none());
    }

    #[test]
    fn trivial() {
        for p in [
            &b"123456"[..],
            b"000000",
            b"111111",
            b"654321",
            b"345678",
            b"12345678",
        ] {
            assert!(is_trivial(p), "{p:?}");
        }
        for p in [&b"102938"[..], b"135790", b"11223344", b"246810"] {
            assert!(!is_trivial(p), "{p:?}");
        }
    }
}
