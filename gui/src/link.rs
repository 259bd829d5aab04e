//! The window's end of the link to the unlock worker: the client's [`cardunlock_client::link`]
//! (the same link the login-screen tile uses), with the window as its front end; the window sets
//! a repaint request as the worker's wake-up when it first draws.

pub use cardunlock_client::link::*;

/// The window's end.
pub type WindowEnd = UiEnd;
