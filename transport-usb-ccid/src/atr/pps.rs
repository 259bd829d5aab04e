//! The PPS exchange (ISO/IEC 7816-3 §9): the request, the card's answer, what it agreed.

use core::fmt;

use super::{Protocol, DEFAULT_FIDI};

/// A PPS request (ISO/IEC 7816-3 §9.2): PPSS `FF`, PPS0, optionally PPS1, PCK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PpsRequest {
    bytes: [u8; 4],
    len: u8,
}

impl PpsRequest {
    /// A request for `protocol`, with PPS1 = `fidi` when given (Fi/Di as TA1 codes them).
    pub fn new(protocol: Protocol, fidi: Option<u8>) -> Self {
        let mut bytes = [0xFF, protocol.number(), 0, 0];
        let len = match fidi {
            Some(f) => {
                bytes[1] |= 0x10;
                bytes[2] = f;
                bytes[3] = 0xFF ^ bytes[1] ^ f;
                4
            }
            None => {
                bytes[2] = 0xFF ^ bytes[1];
                3
            }
        };
        Self { bytes, len }
    }

    /// The request's bytes, PCK included.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes
            .get(..usize::from(self.len))
            .unwrap_or(&self.bytes)
    }

    /// The protocol requested.
    pub fn protocol(&self) -> Protocol {
        if self.bytes[1] & 0x0F == 1 {
            Protocol::T1
        } else {
            Protocol::T0
        }
    }

    /// PPS1 as requested, if any.
    pub fn fidi(&self) -> Option<u8> {
        (self.len == 4).then_some(self.bytes[2])
    }

    /// Checks the card's PPS response (§9.3): PPSS and the protocol echoed, PPS1 either echoed
    /// (accepted) or absent (the card keeps Fi/Di at their defaults), no PPS2/PPS3 the request
    /// did not have, and a right PCK. Anything else is a failed exchange: the card must be reset.
    pub fn check_response(&self, response: &[u8]) -> Result<PpsOutcome, PpsError> {
        let (&ppss, rest) = response.split_first().ok_or(PpsError::Truncated)?;
        if ppss != 0xFF {
            return Err(PpsError::Malformed);
        }
        let (&pps0, mut rest) = rest.split_first().ok_or(PpsError::Truncated)?;
        let mut pps = [None; 3];
        for (i, slot) in pps.iter_mut().enumerate() {
            if pps0 & (0x10 << i) != 0 {
                let (&b, r) = rest.split_first().ok_or(PpsError::Truncated)?;
                *slot = Some(b);
                rest = r;
            }
        }
        let [pck] = rest else {
            return Err(if rest.is_empty() {
                PpsError::Truncated
            } else {
                PpsError::Malformed
            });
        };
        if response.iter().fold(0u8, |a, b| a ^ b) != 0 {
            return Err(PpsError::BadPck(*pck));
        }
        if pps0 & 0x80 != 0 {
            return Err(PpsError::Malformed);
        }
        if pps0 & 0x0F != self.bytes[1] & 0x0F {
            return Err(PpsError::Refused);
        }
        if pps[1].is_some() || pps[2].is_some() {
            return Err(PpsError::Refused);
        }
        let fidi = match (pps[0], self.fidi()) {
            (None, _) => DEFAULT_FIDI,
            (Some(got), Some(asked)) if got == asked => got,
            _ => return Err(PpsError::Refused),
        };
        Ok(PpsOutcome {
            protocol: self.protocol(),
            fidi,
            as_requested: self.fidi().unwrap_or(DEFAULT_FIDI) == fidi,
        })
    }
}

/// What a successful PPS exchange settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PpsOutcome {
    /// The protocol to run.
    pub protocol: Protocol,
    /// The Fi/Di to use (as TA1 codes them): the requested PPS1, or [`DEFAULT_FIDI`] when the
    /// card left PPS1 out.
    pub fidi: u8,
    /// Whether the card accepted everything as requested (otherwise it fell back to defaults).
    pub as_requested: bool,
}

/// Why a PPS response is not a successful exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PpsError {
    /// The response ends before the bytes PPS0 announces, or is empty.
    Truncated,
    /// Not a PPS response (PPSS is not `FF`, extra bytes, reserved bit set).
    Malformed,
    /// The check byte PCK is wrong (the value received).
    BadPck(u8),
    /// The card answered with something the request did not offer: another protocol, another
    /// PPS1, or PPS2/PPS3.
    Refused,
}

impl fmt::Display for PpsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("the card's PPS response is truncated"),
            Self::Malformed => f.write_str("the card's PPS response is malformed"),
            Self::BadPck(pck) => write!(f, "the card's PPS response has a wrong PCK ({pck:02X})"),
            Self::Refused => f.write_str("the card refused the PPS request"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PpsError {}
