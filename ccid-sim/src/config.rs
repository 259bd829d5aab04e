//! What a test sets on the simulated reader (settings, faults) and what it reads back (events).

use cardunlock_ccid::codec::SlotError;
use cardunlock_ccid::descriptor::ClassDescriptor;

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

/// Settings of a [`ReaderSim`](crate::ReaderSim).
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
