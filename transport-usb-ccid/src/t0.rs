//! ISO 7816-3 T=0 (helper B is writing the engine; the trait below is the fixed interface
//! between the engine and what carries its TPDUs).

/// Carries one T=0 command TPDU (5-byte header `CLA INS P1 P2 P3`, then `P3` data bytes for an
/// outgoing transfer) and brings back the card's answer: the data bytes it sent, if any, followed by
/// `SW1 SW2`. A CCID reader at TPDU level does this with one XfrBlock (the reader handles the
/// procedure bytes); a firmware's UART does it with the procedure-byte state machine of this module.
#[allow(async_fn_in_trait)]
pub trait TpduIo {
    /// The carrier's error.
    type Error;
    /// Sends `tpdu`, writes the data and status word into `reply`, returns their length.
    async fn exchange(&mut self, tpdu: &[u8], reply: &mut [u8]) -> Result<usize, Self::Error>;
}
