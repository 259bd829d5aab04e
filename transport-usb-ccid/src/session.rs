//! The async CCID session (helper A is writing it). Fixed interface for backends:

/// What a backend can do outside the bulk byte pipe: the class-specific ABORT control request
/// and clearing a halted endpoint. A byte pipe with no such channel (a serial bridge, a
/// simulator) uses [`NoControl`].
#[allow(async_fn_in_trait)]
pub trait Control {
    /// The backend's error.
    type Error;
    /// Sends the CCID ABORT control request (bmRequestType 0x21, bRequest 0x01,
    /// wValue = bSeq << 8 | bSlot) for `slot` and `seq`.
    async fn abort(&mut self, slot: u8, seq: u8) -> Result<(), Self::Error>;
    /// Clears a halt (stall) of the bulk endpoints, after a stalled transfer.
    async fn clear_halt(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// No control channel: ABORT is sent as the bulk message only.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoControl;

impl Control for NoControl {
    type Error = core::convert::Infallible;
    async fn abort(&mut self, _slot: u8, _seq: u8) -> Result<(), Self::Error> {
        Ok(())
    }
}
