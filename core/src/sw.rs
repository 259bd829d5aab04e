//! The status word (SW1 SW2) as a total type: every `u16` maps to a variant, unknown values keep
//! their bytes.

/// A response status word (ISO/IEC 7816-4 §5.6, SP 800-73-4 Part 2 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Status {
    /// `90 00`: normal processing.
    Success,
    /// `61 XX`: more response data; GET RESPONSE with Le = XX (0 means 256) fetches it.
    MoreData(u8),
    /// `62 XX`: warning, non-volatile memory unchanged.
    WarningUnchanged(u8),
    /// `63 CX` (or `63 0X` on some cards, X > 0): verification failed, X tries left.
    RetriesLeft(u8),
    /// `63 00`: verification failed, no further information.
    VerificationFailed,
    /// `64 XX`: execution error, non-volatile memory unchanged.
    ExecutionError(u8),
    /// `65 81`: memory failure.
    MemoryFailure,
    /// `67 00`: wrong length (Lc or Le).
    WrongLength,
    /// `68 81`: logical channel not supported.
    ChannelNotSupported,
    /// `68 82`: secure messaging not supported.
    SecureMessagingNotSupported,
    /// `68 83`: last command of the chain expected.
    LastCommandOfChainExpected,
    /// `68 84`: command chaining not supported.
    ChainingNotSupported,
    /// `69 81`: command incompatible with file structure.
    CommandIncompatible,
    /// `69 82`: security status not satisfied (also YubiKey's answer to a wrong management-key
    /// response).
    SecurityStatusNotSatisfied,
    /// `69 83`: authentication method blocked (PIN, PUK or admin key blocked).
    AuthenticationBlocked,
    /// `69 84`: reference data not usable.
    ReferenceDataNotUsable,
    /// `69 85`: conditions of use not satisfied (no pending challenge; YubiKey PIN complexity).
    ConditionsNotSatisfied,
    /// `69 86`: command not allowed (no current EF).
    CommandNotAllowed,
    /// `6A 80`: incorrect parameters in the data field (bad new PIN; piv-authenticator's wrong
    /// management-key response).
    IncorrectData,
    /// `6A 81`: function not supported.
    FunctionNotSupported,
    /// `6A 82`: file or application not found.
    NotFound,
    /// `6A 84`: not enough memory.
    NotEnoughMemory,
    /// `6A 86`: incorrect P1-P2.
    IncorrectP1P2,
    /// `6A 88`: referenced data (key, data object) not found.
    ReferencedDataNotFound,
    /// `6B 00`: wrong parameters P1-P2.
    WrongP1P2,
    /// `6C XX`: wrong Le; resend with Le = XX.
    WrongLe(u8),
    /// `6D 00`: instruction not supported.
    InstructionNotSupported,
    /// `6E 00`: class not supported.
    ClassNotSupported,
    /// `6F 00`: no precise diagnosis.
    NoPreciseDiagnosis,
    /// Any other status word, kept as is.
    Other(u16),
}

impl Status {
    /// Maps a status word to its variant. Total: never fails.
    pub const fn from_u16(sw: u16) -> Self {
        let [sw1, sw2] = sw.to_be_bytes();
        match (sw1, sw2) {
            (0x90, 0x00) => Self::Success,
            (0x61, x) => Self::MoreData(x),
            (0x62, x) => Self::WarningUnchanged(x),
            (0x63, 0x00) => Self::VerificationFailed,
            (0x63, x) if x & 0xF0 == 0xC0 => Self::RetriesLeft(x & 0x0F),
            (0x63, x) if x <= 0x0F => Self::RetriesLeft(x),
            (0x64, x) => Self::ExecutionError(x),
            (0x65, 0x81) => Self::MemoryFailure,
            (0x67, 0x00) => Self::WrongLength,
            (0x68, 0x81) => Self::ChannelNotSupported,
            (0x68, 0x82) => Self::SecureMessagingNotSupported,
            (0x68, 0x83) => Self::LastCommandOfChainExpected,
            (0x68, 0x84) => Self::ChainingNotSupported,
            (0x69, 0x81) => Self::CommandIncompatible,
            (0x69, 0x82) => Self::SecurityStatusNotSatisfied,
            (0x69, 0x83) => Self::AuthenticationBlocked,
            (0x69, 0x84) => Self::ReferenceDataNotUsable,
            (0x69, 0x85) => Self::ConditionsNotSatisfied,
            (0x69, 0x86) => Self::CommandNotAllowed,
            (0x6A, 0x80) => Self::IncorrectData,
            (0x6A, 0x81) => Self::FunctionNotSupported,
            (0x6A, 0x82) => Self::NotFound,
            (0x6A, 0x84) => Self::NotEnoughMemory,
            (0x6A, 0x86) => Self::IncorrectP1P2,
            (0x6A, 0x88) => Self::ReferencedDataNotFound,
            (0x6B, 0x00) => Self::WrongP1P2,
            (0x6C, x) => Self::WrongLe(x),
            (0x6D, 0x00) => Self::InstructionNotSupported,
            (0x6E, 0x00) => Self::ClassNotSupported,
            (0x6F, 0x00) => Self::NoPreciseDiagnosis,
            _ => Self::Other(sw),
        }
    }

    /// Maps SW1 and SW2 to a status.
    pub const fn from_bytes(sw1: u8, sw2: u8) -> Self {
        Self::from_u16(u16::from_be_bytes([sw1, sw2]))
    }

    /// The status word. `RetriesLeft` encodes as `63 CX`.
    pub const fn to_u16(self) -> u16 {
        match self {
            Self::Success => 0x9000,
            Self::MoreData(x) => 0x6100 | x as u16,
            Self::WarningUnchanged(x) => 0x6200 | x as u16,
            Self::RetriesLeft(x) => 0x63C0 | (x & 0x0F) as u16,
            Self::VerificationFailed => 0x6300,
            Self::ExecutionError(x) => 0x6400 | x as u16,
            Self::MemoryFailure => 0x6581,
            Self::WrongLength => 0x6700,
            Self::ChannelNotSupported => 0x6881,
            Self::SecureMessagingNotSupported => 0x6882,
            Self::LastCommandOfChainExpected => 0x6883,
            Self::ChainingNotSupported => 0x6884,
            Self::CommandIncompatible => 0x6981,
            Self::SecurityStatusNotSatisfied => 0x6982,
            Self::AuthenticationBlocked => 0x6983,
            Self::ReferenceDataNotUsable => 0x6984,
            Self::ConditionsNotSatisfied => 0x6985,
            Self::CommandNotAllowed => 0x6986,
            Self::IncorrectData => 0x6A80,
            Self::FunctionNotSupported => 0x6A81,
            Self::NotFound => 0x6A82,
            Self::NotEnoughMemory => 0x6A84,
            Self::IncorrectP1P2 => 0x6A86,
            Self::ReferencedDataNotFound => 0x6A88,
            Self::WrongP1P2 => 0x6B00,
            Self::WrongLe(x) => 0x6C00 | x as u16,
            Self::InstructionNotSupported => 0x6D00,
            Self::ClassNotSupported => 0x6E00,
            Self::NoPreciseDiagnosis => 0x6F00,
            Self::Other(sw) => sw,
        }
    }

    /// Whether this is `90 00`.
    pub const fn is_success(self) -> bool {
        matches!(self, Self::Success)
    }

    /// Tries left, when the status reports them: `63 CX`/`63 0X` give X, `69 83` gives 0.
    pub const fn tries_left(self) -> Option<u8> {
        match self {
            Self::RetriesLeft(x) => Some(x),
            Self::AuthenticationBlocked => Some(0),
            _ => None,
        }
    }

    /// The "instruction or function not available" family: the card does not know the command.
    pub const fn is_unsupported(self) -> bool {
        matches!(
            self,
            Self::InstructionNotSupported
                | Self::FunctionNotSupported
                | Self::ClassNotSupported
                | Self::WrongP1P2
                | Self::IncorrectP1P2
                | Self::ReferencedDataNotFound
                | Self::NotFound
        )
    }
}

impl From<u16> for Status {
    fn from(sw: u16) -> Self {
        Self::from_u16(sw)
    }
}

impl From<Status> for u16 {
    fn from(status: Status) -> u16 {
        status.to_u16()
    }
}

impl core::fmt::Display for Status {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:04X}", self.to_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_in_both_encodings() {
        assert_eq!(Status::from_u16(0x63C2), Status::RetriesLeft(2));
        assert_eq!(Status::from_u16(0x6302), Status::RetriesLeft(2));
        assert_eq!(Status::from_u16(0x63C0), Status::RetriesLeft(0));
        assert_eq!(Status::from_u16(0x6300), Status::VerificationFailed);
        assert_eq!(Status::from_u16(0x6983).tries_left(), Some(0));
        assert_eq!(Status::from_u16(0x63C1).tries_left(), Some(1));
        assert_eq!(Status::from_u16(0x6A80).tries_left(), None);
    }

    #[test]
    fn named_words() {
        assert_eq!(Status::from_bytes(0x90, 0x00), Status::Success);
        assert_eq!(Status::from_u16(0x6112), Status::MoreData(0x12));
        assert_eq!(Status::from_u16(0x6C08), Status::WrongLe(8));
        assert_eq!(Status::from_u16(0x6982), Status::SecurityStatusNotSatisfied);
        assert_eq!(Status::from_u16(0x6985), Status::ConditionsNotSatisfied);
        assert_eq!(Status::from_u16(0x1234), Status::Other(0x1234));
    }

    proptest::proptest! {
        #[test]
        fn total_and_round_trips(sw in proptest::prelude::any::<u16>()) {
            let status = Status::from_u16(sw);
            // Every status maps back to itself through its canonical word.
            proptest::prop_assert_eq!(Status::from_u16(status.to_u16()), status);
            // Only the 63 0X form is rewritten (as 63 CX).
            if sw & 0xFFF0 != 0x6300 || sw == 0x6300 {
                proptest::prop_assert_eq!(status.to_u16(), sw);
            }
        }
    }
}
