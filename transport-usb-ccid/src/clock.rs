//! The time source of a [`crate::session::Session`]: the caller gives the clock, as the core's
//! flows take randomness from the caller.

/// A monotonic millisecond clock with an async sleep.
///
/// The session reads `now_ms` to set a command's deadline, pushes the deadline out on each
/// time-extension request of the reader, and races every read against `sleep_until_ms`.
#[allow(async_fn_in_trait)]
pub trait Clock {
    /// Milliseconds since an arbitrary origin; never goes backwards.
    fn now_ms(&mut self) -> u64;
    /// Completes once `now_ms() >= deadline_ms`. Must be cancel safe (the session drops it when
    /// the read it races completes first).
    async fn sleep_until_ms(&mut self, deadline_ms: u64);
}

/// A clock that never fires: the session waits as long as the pipe does (a pipe with its own
/// timeouts, or a benchmark).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTimeout;

impl Clock for NoTimeout {
    fn now_ms(&mut self) -> u64 {
        0
    }

    async fn sleep_until_ms(&mut self, _deadline_ms: u64) {
        core::future::pending::<()>().await
    }
}
