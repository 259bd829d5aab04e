//! An in-memory CCID reader with fault injection, for tests, benchmarks and demos.
//!
//! - [`ReaderSim`] is the reader: it takes whole bulk-OUT messages, runs them against the
//!   [`SlotCard`] in its slot and queues its replies, with the faults a test injects.
//! - [`SimPipe`] is the host's end: `embedded_io_async::{Read, Write}`; each `flush` hands the
//!   written message to the reader, and reads take the reader's replies in order (a read never
//!   spans two replies, as a USB bulk transfer would not). [`SimControl`] is the control channel
//!   (the ABORT request).
//! - [`TestClock`] is virtual time: nothing waits for real; a sleep jumps to the next event (a
//!   delayed reply) or to its deadline. Everything is deterministic and single-threaded.
//! - [`ApduCard`] puts a [`SimCard`] in the slot at APDU level.
//!
//! [`apdu_session`] wires all of it to a [`Session`] in one call.

extern crate alloc;
use alloc::collections::{BTreeSet, VecDeque};
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, Ref, RefCell, RefMut};
use core::task::Poll;

use cardunlock_sim::SimCard;

use crate::clock::Clock;
use crate::codec::{
    chain, msg_type, ClockStatus, CommandStatus, Header, IccStatus, Request, RequestKind, Response,
    ResponseKind, SlotChange, SlotError, Status, Voltage, HEADER_LEN,
};
use crate::descriptor::ClassDescriptor;
use crate::session::{Control, Session};

pub mod tpdu;

/// What sits in the simulated reader's slot: a card seen at the reader's exchange level.
/// At APDU level the payloads are APDUs; at TPDU level they are T=1 blocks or T=0 TPDUs
/// (see `sim::tpdu`).
pub trait SlotCard {
    /// Powers the card on (cold reset) and returns its ATR.
    fn power_on(&mut self) -> Vec<u8>;
    /// Powers the card off.
    fn power_off(&mut self);
    /// One XfrBlock payload in; the DataBlock payload out, or the slot error (`bError`) the
    /// reader reports, such as [`crate::codec::SlotError::IccMute`] for a lost block.
    fn xfr_block(&mut self, payload: &[u8]) -> Result<Vec<u8>, crate::codec::SlotError>;
    /// SetParameters for `protocol` (0: T=0, 1: T=1) with the CCID protocol data structure;
    /// returns the parameters in force. The default accepts them as given.
    fn set_parameters(
        &mut self,
        _protocol: u8,
        data: &[u8],
    ) -> Result<Vec<u8>, crate::codec::SlotError> {
        Ok(data.to_vec())
    }
}

/// A [`SimCard`] in the slot of an APDU-level reader.
#[derive(Debug)]
pub struct ApduCard {
    /// The card (inspect its counters after a test).
    pub card: SimCard,
}

impl ApduCard {
    /// `card` in a slot.
    pub fn new(card: SimCard) -> Self {
        Self { card }
    }
}

impl SlotCard for ApduCard {
    fn power_on(&mut self) -> Vec<u8> {
        self.card.reset();
        self.card.atr().to_vec()
    }

    fn power_off(&mut self) {
        self.card.reset();
    }

    fn xfr_block(&mut self, payload: &[u8]) -> Result<Vec<u8>, SlotError> {
        Ok(self.card.transmit(payload))
    }
}

#[derive(Debug, Default)]
struct ClockState {
    now: Cell<u64>,
    events: RefCell<BTreeSet<u64>>,
}

/// Virtual milliseconds shared by the session and the simulated reader. A sleep completes at
/// once, moving time to its deadline, unless a reply is due earlier: then time moves to that
/// reply and the sleep stays pending, so the racing read takes the reply.
#[derive(Clone, Debug, Default)]
pub struct TestClock {
    state: Rc<ClockState>,
}

impl TestClock {
    /// A clock at 0 ms.
    pub fn new() -> Self {
        Self::default()
    }

    /// Virtual now.
    pub fn now(&self) -> u64 {
        self.state.now.get()
    }

    /// Moves time forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.state.now.set(self.now().saturating_add(ms));
    }

    /// Registers something due at `at` (a sleep will stop there).
    fn schedule(&self, at: u64) {
        self.state.events.borrow_mut().insert(at);
    }
}

impl Clock for TestClock {
    fn now_ms(&mut self) -> u64 {
        self.now()
    }

    async fn sleep_until_ms(&mut self, deadline_ms: u64) {
        core::future::poll_fn(|cx| {
            let now = self.now();
            if now >= deadline_ms {
                return Poll::Ready(());
            }
            let next = {
                let mut events = self.state.events.borrow_mut();
                while events.first().is_some_and(|&e| e <= now) {
                    events.pop_first();
                }
                events.first().copied()
            };
            match next {
                Some(at) if at < deadline_ms => {
                    self.state.now.set(at);
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                _ => {
                    self.state.now.set(deadline_ms);
                    Poll::Ready(())
                }
            }
        })
        .await
    }
}

/// When an injected fault strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// The `n`th bulk message the reader receives (0-based, all types).
    Message(usize),
    /// The `n`th XfrBlock (0-based; chained parts and "send more" polls count).
    Xfr(usize),
}

/// A fault the simulated reader injects into its handling of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `n` replies carrying an older `bSeq` come before the real one.
    StaleReplies(u8),
    /// `n` replies for another slot come before the real one.
    WrongSlotReplies(u8),
    /// `count` time-extension replies (multiplier `multiplier`), `interval_ms` apart, before
    /// the real reply.
    TimeExtensions {
        /// How many.
        count: u32,
        /// `bError` of each.
        multiplier: u8,
        /// Virtual time between them (and before the real reply).
        interval_ms: u64,
    },
    /// The card is pulled out before the command reaches it: ICC absent, command failed.
    CardRemoved,
    /// The card runs the command, then is pulled out before the reply: ICC absent, failed.
    CardRemovedAfter,
    /// The reply's `dwLength` says `n` bytes fewer than it carries.
    TruncatedLength(u32),
    /// The reply's `dwLength` says `n` bytes more than it carries.
    OverlongLength(u32),
    /// The reader refuses the command `n` times in a row with `CmdSlotBusy` (it does not run).
    SlotBusy(u8),
    /// The command fails with this error without reaching the card.
    Error(SlotError),
    /// The reader swallows this message: no reply, the card never sees it.
    Silent,
    /// The reader dies: it answers nothing from now on (not even the ABORT).
    Dead,
    /// The reply comes `ms` virtual milliseconds late.
    Delay(u64),
    /// The card runs the command, then the bulk-IN endpoint stalls instead of the reply (the
    /// pipe's read fails with `ConnectionReset`); it answers again once the halt is cleared.
    Stall,
}

/// What the reader saw, in order (for tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The ABORT control request.
    ControlAbort {
        /// Its slot.
        slot: u8,
        /// Its `bSeq`.
        seq: u8,
    },
    /// A bulk-OUT message.
    Bulk {
        /// `bMessageType`.
        msg_type: u8,
        /// `bSlot`.
        slot: u8,
        /// `bSeq`.
        seq: u8,
        /// `dwLength + 10`.
        len: usize,
    },
}

/// Settings of a [`ReaderSim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// The reader's class descriptor (exchange level, max message length, voltages, features).
    pub descriptor: ClassDescriptor,
    /// Largest data field of one reply DataBlock; longer responses are chained (at most the
    /// descriptor's `dwMaxCCIDMessageLength - 10`). usbd-ccid chains above 54.
    pub response_chunk: usize,
    /// Voltages (bVoltageSupport bits) at which the card answers; at others it stays mute.
    pub card_voltages: u8,
    /// Virtual time every reply takes.
    pub reply_delay_ms: u64,
}

impl SimConfig {
    /// A reader described by `descriptor`, chaining only when a message is full, card answering
    /// at every voltage, replies without delay.
    pub const fn new(descriptor: ClassDescriptor) -> Self {
        Self {
            descriptor,
            response_chunk: usize::MAX,
            card_voltages: 0x07,
            reply_delay_ms: 0,
        }
    }
}

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
    halted: bool,
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

    fn notify(&mut self) {
        let mut buf = [0u8; 2];
        if let Ok(n) = SlotChange::encode(&[(self.present, true)], &mut buf) {
            self.interrupts
                .push_back(buf.get(..n).unwrap_or(&[]).to_vec());
        }
    }

    fn icc(&self) -> IccStatus {
        if !self.present {
            IccStatus::Absent
        } else if self.powered {
            IccStatus::Active
        } else {
            IccStatus::Inactive
        }
    }

    fn take_fault(&mut self, msg: usize, xfr: Option<usize>) -> Option<Fault> {
        let i = self.faults.iter().position(|(w, _)| match *w {
            When::Message(n) => n == msg,
            When::Xfr(n) => Some(n) == xfr,
        })?;
        Some(self.faults.remove(i).1)
    }

    fn on_write(&mut self, bytes: &[u8]) {
        self.inbound.extend_from_slice(bytes);
    }

    fn on_flush(&mut self) {
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

    fn on_control_abort(&mut self, slot: u8, seq: u8) {
        self.events.push(Event::ControlAbort { slot, seq });
    }

    fn push_reply(&mut self, delay: u64, bytes: Vec<u8>) {
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

    fn encode_reply(slot: u8, seq: u8, status: Status, kind: ResponseKind<'_>) -> Vec<u8> {
        let mut buf = alloc::vec![0u8; HEADER_LEN + response_data_len(&kind)];
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

    fn on_message(&mut self, msg: &[u8]) {
        let index = self.messages;
        self.messages += 1;
        self.longest_message = self.longest_message.max(msg.len());
        let Ok(h) = Header::parse(msg) else { return };
        self.events.push(Event::Bulk {
            msg_type: h.msg_type,
            slot: h.slot,
            seq: h.seq,
            len: msg.len(),
        });
        let xfr = (h.msg_type == msg_type::XFR_BLOCK).then(|| {
            self.xfrs += 1;
            self.xfrs - 1
        });
        if self.dead || self.halted {
            // A halted endpoint takes nothing until the halt is cleared.
            return;
        }
        let fault = self.take_fault(index, xfr);
        let delay = self.config.reply_delay_ms;
        if msg.len() > self.config.descriptor.max_message_len() {
            self.oversize_messages += 1;
            let status = Status::new(
                self.icc(),
                CommandStatus::Failed(SlotError::BadParameter(1)),
            );
            let r = Self::encode_reply(
                h.slot,
                h.seq,
                status,
                ResponseKind::SlotStatus {
                    clock: ClockStatus::Running,
                },
            );
            self.push_reply(delay, r);
            return;
        }
        let Ok(req) = Request::parse(msg) else {
            let status = Status::new(
                self.icc(),
                CommandStatus::Failed(SlotError::CommandNotSupported),
            );
            let r = Self::encode_reply(
                h.slot,
                h.seq,
                status,
                ResponseKind::SlotStatus {
                    clock: ClockStatus::Running,
                },
            );
            self.push_reply(delay, r);
            return;
        };
        if req.kind == RequestKind::Abort {
            // Replies not yet started belong to the aborted command.
            self.replies.retain(|r| r.pos > 0);
            self.command_chain = None;
            self.response_rest.clear();
            let r = Self::encode_reply(
                req.slot,
                req.seq,
                Status::new(self.icc(), CommandStatus::Ok),
                ResponseKind::SlotStatus {
                    clock: ClockStatus::Running,
                },
            );
            self.push_reply(delay, r);
            return;
        }
        // Faults that replace the command.
        match fault {
            Some(Fault::Dead) => {
                self.dead = true;
                return;
            }
            Some(Fault::Silent) => return,
            Some(Fault::SlotBusy(n)) => {
                if n > 1 {
                    self.faults
                        .push((When::Message(index + 1), Fault::SlotBusy(n - 1)));
                }
                let r = self.failure(&req, SlotError::CmdSlotBusy);
                self.push_reply(delay, r);
                return;
            }
            Some(Fault::Error(e)) => {
                let r = self.failure(&req, e);
                self.push_reply(delay, r);
                return;
            }
            Some(Fault::CardRemoved) => {
                self.remove_card();
                let r = self.failure(&req, SlotError::IccMute);
                self.push_reply(delay, r);
                return;
            }
            _ => {}
        }
        let mut reply = self.execute(&req);
        match fault {
            Some(Fault::CardRemovedAfter) => {
                self.remove_card();
                reply = self.failure(&req, SlotError::IccMute);
            }
            Some(Fault::TruncatedLength(n)) => adjust_length(&mut reply, |l| l.saturating_sub(n)),
            Some(Fault::OverlongLength(n)) => adjust_length(&mut reply, |l| l.saturating_add(n)),
            _ => {}
        }
        let mut delay = delay;
        match fault {
            Some(Fault::StaleReplies(n)) => {
                for i in 0..n {
                    let mut stale = reply.clone();
                    if let Some(b) = stale.get_mut(6) {
                        *b = req.seq.wrapping_sub(i.wrapping_add(1));
                    }
                    self.push_reply(delay, stale);
                }
            }
            Some(Fault::WrongSlotReplies(n)) => {
                for _ in 0..n {
                    let mut other = reply.clone();
                    if let Some(b) = other.get_mut(5) {
                        *b = req.slot.wrapping_add(1);
                    }
                    self.push_reply(delay, other);
                }
            }
            Some(Fault::TimeExtensions {
                count,
                multiplier,
                interval_ms,
            }) => {
                let status = Status::new(self.icc(), CommandStatus::TimeExtension(multiplier));
                for _ in 0..count {
                    let te = Self::encode_reply(
                        req.slot,
                        req.seq,
                        status,
                        ResponseKind::DataBlock {
                            chain: 0,
                            data: &[],
                        },
                    );
                    self.push_reply(interval_ms, te);
                }
                delay = delay.saturating_add(interval_ms);
            }
            Some(Fault::Delay(ms)) => delay = delay.saturating_add(ms),
            _ => {}
        }
        self.push_reply(delay, reply);
        if fault == Some(Fault::Stall) {
            if let Some(last) = self.replies.back_mut() {
                last.stall = true;
            }
        }
    }

    /// The failed reply of the right type for `req`.
    fn failure(&self, req: &Request<'_>, e: SlotError) -> Vec<u8> {
        let status = Status::new(self.icc(), CommandStatus::Failed(e));
        let kind = match req.kind {
            RequestKind::IccPowerOn(_)
            | RequestKind::XfrBlock { .. }
            | RequestKind::Secure { .. } => ResponseKind::DataBlock {
                chain: 0,
                data: &[],
            },
            RequestKind::GetParameters
            | RequestKind::SetParameters { .. }
            | RequestKind::ResetParameters => ResponseKind::Parameters {
                protocol: 0,
                data: &[],
            },
            RequestKind::Escape(_) => ResponseKind::Escape(&[]),
            _ => ResponseKind::SlotStatus {
                clock: ClockStatus::Running,
            },
        };
        Self::encode_reply(req.slot, req.seq, status, kind)
    }

    fn data_block(&self, req: &Request<'_>, chain: u8, data: &[u8]) -> Vec<u8> {
        Self::encode_reply(
            req.slot,
            req.seq,
            Status::new(self.icc(), CommandStatus::Ok),
            ResponseKind::DataBlock { chain, data },
        )
    }

    /// Runs `req` and returns its reply.
    fn execute(&mut self, req: &Request<'_>) -> Vec<u8> {
        if req.slot != 0 {
            return self.failure(req, SlotError::BadParameter(5));
        }
        let ok = Status::new(self.icc(), CommandStatus::Ok);
        match req.kind {
            RequestKind::IccPowerOn(v) => {
                self.power_ons.push(v);
                if !self.present {
                    return self.failure(req, SlotError::IccMute);
                }
                if v != Voltage::Auto && self.config.card_voltages & v.support_bit() == 0 {
                    return self.failure(req, SlotError::IccMute);
                }
                let atr = self.card.power_on();
                self.powered = true;
                self.pps_window = true;
                self.command_chain = None;
                self.response_rest.clear();
                self.data_block(req, 0, &atr)
            }
            RequestKind::IccPowerOff => {
                if self.powered {
                    self.card.power_off();
                }
                self.powered = false;
                Self::encode_reply(
                    req.slot,
                    req.seq,
                    Status::new(self.icc(), CommandStatus::Ok),
                    ResponseKind::SlotStatus {
                        clock: ClockStatus::StoppedLow,
                    },
                )
            }
            // As many readers do: an empty slot answers "failed, ICC mute".
            RequestKind::GetSlotStatus if !self.present => self.failure(req, SlotError::IccMute),
            RequestKind::GetSlotStatus => Self::encode_reply(
                req.slot,
                req.seq,
                ok,
                ResponseKind::SlotStatus {
                    clock: if self.powered {
                        ClockStatus::Running
                    } else {
                        ClockStatus::StoppedLow
                    },
                },
            ),
            RequestKind::XfrBlock { level, data, .. } => self.xfr(req, level, data),
            RequestKind::GetParameters | RequestKind::ResetParameters => {
                let data = [0x11, 0x10, 0x00, 0x45, 0x00, 0xFE, 0x00];
                Self::encode_reply(
                    req.slot,
                    req.seq,
                    ok,
                    ResponseKind::Parameters {
                        protocol: 1,
                        data: &data,
                    },
                )
            }
            RequestKind::SetParameters { protocol, data } => {
                if !self.powered {
                    return self.failure(req, SlotError::IccMute);
                }
                self.parameters_set.push((protocol, data.to_vec()));
                match self.card.set_parameters(protocol, data) {
                    Ok(p) => Self::encode_reply(
                        req.slot,
                        req.seq,
                        ok,
                        ResponseKind::Parameters { protocol, data: &p },
                    ),
                    Err(e) => self.failure(req, e),
                }
            }
            _ => self.failure(req, SlotError::CommandNotSupported),
        }
    }

    fn xfr(&mut self, req: &Request<'_>, level: u16, data: &[u8]) -> Vec<u8> {
        if !self.present || !self.powered {
            return self.failure(req, SlotError::IccMute);
        }
        let max_data = self
            .config
            .descriptor
            .max_message_len()
            .saturating_sub(HEADER_LEN)
            .min(self.config.response_chunk)
            .max(1);
        let pps_window = core::mem::replace(&mut self.pps_window, false);
        if pps_window
            && self.config.descriptor.exchange_level() == crate::descriptor::ExchangeLevel::Tpdu
            && level == chain::WHOLE
            && data.first() == Some(&0xFF)
        {
            // A PPS right after the ATR: the card accepts it as asked (echo).
            self.pps_requests.push(data.to_vec());
            return self.data_block(req, 0, data);
        }
        let command = match level {
            chain::MORE if data.is_empty() => {
                let n = self.response_rest.len().min(max_data);
                let part: Vec<u8> = self.response_rest.drain(..n).collect();
                let c = if self.response_rest.is_empty() {
                    chain::END
                } else {
                    chain::CONTINUE
                };
                return self.data_block(req, c as u8, &part);
            }
            chain::BEGIN => {
                self.command_chain = Some(data.to_vec());
                return self.data_block(req, chain::MORE as u8, &[]);
            }
            chain::CONTINUE | chain::END => {
                let Some(mut c) = self.command_chain.take() else {
                    return self.failure(req, SlotError::BadParameter(8));
                };
                c.extend_from_slice(data);
                if level == chain::CONTINUE {
                    self.command_chain = Some(c);
                    return self.data_block(req, chain::MORE as u8, &[]);
                }
                c
            }
            chain::WHOLE => data.to_vec(),
            _ => return self.failure(req, SlotError::BadParameter(8)),
        };
        self.card_payloads.push(command.clone());
        match self.card.xfr_block(&command) {
            Ok(resp) if resp.len() <= max_data => self.data_block(req, 0, &resp),
            Ok(resp) => {
                let (first, rest) = resp.split_at(max_data);
                self.response_rest = rest.iter().copied().collect();
                self.data_block(req, chain::BEGIN as u8, first)
            }
            Err(e) => self.failure(req, e),
        }
    }

    fn poll_read(&mut self, buf: &mut [u8]) -> Poll<Result<usize, embedded_io_async::ErrorKind>> {
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

fn response_data_len(kind: &ResponseKind<'_>) -> usize {
    match kind {
        ResponseKind::DataBlock { data, .. }
        | ResponseKind::Parameters { data, .. }
        | ResponseKind::Escape(data)
        | ResponseKind::Other { data, .. } => data.len(),
        ResponseKind::DataRateAndClockFrequency { .. } => 8,
        ResponseKind::SlotStatus { .. } => 0,
    }
}

fn adjust_length(msg: &mut [u8], f: impl FnOnce(u32) -> u32) {
    if let Some(l) = msg.get_mut(1..5) {
        let v = f(u32::from_le_bytes([l[0], l[1], l[2], l[3]]));
        l.copy_from_slice(&v.to_le_bytes());
    }
}

/// A [`ReaderSim`] shared by its pipe, its control channel and the test.
#[derive(Debug)]
pub struct SharedReader<S>(Rc<RefCell<ReaderSim<S>>>);

impl<S> Clone for SharedReader<S> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<S: SlotCard> SharedReader<S> {
    /// The host's end of the bulk pipe.
    pub fn pipe(&self) -> SimPipe<S> {
        SimPipe(self.clone())
    }

    /// The control channel (ABORT request).
    pub fn control(&self) -> SimControl<S> {
        SimControl(self.clone())
    }

    /// The reader.
    pub fn get(&self) -> Ref<'_, ReaderSim<S>> {
        self.0.borrow()
    }

    /// The reader, mutably (inject faults, pull the card).
    pub fn get_mut(&self) -> RefMut<'_, ReaderSim<S>> {
        self.0.borrow_mut()
    }
}

/// The host's end of the simulated bulk pipe.
#[derive(Debug)]
pub struct SimPipe<S>(SharedReader<S>);

impl<S> embedded_io_async::ErrorType for SimPipe<S> {
    /// `ConnectionReset` for a stalled endpoint ([`Fault::Stall`]), as the USB backend reports it.
    type Error = embedded_io_async::ErrorKind;
}

impl<S: SlotCard> embedded_io_async::Read for SimPipe<S> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        let reader = &self.0;
        core::future::poll_fn(|_cx| reader.0.borrow_mut().poll_read(buf)).await
    }
}

impl<S: SlotCard> embedded_io_async::Write for SimPipe<S> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0 .0.borrow_mut().on_write(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.0 .0.borrow_mut().on_flush();
        Ok(())
    }
}

/// The simulated control channel: records the ABORT request.
#[derive(Debug)]
pub struct SimControl<S>(SharedReader<S>);

impl<S: SlotCard> Control for SimControl<S> {
    type Error = core::convert::Infallible;

    async fn abort(&mut self, slot: u8, seq: u8) -> Result<(), Self::Error> {
        self.0 .0.borrow_mut().on_control_abort(slot, seq);
        Ok(())
    }

    async fn clear_halt(&mut self) -> Result<(), Self::Error> {
        let mut r = self.0 .0.borrow_mut();
        r.halts_cleared += 1;
        r.halted = false;
        Ok(())
    }
}

/// A scripted reader for robustness tests: every flushed message gets the next reply of a
/// script (raw bytes, possibly malformed), optionally patched to answer it (its `bSlot` and
/// `bSeq` copied in, `dwLength` made to match). When the script is out, nothing answers (a
/// [`TestClock`] then lets the deadline pass).
#[derive(Debug, Default)]
pub struct ScriptPipe {
    script: VecDeque<ScriptReply>,
    readable: VecDeque<u8>,
    pending: Vec<u8>,
    /// Every message the session flushed.
    pub written: Vec<Vec<u8>>,
}

/// One reply of a [`ScriptPipe`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScriptReply {
    /// The bytes (at least a header's worth is useful, anything goes).
    pub bytes: Vec<u8>,
    /// Copy the command's `bSlot` and `bSeq` into bytes 5 and 6.
    pub answer: bool,
    /// Set `dwLength` to the length that follows the header.
    pub fix_length: bool,
}

impl ScriptPipe {
    /// A pipe answering with `script`.
    pub fn new(script: impl IntoIterator<Item = ScriptReply>) -> Self {
        Self {
            script: script.into_iter().collect(),
            ..Self::default()
        }
    }
}

impl embedded_io_async::ErrorType for ScriptPipe {
    type Error = core::convert::Infallible;
}

impl embedded_io_async::Read for ScriptPipe {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let readable = &mut self.readable;
        core::future::poll_fn(|_cx| {
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            if readable.is_empty() {
                return Poll::Pending;
            }
            let n = buf.len().min(readable.len());
            for (dst, src) in buf.iter_mut().zip(readable.drain(..n)) {
                *dst = src;
            }
            Poll::Ready(Ok(n))
        })
        .await
    }
}

impl embedded_io_async::Write for ScriptPipe {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        let msg = core::mem::take(&mut self.pending);
        if let Some(mut r) = self.script.pop_front() {
            if r.answer {
                for i in [5, 6] {
                    if let (Some(dst), Some(src)) = (r.bytes.get_mut(i), msg.get(i)) {
                        *dst = *src;
                    }
                }
            }
            if r.fix_length && r.bytes.len() >= HEADER_LEN {
                let l = u32::try_from(r.bytes.len() - HEADER_LEN).unwrap_or(u32::MAX);
                adjust_length(&mut r.bytes, |_| l);
            }
            self.readable.extend(r.bytes);
        }
        self.written.push(msg);
        Ok(())
    }
}

/// A session over a simulated reader.
pub type SimSession<S> = Session<SimPipe<S>, TestClock, SimControl<S>>;

/// A simulated reader as `config` describes it with `card` at APDU level, and a session to its
/// slot 0 (not yet powered). Panics if the session refuses the descriptor (tests only).
pub fn apdu_session(
    card: SimCard,
    config: SimConfig,
) -> (SimSession<ApduCard>, SharedReader<ApduCard>) {
    session_with(ApduCard::new(card), config)
}

/// As [`apdu_session`] for any card in the slot.
pub fn session_with<S: SlotCard>(card: S, config: SimConfig) -> (SimSession<S>, SharedReader<S>) {
    let clock = TestClock::new();
    let reader = ReaderSim::new(card, config, &clock).into_shared();
    let session = match Session::new(
        reader.pipe(),
        clock,
        reader.control(),
        &config.descriptor,
        0,
    ) {
        Ok(s) => s,
        Err(e) => panic!("the session refused the simulated reader: {e:?}"),
    };
    (session, reader)
}
