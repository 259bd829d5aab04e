//! T=1 blocks (ISO/IEC 7816-3 §11.3): prologue (NAD, PCB, LEN), information field, epilogue
//! (LRC or CRC). Encoding writes into a caller buffer; parsing borrows and never panics.

use crate::atr::Edc;
use core::fmt;

/// The largest information field: 254 bytes (LEN `FF` is reserved).
pub const MAX_INF: usize = 254;
/// The largest block: prologue, 254 bytes of information field, a two-byte CRC.
pub const MAX_BLOCK: usize = 3 + MAX_INF + 2;

/// The error code of an R-block (PCB bits 4-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RCode {
    /// `0`: error free (an acknowledgement of a chained I-block).
    Ok,
    /// `1`: EDC or parity error.
    Edc,
    /// `2`: other error.
    Other,
}

/// The kind of an S-block (PCB bits 5-1 besides the response bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SKind {
    /// `0`: resynchronisation.
    Resynch,
    /// `1`: information field size (INF: one byte, 1 to 254).
    Ifs,
    /// `2`: abort of a chain.
    Abort,
    /// `3`: waiting time extension (INF: one byte, the BWT multiplier).
    Wtx,
}

/// The protocol control byte, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Pcb {
    /// Information block: send sequence number N(S), more-data bit M (chaining).
    I {
        /// N(S): 0 or 1.
        ns: bool,
        /// M: another block of this chain follows.
        more: bool,
    },
    /// Receive ready block: N(R), the sequence number of the I-block expected next.
    R {
        /// N(R): 0 or 1.
        nr: bool,
        /// The error reported.
        code: RCode,
    },
    /// Supervisory block.
    S {
        /// What it controls.
        kind: SKind,
        /// A response (`true`) or a request.
        response: bool,
    },
}

impl Pcb {
    /// The byte.
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::I { ns, more } => ((ns as u8) << 6) | ((more as u8) << 5),
            Self::R { nr, code } => {
                0x80 | ((nr as u8) << 4)
                    | match code {
                        RCode::Ok => 0,
                        RCode::Edc => 1,
                        RCode::Other => 2,
                    }
            }
            Self::S { kind, response } => {
                0xC0 | ((response as u8) << 5)
                    | match kind {
                        SKind::Resynch => 0,
                        SKind::Ifs => 1,
                        SKind::Abort => 2,
                        SKind::Wtx => 3,
                    }
            }
        }
    }

    /// Decodes a byte; `None` for reserved codings (I-block bits 5-1 set, R-block bit 6 or an
    /// unknown error code, S-block VPP error or unknown kind).
    pub const fn from_byte(b: u8) -> Option<Self> {
        if b & 0x80 == 0 {
            if b & 0x1F != 0 {
                return None;
            }
            return Some(Self::I {
                ns: b & 0x40 != 0,
                more: b & 0x20 != 0,
            });
        }
        if b & 0x40 == 0 {
            if b & 0x20 != 0 {
                return None;
            }
            let code = match b & 0x0F {
                0 => RCode::Ok,
                1 => RCode::Edc,
                2 => RCode::Other,
                _ => return None,
            };
            return Some(Self::R {
                nr: b & 0x10 != 0,
                code,
            });
        }
        let kind = match b & 0x1F {
            0 => SKind::Resynch,
            1 => SKind::Ifs,
            2 => SKind::Abort,
            3 => SKind::Wtx,
            _ => return None,
        };
        Some(Self::S {
            kind,
            response: b & 0x20 != 0,
        })
    }
}

/// A T=1 block, borrowing its information field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block<'a> {
    /// Node address byte (DAD in bits 3-1, SAD in bits 7-5).
    pub nad: u8,
    /// The protocol control byte.
    pub pcb: Pcb,
    /// The information field (0 to 254 bytes).
    pub inf: &'a [u8],
}

/// Why bytes are not a valid block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BlockError {
    /// Shorter than prologue and epilogue, or shorter than LEN says.
    Truncated,
    /// Longer than LEN says.
    TrailingBytes,
    /// LEN is `FF` (reserved) or the information field is too long to encode.
    InvalidLength,
    /// The LRC or CRC does not match.
    Edc,
    /// A reserved PCB coding, or an INF length not allowed for this block type (R-blocks
    /// carry none, IFS and WTX one byte, RESYNCH none).
    InvalidPcb,
    /// The output buffer is too small.
    BufferTooSmall,
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "truncated T=1 block",
            Self::TrailingBytes => "T=1 block longer than its LEN",
            Self::InvalidLength => "invalid T=1 block length",
            Self::Edc => "T=1 block checksum error",
            Self::InvalidPcb => "invalid T=1 block control byte",
            Self::BufferTooSmall => "buffer too small for the T=1 block",
        })
    }
}

/// The LRC of ISO/IEC 7816-3 §11.4.4: the XOR of all bytes.
pub fn lrc(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

/// The CRC of T=1 blocks.
///
/// ISO/IEC 7816-3 §11.4.4 points to the CRC of ISO/IEC 13239 (polynomial
/// x^16 + x^12 + x^5 + 1). What cards and host stacks (the CCID driver of pcsc-lite, OpenCT)
/// actually interoperate on is that polynomial processed least significant bit first
/// (reflected, `0x8408`), initial value `FFFF`, **no** final XOR, and the 16-bit result sent
/// most significant byte first. That is the catalogued CRC-16/MCRF4XX (check value `6F91`
/// for ASCII "123456789"). We follow that practice; a card reading the standard's text
/// literally (with the final complement) would show up as EDC errors on every CRC block.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in bytes {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn epilogue(edc: Edc, bytes: &[u8], out: &mut [u8]) -> Option<usize> {
    match edc {
        Edc::Lrc => {
            *out.first_mut()? = lrc(bytes);
            Some(1)
        }
        Edc::Crc => {
            let c = crc16(bytes).to_be_bytes();
            out.get_mut(..2)?.copy_from_slice(&c);
            Some(2)
        }
    }
}

impl<'a> Block<'a> {
    /// An I-block.
    pub const fn i(nad: u8, ns: bool, more: bool, inf: &'a [u8]) -> Self {
        Self {
            nad,
            pcb: Pcb::I { ns, more },
            inf,
        }
    }

    /// An R-block.
    pub const fn r(nad: u8, nr: bool, code: RCode) -> Self {
        Self {
            nad,
            pcb: Pcb::R { nr, code },
            inf: &[],
        }
    }

    /// An S-block.
    pub const fn s(nad: u8, kind: SKind, response: bool, inf: &'a [u8]) -> Self {
        Self {
            nad,
            pcb: Pcb::S { kind, response },
            inf,
        }
    }

    /// Writes the block with its epilogue into `out`; returns its length.
    pub fn encode(&self, edc: Edc, out: &mut [u8]) -> Result<usize, BlockError> {
        let len = u8::try_from(self.inf.len())
            .ok()
            .filter(|&l| usize::from(l) <= MAX_INF)
            .ok_or(BlockError::InvalidLength)?;
        let body = 3 + self.inf.len();
        let total = body + edc.epilogue_len();
        let buf = out.get_mut(..total).ok_or(BlockError::BufferTooSmall)?;
        let (head, tail) = buf.split_at_mut(body);
        head[0] = self.nad;
        head[1] = self.pcb.to_byte();
        head[2] = len;
        head[3..].copy_from_slice(self.inf);
        epilogue(edc, head, tail).ok_or(BlockError::BufferTooSmall)?;
        Ok(total)
    }

    /// Parses and checks a complete block (prologue, INF, epilogue). Never panics.
    pub fn parse(bytes: &'a [u8], edc: Edc) -> Result<Self, BlockError> {
        let [nad, pcb, len, ..] = *bytes else {
            return Err(BlockError::Truncated);
        };
        if len == 0xFF {
            return Err(BlockError::InvalidLength);
        }
        let body = 3 + usize::from(len);
        let total = body + edc.epilogue_len();
        if bytes.len() < total {
            return Err(BlockError::Truncated);
        }
        if bytes.len() > total {
            return Err(BlockError::TrailingBytes);
        }
        let (head, tail) = bytes.split_at(body);
        let mut check = [0u8; 2];
        let n = epilogue(edc, head, &mut check).ok_or(BlockError::Truncated)?;
        if check.get(..n) != Some(tail) {
            return Err(BlockError::Edc);
        }
        let pcb = Pcb::from_byte(pcb).ok_or(BlockError::InvalidPcb)?;
        let inf = head.get(3..).unwrap_or(&[]);
        let inf_ok = match pcb {
            Pcb::I { .. } => true,
            Pcb::R { .. } => inf.is_empty(),
            Pcb::S { kind, .. } => match kind {
                SKind::Ifs => inf.len() == 1,
                SKind::Wtx => inf.len() == 1,
                SKind::Resynch => inf.is_empty(),
                SKind::Abort => true,
            },
        };
        if !inf_ok {
            return Err(BlockError::InvalidPcb);
        }
        Ok(Self { nad, pcb, inf })
    }
}
