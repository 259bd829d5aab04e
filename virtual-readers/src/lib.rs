//! # cardunlock-virtual-readers
//!
//! The virtual readers a card implemented in Rust is served to: pcscd's `vpcd` reader (this
//! module) and QEMU's emulated USB CCID reader through its VSCard protocol ([`vscard`]).
//!
//! The card side of the [vsmartcard] `vpcd` protocol, so that a card implemented in Rust (the
//! project's [`cardunlock_sim::SimCard`] or anything implementing [`VirtualCard`]) can be driven
//! by a real `pcscd` and every PC/SC client on the machine (`opensc-tool`, `yubico-piv-tool`,
//! `cardunlock-pcsc`).
//!
//! The `vpcd` reader driver listens on TCP: port 35963 is reader `Virtual PCD 00 00`, 35964
//! `Virtual PCD 00 01` ([`reader_addr`], [`reader_name`]). A virtual card connects to it; while
//! the connection is up the reader shows a card, closing it removes the card. Every message,
//! both ways, is a 2-byte big-endian length followed by the payload. A 1-byte payload from vpcd
//! is a control message ([`Control`]); anything longer is a command APDU, answered by the
//! response APDU (data and SW1 SW2). Only the ATR request and APDUs get an answer.
//!
//! ```no_run
//! use cardunlock_sim::{Config, PivConfig, SimCard};
//! use cardunlock_virtual_readers::{reader_addr, ServedCard};
//!
//! let card = SimCard::new(Config::Piv(PivConfig::factory().blocked()));
//! let mut served = ServedCard::spawn(card, reader_addr(0))?; // "Virtual PCD 00 00" shows a card
//! // ... talk to it through PC/SC ...
//! served.stop()?; // the card leaves the reader
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Latency: vpcd writes the length and the body of a message separately; a card that answers
//! the first segment with a delayed ACK makes every APDU wait for the delayed-ACK timer (~40 ms).
//! The connection therefore sets `TCP_NODELAY` once and `TCP_QUICKACK` before every read (Linux
//! clears QUICKACK by itself after a while).
//!
//! [vsmartcard]: https://frankmorgner.github.io/vsmartcard/

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod connection;
mod fill;
mod lock;
mod served;
// QEMU's ccid-card-passthru speaks over a unix socket.
#[cfg(unix)]
pub mod vscard;

// Defined in `cardunlock-sim` (the simulated USB CCID reader uses it too), re-exported so that
// `cardunlock_virtual_readers::VirtualCard` keeps working.
pub use cardunlock_sim::VirtualCard;
pub use connection::{serve, Connection, Control, DEFAULT_CONNECT_RETRY};
pub use lock::{ReaderLock, LOCK_BASE_PORT};
pub use served::{ServeOptions, ServedCard, StopHandle};

use std::net::{Ipv4Addr, SocketAddr};

/// TCP port vpcd listens on for the card of reader `Virtual PCD 00 00`; reader `n` listens on
/// `VPCD_BASE_PORT + n`.
pub const VPCD_BASE_PORT: u16 = 35963;

/// The loopback address of vpcd reader `index` (0 = `Virtual PCD 00 00` on port 35963,
/// 1 = `Virtual PCD 00 01` on 35964, as configured by Debian's `vsmartcard-vpcd`).
pub fn reader_addr(index: u8) -> SocketAddr {
    SocketAddr::from((
        Ipv4Addr::LOCALHOST,
        VPCD_BASE_PORT.saturating_add(u16::from(index)),
    ))
}

/// The PC/SC reader name pcscd gives vpcd reader `index`: `Virtual PCD 00 0<index>`.
pub fn reader_name(index: u8) -> String {
    format!("Virtual PCD 00 {index:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_addresses_and_names() {
        assert_eq!(reader_addr(0).to_string(), "127.0.0.1:35963");
        assert_eq!(reader_addr(1).to_string(), "127.0.0.1:35964");
        assert_eq!(reader_name(0), "Virtual PCD 00 00");
        assert_eq!(reader_name(1), "Virtual PCD 00 01");
    }
}
