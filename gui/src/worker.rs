//! The window's unlock worker: the client's [`cardunlock_client::worker`] (the CLI's unlock code
//! behind the link, the same loop the login-screen tile runs), over the in-process demo or a
//! real reader ([`Readers`]: PC/SC or USB CCID).

pub use cardunlock_client::worker::*;
