//! ISO 7816-3 T=1 block protocol (helper B is writing the engine; the trait below is the fixed
//! interface between the engine and what carries its blocks).

/// Why one block exchange produced no usable block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ExchangeError<E> {
    /// No block came back within the block waiting time, or it was garbled on the line (parity,
    /// overrun): the T=1 engine retransmits or asks for a repeat (R-block), then RESYNCHs.
    Mute,
    /// The carrier failed for good (reader gone, card removed, I/O error): the engine stops.
    Io(E),
}

/// Carries one T=1 block to the card and the card's next block back: a CCID reader at TPDU
/// level (one XfrBlock), or a firmware's ISO 7816-3 UART.
#[allow(async_fn_in_trait)]
pub trait BlockIo {
    /// The carrier's error.
    type Error;
    /// Sends `block` (prologue, information field, epilogue: complete) and writes the card's
    /// reply block into `reply`, returning its length. `bwt_multiplier` (at least 1) multiplies
    /// the block waiting time after a WTX request of the card.
    async fn exchange(
        &mut self,
        block: &[u8],
        reply: &mut [u8],
        bwt_multiplier: u8,
    ) -> Result<usize, ExchangeError<Self::Error>>;
}
