//! The bulk-IN replies (`RDR_to_PC_*`) and the protocol data of SetParameters / Parameters.

use super::{msg_type, split_message, write_message, ClockStatus, CodecError, Header, Status};

/// A bulk-IN reply (`RDR_to_PC_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Response<'a> {
    /// `bSlot`.
    pub slot: u8,
    /// `bSeq` (the command's it answers).
    pub seq: u8,
    /// `bStatus` and `bError`.
    pub status: Status,
    /// The reply.
    pub kind: ResponseKind<'a>,
}

/// The replies of [`Response`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ResponseKind<'a> {
    /// 0x80: the card's data (ATR, APDU response, TPDU/block).
    DataBlock {
        /// `bChainParameter` (see [`chain`](super::chain)).
        chain: u8,
        /// `abData`.
        data: &'a [u8],
    },
    /// 0x81: the slot's status.
    SlotStatus {
        /// `bClockStatus`.
        clock: ClockStatus,
    },
    /// 0x82: the protocol parameters in force.
    Parameters {
        /// `bProtocolNum`.
        protocol: u8,
        /// The protocol data structure.
        data: &'a [u8],
    },
    /// 0x83: a vendor reply.
    Escape(&'a [u8]),
    /// 0x84: the clock frequency and data rate in force.
    DataRateAndClockFrequency {
        /// `dwClockFrequency` in kHz.
        clock_khz: u32,
        /// `dwDataRate` in bit/s.
        data_rate: u32,
    },
    /// A reply of a type this codec does not know (some readers answer an error with the
    /// command's own type); `bStatus` and `bError` are still meaningful.
    Other {
        /// `bMessageType`.
        msg_type: u8,
        /// Byte 9 of the header.
        specific: u8,
        /// The data.
        data: &'a [u8],
    },
}

impl<'a> Response<'a> {
    /// Encodes the reply into `buf`; returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, CodecError> {
        use msg_type as t;
        let (status, error) = self.status.to_bytes();
        let (s, q) = (self.slot, self.seq);
        match self.kind {
            ResponseKind::DataBlock { chain, data } => {
                write_message(buf, t::DATA_BLOCK, s, q, [status, error, chain], data)
            }
            ResponseKind::SlotStatus { clock } => write_message(
                buf,
                t::SLOT_STATUS,
                s,
                q,
                [status, error, clock.to_byte()],
                &[],
            ),
            ResponseKind::Parameters { protocol, data } => {
                write_message(buf, t::PARAMETERS, s, q, [status, error, protocol], data)
            }
            ResponseKind::Escape(data) => {
                write_message(buf, t::ESCAPE_REPLY, s, q, [status, error, 0], data)
            }
            ResponseKind::DataRateAndClockFrequency {
                clock_khz,
                data_rate,
            } => {
                let c = clock_khz.to_le_bytes();
                let r = data_rate.to_le_bytes();
                let data = [c[0], c[1], c[2], c[3], r[0], r[1], r[2], r[3]];
                write_message(buf, t::DATA_RATE_AND_CLOCK, s, q, [status, error, 0], &data)
            }
            ResponseKind::Other {
                msg_type,
                specific,
                data,
            } => write_message(buf, msg_type, s, q, [status, error, specific], data),
        }
    }

    /// Parses one whole reply (header plus exactly `dwLength` bytes).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CodecError> {
        let (h, data) = split_message(bytes)?;
        Self::from_parts(&h, data)
    }

    /// Builds the reply from an already parsed header and its `dwLength` bytes of data (a
    /// reader of a byte stream parses the header first).
    pub fn from_parts(h: &Header, data: &'a [u8]) -> Result<Self, CodecError> {
        use msg_type as t;
        let [b7, b8, b9] = h.specific;
        let status = Status::from_bytes(b7, b8)?;
        let kind = match h.msg_type {
            t::DATA_BLOCK => ResponseKind::DataBlock { chain: b9, data },
            t::SLOT_STATUS => ResponseKind::SlotStatus {
                clock: ClockStatus::from_byte(b9),
            },
            t::PARAMETERS => ResponseKind::Parameters { protocol: b9, data },
            t::ESCAPE_REPLY => ResponseKind::Escape(data),
            t::DATA_RATE_AND_CLOCK => {
                let d: &[u8; 8] = data.try_into().map_err(|_| CodecError::BadField)?;
                ResponseKind::DataRateAndClockFrequency {
                    clock_khz: u32::from_le_bytes([d[0], d[1], d[2], d[3]]),
                    data_rate: u32::from_le_bytes([d[4], d[5], d[6], d[7]]),
                }
            }
            other => ResponseKind::Other {
                msg_type: other,
                specific: b9,
                data,
            },
        };
        Ok(Self {
            slot: h.slot,
            seq: h.seq,
            status,
            kind,
        })
    }
}

/// The protocol data structure of SetParameters / Parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProtocolData {
    /// `bProtocolNum` 0.
    T0(T0Params),
    /// `bProtocolNum` 1.
    T1(T1Params),
}

/// T=0 parameters (5 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct T0Params {
    /// `bmFindexDindex`: Fi index in the high nibble, Di index in the low one (TA1).
    pub fi_di: u8,
    /// `bmTCCKST0`: bit 1 is the convention (0 direct, 1 inverse).
    pub tcck: u8,
    /// `bGuardTimeT0` (TC1).
    pub guard_time: u8,
    /// `bWaitingIntegerT0` (TC2, WI).
    pub waiting_integer: u8,
    /// `bClockStop`.
    pub clock_stop: u8,
}

/// T=1 parameters (7 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct T1Params {
    /// `bmFindexDindex`.
    pub fi_di: u8,
    /// `bmTCCKST1`: bit 0 is the checksum (0 LRC, 1 CRC), bit 1 the convention; 0x10 is set.
    pub tcck: u8,
    /// `bGuardTimeT1` (TC1).
    pub guard_time: u8,
    /// `bmWaitingIntegersT1`: BWI in the high nibble, CWI in the low one.
    pub waiting_integers: u8,
    /// `bClockStop`.
    pub clock_stop: u8,
    /// `bIFSC`.
    pub ifsc: u8,
    /// `bNadValue`.
    pub nad: u8,
}

impl ProtocolData {
    /// `bProtocolNum`.
    pub const fn protocol(&self) -> u8 {
        match self {
            Self::T0(_) => 0,
            Self::T1(_) => 1,
        }
    }

    /// Writes the structure into `buf`; returns its length (5 or 7).
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, CodecError> {
        let (bytes, len): ([u8; 7], usize) = match self {
            Self::T0(p) => (
                [
                    p.fi_di,
                    p.tcck,
                    p.guard_time,
                    p.waiting_integer,
                    p.clock_stop,
                    0,
                    0,
                ],
                5,
            ),
            Self::T1(p) => (
                [
                    p.fi_di,
                    p.tcck,
                    p.guard_time,
                    p.waiting_integers,
                    p.clock_stop,
                    p.ifsc,
                    p.nad,
                ],
                7,
            ),
        };
        let out = buf
            .get_mut(..len)
            .ok_or(CodecError::BufferTooSmall { needed: len })?;
        out.copy_from_slice(bytes.get(..len).unwrap_or(&[]));
        Ok(len)
    }

    /// Parses the structure of `protocol`.
    pub fn parse(protocol: u8, data: &[u8]) -> Result<Self, CodecError> {
        match (protocol, data) {
            (0, &[fi_di, tcck, guard_time, waiting_integer, clock_stop]) => {
                Ok(Self::T0(T0Params {
                    fi_di,
                    tcck,
                    guard_time,
                    waiting_integer,
                    clock_stop,
                }))
            }
            (1, &[fi_di, tcck, guard_time, waiting_integers, clock_stop, ifsc, nad]) => {
                Ok(Self::T1(T1Params {
                    fi_di,
                    tcck,
                    guard_time,
                    waiting_integers,
                    clock_stop,
                    ifsc,
                    nad,
                }))
            }
            _ => Err(CodecError::BadField),
        }
    }
}
