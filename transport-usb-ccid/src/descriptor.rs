//! The CCID class descriptor (54 bytes, type 0x21) of a reader's interface: what the reader
//! does by itself (exchange level, voltage, parameters, PPS, IFSD) and what the host must do.

use core::fmt;

/// Length of the CCID class descriptor.
pub const DESCRIPTOR_LEN: usize = 54;
/// `bDescriptorType` of the CCID class descriptor.
pub const DESCRIPTOR_TYPE: u8 = 0x21;
/// `bDescriptorType` some pre-1.0 readers use in their vendor-class (0xFF) interface.
pub const VENDOR_DESCRIPTOR_TYPE: u8 = 0xFF;

/// `dwFeatures` bits.
pub mod features {
    /// Automatic parameter configuration based on the ATR.
    pub const AUTO_PARAMETERS_FROM_ATR: u32 = 0x0000_0002;
    /// Automatic activation of the card on insertion.
    pub const AUTO_ACTIVATION: u32 = 0x0000_0004;
    /// Automatic voltage selection.
    pub const AUTO_VOLTAGE: u32 = 0x0000_0008;
    /// Automatic card clock frequency change.
    pub const AUTO_CLOCK: u32 = 0x0000_0010;
    /// Automatic baud rate change.
    pub const AUTO_BAUD: u32 = 0x0000_0020;
    /// Automatic parameter negotiation made by the reader (proprietary).
    pub const AUTO_NEGOTIATION: u32 = 0x0000_0040;
    /// Automatic PPS made by the reader according to the active parameters.
    pub const AUTO_PPS: u32 = 0x0000_0080;
    /// The reader can stop the card's clock.
    pub const CLOCK_STOP: u32 = 0x0000_0100;
    /// NAD values other than 0 accepted (T=1).
    pub const NAD: u32 = 0x0000_0200;
    /// Automatic IFSD exchange as the first block (T=1).
    pub const AUTO_IFSD: u32 = 0x0000_0400;
    /// TPDU level exchanges.
    pub const LEVEL_TPDU: u32 = 0x0001_0000;
    /// Short APDU level exchanges.
    pub const LEVEL_SHORT_APDU: u32 = 0x0002_0000;
    /// Short and extended APDU level exchanges.
    pub const LEVEL_EXTENDED_APDU: u32 = 0x0004_0000;
    /// Mask of the exchange level bits.
    pub const LEVEL_MASK: u32 = 0x0007_0000;
}

/// What a reader carries in an XfrBlock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ExchangeLevel {
    /// Characters: the host drives ISO 7816-3 byte by byte (not supported by the session).
    Character,
    /// TPDUs: T=0 TPDUs or T=1 blocks; the host runs the transmission protocol.
    Tpdu,
    /// Short APDUs: the reader runs the protocol.
    ShortApdu,
    /// Short and extended APDUs.
    ShortExtendedApdu,
}

impl fmt::Display for ExchangeLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Character => "character level",
            Self::Tpdu => "TPDU level",
            Self::ShortApdu => "short APDU level",
            Self::ShortExtendedApdu => "short and extended APDU level",
        })
    }
}

/// Why a class descriptor could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DescriptorError {
    /// Fewer than 54 bytes, or `bLength` is not 54.
    BadLength,
    /// `bDescriptorType` is neither 0x21 nor 0xFF.
    BadType(u8),
    /// No CCID class descriptor among the interface's extra descriptors.
    NotFound,
}

impl fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadLength => f.write_str("CCID class descriptor is not 54 bytes"),
            Self::BadType(t) => write!(f, "not a CCID class descriptor (type {t:#04x})"),
            Self::NotFound => f.write_str("no CCID class descriptor"),
        }
    }
}

impl core::error::Error for DescriptorError {}

/// The CCID class descriptor. Every field is public, so tests and simulators build one with
/// a struct literal (start from [`ClassDescriptor::TYPICAL`]) and [`encode`](Self::encode) it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClassDescriptor {
    /// `bDescriptorType` as read (0x21, or 0xFF from some vendor-class readers).
    pub descriptor_type: u8,
    /// `bcdCCID` (0x0110 for CCID 1.1).
    pub bcd_ccid: u16,
    /// `bMaxSlotIndex`: slots minus one.
    pub max_slot_index: u8,
    /// `bVoltageSupport`: 0x01 5 V, 0x02 3 V, 0x04 1.8 V.
    pub voltage_support: u8,
    /// `dwProtocols`: bit 0 T=0, bit 1 T=1.
    pub protocols: u32,
    /// `dwDefaultClock` in kHz.
    pub default_clock_khz: u32,
    /// `dwMaximumClock` in kHz.
    pub max_clock_khz: u32,
    /// `bNumClockSupported`.
    pub num_clocks: u8,
    /// `dwDataRate` in bit/s.
    pub data_rate: u32,
    /// `dwMaxDataRate` in bit/s.
    pub max_data_rate: u32,
    /// `bNumDataRatesSupported`.
    pub num_data_rates: u8,
    /// `dwMaxIFSD`: the largest T=1 information field the reader takes.
    pub max_ifsd: u32,
    /// `dwSynchProtocols`.
    pub synch_protocols: u32,
    /// `dwMechanical`.
    pub mechanical: u32,
    /// `dwFeatures` (see [`features`]).
    pub features: u32,
    /// `dwMaxCCIDMessageLength`: the largest message, header included.
    pub max_message_length: u32,
    /// `bClassGetResponse`.
    pub class_get_response: u8,
    /// `bClassEnvelope`.
    pub class_envelope: u8,
    /// `wLcdLayout`.
    pub lcd_layout: u16,
    /// `bPINSupport`: 0x01 verification, 0x02 modification.
    pub pin_support: u8,
    /// `bMaxCCIDBusySlots`.
    pub max_busy_slots: u8,
}

impl ClassDescriptor {
    /// A typical one-slot reader at short and extended APDU level, 271-byte messages, all
    /// voltages chosen automatically, T=0 and T=1.
    pub const TYPICAL: Self = Self {
        descriptor_type: DESCRIPTOR_TYPE,
        bcd_ccid: 0x0110,
        max_slot_index: 0,
        voltage_support: 0x07,
        protocols: 0x03,
        default_clock_khz: 4000,
        max_clock_khz: 4000,
        num_clocks: 0,
        data_rate: 10752,
        max_data_rate: 344_086,
        num_data_rates: 0,
        max_ifsd: 254,
        synch_protocols: 0,
        mechanical: 0,
        features: features::AUTO_PARAMETERS_FROM_ATR
            | features::AUTO_ACTIVATION
            | features::AUTO_VOLTAGE
            | features::AUTO_CLOCK
            | features::AUTO_BAUD
            | features::AUTO_NEGOTIATION
            | features::AUTO_PPS
            | features::AUTO_IFSD
            | features::LEVEL_EXTENDED_APDU,
        max_message_length: 271,
        class_get_response: 0xFF,
        class_envelope: 0xFF,
        lcd_layout: 0,
        pin_support: 0,
        max_busy_slots: 1,
    };

    /// This descriptor at another exchange level (the level bits of `features` replaced).
    pub const fn with_level(mut self, level: ExchangeLevel) -> Self {
        self.features = (self.features & !features::LEVEL_MASK)
            | match level {
                ExchangeLevel::Character => 0,
                ExchangeLevel::Tpdu => features::LEVEL_TPDU,
                ExchangeLevel::ShortApdu => features::LEVEL_SHORT_APDU,
                ExchangeLevel::ShortExtendedApdu => features::LEVEL_EXTENDED_APDU,
            };
        self
    }

    /// Parses the 54-byte descriptor (more bytes may follow).
    pub fn parse(bytes: &[u8]) -> Result<Self, DescriptorError> {
        let d: &[u8; DESCRIPTOR_LEN] = bytes
            .get(..DESCRIPTOR_LEN)
            .and_then(|d| d.try_into().ok())
            .ok_or(DescriptorError::BadLength)?;
        if usize::from(d[0]) != DESCRIPTOR_LEN {
            return Err(DescriptorError::BadLength);
        }
        if d[1] != DESCRIPTOR_TYPE && d[1] != VENDOR_DESCRIPTOR_TYPE {
            return Err(DescriptorError::BadType(d[1]));
        }
        let u16_at = |i: usize| u16::from_le_bytes([d[i], d[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]);
        Ok(Self {
            descriptor_type: d[1],
            bcd_ccid: u16_at(2),
            max_slot_index: d[4],
            voltage_support: d[5],
            protocols: u32_at(6),
            default_clock_khz: u32_at(10),
            max_clock_khz: u32_at(14),
            num_clocks: d[18],
            data_rate: u32_at(19),
            max_data_rate: u32_at(23),
            num_data_rates: d[27],
            max_ifsd: u32_at(28),
            synch_protocols: u32_at(32),
            mechanical: u32_at(36),
            features: u32_at(40),
            max_message_length: u32_at(44),
            class_get_response: d[48],
            class_envelope: d[49],
            lcd_layout: u16_at(50),
            pin_support: d[52],
            max_busy_slots: d[53],
        })
    }

    /// Finds and parses the CCID class descriptor among an interface's extra descriptors (a
    /// chain of `bLength, bDescriptorType, ...` records), as a USB stack hands them over.
    pub fn find(extra: &[u8]) -> Result<Self, DescriptorError> {
        let mut rest = extra;
        while let Some(&len) = rest.first() {
            let len = usize::from(len);
            if len == 0 {
                break;
            }
            let record = rest.get(..len).unwrap_or(rest);
            if len == DESCRIPTOR_LEN {
                if let Ok(d) = Self::parse(record) {
                    return Ok(d);
                }
            }
            rest = rest.get(len..).unwrap_or(&[]);
        }
        Err(DescriptorError::NotFound)
    }

    /// The 54 bytes of the descriptor.
    pub fn encode(&self) -> [u8; DESCRIPTOR_LEN] {
        let mut d = [0u8; DESCRIPTOR_LEN];
        let mut put = |at: usize, bytes: &[u8]| {
            if let Some(dst) = d.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        };
        put(0, &[DESCRIPTOR_LEN as u8, self.descriptor_type]);
        put(2, &self.bcd_ccid.to_le_bytes());
        put(4, &[self.max_slot_index, self.voltage_support]);
        put(6, &self.protocols.to_le_bytes());
        put(10, &self.default_clock_khz.to_le_bytes());
        put(14, &self.max_clock_khz.to_le_bytes());
        put(18, &[self.num_clocks]);
        put(19, &self.data_rate.to_le_bytes());
        put(23, &self.max_data_rate.to_le_bytes());
        put(27, &[self.num_data_rates]);
        put(28, &self.max_ifsd.to_le_bytes());
        put(32, &self.synch_protocols.to_le_bytes());
        put(36, &self.mechanical.to_le_bytes());
        put(40, &self.features.to_le_bytes());
        put(44, &self.max_message_length.to_le_bytes());
        put(48, &[self.class_get_response, self.class_envelope]);
        put(50, &self.lcd_layout.to_le_bytes());
        put(52, &[self.pin_support, self.max_busy_slots]);
        d
    }

    /// The exchange level from `dwFeatures` (the highest level bit set; none is character level).
    pub const fn exchange_level(&self) -> ExchangeLevel {
        if self.features & features::LEVEL_EXTENDED_APDU != 0 {
            ExchangeLevel::ShortExtendedApdu
        } else if self.features & features::LEVEL_SHORT_APDU != 0 {
            ExchangeLevel::ShortApdu
        } else if self.features & features::LEVEL_TPDU != 0 {
            ExchangeLevel::Tpdu
        } else {
            ExchangeLevel::Character
        }
    }

    const fn has(&self, bit: u32) -> bool {
        self.features & bit != 0
    }

    /// The reader selects the voltage by itself (IccPowerOn with "automatic").
    pub const fn auto_voltage(&self) -> bool {
        self.has(features::AUTO_VOLTAGE)
    }

    /// The reader sets the protocol parameters from the ATR by itself.
    pub const fn auto_parameters(&self) -> bool {
        self.has(features::AUTO_PARAMETERS_FROM_ATR)
    }

    /// The reader negotiates parameters by itself (proprietary): no PPS, no SetParameters.
    pub const fn auto_negotiation(&self) -> bool {
        self.has(features::AUTO_NEGOTIATION)
    }

    /// The reader makes the PPS itself according to the parameters the host sets.
    pub const fn auto_pps(&self) -> bool {
        self.has(features::AUTO_PPS)
    }

    /// The reader makes the T=1 IFSD exchange itself.
    pub const fn auto_ifsd(&self) -> bool {
        self.has(features::AUTO_IFSD)
    }

    /// Whether `voltage`'s class is in `bVoltageSupport`.
    pub const fn supports_voltage(&self, voltage: crate::codec::Voltage) -> bool {
        self.voltage_support & voltage.support_bit() != 0
    }

    /// Whether T=0 (`protocol` 0) or T=1 (1) is in `dwProtocols`.
    pub const fn supports_protocol(&self, protocol: u8) -> bool {
        protocol < 32 && self.protocols & (1 << protocol) != 0
    }

    /// `dwMaxCCIDMessageLength` as a `usize` (saturating).
    pub fn max_message_len(&self) -> usize {
        usize::try_from(self.max_message_length).unwrap_or(usize::MAX)
    }
}
