//! The card's Answer To Reset (ISO/IEC 7816-3 §8), the CCID protocol data structure derived
//! from it (for `PC_to_RDR_SetParameters`), and the PPS exchange (§9).
//!
//! [`Atr::parse`] reads TS, T0, every TA/TB/TC/TD level, the historical bytes and TCK into a
//! borrowed view; it never panics and never allocates. Interface bytes are interpreted as §8.3
//! says: TA1/TB1/TC1 and TA2/TB2 are global, TC2 is specific to T=0, and from level 3 on the
//! protocol of the previous TD says whose bytes follow (T=1: IFSC, BWI/CWI, EDC; T=15: clock
//! stop and class).

use core::fmt;

mod pps;

pub use pps::{PpsError, PpsOutcome, PpsRequest};

/// Longest ATR ISO/IEC 7816-3 allows: TS and up to 32 further characters.
pub const MAX_ATR_LEN: usize = 33;

/// The default `Fi`/`Di` byte (TA1 absent): Fi = 372, Di = 1.
pub const DEFAULT_FIDI: u8 = 0x11;

/// A transmission protocol the engines of this crate run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Protocol {
    /// T=0: character-oriented half duplex (ISO/IEC 7816-3 §10, §12).
    T0,
    /// T=1: block-oriented half duplex (ISO/IEC 7816-3 §11).
    T1,
}

impl Protocol {
    /// The protocol number `T` (0 or 1), as in TD bytes, PPS0 and CCID `bProtocolNum`.
    pub const fn number(self) -> u8 {
        match self {
            Self::T0 => 0,
            Self::T1 => 1,
        }
    }

    /// The protocol numbered `t`, if this crate runs it.
    pub const fn from_number(t: u8) -> Option<Self> {
        match t {
            0 => Some(Self::T0),
            1 => Some(Self::T1),
            _ => None,
        }
    }
}

/// The coding convention announced by TS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Convention {
    /// TS = `3B`: high level is 1, least significant bit first.
    Direct,
    /// TS = `3F` (as the reader reports it): low level is 1, most significant bit first.
    Inverse,
}

/// The error detection code of T=1 blocks (TC of the first T=1 level, bit 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Edc {
    /// Longitudinal redundancy check: one byte, the XOR of the block (the default).
    #[default]
    Lrc,
    /// Cyclic redundancy check: two bytes (see [`crate::t1::crc16`] for the exact variant).
    Crc,
}

impl Edc {
    /// The length of the epilogue field.
    pub const fn epilogue_len(self) -> usize {
        match self {
            Self::Lrc => 1,
            Self::Crc => 2,
        }
    }
}

/// Why bytes are not an ATR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AtrError {
    /// No bytes at all.
    Empty,
    /// TS is neither `3B` (direct) nor `3F` (inverse convention).
    InvalidTs(u8),
    /// The bytes end before the interface bytes, historical bytes or TCK T0/TD announce.
    Truncated,
    /// More bytes follow the ATR than it announces (or it exceeds 33 bytes).
    TrailingBytes,
    /// A protocol other than T=0 is offered but TCK is absent.
    MissingTck,
    /// The XOR of T0 to TCK is not zero.
    TckMismatch {
        /// The TCK that would have been right.
        expected: u8,
        /// The TCK the card sent.
        found: u8,
    },
}

impl fmt::Display for AtrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the ATR is empty"),
            Self::InvalidTs(ts) => write!(f, "invalid ATR: TS is {ts:02X}, not 3B or 3F"),
            Self::Truncated => f.write_str("the ATR is truncated"),
            Self::TrailingBytes => f.write_str("the ATR has bytes past its end"),
            Self::MissingTck => f.write_str("the ATR lacks its TCK check byte"),
            Self::TckMismatch { expected, found } => write!(
                f,
                "the ATR check byte is wrong (TCK {found:02X}, expected {expected:02X})"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for AtrError {}

/// TA2: the card is in specific mode (§8.3, §6.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SpecificMode {
    /// The protocol the card runs (low nibble of TA2), possibly one this crate does not run.
    pub protocol: u8,
    /// Bit 8 clear: the card can switch to negotiable mode (on a warm reset).
    pub can_change: bool,
    /// Bit 5 set: Fi/Di are implicit (not those of TA1).
    pub implicit_fidi: bool,
}

/// Bytes of the Fi/Di table (ISO/IEC 7816-3 Table 7 and 8).
mod tables {
    /// Fi by the high nibble of TA1; 0 for reserved values.
    pub const FI: [u16; 16] = [
        372, 372, 558, 744, 1116, 1488, 1860, 0, 0, 512, 768, 1024, 1536, 2048, 0, 0,
    ];
    /// fmax in kHz by the high nibble of TA1; 0 for reserved values.
    pub const FMAX_KHZ: [u32; 16] = [
        4_000, 5_000, 6_000, 8_000, 12_000, 16_000, 20_000, 0, 0, 5_000, 7_500, 10_000, 15_000,
        20_000, 0, 0,
    ];
    /// Di by the low nibble of TA1; 0 for reserved values.
    pub const DI: [u8; 16] = [0, 1, 2, 4, 8, 16, 32, 64, 12, 20, 0, 0, 0, 0, 0, 0];
}

/// The clock rate conversion integer Fi for a TA1-coded byte (high nibble), `None` if reserved.
pub fn fi(fidi: u8) -> Option<u16> {
    tables::FI
        .get(usize::from(fidi >> 4))
        .copied()
        .filter(|&v| v != 0)
}

/// The maximum clock frequency in kHz for a TA1-coded byte (high nibble), `None` if reserved.
pub fn fmax_khz(fidi: u8) -> Option<u32> {
    tables::FMAX_KHZ
        .get(usize::from(fidi >> 4))
        .copied()
        .filter(|&v| v != 0)
}

/// The baud rate adjustment integer Di for a TA1-coded byte (low nibble), `None` if reserved.
pub fn di(fidi: u8) -> Option<u8> {
    tables::DI
        .get(usize::from(fidi & 0x0F))
        .copied()
        .filter(|&v| v != 0)
}

/// A parsed ATR, borrowing the caller's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Atr<'a> {
    raw: &'a [u8],
    convention: Convention,
    ta1: Option<u8>,
    tb1: Option<u8>,
    tc1: Option<u8>,
    ta2: Option<u8>,
    tc2: Option<u8>,
    /// Bit `t` set: T=t is announced by a TD byte.
    protocols: u16,
    first_protocol: Option<u8>,
    t1_ta: Option<u8>,
    t1_tb: Option<u8>,
    t1_tc: Option<u8>,
    t15_ta: Option<u8>,
    historical: &'a [u8],
    tck: Option<u8>,
}

impl<'a> Atr<'a> {
    /// Parses a complete ATR. Never panics on any input.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, AtrError> {
        let (&ts, rest) = bytes.split_first().ok_or(AtrError::Empty)?;
        let convention = match ts {
            0x3B => Convention::Direct,
            0x3F => Convention::Inverse,
            other => return Err(AtrError::InvalidTs(other)),
        };
        let (&t0, mut rest) = rest.split_first().ok_or(AtrError::Truncated)?;
        let k = usize::from(t0 & 0x0F);
        let mut y = t0 >> 4;
        let mut atr = Atr {
            raw: bytes,
            convention,
            ta1: None,
            tb1: None,
            tc1: None,
            ta2: None,
            tc2: None,
            protocols: 0,
            first_protocol: None,
            t1_ta: None,
            t1_tb: None,
            t1_tc: None,
            t15_ta: None,
            historical: &[],
            tck: None,
        };
        // Level i = 1, 2, ...; `prev_t` is the protocol of TD(i-1).
        let mut level = 1u32;
        let mut prev_t: Option<u8> = None;
        loop {
            let mut take = |present: bool| -> Result<Option<u8>, AtrError> {
                if !present {
                    return Ok(None);
                }
                let (&b, r) = rest.split_first().ok_or(AtrError::Truncated)?;
                rest = r;
                Ok(Some(b))
            };
            let ta = take(y & 0x1 != 0)?;
            let tb = take(y & 0x2 != 0)?;
            let tc = take(y & 0x4 != 0)?;
            let td = take(y & 0x8 != 0)?;
            match level {
                1 => {
                    atr.ta1 = ta;
                    atr.tb1 = tb;
                    atr.tc1 = tc;
                }
                2 => {
                    atr.ta2 = ta;
                    atr.tc2 = tc;
                }
                _ => match prev_t {
                    Some(1) => {
                        atr.t1_ta = atr.t1_ta.or(ta);
                        atr.t1_tb = atr.t1_tb.or(tb);
                        atr.t1_tc = atr.t1_tc.or(tc);
                    }
                    Some(15) => atr.t15_ta = atr.t15_ta.or(ta),
                    _ => {}
                },
            }
            let Some(td) = td else { break };
            let t = td & 0x0F;
            atr.protocols |= 1u16 << t;
            if atr.first_protocol.is_none() {
                atr.first_protocol = Some(t);
            }
            prev_t = Some(t);
            y = td >> 4;
            level = level.saturating_add(1);
        }
        if rest.len() < k {
            return Err(AtrError::Truncated);
        }
        let (historical, rest) = rest.split_at(k);
        atr.historical = historical;
        // TCK is present unless only T=0 is indicated (§8.2.5).
        let tck_required = atr.protocols & !1 != 0;
        match (rest, tck_required) {
            ([], false) => {}
            ([], true) => return Err(AtrError::MissingTck),
            ([tck], _) => {
                let body = bytes.get(1..bytes.len().saturating_sub(1)).unwrap_or(&[]);
                let expected = body.iter().fold(0u8, |acc, b| acc ^ b);
                if expected != *tck {
                    return Err(AtrError::TckMismatch {
                        expected,
                        found: *tck,
                    });
                }
                atr.tck = Some(*tck);
            }
            _ => return Err(AtrError::TrailingBytes),
        }
        if bytes.len() > MAX_ATR_LEN {
            return Err(AtrError::TrailingBytes);
        }
        Ok(atr)
    }

    /// The ATR bytes as given.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// The coding convention of TS.
    pub fn convention(&self) -> Convention {
        self.convention
    }

    /// The historical bytes (T1..TK).
    pub fn historical_bytes(&self) -> &'a [u8] {
        self.historical
    }

    /// TCK, when present (it was checked).
    pub fn tck(&self) -> Option<u8> {
        self.tck
    }

    /// TA1 as sent, if present.
    pub fn ta1(&self) -> Option<u8> {
        self.ta1
    }

    /// TB1 as sent, if present (deprecated programming voltage).
    pub fn tb1(&self) -> Option<u8> {
        self.tb1
    }

    /// TC1 as sent, if present.
    pub fn tc1(&self) -> Option<u8> {
        self.tc1
    }

    /// TA2 as sent, if present.
    pub fn ta2(&self) -> Option<u8> {
        self.ta2
    }

    /// The Fi/Di byte the card announces (TA1), or [`DEFAULT_FIDI`].
    pub fn fidi(&self) -> u8 {
        self.ta1.unwrap_or(DEFAULT_FIDI)
    }

    /// The clock rate conversion integer Fi from TA1 (372 by default), `None` if reserved.
    pub fn fi(&self) -> Option<u16> {
        fi(self.fidi())
    }

    /// The maximum clock frequency in kHz from TA1 (5 MHz by default), `None` if reserved.
    pub fn fmax_khz(&self) -> Option<u32> {
        fmax_khz(self.fidi())
    }

    /// The baud rate adjustment integer Di from TA1 (1 by default), `None` if reserved.
    pub fn di(&self) -> Option<u8> {
        di(self.fidi())
    }

    /// The extra guard time N from TC1 (0 by default; 255 means the minimum: 12 etu for T=0,
    /// 11 etu for T=1).
    pub fn extra_guard_time(&self) -> u8 {
        self.tc1.unwrap_or(0)
    }

    /// TA2: the card is in specific mode and runs this protocol; `None`: negotiable mode
    /// (a PPS may select protocol and Fi/Di).
    pub fn specific_mode(&self) -> Option<SpecificMode> {
        self.ta2.map(|ta2| SpecificMode {
            protocol: ta2 & 0x0F,
            can_change: ta2 & 0x80 == 0,
            implicit_fidi: ta2 & 0x10 != 0,
        })
    }

    /// The waiting integer WI of T=0 (TC2; 10 by default; a reserved 0 also reads as 10).
    pub fn t0_waiting_integer(&self) -> u8 {
        match self.tc2 {
            Some(0) | None => 10,
            Some(wi) => wi,
        }
    }

    /// Whether the card offers protocol `T=t` (a TD byte names it; with no TD1 at all, T=0 is
    /// the one offered). `t` = 15 says whether global T=15 bytes follow.
    pub fn offers(&self, t: u8) -> bool {
        if t == 0 && self.first_protocol.is_none() {
            return true;
        }
        t < 16 && self.protocols & (1u16 << t) != 0
    }

    /// Whether the card offers `protocol`.
    pub fn offers_protocol(&self, protocol: Protocol) -> bool {
        self.offers(protocol.number())
    }

    /// The protocol to run without a PPS: the one of TA2 in specific mode, else the first one
    /// offered (TD1; T=0 when absent). `None` if that is a protocol this crate does not run.
    pub fn default_protocol(&self) -> Option<Protocol> {
        match self.specific_mode() {
            Some(mode) => Protocol::from_number(mode.protocol),
            None => Protocol::from_number(self.first_protocol.unwrap_or(0)),
        }
    }

    /// IFSC from the first TA of a T=1 level (32 by default). The reserved values 0 and 255
    /// read as the default.
    pub fn t1_ifsc(&self) -> u8 {
        self.t1_ta.filter(|v| (1..=254).contains(v)).unwrap_or(32)
    }

    /// BWI from the first TB of a T=1 level (high nibble; 4 by default).
    pub fn t1_bwi(&self) -> u8 {
        self.t1_tb.map_or(4, |tb| tb >> 4)
    }

    /// CWI from the first TB of a T=1 level (low nibble; 13 by default).
    pub fn t1_cwi(&self) -> u8 {
        self.t1_tb.map_or(13, |tb| tb & 0x0F)
    }

    /// The error detection code from the first TC of a T=1 level (LRC by default).
    pub fn t1_edc(&self) -> Edc {
        match self.t1_tc {
            Some(tc) if tc & 1 != 0 => Edc::Crc,
            _ => Edc::Lrc,
        }
    }

    /// The clock stop indicator X from the first TA after T=15 (bits 8-7: 0 not supported,
    /// 1 state L, 2 state H, 3 no preference; 0 when absent).
    pub fn clock_stop(&self) -> u8 {
        self.t15_ta.map_or(0, |ta| ta >> 6)
    }

    /// The class indicator Y from the first TA after T=15 (bits 6-1: 1 class A 5 V, 2 class B
    /// 3 V, 4 class C 1.8 V), if present.
    pub fn class_indicator(&self) -> Option<u8> {
        self.t15_ta.map(|ta| ta & 0x3F)
    }

    /// The CCID `abProtocolDataStructure` for `PC_to_RDR_SetParameters` (CCID 1.1 §6.1.7)
    /// for `protocol`, with `fidi` as bmFindexDindex (TA1, or what a PPS settled on).
    pub fn ccid_parameters(&self, protocol: Protocol, fidi: u8) -> CcidParameters {
        let inverse = u8::from(self.convention == Convention::Inverse) << 1;
        let guard = self.extra_guard_time();
        match protocol {
            Protocol::T0 => CcidParameters::T0([
                fidi,
                inverse,
                guard,
                self.t0_waiting_integer(),
                self.clock_stop(),
            ]),
            Protocol::T1 => CcidParameters::T1([
                fidi,
                0x10 | inverse | u8::from(self.t1_edc() == Edc::Crc),
                guard,
                (self.t1_bwi() << 4) | (self.t1_cwi() & 0x0F),
                self.clock_stop(),
                self.t1_ifsc(),
                0x00,
            ]),
        }
    }
}

/// A CCID `abProtocolDataStructure` (CCID 1.1 §6.1.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CcidParameters {
    /// T=0: bmFindexDindex, bmTCCKST0, bGuardTimeT0, bWaitingIntegerT0, bClockStop.
    T0([u8; 5]),
    /// T=1: bmFindexDindex, bmTCCKST1, bGuardTimeT1, bmWaitingIntegersT1, bClockStop, bIFSC,
    /// bNadValue.
    T1([u8; 7]),
}

impl CcidParameters {
    /// `bProtocolNum` of SetParameters: 0 or 1.
    pub fn protocol(&self) -> Protocol {
        match self {
            Self::T0(_) => Protocol::T0,
            Self::T1(_) => Protocol::T1,
        }
    }

    /// The structure's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::T0(b) => b,
            Self::T1(b) => b,
        }
    }
}
