//! The simulated reader: its state, what a test inspects and injects, and the bulk pipe's
//! mechanics (messages in, replies out in virtual time). What it does with each message is in
//! `reader/message.rs`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::Poll;

use cardunlock_ccid::codec::Voltage;
use cardunlock_ccid::codec::{
    Header, IccStatus, Response, ResponseKind, SlotChange, Status, HEADER_LEN,
};

use crate::clock::TestClock;
use crate::config::{Event, Fault, SimConfig, When};
use crate::pipe::SharedReader;
use crate::SlotCard;

mod message;

#[derive(Debug)]
struct Reply {
    at: u64,
    bytes: Vec<u8>,
    pos: usize,
    stall: bool,
}

/// The simulated reader with one slot (slot 0).
#[derive(Debug)]
pub struct ReaderSim<S> {
    card: S,
    config: SimConfig,
    clock: TestClock,
    present: bool,
    powered: bool,
    dead: bool,
    inbound: Vec<u8>,
    replies: VecDeque<Reply>,
    faults: Vec<(When, Fault)>,
    messages: usize,
    xfrs: usize,
    command_chain: Option<Vec<u8>>,
    response_rest: VecDeque<u8>,
    interrupts: VecDeque<Vec<u8>>,
    /// Everything the reader saw, in order.
    pub events: Vec<Event>,
    /// Every payload that reached the card (whole APDUs after chaining).
    pub card_payloads: Vec<Vec<u8>>,
    /// Voltages of every IccPowerOn, in order.
    pub power_ons: Vec<Voltage>,
    /// Flushes that handed over an incomplete message (the session must never cause one).
    pub partial_flushes: usize,
    /// Flushes that handed over more than one message (the session must never cause one).
    pub multi_message_flushes: usize,
    /// Messages longer than `dwMaxCCIDMessageLength` (refused with a bad-parameter error).
    pub oversize_messages: usize,
    /// Length of the longest message received.
    pub longest_message: usize,
    /// PPS requests received (TPDU level; the simulated card accepts them as asked).
    pub pps_requests: Vec<Vec<u8>>,
    /// SetParameters received: protocol and data.
    pub parameters_set: Vec<(u8, Vec<u8>)>,
    /// Clear-halt requests received through the control channel.
    pub halts_cleared: usize,
    pub(crate) halted: bool,
    pps_window: bool,
}

impl<S: SlotCard> ReaderSim<S> {
    /// A reader with `card` present in slot 0, on `clock`.
    pub fn new(card: S, config: SimConfig, clock: &TestClock) -> Self {
        Self {
            card,
            config,
            clock: clock.clone(),
            present: true,
            powered: false,
            dead: false,
            inbound: Vec::new(),
            replies: VecDeque::new(),
            faults: Vec::new(),
            messages: 0,
            xfrs: 0,
            command_chain: None,
            response_rest: VecDeque::new(),
            interrupts: VecDeque::new(),
            events: Vec::new(),
            card_payloads: Vec::new(),
            power_ons: Vec::new(),
            partial_flushes: 0,
            multi_message_flushes: 0,
            oversize_messages: 0,
            longest_message: 0,
            pps_requests: Vec::new(),
            parameters_set: Vec::new(),
            halts_cleared: 0,
            halted: false,
            pps_window: false,
        }
    }

    /// Shares the reader between a pipe, a control channel and the test.
    pub fn into_shared(self) -> SharedReader<S> {
        SharedReader(Rc::new(RefCell::new(self)))
    }

    /// The card in the slot.
    pub fn card(&self) -> &S {
        &self.card
    }

    /// The card in the slot, mutably.
    pub fn card_mut(&mut self) -> &mut S {
        &mut self.card
    }

    /// The settings.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Injects `fault` at `when`.
    pub fn inject(&mut self, when: When, fault: Fault) {
        self.faults.push((when, fault));
    }

    /// Bulk messages received so far.
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// XfrBlocks received so far.
    pub fn xfr_blocks(&self) -> usize {
        self.xfrs
    }

    /// Whether the card is powered.
    pub fn powered(&self) -> bool {
        self.powered
    }

    /// Pulls the card out (a NotifySlotChange is queued).
    pub fn remove_card(&mut self) {
        self.present = false;
        self.powered = false;
        self.notify();
    }

    /// Puts the card back (a NotifySlotChange is queued).
    pub fn insert_card(&mut self) {
        self.present = true;
        self.notify();
    }

    /// Takes the next interrupt-IN message (NotifySlotChange, HardwareError).
    pub fn take_interrupt(&mut self) -> Option<Vec<u8>> {
        self.interrupts.pop_front()
    }

    /// Bulk messages (by type) received so far.
    pub fn count(&self, t: u8) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Bulk { msg_type, .. } if *msg_type == t))
            .count()
    }

    pub(crate) fn notify(&mut self) {
        let mut buf = [0u8; 2];
        if let Ok(n) = SlotChange::encode(&[(self.present, true)], &mut buf) {
            self.interrupts
                .push_back(buf.get(..n).unwrap_or(&[]).to_vec());
        }
    }

    pub(crate) fn icc(&self) -> IccStatus {
        if !self.present {
            IccStatus::Absent
        } else if self.powered {
            IccStatus::Active
        } else {
            IccStatus::Inactive
        }
    }

    pub(crate) fn take_fault(&mut self, msg: usize, xfr: Option<usize>) -> Option<Fault> {
        let i = self.faults.iter().position(|(w, _)| match *w {
            When::Message(n) => n == msg,
            When::Xfr(n) => Some(n) == xfr,
        })?;
        Some(self.faults.remove(i).1)
    }

    pub(crate) fn on_write(&mut self, bytes: &[u8]) {
        self.inbound.extend_from_slice(bytes);
    }

    pub(crate) fn on_flush(&mut self) {
        let mut handed = 0usize;
        loop {
            if self.inbound.is_empty() {
                break;
            }
            let Ok(h) = Header::parse(&self.inbound) else {
                self.partial_flushes += 1;
                break;
            };
            let len = h.message_len();
            if self.inbound.len() < len {
                self.partial_flushes += 1;
                break;
            }
            let msg: Vec<u8> = self.inbound.drain(..len).collect();
            handed += 1;
            self.on_message(&msg);
        }
        if handed > 1 {
            self.multi_message_flushes += 1;
        }
    }

    pub(crate) fn on_control_abort(&mut self, slot: u8, seq: u8) {
        self.events.push(Event::ControlAbort { slot, seq });
    }

    pub(crate) fn push_reply(&mut self, delay: u64, bytes: Vec<u8>) {
        let base = self
            .replies
            .back()
            .map_or(self.clock.now(), |r| r.at.max(self.clock.now()));
        let at = base.saturating_add(delay);
        if at > self.clock.now() {
            self.clock.schedule(at);
        }
        self.replies.push_back(Reply {
            at,
            bytes,
            pos: 0,
            stall: false,
        });
    }

    pub(crate) fn encode_reply(
        slot: u8,
        seq: u8,
        status: Status,
        kind: ResponseKind<'_>,
    ) -> Vec<u8> {
        let mut buf = vec![0u8; HEADER_LEN + response_data_len(&kind)];
        let n = Response {
            slot,
            seq,
            status,
            kind,
        }
        .encode(&mut buf)
        .unwrap_or(0);
        buf.truncate(n);
        buf
    }

    pub(crate) fn poll_read(
        &mut self,
        buf: &mut [u8],
    ) -> Poll<Result<usize, embedded_io_async::ErrorKind>> {
        let now = self.clock.now();
        let Some(head) = self.replies.front_mut() else {
            return Poll::Pending;
        };
        if head.at > now {
            self.clock.schedule(head.at);
            return Poll::Pending;
        }
        if head.stall {
            // The endpoint halts instead of sending this reply; it is lost.
            self.replies.pop_front();
            self.halted = true;
            return Poll::Ready(Err(embedded_io_async::ErrorKind::ConnectionReset));
        }
        let rest = head.bytes.get(head.pos..).unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
            dst.copy_from_slice(src);
        }
        head.pos += n;
        if head.pos >= head.bytes.len() {
            self.replies.pop_front();
        }
        Poll::Ready(Ok(n))
    }
}

pub(crate) fn response_data_len(kind: &ResponseKind<'_>) -> usize {
    match kind {
        ResponseKind::DataBlock { data, .. }
        | ResponseKind::Parameters { data, .. }
        | ResponseKind::Escape(data)
        | ResponseKind::Other { data, .. } => data.len(),
        ResponseKind::DataRateAndClockFrequency { .. } => 8,
        ResponseKind::SlotStatus { .. } => 0,
    }
}

pub(crate) fn adjust_length(msg: &mut [u8], f: impl FnOnce(u32) -> u32) {
    if let Some(l) = msg.get_mut(1..5) {
        let v = f(u32::from_le_bytes([l[0], l[1], l[2], l[3]]));
        l.copy_from_slice(&v.to_le_bytes());
    }
}
