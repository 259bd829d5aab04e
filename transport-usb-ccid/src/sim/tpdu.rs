//! The card side of the TPDU exchange level, for the simulated reader: [`T1Card`] speaks T=1
//! blocks and [`T0Card`] answers T=0 TPDUs, both in front of a card that answers APDUs
//! ([`VirtualCard`]: a [`SimCard`](cardunlock_sim::SimCard), a shared one, or a closure
//! ([`FnCard`])).
//!
//! [`T1Card`] is a real card-side T=1 (I/R/S blocks, chaining both ways within its IFSC and the
//! host's IFSD, IFS and WTX requests, RESYNCH and ABORT) with fault injection: garbled replies,
//! lost replies (the card executed the block, the reader reports `IccMute`), lost commands (the
//! card never saw the block), WTX and IFS requests of the card before a response.

extern crate alloc;

use crate::atr::{Atr, Edc};
use crate::codec::SlotError;
use crate::sim::SlotCard;
use crate::t1::{Block, Pcb, RCode, SKind, MAX_BLOCK, MAX_INF};
use alloc::vec;
use alloc::vec::Vec;
use cardunlock_sim::VirtualCard;

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

fn historical_of(atr: &[u8]) -> Vec<u8> {
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
            Err(crate::t1::BlockError::Edc) => return self.r(RCode::Edc),
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

/// A card-side T=0 at TPDU level in front of a [`VirtualCard`]: case 3/4 TPDUs with response
/// data are answered `61 XX` and served by GET RESPONSE; a case 2 TPDU whose P3 is not the
/// response length is answered `6C XX` (and the response kept for the TPDU sent again).
pub struct T0Card<C> {
    card: C,
    atr: Vec<u8>,
    pending: Vec<u8>,
    pending_sw: [u8; 2],
    cached: Option<([u8; 4], Vec<u8>)>,
    always_61: bool,
    apdu_level: bool,
    executed: Vec<u8>,
    tpdus: Vec<[u8; 5]>,
}

impl<C: VirtualCard> T0Card<C> {
    /// A T=0 card in front of `card`.
    pub fn new(card: C) -> Self {
        let atr = t0_atr(&historical_of(&card.atr()));
        Self {
            card,
            atr,
            pending: Vec::new(),
            pending_sw: [0x90, 0x00],
            cached: None,
            always_61: false,
            apdu_level: false,
            executed: Vec::new(),
            tpdus: Vec::new(),
        }
    }

    /// Case 2 commands answered with `61 XX` too (the host must GET RESPONSE).
    pub fn always_61(mut self, on: bool) -> Self {
        self.always_61 = on;
        self
    }

    /// Answers every TPDU as the card behind QEMU's `ccid-card-passthru` does: the TPDU is run
    /// as a whole APDU and answered with its response data and status word (no `61 XX`, no
    /// `6C XX`), data after a TPDU that sent data included.
    pub fn apdu_level(mut self, on: bool) -> Self {
        self.apdu_level = on;
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

    /// The INS byte of every APDU the card executed, in order (GET RESPONSE served from the
    /// T=0 layer and `6C` re-sends not included).
    pub fn executed(&self) -> &[u8] {
        &self.executed
    }

    /// The headers (CLA INS P1 P2 P3) of every TPDU received.
    pub fn tpdus(&self) -> &[[u8; 5]] {
        &self.tpdus
    }

    fn execute(&mut self, apdu: &[u8]) -> (Vec<u8>, [u8; 2]) {
        self.executed.push(apdu.get(1).copied().unwrap_or(0));
        let mut resp = self.card.transmit(apdu);
        let n = resp.len().saturating_sub(2);
        let sw = [
            resp.get(n).copied().unwrap_or(0x6F),
            resp.get(n + 1).copied().unwrap_or(0x00),
        ];
        resp.truncate(n);
        (resp, sw)
    }

    fn offer(&mut self, data: Vec<u8>, sw: [u8; 2]) -> Vec<u8> {
        let n = data.len().min(256) as u8;
        self.pending = data;
        self.pending_sw = sw;
        vec![0x61, n]
    }

    fn tpdu(&mut self, tpdu: &[u8]) -> Vec<u8> {
        let &[cla, ins, p1, p2, p3, ref data @ ..] = tpdu else {
            return vec![0x67, 0x00];
        };
        self.tpdus.push([cla, ins, p1, p2, p3]);
        if self.apdu_level {
            let (mut resp, sw) = self.execute(tpdu);
            resp.extend_from_slice(&sw);
            return resp;
        }
        let header = [cla, ins, p1, p2];
        let ne = if p3 == 0 { 256 } else { usize::from(p3) };
        if !data.is_empty() {
            if data.len() != usize::from(p3) {
                return vec![0x67, 0x00];
            }
            self.pending.clear();
            let mut apdu = header.to_vec();
            apdu.push(p3);
            apdu.extend_from_slice(data);
            let (resp, sw) = self.execute(&apdu);
            apdu.fill(0);
            if resp.is_empty() {
                return sw.to_vec();
            }
            return self.offer(resp, sw);
        }
        if ins == 0xC0 && !self.pending.is_empty() {
            if ne > self.pending.len() {
                return vec![0x6C, self.pending.len().min(256) as u8];
            }
            let mut out: Vec<u8> = self.pending.drain(..ne).collect();
            if self.pending.is_empty() {
                out.extend_from_slice(&self.pending_sw);
            } else {
                out.extend_from_slice(&[0x61, self.pending.len().min(256) as u8]);
            }
            return out;
        }
        let (resp, sw) = match self.cached.take() {
            Some((h, mut resp)) if h == header => {
                let n = resp.len().saturating_sub(2);
                let sw = [
                    resp.get(n).copied().unwrap_or(0x6F),
                    resp.get(n + 1).copied().unwrap_or(0x00),
                ];
                resp.truncate(n);
                (resp, sw)
            }
            _ => {
                let mut apdu = header.to_vec();
                if p3 != 0 {
                    apdu.push(p3);
                }
                self.execute(&apdu)
            }
        };
        if resp.is_empty() {
            return sw.to_vec();
        }
        if self.always_61 {
            return self.offer(resp, sw);
        }
        if resp.len() != ne && resp.len() <= 256 {
            let n = resp.len() as u8;
            let mut keep = resp;
            keep.extend_from_slice(&sw);
            self.cached = Some((header, keep));
            return vec![0x6C, n];
        }
        let mut out = resp;
        out.extend_from_slice(&sw);
        out
    }
}

impl<C: VirtualCard> SlotCard for T0Card<C> {
    fn power_on(&mut self) -> Vec<u8> {
        self.card.reset();
        self.pending.clear();
        self.cached = None;
        self.atr.clone()
    }

    fn power_off(&mut self) {
        self.card.reset();
        self.pending.clear();
        self.cached = None;
    }

    fn xfr_block(&mut self, payload: &[u8]) -> Result<Vec<u8>, SlotError> {
        Ok(self.tpdu(payload))
    }
}
