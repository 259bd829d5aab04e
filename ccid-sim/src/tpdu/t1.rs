//! The card-side T=1, with fault injection.

use crate::SlotCard;
use cardunlock_ccid::atr::Edc;
use cardunlock_ccid::codec::SlotError;
use cardunlock_ccid::t1::{Block, Pcb, RCode, SKind, MAX_BLOCK, MAX_INF};
use cardunlock_sim::VirtualCard;
use std::vec::Vec;

use super::{historical_of, t1_atr};

/// What the card sent last, to answer R-blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Last {
    None,
    I { ns: bool, more: bool },
    R,
    SRequest,
    SResponse,
}

/// A card-side T=1 in front of a [`VirtualCard`], with fault injection.
pub struct T1Card<C> {
    card: C,
    atr: Vec<u8>,
    ifsc: u8,
    edc: Edc,
    ifsd: u8,
    ns: bool,
    nr: bool,
    rx_chain: Vec<u8>,
    tx: Vec<u8>,
    tx_off: usize,
    owe_response: bool,
    last: Vec<u8>,
    last_kind: Last,
    /// The last I-block sent (N(S), more) and its bytes, until the host acknowledges it: an
    /// R-block the card sends for a bad block leaves it current (ISO/IEC 7816-3 §11.6.3).
    last_i: Option<(bool, bool)>,
    last_i_bytes: Vec<u8>,
    corrupt_replies: u32,
    lose_replies: u32,
    lose_commands: u32,
    wtx_requests: u32,
    wtx_multiplier: u8,
    ifs_request: Option<u8>,
    executed: Vec<u8>,
    blocks_received: usize,
    resynchs: usize,
    r_blocks_received: usize,
}

impl<C: VirtualCard> T1Card<C> {
    /// A card with IFSC 254 and LRC.
    pub fn new(card: C) -> Self {
        let mut this = Self {
            card,
            atr: Vec::new(),
            ifsc: MAX_INF as u8,
            edc: Edc::Lrc,
            ifsd: 32,
            ns: false,
            nr: false,
            rx_chain: Vec::new(),
            tx: Vec::new(),
            tx_off: 0,
            owe_response: false,
            last: Vec::new(),
            last_kind: Last::None,
            last_i: None,
            last_i_bytes: Vec::new(),
            corrupt_replies: 0,
            lose_replies: 0,
            lose_commands: 0,
            wtx_requests: 0,
            wtx_multiplier: 1,
            ifs_request: None,
            executed: Vec::new(),
            blocks_received: 0,
            resynchs: 0,
            r_blocks_received: 0,
        };
        this.rebuild_atr();
        this
    }

    fn rebuild_atr(&mut self) {
        self.atr = t1_atr(&historical_of(&self.card.atr()), self.ifsc, self.edc);
    }

    /// The same card announcing (and using) this IFSC (1 to 254): small values force the host
    /// to chain its commands.
    pub fn with_ifsc(mut self, ifsc: u8) -> Self {
        self.ifsc = ifsc.clamp(1, MAX_INF as u8);
        self.rebuild_atr();
        self
    }

    /// The same card announcing (and using) this error detection code.
    pub fn with_edc(mut self, edc: Edc) -> Self {
        self.edc = edc;
        self.rebuild_atr();
        self
    }

    /// The ATR [`SlotCard::power_on`] returns.
    pub fn atr(&self) -> &[u8] {
        &self.atr
    }

    /// The card behind.
    pub fn inner(&self) -> &C {
        &self.card
    }

    /// The card behind, mutably.
    pub fn inner_mut(&mut self) -> &mut C {
        &mut self.card
    }

    /// The next `n` blocks the card sends get a wrong EDC.
    pub fn corrupt_replies(&mut self, n: u32) {
        self.corrupt_replies = n;
    }

    /// The next `n` blocks the card sends are lost (the card acted on what it received; the
    /// reader reports `IccMute`).
    pub fn lose_replies(&mut self, n: u32) {
        self.lose_replies = n;
    }

    /// The next `n` blocks sent to the card are lost before it sees them (`IccMute`).
    pub fn lose_commands(&mut self, n: u32) {
        self.lose_commands = n;
    }

    /// Before the next responses the card asks for `n` waiting time extensions of `multiplier`.
    pub fn request_wtx(&mut self, n: u32, multiplier: u8) {
        self.wtx_requests = n;
        self.wtx_multiplier = multiplier;
    }

    /// Before its next response the card asks to change its IFSC to `ifsc` (S(IFS request)).
    pub fn request_ifs(&mut self, ifsc: u8) {
        self.ifs_request = Some(ifsc);
    }

    /// The INS byte of every APDU the card executed, in order.
    pub fn executed(&self) -> &[u8] {
        &self.executed
    }

    /// How many APDUs with this INS the card executed.
    pub fn executed_count(&self, ins: u8) -> usize {
        self.executed.iter().filter(|&&i| i == ins).count()
    }

    /// Blocks offered to the card (lost ones included).
    pub fn blocks_received(&self) -> usize {
        self.blocks_received
    }

    /// R-blocks the card received (the host's acknowledgements and repeat requests).
    pub fn r_blocks_received(&self) -> usize {
        self.r_blocks_received
    }

    /// S(RESYNCH) requests the card answered.
    pub fn resynchs(&self) -> usize {
        self.resynchs
    }

    /// The IFSD the host negotiated (32 until it does).
    pub fn ifsd(&self) -> u8 {
        self.ifsd
    }

    /// The IFSC in force.
    pub fn ifsc(&self) -> u8 {
        self.ifsc
    }

    fn reset_protocol(&mut self) {
        self.ns = false;
        self.nr = false;
        self.rx_chain.fill(0);
        self.rx_chain.clear();
        self.tx.fill(0);
        self.tx.clear();
        self.tx_off = 0;
        self.owe_response = false;
        self.ifsd = 32;
        self.last.clear();
        self.last_kind = Last::None;
        self.last_i = None;
        self.last_i_bytes.clear();
    }

    fn emit(&mut self, block: Block<'_>, kind: Last) -> Vec<u8> {
        let mut buf = [0u8; MAX_BLOCK];
        let n = block.encode(self.edc, &mut buf).unwrap_or(0);
        self.last = buf.get(..n).unwrap_or(&[]).to_vec();
        self.last_kind = kind;
        if let Last::I { ns, more } = kind {
            self.last_i = Some((ns, more));
            self.last_i_bytes.clone_from(&self.last);
        }
        self.last.clone()
    }

    /// Where the card's side stands: its last block, but after an R-block it sent for a bad
    /// block, the I-block before it (a bad block changes nothing).
    fn state(&self) -> Last {
        match (self.last_kind, self.last_i) {
            (Last::R, Some((ns, more))) => Last::I { ns, more },
            (kind, _) => kind,
        }
    }

    /// Sends the last I-block again.
    fn resend_i(&mut self) -> Vec<u8> {
        if let Some((ns, more)) = self.last_i {
            self.last.clone_from(&self.last_i_bytes);
            self.last_kind = Last::I { ns, more };
        }
        self.last.clone()
    }

    fn r(&mut self, code: RCode) -> Vec<u8> {
        self.emit(Block::r(0, self.nr, code), Last::R)
    }

    fn next_chunk(&mut self) -> Vec<u8> {
        let end = self
            .tx_off
            .saturating_add(usize::from(self.ifsd))
            .min(self.tx.len());
        let chunk = self.tx.get(self.tx_off..end).unwrap_or(&[]).to_vec();
        let more = end < self.tx.len();
        let ns = self.ns;
        self.ns = !self.ns;
        self.tx_off = end;
        let out = self.emit(Block::i(0, ns, more, &chunk), Last::I { ns, more });
        if !more {
            self.tx.fill(0);
            self.tx.clear();
            self.tx_off = 0;
        }
        out
    }

    /// The response is ready: ask for what the faults say first, then send it.
    fn respond(&mut self) -> Vec<u8> {
        if let Some(ifsc) = self.ifs_request.take() {
            self.owe_response = true;
            return self.emit(Block::s(0, SKind::Ifs, false, &[ifsc]), Last::SRequest);
        }
        if self.wtx_requests > 0 {
            self.wtx_requests -= 1;
            self.owe_response = true;
            let m = self.wtx_multiplier;
            return self.emit(Block::s(0, SKind::Wtx, false, &[m]), Last::SRequest);
        }
        self.owe_response = false;
        self.next_chunk()
    }

    fn handle(&mut self, payload: &[u8]) -> Vec<u8> {
        let block = match Block::parse(payload, self.edc) {
            Ok(b) => b,
            // Rule 7.2: a request of the card's that got no valid response is sent again.
            Err(_) if self.last_kind == Last::SRequest => return self.last.clone(),
            Err(cardunlock_ccid::t1::BlockError::Edc) => return self.r(RCode::Edc),
            Err(_) => return self.r(RCode::Other),
        };
        match block.pcb {
            Pcb::I { ns, more } => {
                let in_tx_chain = matches!(self.state(), Last::I { more: true, .. });
                if ns != self.nr
                    || in_tx_chain
                    || self.owe_response
                    || block.inf.len() > usize::from(self.ifsc)
                {
                    return self.r(RCode::Other);
                }
                self.nr = !self.nr;
                // The host's I-block acknowledges the card's last one.
                self.last_i = None;
                self.last_i_bytes.fill(0);
                self.last_i_bytes.clear();
                self.rx_chain.extend_from_slice(block.inf);
                if more {
                    return self.r(RCode::Ok);
                }
                let apdu = core::mem::take(&mut self.rx_chain);
                let mut apdu = apdu;
                self.executed.push(apdu.get(1).copied().unwrap_or(0));
                self.tx = self.card.transmit(&apdu);
                apdu.fill(0);
                self.tx_off = 0;
                self.respond()
            }
            Pcb::R { nr, .. } => {
                self.r_blocks_received += 1;
                match self.state() {
                    Last::I { ns, more: true } if nr != ns => self.next_chunk(),
                    Last::I { ns, .. } if nr == ns => self.resend_i(),
                    Last::SRequest => self.last.clone(),
                    _ => self.r(RCode::Ok),
                }
            }
            Pcb::S {
                kind: SKind::Resynch,
                response: false,
            } => {
                self.reset_protocol();
                self.resynchs += 1;
                self.emit(Block::s(0, SKind::Resynch, true, &[]), Last::SResponse)
            }
            Pcb::S {
                kind: SKind::Ifs,
                response: false,
            } => match block.inf {
                [v @ 1..=254] => {
                    self.ifsd = *v;
                    let v = *v;
                    self.emit(Block::s(0, SKind::Ifs, true, &[v]), Last::SResponse)
                }
                _ => self.r(RCode::Other),
            },
            Pcb::S {
                kind: SKind::Abort,
                response: false,
            } => {
                self.rx_chain.fill(0);
                self.rx_chain.clear();
                self.tx.clear();
                self.tx_off = 0;
                self.owe_response = false;
                self.last_i = None;
                self.emit(Block::s(0, SKind::Abort, true, &[]), Last::SResponse)
            }
            Pcb::S {
                kind: SKind::Wtx,
                response: true,
            } if self.owe_response && self.last_kind == Last::SRequest => self.respond(),
            Pcb::S {
                kind: SKind::Ifs,
                response: true,
            } if self.owe_response && self.last_kind == Last::SRequest => {
                if let [v @ 1..=254] = block.inf {
                    self.ifsc = *v;
                }
                self.respond()
            }
            Pcb::S { .. } => self.r(RCode::Other),
        }
    }
}

impl<C: VirtualCard> SlotCard for T1Card<C> {
    fn power_on(&mut self) -> Vec<u8> {
        self.card.reset();
        self.reset_protocol();
        self.atr.clone()
    }

    fn power_off(&mut self) {
        self.card.reset();
        self.reset_protocol();
    }

    fn xfr_block(&mut self, payload: &[u8]) -> Result<Vec<u8>, SlotError> {
        self.blocks_received += 1;
        if self.lose_commands > 0 {
            self.lose_commands -= 1;
            return Err(SlotError::IccMute);
        }
        let mut reply = self.handle(payload);
        if self.lose_replies > 0 {
            self.lose_replies -= 1;
            return Err(SlotError::IccMute);
        }
        if self.corrupt_replies > 0 {
            self.corrupt_replies -= 1;
            if let Some(last) = reply.last_mut() {
                *last ^= 0x5A;
            }
        }
        Ok(reply)
    }
}
