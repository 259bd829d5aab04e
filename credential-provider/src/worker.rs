//! The tile's unlock worker: the client's [`cardunlock_client::worker`] (the CLI's unlock code
//! behind the link, the same loop the window runs).

pub use cardunlock_client::worker::*;
