//! # cardunlock-pcsc
//!
//! [`cardunlock_core`]'s [`Transport`](cardunlock_core::Transport) over PC/SC: pcsc-lite
//! (`pcscd`) on Linux and macOS, WinSCard on Windows, through the [`pcsc`] crate.
//!
//! - [`Pcsc`]: the PC/SC context. [`Pcsc::list_readers`] (or the free [`list_readers`]),
//!   [`Pcsc::find_reader`] by [`ReaderChoice`] (index, name or name part, the reader holding a
//!   card), [`Pcsc::wait_for_card`].
//! - [`PcscTransport`]: the connection to one card (T=0 or T=1). Flows run inside an exclusive
//!   transaction: [`PcscTransport::begin`] gives a [`PcscSession`], or
//!   [`PcscTransport::run_exclusive`] does it for one flow.
//! - [`PcscError`]: every failure, classified for the core by
//!   [`TransportError::kind`](cardunlock_core::TransportError::kind).
//!
//! ```no_run
//! use cardunlock_core::crypto::Algorithm;
//! use cardunlock_core::driver::Driver;
//! use cardunlock_core::flow::{NoAdmin, ReadStatus};
//! use cardunlock_core::iso::IsoProfile;
//! use cardunlock_pcsc::{Pcsc, ReaderChoice, ShareMode};
//!
//! // PIV and GIDS are tried first; then the ISO admin cards this site uses (its configuration).
//! let site = [IsoProfile {
//!     aid: &[0xA0, 0x00, 0x00, 0x01, 0x23, 0x45],
//!     admin_key_ref: 0x01,
//!     pin_ref: 0x80,
//!     algorithm: Algorithm::Aes128,
//! }];
//! let pcsc = Pcsc::establish()?;
//! let reader = pcsc.find_reader(&ReaderChoice::WithCard)?;
//! let mut transport = pcsc.connect(&reader, ShareMode::Shared)?;
//! let mut session = transport.begin()?;
//! let status = embassy_futures::block_on(
//!     Driver::new(&mut session).run(&mut ReadStatus::with_iso_profiles(&site), &mut NoAdmin),
//! );
//! # Ok::<(), cardunlock_pcsc::PcscError>(())
//! ```
//!
//! All calls block the calling thread; see [`PcscTransport`] for how to drive them from async
//! code.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod context;
mod error;
mod transport;

pub use context::{list_readers, Pcsc, ReaderChoice, ReaderInfo};
pub use error::PcscError;
pub use transport::{PcscSession, PcscTransport, ShareMode, TraceFn};

/// The `pcsc` crate, for [`pcsc::Disposition`] and lower-level needs.
pub use pcsc;

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn transport_is_send() {
        assert_send::<PcscTransport>();
        assert_send::<Pcsc>();
        assert_send::<PcscError>();
    }

    #[test]
    fn reader_choice_parses_indexes_and_names() {
        assert_eq!(ReaderChoice::parse("1"), ReaderChoice::Index(1));
        assert_eq!(
            ReaderChoice::parse("Virtual PCD 00 00"),
            ReaderChoice::Name("Virtual PCD 00 00".into())
        );
    }
}
