//! The async CCID session over any [`Pipe`] to a reader (every `embedded_io_async` byte stream
//! that reads and writes is one).
//!
//! Contract with the pipe: the session sends one complete CCID message per
//! [`Pipe::send`] (its header from the session's transmit buffer, then the APDU straight from
//! the caller's buffer; a byte stream writes both and flushes once, so a USB backend submits one
//! bulk transfer per message and never sees part of one). It reads a reply's 10-byte header,
//! then exactly `dwLength` bytes; from a [`Pipe::FRAMED`] pipe (the loopback reader) it reads
//! the whole reply in one call.
//!
//! What it handles: `bSeq` per message (wrapping) and bounded dropping of stale replies (wrong
//! `bSeq` or slot); time extensions (each pushes the deadline out by `bError` times the base
//! wait, never past a hard cap); a deadline on every reply from the caller's [`Clock`], and the
//! ABORT sequence when it passes; power-on with voltage fallback; short and extended APDU levels
//! with `wLevelParameter` chaining both ways. Messages never exceed the reader's
//! `dwMaxCCIDMessageLength` nor the session's buffer (the const generic `N`).
//!
//! How: each command and its reply run through `machine::Exchange` (private), a synchronous
//! sans-IO state machine that owns every rule above (and does no I/O); one async loop
//! (`drive`, in `exchange`) sends, reads and sleeps as the machine asks and feeds back
//! what happened with the clock's time. The session keeps the machine between commands, so no
//! state moves between futures per layer.
//!
//! The session never resends a command the card may have run (only one the reader refused as
//! busy before running it), so a fault never costs a PIN or PUK try. Commands carry PINs and
//! PUKs: an APDU is never copied into the session's transmit buffer (it holds headers and the
//! session's own short messages only, 24 bytes), and the receive buffer is wiped once after
//! every exchange.
//!
//! The APDU that fits one message and whose response comes in one reply (nearly every APDU)
//! runs in line in `transmit_apdu`; chaining either way takes the general path, which checks
//! the reply again.

mod apdu;
mod error;
mod exchange;
mod machine;
mod slot;
#[cfg(feature = "tpdu")]
mod tpdu;

pub use error::{Error, Unsupported, Violation};
#[cfg(feature = "tpdu")]
pub use tpdu::{TpduFailure, TpduSetup};

use embedded_io_async::ErrorType;

use crate::pipe::Pipe;

use crate::clock::Clock;
use crate::codec::{ClockStatus, IccStatus, HEADER_LEN, SHORT_MESSAGE_LEN};
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

/// The transmit buffer: the longest message the session puts together itself (SetParameters
/// for T=1, 17 bytes; the Abort and the slot commands are 10). An APDU never goes in: a command
/// is its header here and its APDU from the caller's buffer.
const TX_LEN: usize = 24;

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
    /// Length of the current message (header included) once its header is in; 0 before.
    len: usize,
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
    tx: [u8; TX_LEN],
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
    /// The state machine of the exchange in progress.
    exchange: machine::Exchange,
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
    IO: Pipe,
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
            tx: [0; TX_LEN],
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
            exchange: machine::Exchange::IDLE,
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
}

impl<IO, C, K, const N: usize> cardunlock_core::Transport for Session<IO, C, K, N>
where
    IO: Pipe,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::NoTimeout;
    use crate::loopback::Loopback;

    /// A card that answers every command with the command itself and `90 00`.
    struct Echo;

    impl cardunlock_core::Transport for Echo {
        type Error = cardunlock_core::ErrorKind;

        async fn transmit(
            &mut self,
            command: &[u8],
            response: &mut [u8],
        ) -> Result<usize, Self::Error> {
            let n = command.len() + 2;
            let out = response
                .get_mut(..n)
                .ok_or(cardunlock_core::ErrorKind::ResponseTooLong)?;
            out[..command.len()].copy_from_slice(command);
            out[command.len()..].copy_from_slice(&[0x90, 0x00]);
            Ok(n)
        }
    }

    /// Proves that no PIN outlives an exchange in the session's buffers: the APDU is not left in
    /// (nor copied into) the transmit buffer, and the reply that echoed it is wiped from the
    /// receive buffer. Fails if the receive buffer's wipe goes, or if the transmit path copies the
    /// APDU into `tx` without wiping it.
    #[test]
    fn no_pin_is_left_in_the_message_buffers_after_an_exchange() {
        let desc = ClassDescriptor::TYPICAL.with_level(ExchangeLevel::ShortApdu);
        let mut s: Session<_, _> = Session::new(
            Loopback::new(Echo, &[0x3B, 0x00]),
            NoTimeout,
            NoControl,
            &desc,
            0,
        )
        .unwrap();
        let pin = *b"31415926";
        let mut apdu = [0x00, 0x20, 0x00, 0x80, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
        apdu[5..].copy_from_slice(&pin);
        let mut response = [0u8; 32];
        let n = embassy_futures::block_on(s.transmit_apdu(&apdu, &mut response)).unwrap();
        assert_eq!(
            response.get(..n),
            Some(&[&apdu[..], &[0x90, 0x00]].concat()[..])
        );
        let holds = |buf: &[u8]| buf.windows(pin.len()).any(|w| w == pin);
        assert!(!holds(&s.tx), "the transmit buffer holds the PIN");
        assert!(!holds(&s.rx), "the receive buffer holds the PIN");
    }

    /// A byte stream whose writes take `write` bytes and whose reads return `read` bytes (of
    /// zeros) whatever they are given.
    struct Stream {
        write: usize,
        read: usize,
    }

    impl ErrorType for Stream {
        type Error = embedded_io_async::ErrorKind;
    }

    impl embedded_io_async::Write for Stream {
        async fn write(&mut self, _: &[u8]) -> Result<usize, Self::Error> {
            Ok(self.write)
        }
        async fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    impl embedded_io_async::Read for Stream {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
            Ok(self.read.min(buf.len()))
        }
    }

    /// Proves a byte stream that takes nothing of a message (or claims more than it was given),
    /// or that ends before a reply, is a closed pipe: `Error::Closed` from the command, no
    /// panic and no resend.
    #[test]
    fn a_stream_that_takes_nothing_or_ends_is_a_closed_pipe() {
        let desc = ClassDescriptor::TYPICAL.with_level(ExchangeLevel::ShortApdu);
        let select = [0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00];
        let mut response = [0u8; 32];
        for (write, read) in [(0, 64), (usize::MAX, 64), (64, 0)] {
            let pipe = Stream { write, read };
            let mut s: Session<_, _> = Session::new(pipe, NoTimeout, NoControl, &desc, 0).unwrap();
            let got = embassy_futures::block_on(s.transmit_apdu(&select, &mut response));
            assert!(
                matches!(got, Err(Error::Closed)),
                "write {write}, read {read}: {got:?}"
            );
        }
    }
}
