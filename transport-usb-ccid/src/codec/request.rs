//! The bulk-OUT commands (`PC_to_RDR_*`).

use super::{msg_type, split_message, write_message, CodecError, Header, Voltage, HEADER_LEN};

/// A bulk-OUT command (`PC_to_RDR_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Request<'a> {
    /// `bSlot`.
    pub slot: u8,
    /// `bSeq`.
    pub seq: u8,
    /// The command.
    pub kind: RequestKind<'a>,
}

/// The commands of [`Request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RequestKind<'a> {
    /// 0x62: power the card on.
    IccPowerOn(Voltage),
    /// 0x63: power the card off.
    IccPowerOff,
    /// 0x65: the slot's status.
    GetSlotStatus,
    /// 0x6F: a block (APDU, TPDU or part of one) to the card.
    XfrBlock {
        /// `bBWI`: block waiting time multiplier for this block (T=1).
        bwi: u8,
        /// `wLevelParameter` (see [`chain`](super::chain)), or the expected reply length at character level.
        level: u16,
        /// `abData`.
        data: &'a [u8],
    },
    /// 0x6C: the protocol parameters in force.
    GetParameters,
    /// 0x6D: back to the default parameters.
    ResetParameters,
    /// 0x61: sets the protocol parameters.
    SetParameters {
        /// `bProtocolNum`: 0 (T=0) or 1 (T=1).
        protocol: u8,
        /// The protocol data structure (5 bytes for T=0, 7 for T=1; see [`ProtocolData`](super::ProtocolData)).
        data: &'a [u8],
    },
    /// 0x6B: a vendor command.
    Escape(&'a [u8]),
    /// 0x6E: stops (`true`) or restarts the card's clock.
    IccClock {
        /// Stop the clock.
        stop: bool,
    },
    /// 0x6A: T=0 APDU-level class bytes.
    T0Apdu {
        /// `bmChanges`.
        changes: u8,
        /// `bClassGetResponse`.
        class_get_response: u8,
        /// `bClassEnvelope`.
        class_envelope: u8,
    },
    /// 0x69: PIN verification or modification (the PIN pad's data structure as given).
    Secure {
        /// `bBWI`.
        bwi: u8,
        /// `wLevelParameter`.
        level: u16,
        /// `abData`.
        data: &'a [u8],
    },
    /// 0x71: a mechanical function (accept, eject, capture, lock, unlock).
    Mechanical {
        /// `bFunction`.
        function: u8,
    },
    /// 0x72: the bulk half of the ABORT sequence.
    Abort,
    /// 0x73: sets the clock frequency and data rate.
    SetDataRateAndClockFrequency {
        /// `dwClockFrequency` in kHz.
        clock_khz: u32,
        /// `dwDataRate` in bit/s.
        data_rate: u32,
    },
}

impl<'a> Request<'a> {
    /// A request for `slot` with `seq`.
    pub const fn new(slot: u8, seq: u8, kind: RequestKind<'a>) -> Self {
        Self { slot, seq, kind }
    }

    /// Encodes the request into `buf`; returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, CodecError> {
        use msg_type as t;
        let (s, q) = (self.slot, self.seq);
        match self.kind {
            RequestKind::IccPowerOn(v) => {
                write_message(buf, t::ICC_POWER_ON, s, q, [v.to_byte(), 0, 0], &[])
            }
            RequestKind::IccPowerOff => write_message(buf, t::ICC_POWER_OFF, s, q, [0; 3], &[]),
            RequestKind::GetSlotStatus => write_message(buf, t::GET_SLOT_STATUS, s, q, [0; 3], &[]),
            RequestKind::XfrBlock { bwi, level, data } => {
                let l = level.to_le_bytes();
                write_message(buf, t::XFR_BLOCK, s, q, [bwi, l[0], l[1]], data)
            }
            RequestKind::GetParameters => write_message(buf, t::GET_PARAMETERS, s, q, [0; 3], &[]),
            RequestKind::ResetParameters => {
                write_message(buf, t::RESET_PARAMETERS, s, q, [0; 3], &[])
            }
            RequestKind::SetParameters { protocol, data } => {
                write_message(buf, t::SET_PARAMETERS, s, q, [protocol, 0, 0], data)
            }
            RequestKind::Escape(data) => write_message(buf, t::ESCAPE, s, q, [0; 3], data),
            RequestKind::IccClock { stop } => {
                write_message(buf, t::ICC_CLOCK, s, q, [u8::from(stop), 0, 0], &[])
            }
            RequestKind::T0Apdu {
                changes,
                class_get_response,
                class_envelope,
            } => write_message(
                buf,
                t::T0_APDU,
                s,
                q,
                [changes, class_get_response, class_envelope],
                &[],
            ),
            RequestKind::Secure { bwi, level, data } => {
                let l = level.to_le_bytes();
                write_message(buf, t::SECURE, s, q, [bwi, l[0], l[1]], data)
            }
            RequestKind::Mechanical { function } => {
                write_message(buf, t::MECHANICAL, s, q, [function, 0, 0], &[])
            }
            RequestKind::Abort => write_message(buf, t::ABORT, s, q, [0; 3], &[]),
            RequestKind::SetDataRateAndClockFrequency {
                clock_khz,
                data_rate,
            } => {
                let c = clock_khz.to_le_bytes();
                let r = data_rate.to_le_bytes();
                let data = [c[0], c[1], c[2], c[3], r[0], r[1], r[2], r[3]];
                write_message(buf, t::SET_DATA_RATE_AND_CLOCK, s, q, [0; 3], &data)
            }
        }
    }

    /// Encodes the request without copying its payload: for an XfrBlock or a Secure (the
    /// messages that carry APDUs, PINs and PUKs) only the header goes into `buf` and the
    /// payload comes back, to be written after it straight from the caller's buffer; any other
    /// request is encoded whole (payload empty). Returns the bytes written and the payload.
    #[inline]
    pub fn encode_head(&self, buf: &mut [u8]) -> Result<(usize, &'a [u8]), CodecError> {
        let (msg_type, bwi, level, data) = match self.kind {
            RequestKind::XfrBlock { bwi, level, data } => (msg_type::XFR_BLOCK, bwi, level, data),
            RequestKind::Secure { bwi, level, data } => (msg_type::SECURE, bwi, level, data),
            _ => return Ok((self.encode(buf)?, &[])),
        };
        let length = u32::try_from(data.len()).map_err(|_| CodecError::TooLong)?;
        let needed = HEADER_LEN.saturating_add(data.len());
        let out = buf
            .get_mut(..HEADER_LEN)
            .ok_or(CodecError::BufferTooSmall { needed })?;
        let l = level.to_le_bytes();
        let header = Header {
            msg_type,
            length,
            slot: self.slot,
            seq: self.seq,
            specific: [bwi, l[0], l[1]],
        };
        out.copy_from_slice(&header.to_bytes());
        Ok((HEADER_LEN, data))
    }

    /// Parses one whole request (exactly one message: header plus `dwLength` bytes).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CodecError> {
        let (h, data) = split_message(bytes)?;
        Self::from_parts(&h, data)
    }

    /// Builds the request from an already parsed header and its data, which must be
    /// `dwLength` bytes (a reader that receives the header and the data apart).
    pub fn from_parts(h: &Header, data: &'a [u8]) -> Result<Self, CodecError> {
        use msg_type as t;
        match usize::try_from(h.length).map(|l| l.cmp(&data.len())) {
            Ok(core::cmp::Ordering::Equal) => {}
            Ok(core::cmp::Ordering::Less) => return Err(CodecError::TrailingBytes),
            _ => {
                return Err(CodecError::Truncated {
                    needed: h.message_len(),
                })
            }
        }
        let [b7, b8, b9] = h.specific;
        let level = u16::from_le_bytes([b8, b9]);
        let kind = match h.msg_type {
            t::ICC_POWER_ON => {
                RequestKind::IccPowerOn(Voltage::from_byte(b7).ok_or(CodecError::BadField)?)
            }
            t::ICC_POWER_OFF => RequestKind::IccPowerOff,
            t::GET_SLOT_STATUS => RequestKind::GetSlotStatus,
            t::XFR_BLOCK => RequestKind::XfrBlock {
                bwi: b7,
                level,
                data,
            },
            t::GET_PARAMETERS => RequestKind::GetParameters,
            t::RESET_PARAMETERS => RequestKind::ResetParameters,
            t::SET_PARAMETERS => RequestKind::SetParameters { protocol: b7, data },
            t::ESCAPE => RequestKind::Escape(data),
            t::ICC_CLOCK => RequestKind::IccClock { stop: b7 != 0 },
            t::T0_APDU => RequestKind::T0Apdu {
                changes: b7,
                class_get_response: b8,
                class_envelope: b9,
            },
            t::SECURE => RequestKind::Secure {
                bwi: b7,
                level,
                data,
            },
            t::MECHANICAL => RequestKind::Mechanical { function: b7 },
            t::ABORT => RequestKind::Abort,
            t::SET_DATA_RATE_AND_CLOCK => {
                let d: &[u8; 8] = data.try_into().map_err(|_| CodecError::BadField)?;
                RequestKind::SetDataRateAndClockFrequency {
                    clock_khz: u32::from_le_bytes([d[0], d[1], d[2], d[3]]),
                    data_rate: u32::from_le_bytes([d[4], d[5], d[6], d[7]]),
                }
            }
            other => return Err(CodecError::UnknownType(other)),
        };
        Ok(Self {
            slot: h.slot,
            seq: h.seq,
            kind,
        })
    }
}
