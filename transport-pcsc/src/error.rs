//! The PC/SC error type and its classification into core's [`ErrorKind`].

use core::fmt;

use cardunlock_core::transport::{ErrorKind, TransportError};

/// What went wrong talking to a card through PC/SC.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PcscError {
    /// The PC/SC service (pcscd, or the Windows smart-card service) is not running or not
    /// reachable.
    NoService(pcsc::Error),
    /// The service runs but no reader is connected.
    NoReaders,
    /// No reader matches what was asked for.
    ReaderNotFound {
        /// The name, name part or index asked for.
        wanted: String,
        /// The readers that are connected.
        available: Vec<String>,
    },
    /// Several readers match a name part; give the full name or the index.
    AmbiguousReader {
        /// The name part asked for.
        wanted: String,
        /// The readers whose name contains it.
        matching: Vec<String>,
    },
    /// The reader was disconnected (or disabled) while in use.
    ReaderUnavailable {
        /// The reader.
        reader: String,
    },
    /// No card is in the reader.
    NoCard {
        /// The reader; empty when no reader at all holds a card.
        reader: String,
    },
    /// A card is in the reader but does not answer (PC/SC's "mute": inserted the wrong way round,
    /// dirty contacts, a dead card, or a reset that failed).
    MuteCard {
        /// The reader.
        reader: String,
    },
    /// The card was removed from the reader.
    CardRemoved,
    /// The card was reset (by another application, or it lost power): what the flow had
    /// authenticated is gone. The connection was re-established; start the flow again.
    CardReset,
    /// Another application has the reader or the card in exclusive use
    /// (`SCARD_E_SHARING_VIOLATION`).
    ReaderInUse,
    /// Waiting for a card (or the reader) timed out.
    Timeout,
    /// The card's response did not fit the buffer. The command *was* executed by the card.
    ResponseTooLong,
    /// Any other PC/SC failure, with the call that failed.
    Pcsc {
        /// The PC/SC call (`SCardTransmit`, ...).
        call: &'static str,
        /// The PC/SC error.
        error: pcsc::Error,
    },
}

impl PcscError {
    /// Classifies the error `error` of PC/SC call `call` on `reader`.
    pub(crate) fn from_pcsc(call: &'static str, error: pcsc::Error, reader: &str) -> Self {
        use pcsc::Error as E;
        match error {
            E::NoService | E::ServiceStopped | E::Shutdown => Self::NoService(error),
            E::NoReadersAvailable => Self::NoReaders,
            E::UnknownReader => Self::ReaderNotFound {
                wanted: reader.to_owned(),
                available: Vec::new(),
            },
            E::ReaderUnavailable => Self::ReaderUnavailable {
                reader: reader.to_owned(),
            },
            E::NoSmartcard => Self::NoCard {
                reader: reader.to_owned(),
            },
            E::UnresponsiveCard if call == "SCardConnect" => Self::MuteCard {
                reader: reader.to_owned(),
            },
            E::RemovedCard => Self::CardRemoved,
            E::ResetCard => Self::CardReset,
            E::SharingViolation => Self::ReaderInUse,
            E::Timeout => Self::Timeout,
            E::InsufficientBuffer => Self::ResponseTooLong,
            error => Self::Pcsc { call, error },
        }
    }
}

impl fmt::Display for PcscError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoService(e) => write!(
                f,
                "the PC/SC service is not running or not reachable (start pcscd): {e}"
            ),
            Self::NoReaders => f.write_str("no smart-card reader is connected"),
            Self::ReaderNotFound { wanted, available } if available.is_empty() => {
                write!(f, "no reader matches \"{wanted}\"")
            }
            Self::ReaderNotFound { wanted, available } => write!(
                f,
                "no reader matches \"{wanted}\"; readers: {}",
                quoted(available)
            ),
            Self::AmbiguousReader { wanted, matching } => write!(
                f,
                "\"{wanted}\" matches several readers ({}): give the full name or the index",
                quoted(matching)
            ),
            Self::ReaderUnavailable { reader } => {
                write!(f, "reader \"{reader}\" is no longer available")
            }
            Self::NoCard { reader } if reader.is_empty() => f.write_str("no card in any reader"),
            Self::NoCard { reader } => write!(f, "no card in reader \"{reader}\""),
            Self::MuteCard { reader } => write!(
                f,
                "the card in reader \"{reader}\" does not answer: take it out and insert it again \
                 (chip first, contacts clean)"
            ),
            Self::CardRemoved => f.write_str(
                "the card was removed; nothing more was changed on it: insert it and start again",
            ),
            Self::CardReset => {
                f.write_str("the card was reset by another application or lost power; try again")
            }
            Self::ReaderInUse => f.write_str("the reader is in use by another application"),
            Self::Timeout => f.write_str("timed out waiting for the card"),
            Self::ResponseTooLong => f.write_str("the card's response is too long"),
            Self::Pcsc { call, error } => write!(f, "{call} failed: {error}"),
        }
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

impl std::error::Error for PcscError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::NoService(e) | Self::Pcsc { error: e, .. } => Some(e),
            _ => None,
        }
    }
}

impl TransportError for PcscError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NoService(_)
            | Self::NoReaders
            | Self::ReaderNotFound { .. }
            | Self::AmbiguousReader { .. }
            | Self::ReaderUnavailable { .. }
            | Self::ReaderInUse => ErrorKind::Unavailable,
            Self::NoCard { .. } | Self::MuteCard { .. } => ErrorKind::NoCard,
            Self::CardRemoved => ErrorKind::CardRemoved,
            Self::CardReset => ErrorKind::CardReset,
            Self::Timeout => ErrorKind::Timeout,
            Self::ResponseTooLong => ErrorKind::ResponseTooLong,
            Self::Pcsc { error, .. } => match error {
                pcsc::Error::InvalidParameter | pcsc::Error::InvalidValue => {
                    ErrorKind::InvalidCommand
                }
                pcsc::Error::UnresponsiveCard => ErrorKind::Timeout,
                _ => ErrorKind::Other,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_pcsc_codes() {
        let k = |e| PcscError::from_pcsc("SCardTransmit", e, "R").kind();
        assert_eq!(k(pcsc::Error::NoService), ErrorKind::Unavailable);
        assert_eq!(k(pcsc::Error::ServiceStopped), ErrorKind::Unavailable);
        assert_eq!(k(pcsc::Error::NoReadersAvailable), ErrorKind::Unavailable);
        assert_eq!(k(pcsc::Error::NoSmartcard), ErrorKind::NoCard);
        assert_eq!(k(pcsc::Error::RemovedCard), ErrorKind::CardRemoved);
        assert_eq!(k(pcsc::Error::ResetCard), ErrorKind::CardReset);
        assert_eq!(k(pcsc::Error::SharingViolation), ErrorKind::Unavailable);
        assert_eq!(k(pcsc::Error::Timeout), ErrorKind::Timeout);
        assert_eq!(
            k(pcsc::Error::InsufficientBuffer),
            ErrorKind::ResponseTooLong
        );
        assert_eq!(k(pcsc::Error::CommError), ErrorKind::Other);
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = PcscError::from_pcsc("SCardEstablishContext", pcsc::Error::NoService, "");
        assert!(e.to_string().contains("start pcscd"), "{e}");
        let e = PcscError::from_pcsc("SCardConnect", pcsc::Error::SharingViolation, "R");
        assert_eq!(e.to_string(), "the reader is in use by another application");
        let e = PcscError::NoCard {
            reader: String::new(),
        };
        assert_eq!(e.to_string(), "no card in any reader");
        let e = PcscError::from_pcsc("SCardConnect", pcsc::Error::UnresponsiveCard, "R");
        assert_eq!(
            e.to_string(),
            "the card in reader \"R\" does not answer: take it out and insert it again \
             (chip first, contacts clean)"
        );
        assert_eq!(e.kind(), ErrorKind::NoCard);
        let e = PcscError::ReaderNotFound {
            wanted: "Nope".into(),
            available: vec!["Virtual PCD 00 00".into()],
        };
        assert_eq!(
            e.to_string(),
            "no reader matches \"Nope\"; readers: \"Virtual PCD 00 00\""
        );
    }
}
