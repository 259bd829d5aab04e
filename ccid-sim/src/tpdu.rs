//! The card side of the TPDU exchange level, for the simulated reader: [`T1Card`] speaks T=1
//! blocks and [`T0Card`] answers T=0 TPDUs, both in front of a card that answers APDUs
//! ([`VirtualCard`]: a [`SimCard`](cardunlock_sim::SimCard), a shared one, or a closure
//! ([`FnCard`])).
//!
//! [`T1Card`] is a real card-side T=1 (I/R/S blocks, chaining both ways within its IFSC and the
//! host's IFSD, IFS and WTX requests, RESYNCH and ABORT) with fault injection: garbled replies,
//! lost replies (the card executed the block, the reader reports `IccMute`), lost commands (the
//! card never saw the block), WTX and IFS requests of the card before a response.

use cardunlock_ccid::atr::{Atr, Edc};
use cardunlock_sim::VirtualCard;

mod t0;
mod t1;

pub use t0::T0Card;
pub use t1::T1Card;

/// A card made of a closure answering APDUs, with a given ATR.
pub struct FnCard<F> {
    atr: Vec<u8>,
    f: F,
}

impl<F: FnMut(&[u8]) -> Vec<u8>> FnCard<F> {
    /// A card with this ATR answering with `f`.
    pub fn new(atr: &[u8], f: F) -> Self {
        Self {
            atr: atr.to_vec(),
            f,
        }
    }
}

/// A closure has no transient state: its reset does nothing.
impl<F: FnMut(&[u8]) -> Vec<u8>> VirtualCard for FnCard<F> {
    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        (self.f)(apdu)
    }
    fn reset(&mut self) {}
}

pub(crate) fn historical_of(atr: &[u8]) -> Vec<u8> {
    let hist = Atr::parse(atr).map(|a| a.historical_bytes()).unwrap_or(&[]);
    hist.get(..hist.len().min(15)).unwrap_or(&[]).to_vec()
}

fn with_tck(mut atr: Vec<u8>) -> Vec<u8> {
    let tck = atr.iter().skip(1).fold(0u8, |a, b| a ^ b);
    atr.push(tck);
    atr
}

/// A T=1 ATR: TA1 `13` (Fi 372, Di 4), TD1 and TD2 naming T=1, TA3 = IFSC, TB3 `45` (BWI 4,
/// CWI 5), TC3 = the EDC, the given historical bytes (at most 15) and TCK.
pub fn t1_atr(historical: &[u8], ifsc: u8, edc: Edc) -> Vec<u8> {
    let hist = historical.get(..historical.len().min(15)).unwrap_or(&[]);
    let mut atr = vec![
        0x3B,
        0x90 | hist.len() as u8,
        0x13,
        0x81,
        0x71,
        ifsc,
        0x45,
        u8::from(edc == Edc::Crc),
    ];
    atr.extend_from_slice(hist);
    with_tck(atr)
}

/// A T=0 ATR: TA1 `96` (Fi 512, Di 32) and the given historical bytes (at most 15); no TCK.
pub fn t0_atr(historical: &[u8]) -> Vec<u8> {
    let hist = historical.get(..historical.len().min(15)).unwrap_or(&[]);
    let mut atr = vec![0x3B, 0x10 | hist.len() as u8, 0x96];
    atr.extend_from_slice(hist);
    atr
}
