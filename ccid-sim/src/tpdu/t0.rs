//! The card-side T=0 at TPDU level.

use crate::SlotCard;
use cardunlock_ccid::codec::SlotError;
use cardunlock_sim::VirtualCard;
use std::vec;
use std::vec::Vec;

use super::{historical_of, t0_atr};

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
