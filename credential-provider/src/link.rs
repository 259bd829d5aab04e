//! The tile's end of the link to the unlock worker: the client's [`cardunlock_client::link`]
//! (the same link the window uses). The wake-up posts a message to LogonUI's thread, which then
//! drains the reports and updates the tile there: the worker never touches a COM object.

pub use cardunlock_client::link::*;

/// The tile's end.
pub type TileEnd = UiEnd;

/// A connected pair of ends; `wake` runs on the worker's thread after each report.
pub fn channel(wake: Wake) -> (TileEnd, WorkerEnd) {
    channel_waking(wake)
}
