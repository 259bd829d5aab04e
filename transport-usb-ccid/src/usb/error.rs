//! The errors of the `nusb` backend.

use std::fmt;
use std::string::String;

use nusb::transfer::TransferError;

/// What went wrong talking to a CCID reader over USB.
///
/// The `Display` text is meant for the user: it says what to do where there is something to do
/// (permissions, another program holding the reader).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum UsbError {
    /// The USB devices could not be listed at all (no USB stack, no `/sys/bus/usb`).
    List(nusb::Error),
    /// The operating system refused to open the reader to this user.
    PermissionDenied {
        /// The reader's name.
        reader: String,
    },
    /// Another process (usually pcscd, through libccid) holds the reader's interface.
    Busy {
        /// The reader's name.
        reader: String,
    },
    /// The reader was unplugged (or reset by the host) while in use.
    Disconnected,
    /// The reader stalled a bulk endpoint; [`crate::session::Control::clear_halt`] clears it.
    Stall,
    /// A bulk OUT transfer did not complete in time (the reader stopped taking data).
    WriteTimeout,
    /// The reader's interface has no usable bulk IN / bulk OUT pair.
    MissingEndpoint {
        /// The reader's name.
        reader: String,
    },
    /// Opening the reader, claiming its interface or an endpoint failed for another reason.
    Open {
        /// The reader's name.
        reader: String,
        /// What nusb reported.
        source: nusb::Error,
    },
    /// A transfer failed for another reason (hardware fault, babble, OS error).
    Transfer(TransferError),
}

impl fmt::Display for UsbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::List(e) => write!(f, "cannot list USB devices: {e}"),
            Self::PermissionDenied { reader } => write!(
                f,
                "no permission to open the reader {reader}: run as root or add a udev rule \
                 giving your user access to it"
            ),
            Self::Busy { reader } => write!(
                f,
                "the reader {reader} is in use by another program (is pcscd using it? stop it \
                 or use the PC/SC transport)"
            ),
            Self::Disconnected => f.write_str("the card reader was removed"),
            Self::Stall => f.write_str("the card reader stalled a USB endpoint"),
            Self::WriteTimeout => f.write_str("the card reader stopped accepting data"),
            Self::MissingEndpoint { reader } => write!(
                f,
                "the reader {reader} has no bulk IN/OUT endpoint pair on its CCID interface"
            ),
            Self::Open { reader, source } => write!(f, "cannot open the reader {reader}: {source}"),
            Self::Transfer(e) => write!(f, "USB transfer to the card reader failed: {e}"),
        }
    }
}

impl std::error::Error for UsbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::List(e) | Self::Open { source: e, .. } => Some(e),
            Self::Transfer(e) => Some(e),
            _ => None,
        }
    }
}

impl UsbError {
    /// Classifies a failed transfer: a stall and a disconnect get their own variants, since the
    /// session acts on them (clear the halt; give up).
    pub(crate) fn from_transfer(e: TransferError) -> Self {
        match e {
            TransferError::Stall => Self::Stall,
            TransferError::Disconnected => Self::Disconnected,
            other => Self::Transfer(other),
        }
    }

    /// Classifies a failure to open or claim `reader`.
    pub(crate) fn from_open(reader: &str, e: nusb::Error) -> Self {
        match e.kind() {
            nusb::ErrorKind::PermissionDenied => Self::PermissionDenied {
                reader: reader.into(),
            },
            nusb::ErrorKind::Busy => Self::Busy {
                reader: reader.into(),
            },
            nusb::ErrorKind::Disconnected => Self::Disconnected,
            _ => Self::Open {
                reader: reader.into(),
                source: e,
            },
        }
    }
}

/// The byte-pipe view (what the session sees through `embedded_io_async`): a stall is
/// `ConnectionReset` (clear the halt and resynchronise), a removed reader `NotConnected`, a write
/// timeout `TimedOut`.
impl embedded_io_async::Error for UsbError {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        use embedded_io_async::ErrorKind as K;
        match self {
            Self::List(_) | Self::MissingEndpoint { .. } => K::NotFound,
            Self::PermissionDenied { .. } => K::PermissionDenied,
            Self::Busy { .. } => K::AddrInUse,
            Self::Disconnected => K::NotConnected,
            Self::Stall => K::ConnectionReset,
            Self::WriteTimeout => K::TimedOut,
            Self::Open { .. } => K::Other,
            Self::Transfer(TransferError::Cancelled) => K::Interrupted,
            Self::Transfer(TransferError::InvalidArgument) => K::InvalidInput,
            Self::Transfer(_) => K::Other,
        }
    }
}

/// The core's view: a removed or unopenable reader is `Unavailable`.
impl cardunlock_core::TransportError for UsbError {
    fn kind(&self) -> cardunlock_core::ErrorKind {
        use cardunlock_core::ErrorKind as K;
        match self {
            Self::WriteTimeout => K::Timeout,
            Self::Stall | Self::Transfer(_) => K::Other,
            _ => K::Unavailable,
        }
    }
}

impl From<UsbError> for std::io::Error {
    fn from(e: UsbError) -> Self {
        let kind = match embedded_io_async::Error::kind(&e) {
            embedded_io_async::ErrorKind::PermissionDenied => std::io::ErrorKind::PermissionDenied,
            embedded_io_async::ErrorKind::NotConnected => std::io::ErrorKind::NotConnected,
            embedded_io_async::ErrorKind::ConnectionReset => std::io::ErrorKind::ConnectionReset,
            embedded_io_async::ErrorKind::TimedOut => std::io::ErrorKind::TimedOut,
            embedded_io_async::ErrorKind::NotFound => std::io::ErrorKind::NotFound,
            embedded_io_async::ErrorKind::AddrInUse => std::io::ErrorKind::AddrInUse,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn busy_reader_names_pcscd_and_the_way_out() {
        let e = UsbError::Busy {
            reader: "ACME Reader".into(),
        };
        assert_eq!(
            e.to_string(),
            "the reader ACME Reader is in use by another program (is pcscd using it? stop it or \
             use the PC/SC transport)"
        );
        assert_eq!(
            embedded_io_async::Error::kind(&e),
            embedded_io_async::ErrorKind::AddrInUse
        );
    }

    #[test]
    fn permission_error_says_what_to_do() {
        let e = UsbError::PermissionDenied { reader: "R".into() };
        assert!(e.to_string().contains("run as root or add a udev rule"));
        assert_eq!(
            cardunlock_core::TransportError::kind(&e),
            cardunlock_core::ErrorKind::Unavailable
        );
    }

    #[test]
    fn transfer_errors_are_classified_for_the_session() {
        assert!(matches!(
            UsbError::from_transfer(TransferError::Stall),
            UsbError::Stall
        ));
        assert!(matches!(
            UsbError::from_transfer(TransferError::Disconnected),
            UsbError::Disconnected
        ));
        assert_eq!(
            embedded_io_async::Error::kind(&UsbError::Stall),
            embedded_io_async::ErrorKind::ConnectionReset
        );
        assert_eq!(
            UsbError::Disconnected.to_string(),
            "the card reader was removed"
        );
        let io: std::io::Error = UsbError::Disconnected.into();
        assert_eq!(io.kind(), std::io::ErrorKind::NotConnected);
    }
}
