//! # cardunlock-gui
//!
//! The unlock window: the online unlock as its users see it (their name and e-mail under a
//! picture placeholder, the security questions, "Enter new PIN to unlock the smart card.", the
//! success line with OK), and the offline unlock when no questions are enrolled.
//!
//! - [`app`]: the window, one screen at a time, keyboard only (Tab, Enter) as on a login screen.
//! - [`link`]: the channels between the window and the worker thread that runs the unlock, so
//!   card and server work never freezes the window.
//! - [`worker`]: the worker: the same unlock code as the CLI (`cardunlock_client::online` and
//!   `offline`) behind a channel-backed `Ui`, over the in-process demo or a real PC/SC reader.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod app;
pub mod link;
pub mod worker;

pub use app::UnlockApp;
