//! The async CCID session over any `embedded_io_async::{Read, Write}` byte pipe.
//!
//! Contract with the pipe: the session writes one complete CCID message (`write` until all is taken) and
//! then calls `flush()`, once per message (a USB backend submits one bulk transfer per flush, so
//! it never sees part of a message); it reads the 10-byte header, then exactly `dwLength` bytes.
//!
//! What it handles: `bSeq` per message (wrapping) and bounded dropping of stale replies (wrong
//! `bSeq` or slot); time extensions (each pushes the deadline out by `bError` times the base
//! wait, never past a hard cap); a deadline on every reply from the caller's [`Clock`], and the
//! ABORT sequence when it passes; power-on with voltage fallback; short and extended APDU levels
//! with `wLevelParameter` chaining both ways. Messages never exceed the reader's
//! `dwMaxCCIDMessageLength` nor the session's buffer (the const generic `N`).
//!
//! The session never resends a command the card may have run (only one the reader refused as
//! busy before running it), so a fault never costs a PIN or PUK try. Message buffers are wiped
//! after every exchange (commands carry PINs and PUKs).

mod apdu;
mod error;
#[cfg(feature = "tpdu")]
mod tpdu;

pub use error::{Error, Unsupported, Violation};
#[cfg(feature = "tpdu")]
pub use tpdu::{TpduFailure, TpduSetup};

use embassy_futures::select::{select, Either};
use embedded_io_async::{ErrorType, Read, Write};

use crate::clock::Clock;
use crate::codec::{
    msg_type, ClockStatus, CommandStatus, Header, IccStatus, ProtocolData, Request, RequestKind,
    Response, ResponseKind, SlotError, Voltage, HEADER_LEN, SHORT_MESSAGE_LEN,
};
use crate::descriptor::{ClassDescriptor, ExchangeLevel};

/// What a backend can do outside the bulk byte pipe: the class-specific ABORT control request
/// and clearing a halted endpoint. A byte pipe with no such channel (a serial bridge, a
/// simulator) uses [`NoControl`].
#[allow(async_fn_in_trait)]
pub trait Control {
    /// The backend's error.
    type Error;
    /// Sends the CCID ABORT control request (bmRequestType 0x21, bRequest 0x01,
    /// wValue = bSeq << 8 | bSlot) for `slot` and `seq`.
    async fn abort(&mut self, slot: u8, seq: u8) -> Result<(), Self::Error>;
    /// Clears a halt (stall) of the bulk endpoints, after a stalled transfer.
    async fn clear_halt(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// No control channel: ABORT is sent as the bulk message only.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoControl;

impl Control for NoControl {
    type Error = core::convert::Infallible;
    async fn abort(&mut self, _slot: u8, _seq: u8) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// The default message buffer: 271 bytes, a header and a short APDU (`10 + 5 + 255 + 1`), the
/// `dwMaxCCIDMessageLength` of most readers. Larger APDUs and responses are chained over several
/// messages; give a larger `N` to use fewer messages with readers that take more.
pub const DEFAULT_BUFFER: usize = SHORT_MESSAGE_LEN;

/// Timing and robustness settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Config {
    /// Base wait for a reply, in ms; a time extension with multiplier `m` waits `m` times this.
    pub timeout_ms: u32,
    /// Hard cap on one command, time extensions included, in ms.
    pub max_wait_ms: u32,
    /// Wait for the reply to the ABORT sequence, in ms.
    pub abort_timeout_ms: u32,
    /// Stale replies (wrong `bSeq` or slot) dropped per command before giving up.
    pub max_stale: u8,
    /// Resends of a command the reader refused as busy (`CmdSlotBusy`: it did not run).
    pub busy_retries: u8,
    /// Wait before such a resend, in ms.
    pub busy_delay_ms: u32,
    /// `bInterfaceProtocol` of the reader's interface: 0 bulk CCID; 1 and 2 are ICCD
    /// (refused).
    pub interface_protocol: u8,
}

impl Config {
    /// 5 s base wait, 60 s cap, 2 s for an abort, 8 stale replies, 3 busy resends 50 ms apart,
    /// bulk CCID.
    pub const DEFAULT: Self = Self {
        timeout_ms: 5_000,
        max_wait_ms: 60_000,
        abort_timeout_ms: 2_000,
        max_stale: 8,
        busy_retries: 3,
        busy_delay_ms: 50,
        interface_protocol: 0,
    };
}

impl Default for Config {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The slot's state, from GetSlotStatus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SlotState {
    /// Card present and powered, present only, or absent.
    pub icc: IccStatus,
    /// The card's clock.
    pub clock: ClockStatus,
}

/// The session's error for pipe `IO` and control channel `K`.
pub type SessionError<IO, K> = Error<<IO as ErrorType>::Error, <K as Control>::Error>;

/// Bytes of an ATR at most.
const ATR_MAX: usize = 33;

/// Receive state kept across cancelled reads, so a message that was half read when a deadline
/// passed can be finished (or skipped) later.
#[derive(Clone, Copy, Debug, Default)]
struct RxState {
    /// Bytes of the current message in `rx`.
    fill: usize,
    /// Bytes of an over-long message still to skip.
    skip: u64,
    /// Length of that message (header included).
    skipped_len: usize,
    /// Bytes of `rx` written since the last wipe.
    dirty: usize,
}

/// A CCID session with one slot of one reader.
///
/// `IO` is the byte pipe, `C` the clock, `K` the control channel; `N` bounds every message
/// (default [`DEFAULT_BUFFER`]); the session also caps its messages at the reader's
/// `dwMaxCCIDMessageLength`.
pub struct Session<IO, C, K = NoControl, const N: usize = DEFAULT_BUFFER> {
    io: IO,
    clock: C,
    control: K,
    desc: ClassDescriptor,
    config: Config,
    slot: u8,
    seq: u8,
    max_msg: usize,
    tx: [u8; N],
    rx: [u8; N],
    rx_state: RxState,
    atr: [u8; ATR_MAX],
    atr_len: usize,
    powered: bool,
    lost: Option<Lost>,
    #[cfg(feature = "tpdu")]
    tpdu: tpdu::TpduState,
    #[cfg(feature = "tpdu")]
    tpdu_setup: Option<TpduSetup>,
    /// Multiplies the base wait of the next reply (T=1 BWT extension through `bBWI`).
    wait_multiplier: u8,
}

impl<IO, C, K, const N: usize> core::fmt::Debug for Session<IO, C, K, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("slot", &self.slot)
            .field("seq", &self.seq)
            .field("level", &self.desc.exchange_level())
            .field("max_msg", &self.max_msg)
            .field("powered", &self.powered)
            .finish_non_exhaustive()
    }
}

/// How a powered card was seen to go away between commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lost {
    Removed,
    Reset,
}

/// Clears a buffer that may have held a PIN or PUK.
fn wipe(buf: &mut [u8]) {
    buf.fill(0);
    core::hint::black_box(&*buf);
}

impl<IO, C, K, const N: usize> Session<IO, C, K, N>
where
    IO: Read + Write,
    C: Clock,
    K: Control,
{
    /// A session with slot `slot` of the reader `desc` describes, with [`Config::DEFAULT`].
    /// Refuses character-level readers and ICCD devices with [`Error::Unsupported`]. Sends
    /// nothing: the card is powered by [`power_on`](Self::power_on) or the first APDU.
    pub fn new(
        io: IO,
        clock: C,
        control: K,
        desc: &ClassDescriptor,
        slot: u8,
    ) -> Result<Self, SessionError<IO, K>> {
        Self::with_config(io, clock, control, desc, slot, Config::DEFAULT)
    }

    /// As [`new`](Self::new), with `config`.
    pub fn with_config(
        io: IO,
        clock: C,
        control: K,
        desc: &ClassDescriptor,
        slot: u8,
        config: Config,
    ) -> Result<Self, SessionError<IO, K>> {
        if matches!(config.interface_protocol, 1 | 2) {
            return Err(Error::Unsupported(Unsupported::Iccd));
        }
        let level = desc.exchange_level();
        // Without the `tpdu` feature (no ATR parsing, PPS, T=0 or T=1) only APDU-level readers.
        if level == ExchangeLevel::Character
            || (level == ExchangeLevel::Tpdu && !cfg!(feature = "tpdu"))
        {
            return Err(Error::Unsupported(Unsupported::Level(level)));
        }
        if slot > desc.max_slot_index {
            return Err(Error::Unsupported(Unsupported::Slot(slot)));
        }
        let max_msg = desc.max_message_len().min(N);
        if max_msg <= HEADER_LEN {
            return Err(Error::Unsupported(Unsupported::MessageLength(
                desc.max_message_length,
            )));
        }
        Ok(Self {
            io,
            clock,
            control,
            desc: *desc,
            config,
            slot,
            seq: 0,
            max_msg,
            tx: [0; N],
            rx: [0; N],
            rx_state: RxState::default(),
            atr: [0; ATR_MAX],
            atr_len: 0,
            powered: false,
            lost: None,
            #[cfg(feature = "tpdu")]
            tpdu: tpdu::TpduState::default(),
            #[cfg(feature = "tpdu")]
            tpdu_setup: None,
            wait_multiplier: 1,
        })
    }

    /// The reader's descriptor.
    pub fn descriptor(&self) -> &ClassDescriptor {
        &self.desc
    }

    /// The reader's exchange level.
    pub fn exchange_level(&self) -> ExchangeLevel {
        self.desc.exchange_level()
    }

    /// The slot this session talks to.
    pub fn slot(&self) -> u8 {
        self.slot
    }

    /// The largest message the session sends or takes (the smaller of `N` and
    /// `dwMaxCCIDMessageLength`).
    pub fn max_message_len(&self) -> usize {
        self.max_msg
    }

    /// Whether the card was powered on (and not powered off, removed or reset since).
    pub fn is_powered(&self) -> bool {
        self.powered
    }

    /// The ATR of the last power-on (empty before one).
    pub fn atr(&self) -> &[u8] {
        self.atr.get(..self.atr_len).unwrap_or(&[])
    }

    /// The byte pipe.
    pub fn io(&self) -> &IO {
        &self.io
    }

    /// The byte pipe, mutably.
    pub fn io_mut(&mut self) -> &mut IO {
        &mut self.io
    }

    /// The control channel.
    pub fn control(&self) -> &K {
        &self.control
    }

    /// Gives back the pipe, the clock and the control channel.
    pub fn into_parts(self) -> (IO, C, K) {
        (self.io, self.clock, self.control)
    }

    fn next_seq(&mut self) -> u8 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(1);
        s
    }

    /// Encodes `kind` with a fresh `bSeq` into `tx`; returns the length.
    fn encode(&mut self, kind: RequestKind<'_>) -> Result<usize, SessionError<IO, K>> {
        let seq = self.next_seq();
        let req = Request::new(self.slot, seq, kind);
        let max = self.max_msg;
        let tx = self.tx.get_mut(..max).unwrap_or(&mut []);
        req.encode(tx).map_err(|e| match e {
            crate::codec::CodecError::BufferTooSmall { needed } => {
                Error::MessageTooLong { len: needed, max }
            }
            other => Error::Codec(other),
        })
    }

    /// Writes `tx[..len]` as one message and flushes it.
    async fn send(&mut self, len: usize) -> Result<(), SessionError<IO, K>> {
        let msg = self.tx.get(..len).unwrap_or(&[]);
        if !crate::io::write_all(&mut self.io, msg)
            .await
            .map_err(Error::Io)?
        {
            return Err(Error::Closed);
        }
        self.io.flush().await.map_err(Error::Io)
    }

    /// Reads one whole message into `rx` before `deadline`; `Ok(None)` on timeout (a partly read
    /// message is kept and finished by the next call).
    async fn recv(&mut self, deadline: u64) -> Result<Option<Header>, SessionError<IO, K>> {
        let Self {
            io,
            clock,
            rx,
            rx_state,
            ..
        } = self;
        loop {
            if clock.now_ms() >= deadline {
                return Ok(None);
            }
            let (want_from, want_to) = if rx_state.skip > 0 {
                let n = usize::try_from(rx_state.skip)
                    .unwrap_or(usize::MAX)
                    .min(N.saturating_sub(HEADER_LEN));
                (HEADER_LEN, HEADER_LEN + n)
            } else if rx_state.fill < HEADER_LEN {
                (rx_state.fill, HEADER_LEN)
            } else {
                let h = Header::parse(rx.as_slice())?;
                (rx_state.fill, h.message_len())
            };
            if want_from >= want_to {
                // Header complete with no body, or body complete.
                let h = Header::parse(rx.as_slice())?;
                rx_state.fill = 0;
                return Ok(Some(h));
            }
            let buf = rx.get_mut(want_from..want_to).unwrap_or(&mut []);
            let n = match select(io.read(buf), clock.sleep_until_ms(deadline)).await {
                Either::First(Ok(n)) => n,
                Either::First(Err(e)) => {
                    // Where the stream stands after a failed transfer is unknown: forget the
                    // message in progress (the reader's reply, if any, is lost).
                    *rx_state = RxState {
                        dirty: rx_state.dirty,
                        ..RxState::default()
                    };
                    return Err(Error::Io(e));
                }
                Either::Second(()) => return Ok(None),
            };
            if n == 0 {
                return Err(Error::Closed);
            }
            if rx_state.skip > 0 {
                rx_state.dirty = rx_state.dirty.max(HEADER_LEN.saturating_add(n));
                rx_state.skip = rx_state.skip.saturating_sub(n as u64);
                if rx_state.skip == 0 {
                    return Err(Error::MessageTooLong {
                        len: rx_state.skipped_len,
                        max: N,
                    });
                }
                continue;
            }
            rx_state.fill += n;
            rx_state.dirty = rx_state.dirty.max(rx_state.fill);
            if rx_state.fill == HEADER_LEN {
                let h = Header::parse(rx.as_slice())?;
                if h.message_len() > N {
                    // Too long for the buffer: skip its body, then report it.
                    // (Its length is above N - 10 > 0, so there is something to skip.)
                    rx_state.fill = 0;
                    rx_state.skip = u64::from(h.length);
                    rx_state.skipped_len = h.message_len();
                }
            }
        }
    }

    /// Sends `tx[..len]` (encoded with its `bSeq`) and waits for its reply: drops stale
    /// replies, follows time extensions, resends after `CmdSlotBusy`, runs the ABORT sequence
    /// on timeout. The reply's data is at `rx[HEADER_LEN..]`. Wipes `tx` afterwards.
    async fn command(&mut self, len: usize) -> Result<Header, SessionError<IO, K>> {
        let result = self.command_inner(len).await;
        wipe(self.tx.get_mut(..len).unwrap_or(&mut []));
        result
    }

    async fn command_inner(&mut self, len: usize) -> Result<Header, SessionError<IO, K>> {
        let result = self.command_attempts(len).await;
        if let Err(Error::Io(e)) = &result {
            if embedded_io_async::Error::kind(e) == embedded_io_async::ErrorKind::ConnectionReset {
                // A stalled endpoint (the USB backend reports a stall so): clear the halt so the
                // next command gets through; the reply to this one is lost.
                let _ = self.control.clear_halt().await;
            }
        }
        result
    }

    async fn command_attempts(&mut self, len: usize) -> Result<Header, SessionError<IO, K>> {
        let mut busy = 0u8;
        loop {
            let seq = self.tx.get(6).copied().unwrap_or(0);
            self.send(len).await?;
            let h = self.await_reply(seq).await?;
            let status = self.rx.get(7).copied().unwrap_or(0);
            let error = self.rx.get(8).copied().unwrap_or(0);
            let busy_now =
                status >> 6 == 1 && SlotError::from_byte(error) == SlotError::CmdSlotBusy;
            if !busy_now || busy >= self.config.busy_retries {
                return Ok(h);
            }
            busy += 1;
            let until = self
                .clock
                .now_ms()
                .saturating_add(u64::from(self.config.busy_delay_ms));
            self.clock.sleep_until_ms(until).await;
            // Resend with a fresh bSeq (the refused command did not run).
            let seq = self.next_seq();
            if let Some(b) = self.tx.get_mut(6) {
                *b = seq;
            }
        }
    }

    /// Waits for the reply to `seq` (see [`command`](Self::command)).
    async fn await_reply(&mut self, seq: u8) -> Result<Header, SessionError<IO, K>> {
        let start = self.clock.now_ms();
        let cap = start.saturating_add(u64::from(self.config.max_wait_ms));
        let base = u64::from(self.config.timeout_ms)
            .saturating_mul(u64::from(self.wait_multiplier.max(1)));
        let mut deadline = start.saturating_add(base).min(cap);
        let mut stale = 0u8;
        loop {
            let h = match self.recv(deadline).await {
                Ok(Some(h)) => h,
                Ok(None) => {
                    self.abort_sequence().await?;
                    return Err(Error::Timeout);
                }
                Err(e) => {
                    if matches!(e, Error::MessageTooLong { .. } | Error::Codec(_)) {
                        // A malformed message is dropped like a stale one.
                        stale = stale.saturating_add(1);
                        if stale > self.config.max_stale {
                            return Err(e);
                        }
                        continue;
                    }
                    return Err(e);
                }
            };
            if h.seq != seq || h.slot != self.slot {
                stale = stale.saturating_add(1);
                if stale > self.config.max_stale {
                    return Err(Error::Protocol(Violation::TooManyStale));
                }
                continue;
            }
            if h.specific[0] >> 6 == 2 {
                // Time extension: wait bError times the base (at least once), within the cap.
                let m = u64::from(h.specific[1].max(1));
                deadline = self
                    .clock
                    .now_ms()
                    .saturating_add(base.saturating_mul(m))
                    .min(cap);
                continue;
            }
            return Ok(h);
        }
    }

    /// The ABORT sequence: the control request, then the bulk Abort with the same `bSeq`, then
    /// the replies drained until the SlotStatus answering the Abort.
    async fn abort_sequence(&mut self) -> Result<(), SessionError<IO, K>> {
        // Whatever was half read belongs to the aborted exchange.
        self.rx_state = RxState {
            dirty: self.rx_state.dirty,
            ..RxState::default()
        };
        let seq = self.next_seq();
        self.control
            .abort(self.slot, seq)
            .await
            .map_err(Error::Control)?;
        let len = Request::new(self.slot, seq, RequestKind::Abort)
            .encode(&mut self.tx)
            .map_err(Error::Codec)?;
        self.send(len).await?;
        let deadline = self
            .clock
            .now_ms()
            .saturating_add(u64::from(self.config.abort_timeout_ms));
        let mut dropped = 0u8;
        loop {
            match self.recv(deadline).await {
                Ok(Some(h)) => {
                    if h.msg_type == msg_type::SLOT_STATUS && h.seq == seq && h.slot == self.slot {
                        return Ok(());
                    }
                }
                Ok(None) => {
                    self.rx_state = RxState {
                        dirty: self.rx_state.dirty,
                        ..RxState::default()
                    };
                    return Err(Error::Timeout);
                }
                Err(Error::Io(e)) => return Err(Error::Io(e)),
                Err(Error::Closed) => return Err(Error::Closed),
                Err(_) => {}
            }
            dropped = dropped.saturating_add(1);
            if dropped > self.config.max_stale.saturating_add(4) {
                return Err(Error::Protocol(Violation::TooManyStale));
            }
        }
    }

    /// Runs the ABORT sequence (control request, bulk Abort with the same `bSeq`, drain until
    /// its SlotStatus).
    pub async fn abort(&mut self) -> Result<(), SessionError<IO, K>> {
        self.abort_sequence().await
    }

    /// The slot's status (GetSlotStatus).
    pub async fn slot_status(&mut self) -> Result<SlotState, SessionError<IO, K>> {
        let len = self.encode(RequestKind::GetSlotStatus)?;
        let h = self.command(len).await?;
        let resp = reply(&self.rx, &h)?;
        let (icc, command, clock) = match resp.kind {
            ResponseKind::SlotStatus { clock } => (resp.status.icc, resp.status.command, clock),
            _ => {
                if let CommandStatus::Failed(e) = resp.status.command {
                    return Err(Error::Slot(e));
                }
                return Err(Error::Protocol(Violation::UnexpectedReply(msg_type_of(
                    &resp,
                ))));
            }
        };
        match command {
            // Many readers answer "failed, ICC mute" when the slot is empty or unpowered: the
            // ICC status is the answer.
            CommandStatus::Failed(SlotError::IccMute) => {}
            CommandStatus::Failed(_) if icc == IccStatus::Absent => {}
            CommandStatus::Failed(e) => return Err(Error::Slot(e)),
            CommandStatus::Ok | CommandStatus::TimeExtension(_) => {}
        }
        if icc != IccStatus::Active && self.powered {
            self.powered = false;
            self.lost = Some(if icc == IccStatus::Absent {
                Lost::Removed
            } else {
                Lost::Reset
            });
        }
        Ok(SlotState { icc, clock })
    }

    /// Powers the card off.
    pub async fn power_off(&mut self) -> Result<(), SessionError<IO, K>> {
        self.powered = false;
        #[cfg(feature = "tpdu")]
        {
            self.tpdu = tpdu::TpduState::default();
        }
        let len = self.encode(RequestKind::IccPowerOff)?;
        let h = self.command(len).await?;
        let resp = reply(&self.rx, &h)?;
        match resp.status.command {
            // Nothing to power off (no card, or mute): off it is.
            CommandStatus::Failed(_) if resp.status.icc != IccStatus::Active => Ok(()),
            CommandStatus::Failed(e) => Err(Error::Slot(e)),
            _ => Ok(()),
        }
    }

    /// Powers the card on and returns its ATR. When the reader does not select the voltage
    /// itself, tries the classes it supports from the lowest voltage up (1.8 V, 3 V, 5 V),
    /// powering off between tries: ISO/IEC 7816-3 (6.2.4) has the interface device start with
    /// the lowest class it supports, since a class C card may be damaged by 5 V while a class A
    /// card merely stays mute at 1.8 V. At TPDU level the ATR is then parsed and the protocol
    /// set up (PPS, SetParameters) as the reader's feature bits require.
    pub async fn power_on(&mut self) -> Result<&[u8], SessionError<IO, K>> {
        self.powered = false;
        self.atr_len = 0;
        #[cfg(feature = "tpdu")]
        {
            self.tpdu = tpdu::TpduState::default();
        }
        let classes = [Voltage::V1_8, Voltage::V3, Voltage::V5];
        let auto = self.desc.auto_voltage() || self.desc.voltage_support & 0x07 == 0;
        let mut last = SlotError::IccMute;
        let mut tried = false;
        let desc = self.desc;
        for v in classes
            .iter()
            .copied()
            .filter(|v| !auto && desc.supports_voltage(*v))
            .chain(auto.then_some(Voltage::Auto))
        {
            if tried {
                // Deactivate before the next class; a failure here changes nothing.
                let _ = self.power_off().await;
            }
            tried = true;
            match self.power_on_once(v).await {
                Ok(()) => {
                    #[cfg(feature = "tpdu")]
                    if let Err(e) = self.tpdu_setup().await {
                        // Not usable as set up: the next APDU powers it on again.
                        self.powered = false;
                        return Err(e);
                    }
                    return Ok(self.atr());
                }
                Err(Error::Slot(
                    e @ (SlotError::IccMute
                    | SlotError::BadAtrTs
                    | SlotError::BadAtrTck
                    | SlotError::IccClassNotSupported
                    | SlotError::HardwareError),
                )) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Slot(last))
    }

    async fn power_on_once(&mut self, v: Voltage) -> Result<(), SessionError<IO, K>> {
        let len = self.encode(RequestKind::IccPowerOn(v))?;
        let h = self.command(len).await?;
        let resp = reply(&self.rx, &h)?;
        if resp.status.icc == IccStatus::Absent {
            return Err(Error::NoCard);
        }
        if let CommandStatus::Failed(e) = resp.status.command {
            return Err(Error::Slot(e));
        }
        let ResponseKind::DataBlock { data, .. } = resp.kind else {
            return Err(Error::Protocol(Violation::UnexpectedReply(msg_type_of(
                &resp,
            ))));
        };
        if data.is_empty() || data.len() > ATR_MAX {
            return Err(Error::Protocol(Violation::BadAtr));
        }
        let n = data.len();
        if let Some(dst) = self.atr.get_mut(..n) {
            dst.copy_from_slice(data);
        }
        self.atr_len = n;
        self.powered = true;
        Ok(())
    }

    /// The protocol parameters in force (GetParameters).
    pub async fn get_parameters(&mut self) -> Result<ProtocolData, SessionError<IO, K>> {
        let len = self.encode(RequestKind::GetParameters)?;
        self.parameters_reply(len).await
    }

    /// Sets the protocol parameters (SetParameters); returns those in force.
    pub async fn set_parameters(
        &mut self,
        params: &ProtocolData,
    ) -> Result<ProtocolData, SessionError<IO, K>> {
        let mut data = [0u8; 7];
        let n = params.encode(&mut data)?;
        let len = self.encode(RequestKind::SetParameters {
            protocol: params.protocol(),
            data: data.get(..n).unwrap_or(&[]),
        })?;
        self.parameters_reply(len).await
    }

    async fn parameters_reply(&mut self, len: usize) -> Result<ProtocolData, SessionError<IO, K>> {
        let h = self.command(len).await?;
        let resp = reply(&self.rx, &h)?;
        if let CommandStatus::Failed(e) = resp.status.command {
            return Err(Error::Slot(e));
        }
        match resp.kind {
            ResponseKind::Parameters { data: &[], .. } => {
                Err(Error::Protocol(Violation::EmptyParameters))
            }
            ResponseKind::Parameters { protocol, data } => Ok(ProtocolData::parse(protocol, data)?),
            _ => Err(Error::Protocol(Violation::UnexpectedReply(msg_type_of(
                &resp,
            )))),
        }
    }

    /// Sends one APDU (or TPDU level: runs it through T=0 / T=1) and writes the response into
    /// `response`. Powers the card on first if it never was.
    pub async fn transmit_apdu(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, SessionError<IO, K>> {
        if let Some(e) = self.lost.take() {
            // Seen by slot_status: the card's state is gone; the next call powers it again.
            return Err(match e {
                Lost::Removed => Error::CardRemoved,
                Lost::Reset => Error::CardReset,
            });
        }
        if !self.powered {
            self.power_on().await?;
        }
        let result = match self.desc.exchange_level() {
            ExchangeLevel::ShortApdu | ExchangeLevel::ShortExtendedApdu => {
                self.apdu_exchange(command, response).await
            }
            #[cfg(feature = "tpdu")]
            ExchangeLevel::Tpdu => self.tpdu_exchange(command, response).await,
            #[cfg(not(feature = "tpdu"))]
            level @ ExchangeLevel::Tpdu => Err(Error::Unsupported(Unsupported::Level(level))),
            level @ ExchangeLevel::Character => Err(Error::Unsupported(Unsupported::Level(level))),
        };
        // Each command message was wiped after its reply; the replies go now.
        let dirty = core::mem::take(&mut self.rx_state.dirty).min(N);
        wipe(self.rx.get_mut(..dirty).unwrap_or(&mut []));
        result
    }
}

/// The reply `h` heads, its data in `rx`.
fn reply<'a, I, C>(rx: &'a [u8], h: &Header) -> Result<Response<'a>, Error<I, C>> {
    let body = rx.get(HEADER_LEN..h.message_len()).unwrap_or(&[]);
    Ok(Response::from_parts(h, body)?)
}

fn msg_type_of(resp: &Response<'_>) -> u8 {
    match resp.kind {
        ResponseKind::DataBlock { .. } => msg_type::DATA_BLOCK,
        ResponseKind::SlotStatus { .. } => msg_type::SLOT_STATUS,
        ResponseKind::Parameters { .. } => msg_type::PARAMETERS,
        ResponseKind::Escape(_) => msg_type::ESCAPE_REPLY,
        ResponseKind::DataRateAndClockFrequency { .. } => msg_type::DATA_RATE_AND_CLOCK,
        ResponseKind::Other { msg_type, .. } => msg_type,
    }
}

/// Checks the card state and command outcome of a reply to a command for the card.
fn check_status<I, C>(resp: &Response<'_>, powered: &mut bool) -> Result<(), Error<I, C>> {
    match resp.status.icc {
        IccStatus::Absent => {
            *powered = false;
            return Err(Error::CardRemoved);
        }
        IccStatus::Inactive => {
            *powered = false;
            return Err(Error::CardReset);
        }
        IccStatus::Active => {}
    }
    if let CommandStatus::Failed(e) = resp.status.command {
        return Err(Error::Slot(e));
    }
    Ok(())
}

impl<IO, C, K, const N: usize> cardunlock_core::Transport for Session<IO, C, K, N>
where
    IO: Read + Write,
    C: Clock,
    K: Control,
    K::Error: core::fmt::Debug + core::fmt::Display,
{
    type Error = SessionError<IO, K>;

    async fn transmit(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, Self::Error> {
        self.transmit_apdu(command, response).await
    }

    fn supports_extended_length(&self) -> bool {
        self.desc.exchange_level() == ExchangeLevel::ShortExtendedApdu
    }
}
