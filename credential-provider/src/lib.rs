//! # cardunlock-credprov
//!
//! The Windows credential provider of cardunlock: an "Unlock smart card" tile on the login
//! screen (`CPUS_LOGON`) and the locked workstation (`CPUS_UNLOCK_WORKSTATION`) that walks the
//! user through the security questions, the new PIN and the success message, with the same
//! client code as the CLI and the window.
//!
//! - [`tile`]: the tile as a plain state machine (fields, forms, transitions), free of COM.
//! - [`link`]: the channels between the tile and the worker thread.
//! - [`worker`]: the worker: `cardunlock_client::online` / `offline` behind a channel-backed UI.
//! - `com` (Windows only): the COM objects LogonUI loads, the registry configuration, the DLL's
//!   entry points.
#![deny(missing_docs)]
#![cfg_attr(not(windows), forbid(unsafe_code))]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[cfg(windows)]
pub mod com;
pub mod config;
pub mod guard;
pub mod image;
pub mod link;
pub mod tile;
pub mod worker;
