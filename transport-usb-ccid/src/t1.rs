//! ISO/IEC 7816-3 T=1 block protocol (§11): the engine [`T1`], the blocks ([`block`]), and the
//! [`BlockIo`] trait between the engine and what carries its blocks (a CCID reader at TPDU
//! level, or a firmware's own UART: [`uart::Uart`]).
//!
//! The engine chains commands longer than IFSC and responses longer than IFSD, answers the
//! card's WTX and IFS requests, and recovers from lost or garbled blocks as §11.6.3 says:
//! an R-block asking for the expected block (or a retransmission of the I-block the card asks
//! for), at most [`MAX_RETRIES`] times in a row, then S(RESYNCH) up to [`MAX_RESYNCH`] times.
//!
//! One safety rule goes beyond the standard: once the last block of a command may have reached
//! the card, the engine never sends that command again on its own. A lost response is
//! recovered with R-blocks (the card repeats its answer, it does not execute again); if that
//! fails and a RESYNCH was needed, [`T1Error::Resynchronized`] tells the caller that the
//! command's outcome is unknown (a RESET RETRY COUNTER may or may not have run), rather than
//! risk spending a PIN or PUK try twice.
//!
//! A card's response chain is read up to the longest legal response ([`MAX_RESPONSE`]): a card
//! that chains I-blocks past it gets [`T1Error::ChainTooLong`] (after a RESYNCH), never an
//! endless exchange.

pub mod block;
mod error;
pub mod uart;

use crate::atr::{Atr, Edc};
pub use block::{crc16, lrc, Block, BlockError, Pcb, RCode, SKind, MAX_BLOCK, MAX_INF};
pub use error::T1Error;

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

/// Failed exchanges in a row (garbled, missing or rejected blocks) before a RESYNCH.
pub const MAX_RETRIES: u8 = 3;
/// S(RESYNCH) requests before giving up.
pub const MAX_RESYNCH: u8 = 3;
/// Requests of the card (WTX, IFS) accepted in a row without progress: a card that keeps asking
/// for time forever is treated as broken.
pub const MAX_CARD_REQUESTS: u16 = 1024;
/// The longest legal response APDU: 65,536 data bytes (extended Le of zero) and SW1-SW2. A
/// card whose I-block chain carries more is broken or hostile: the engine stops reading it.
pub const MAX_RESPONSE: usize = 65_536 + 2;
/// IFSC and IFSD before any negotiation (ISO/IEC 7816-3 §11.4.2).
pub const DEFAULT_IFS: u8 = 32;

/// The parameters of a T=1 channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct T1Params {
    /// IFSC: the largest information field the card accepts (1 to 254; from the ATR).
    pub ifsc: u8,
    /// IFSD: the largest information field this side accepts, asked for by
    /// [`T1::negotiate_ifsd`] (1 to 254). Until then the card uses 32.
    pub ifsd: u8,
    /// The error detection code (from the ATR).
    pub edc: Edc,
    /// The node address byte put on every block sent (usually 0).
    pub nad: u8,
}

impl Default for T1Params {
    fn default() -> Self {
        Self {
            ifsc: DEFAULT_IFS,
            ifsd: MAX_INF as u8,
            edc: Edc::Lrc,
            nad: 0,
        }
    }
}

impl T1Params {
    /// IFSC and EDC from the ATR; IFSD 254 (to be negotiated); NAD 0.
    pub fn from_atr(atr: &Atr<'_>) -> Self {
        Self {
            ifsc: atr.t1_ifsc(),
            edc: atr.t1_edc(),
            ..Self::default()
        }
    }
}

/// The T=1 engine of the interface device side: sequence numbers and the sizes in force.
#[derive(Clone, Debug)]
pub struct T1 {
    params: T1Params,
    /// N(S) of our next I-block.
    ns: bool,
    /// N(S) expected on the card's next I-block.
    nr: bool,
    ifsc: u8,
    ifsd: u8,
}

/// What the engine sends next.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Out {
    /// The pending I-block (from `offset`, `chunk` bytes).
    I,
    /// An R-block with the current N(R).
    R(RCode),
    /// An S-block with a one-byte INF (`len` 0 or 1).
    S {
        kind: SKind,
        response: bool,
        inf: u8,
        len: u8,
    },
}

enum Outcome {
    Done(usize),
    /// Resynchronised before the last block of the command was sent: start it again.
    Restart,
}

impl T1 {
    /// An engine for a freshly reset card: sequence numbers 0, IFSC from `params`, IFSD 32.
    pub fn new(params: T1Params) -> Self {
        let ifsc = clamp_ifs(params.ifsc);
        Self {
            params,
            ns: false,
            nr: false,
            ifsc,
            ifsd: DEFAULT_IFS,
        }
    }

    /// Back to the state after a card reset (sequence numbers 0, IFSC from the parameters,
    /// IFSD 32). Call it after every power-on or warm reset of the card.
    pub fn reset(&mut self) {
        *self = Self::new(self.params);
    }

    /// The parameters given.
    pub fn params(&self) -> &T1Params {
        &self.params
    }

    /// The IFSC in force (the card may change it with an S(IFS) request).
    pub fn ifsc(&self) -> u8 {
        self.ifsc
    }

    /// The IFSD in force (32 until [`T1::negotiate_ifsd`] succeeds).
    pub fn ifsd(&self) -> u8 {
        self.ifsd
    }

    fn encode(&self, block: Block<'_>, out: &mut [u8]) -> usize {
        // Every block the engine builds fits MAX_BLOCK; 0 would only send an empty block.
        block.encode(self.params.edc, out).unwrap_or(0)
    }

    /// Sends S(IFS request) with [`T1Params::ifsd`] and waits for the card's confirmation;
    /// returns the IFSD now in force. Call it once after the ATR (or a reset), before the
    /// first command.
    pub async fn negotiate_ifsd<I: BlockIo>(
        &mut self,
        io: &mut I,
    ) -> Result<u8, T1Error<I::Error>> {
        let want = clamp_ifs(self.params.ifsd);
        let mut tx = [0u8; MAX_BLOCK];
        let mut rx = [0u8; MAX_BLOCK];
        let len = self.encode(
            Block::s(self.params.nad, SKind::Ifs, false, &[want]),
            &mut tx,
        );
        for _ in 0..=MAX_RETRIES {
            let reply = match io.exchange(tx.get(..len).unwrap_or(&[]), &mut rx, 1).await {
                Ok(n) => n,
                Err(ExchangeError::Io(e)) => return Err(T1Error::Io(e)),
                Err(ExchangeError::Mute) => continue,
            };
            let Ok(block) = Block::parse(rx.get(..reply).unwrap_or(&[]), self.params.edc) else {
                continue;
            };
            match block.pcb {
                Pcb::S {
                    kind: SKind::Ifs,
                    response: true,
                } if block.inf == [want] => {
                    self.ifsd = want;
                    return Ok(want);
                }
                Pcb::S {
                    kind: SKind::Ifs,
                    response: true,
                } => return Err(T1Error::IfsdRefused),
                _ => continue,
            }
        }
        Err(T1Error::IfsdRefused)
    }

    /// Sends the command APDU `apdu` (chained in blocks of at most IFSC bytes) and writes the
    /// card's response APDU (the information fields of its chain) into `response`, returning
    /// its length.
    pub async fn transceive<I: BlockIo>(
        &mut self,
        io: &mut I,
        apdu: &[u8],
        response: &mut [u8],
    ) -> Result<usize, T1Error<I::Error>> {
        if apdu.is_empty() {
            return Err(T1Error::InvalidCommand);
        }
        let mut tx = [0u8; MAX_BLOCK];
        let mut rx = [0u8; MAX_BLOCK];
        let mut result = Err(T1Error::Unresponsive);
        // A restart happens only when the card never had the whole command.
        for _ in 0..=MAX_RESYNCH {
            match self.run(io, apdu, response, &mut tx, &mut rx).await {
                Ok(Outcome::Restart) => continue,
                Ok(Outcome::Done(n)) => {
                    result = Ok(n);
                    break;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // The blocks may carry a PIN or PUK.
        tx.fill(0);
        rx.fill(0);
        core::hint::black_box((&tx, &rx));
        result
    }

    async fn run<I: BlockIo>(
        &mut self,
        io: &mut I,
        apdu: &[u8],
        response: &mut [u8],
        tx: &mut [u8; MAX_BLOCK],
        rx: &mut [u8; MAX_BLOCK],
    ) -> Result<Outcome, T1Error<I::Error>> {
        let edc = self.params.edc;
        let nad = self.params.nad;
        let mut offset = 0usize;
        let mut chunk = apdu.len().min(usize::from(self.ifsc));
        let mut receiving = false;
        let mut final_sent = false;
        let mut received = 0usize;
        let mut overflow = false;
        let mut errors = 0u8;
        let mut requests = 0u16;
        let mut multiplier = 1u8;
        let mut out = Out::I;
        loop {
            let more = offset + chunk < apdu.len();
            let len = match out {
                Out::I => {
                    if !more {
                        final_sent = true;
                    }
                    let inf = apdu.get(offset..offset + chunk).unwrap_or(&[]);
                    self.encode(Block::i(nad, self.ns, more, inf), tx)
                }
                Out::R(code) => self.encode(Block::r(nad, self.nr, code), tx),
                Out::S {
                    kind,
                    response,
                    inf,
                    len,
                } => {
                    let inf = [inf];
                    let inf = inf.get(..usize::from(len)).unwrap_or(&[]);
                    self.encode(Block::s(nad, kind, response, inf), tx)
                }
            };
            let reply = io
                .exchange(tx.get(..len).unwrap_or(&[]), rx, multiplier)
                .await;
            multiplier = 1;
            let parsed = match reply {
                Ok(n) => Block::parse(rx.get(..n).unwrap_or(&[]), edc).map_err(Some),
                Err(ExchangeError::Mute) => Err(None),
                Err(ExchangeError::Io(e)) => return Err(T1Error::Io(e)),
            };
            // `Some(code)`: the block is unusable; recover with this R-block code.
            let mut invalid: Option<RCode> = None;
            match parsed {
                Err(Some(BlockError::Edc)) => invalid = Some(RCode::Edc),
                Err(_) => invalid = Some(RCode::Other),
                Ok(block) => match block.pcb {
                    Pcb::S {
                        kind: SKind::Wtx,
                        response: false,
                    } => {
                        requests = requests.saturating_add(1);
                        if requests > MAX_CARD_REQUESTS {
                            return Err(T1Error::TooManyRequests);
                        }
                        let m = block.inf.first().copied().unwrap_or(1);
                        multiplier = m.max(1);
                        out = Out::S {
                            kind: SKind::Wtx,
                            response: true,
                            inf: m,
                            len: 1,
                        };
                    }
                    Pcb::S {
                        kind: SKind::Ifs,
                        response: false,
                    } => match block.inf.first().copied() {
                        Some(v @ 1..=254) => {
                            requests = requests.saturating_add(1);
                            if requests > MAX_CARD_REQUESTS {
                                return Err(T1Error::TooManyRequests);
                            }
                            self.ifsc = v;
                            out = Out::S {
                                kind: SKind::Ifs,
                                response: true,
                                inf: v,
                                len: 1,
                            };
                        }
                        _ => invalid = Some(RCode::Other),
                    },
                    Pcb::S {
                        kind: SKind::Abort,
                        response: false,
                    } => {
                        let len = self.encode(Block::s(nad, SKind::Abort, true, &[]), tx);
                        // The card's next block (if any) is not part of this exchange.
                        let r = io.exchange(tx.get(..len).unwrap_or(&[]), rx, 1).await;
                        if let Err(ExchangeError::Io(e)) = r {
                            return Err(T1Error::Io(e));
                        }
                        return Err(T1Error::Aborted);
                    }
                    Pcb::S { .. } => invalid = Some(RCode::Other),
                    Pcb::R { nr, .. } if !receiving => {
                        if nr == self.ns {
                            // The card asks for our pending I-block (again).
                            if out == Out::I {
                                errors = errors.saturating_add(1);
                            }
                            out = Out::I;
                        } else if more {
                            // Acknowledgement of a chained block: the next one.
                            self.ns = !self.ns;
                            offset += chunk;
                            chunk = (apdu.len() - offset).min(usize::from(self.ifsc));
                            errors = 0;
                            requests = 0;
                            out = Out::I;
                        } else {
                            invalid = Some(RCode::Other);
                        }
                    }
                    Pcb::R { .. } => {
                        // The card did not get our acknowledgement: send it again.
                        errors = errors.saturating_add(1);
                        out = Out::R(RCode::Ok);
                    }
                    Pcb::I {
                        ns,
                        more: card_more,
                    } => {
                        if (!receiving && more) || ns != self.nr {
                            invalid = Some(RCode::Other);
                        } else {
                            if !receiving {
                                // The card's I-block acknowledges our last one.
                                self.ns = !self.ns;
                                receiving = true;
                            }
                            self.nr = !self.nr;
                            errors = 0;
                            requests = 0;
                            let end = received + block.inf.len();
                            match response.get_mut(received..end) {
                                Some(dst) if !overflow => dst.copy_from_slice(block.inf),
                                _ => overflow = true,
                            }
                            received = end;
                            if received > MAX_RESPONSE {
                                // A chain without end: stop it, and put the channel back in
                                // step (no block of this chain is acknowledged any more).
                                self.resynch(io, tx, rx).await?;
                                return Err(T1Error::ChainTooLong);
                            }
                            if !card_more {
                                return if overflow {
                                    Err(T1Error::ResponseTooLong)
                                } else {
                                    Ok(Outcome::Done(received))
                                };
                            }
                            out = Out::R(RCode::Ok);
                        }
                    }
                },
            }
            if let Some(code) = invalid {
                errors = errors.saturating_add(1);
                out = match out {
                    // Rule 7.2: a request of ours went unanswered: send it again.
                    Out::S {
                        response: false, ..
                    } => out,
                    _ => Out::R(code),
                };
            }
            if errors > MAX_RETRIES {
                self.resynch(io, tx, rx).await?;
                return if final_sent {
                    Err(T1Error::Resynchronized)
                } else {
                    Ok(Outcome::Restart)
                };
            }
        }
    }

    /// S(RESYNCH) until the card confirms; then sequence numbers and sizes are back to their
    /// initial values (§11.6.3.2).
    async fn resynch<I: BlockIo>(
        &mut self,
        io: &mut I,
        tx: &mut [u8; MAX_BLOCK],
        rx: &mut [u8; MAX_BLOCK],
    ) -> Result<(), T1Error<I::Error>> {
        let len = self.encode(Block::s(self.params.nad, SKind::Resynch, false, &[]), tx);
        for _ in 0..MAX_RESYNCH {
            let n = match io.exchange(tx.get(..len).unwrap_or(&[]), rx, 1).await {
                Ok(n) => n,
                Err(ExchangeError::Io(e)) => return Err(T1Error::Io(e)),
                Err(ExchangeError::Mute) => continue,
            };
            if let Ok(Block {
                pcb:
                    Pcb::S {
                        kind: SKind::Resynch,
                        response: true,
                    },
                ..
            }) = Block::parse(rx.get(..n).unwrap_or(&[]), self.params.edc)
            {
                self.reset();
                return Ok(());
            }
        }
        Err(T1Error::Unresponsive)
    }
}

fn clamp_ifs(v: u8) -> u8 {
    v.clamp(1, MAX_INF as u8)
}
