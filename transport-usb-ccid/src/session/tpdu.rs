//! TPDU level: the session runs T=0 or T=1 itself ([`crate::t0`], [`crate::t1`]), each TPDU or
//! block carried in one XfrBlock.
//!
//! After power-on: the ATR is parsed; the protocol chosen (the card's specific mode, else T=1
//! when both sides offer it, else T=0); Fi/Di from TA1 when the reader's data rates allow it;
//! a PPS sent through XfrBlock when one is needed and the reader does neither automatic
//! negotiation (0x40) nor automatic PPS (0x80); SetParameters unless the reader negotiates by
//! itself (0x40) or sets the parameters from the ATR (0x02) with nothing changed by a PPS; for
//! T=1 the IFSD exchange unless the reader makes it (0x400). Blocks never exceed the reader's
//! message size: IFSC and IFSD are lowered to fit `dwMaxCCIDMessageLength`.

use core::fmt;

use crate::pipe::Pipe;

use super::exchange::{check_status, reply};
use super::{Control, Error, Session, SessionError, Unsupported, Violation};
use crate::atr::{self, Atr, Edc, PpsError, PpsRequest, Protocol};
use crate::clock::Clock;
use crate::codec::{ProtocolData, RequestKind, ResponseKind, SlotError, HEADER_LEN};
use crate::descriptor::ExchangeLevel;
use crate::t0::{self, T0Error, TpduIo};
use crate::t1::{BlockIo, ExchangeError, T1Error, T1Params, T1};

/// Why the T=0 / T=1 layer failed (the carrier's own errors are reported as themselves).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TpduFailure {
    /// The T=1 engine's verdict.
    T1(T1Error<()>),
    /// The T=0 layer's verdict.
    T0(T0Error<()>),
    /// The PPS exchange failed: power the card off and on again.
    Pps(PpsError),
}

impl fmt::Display for TpduFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::T1(e) => write!(f, "{}", e.map_io(|()| NoIo)),
            Self::T0(e) => write!(f, "{}", T0Display(e)),
            Self::Pps(e) => write!(f, "PPS: {e}"),
        }
    }
}

struct NoIo;
impl fmt::Display for NoIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("carrier")
    }
}

struct T0Display<'a>(&'a T0Error<()>);
impl fmt::Display for T0Display<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            T0Error::Io(()) => f.write_str("T=0: carrier"),
            T0Error::InvalidCommand => f.write_str("T=0: malformed command APDU"),
            T0Error::ExtendedLength => f.write_str("T=0: extended-length APDUs are not supported"),
            T0Error::ResponseTooLong => f.write_str("T=0: the card's response is too long"),
            T0Error::InvalidResponse => f.write_str("T=0: the card's answer is malformed"),
            T0Error::TooManyGetResponse => f.write_str("T=0: the card never finished its response"),
        }
    }
}

/// The protocol state of a TPDU-level session (reset at each power-on).
#[derive(Clone, Debug, Default)]
pub(super) enum TpduState {
    /// Not set up (not TPDU level, or not powered).
    #[default]
    None,
    /// T=0 in force.
    T0,
    /// T=1 in force with this engine.
    T1(T1),
}

/// What the setup decided (for tests and logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TpduSetup {
    /// The protocol in force.
    pub protocol: Protocol,
    /// Fi/Di in force (as TA1 codes them).
    pub fidi: u8,
    /// Whether the session sent a PPS.
    pub pps_sent: bool,
    /// Whether the session sent SetParameters.
    pub set_parameters_sent: bool,
    /// The IFSD in force (T=1; 0 at T=0).
    pub ifsd: u8,
}

/// Carries TPDUs and blocks in XfrBlocks.
struct Carrier<'s, IO, C, K, const N: usize> {
    session: &'s mut Session<IO, C, K, N>,
}

impl<IO, C, K, const N: usize> Carrier<'_, IO, C, K, N>
where
    IO: Pipe,
    C: Clock,
    K: Control,
{
    /// One XfrBlock with `payload`, its DataBlock's data copied into `out`.
    async fn xfr(
        &mut self,
        payload: &[u8],
        out: &mut [u8],
        bwi: u8,
    ) -> Result<usize, SessionError<IO, K>> {
        let s = &mut *self.session;
        let msg = s.encode(RequestKind::XfrBlock {
            bwi,
            level: 0,
            data: payload,
        })?;
        s.wait_multiplier = bwi.max(1);
        let h = s.command(msg).await;
        s.wait_multiplier = 1;
        let h = h?;
        let resp = reply(&s.rx, &h)?;
        check_status(&resp, &mut s.powered)?;
        let ResponseKind::DataBlock { data, .. } = resp.kind else {
            return Err(Error::Protocol(Violation::UnexpectedReply(h.msg_type)));
        };
        let dst = out.get_mut(..data.len()).ok_or(Error::ResponseTooLong)?;
        dst.copy_from_slice(data);
        Ok(data.len())
    }
}

impl<IO, C, K, const N: usize> BlockIo for Carrier<'_, IO, C, K, N>
where
    IO: Pipe,
    C: Clock,
    K: Control,
{
    type Error = SessionError<IO, K>;

    async fn exchange(
        &mut self,
        block: &[u8],
        reply: &mut [u8],
        bwt_multiplier: u8,
    ) -> Result<usize, ExchangeError<Self::Error>> {
        match self.xfr(block, reply, bwt_multiplier).await {
            Ok(n) => Ok(n),
            // Lost or garbled on the line: the engine repeats or resynchronises.
            Err(Error::Slot(
                SlotError::IccMute | SlotError::XfrParityError | SlotError::XfrOverrun,
            ))
            | Err(Error::ResponseTooLong) => Err(ExchangeError::Mute),
            Err(e) => Err(ExchangeError::Io(e)),
        }
    }
}

impl<IO, C, K, const N: usize> TpduIo for Carrier<'_, IO, C, K, N>
where
    IO: Pipe,
    C: Clock,
    K: Control,
{
    type Error = SessionError<IO, K>;

    async fn exchange(&mut self, tpdu: &[u8], reply: &mut [u8]) -> Result<usize, Self::Error> {
        self.xfr(tpdu, reply, 0).await
    }
}

fn t1_failure<I, C>(e: T1Error<Error<I, C>>) -> Error<I, C> {
    match e {
        T1Error::Io(e) => e,
        T1Error::ResponseTooLong => Error::ResponseTooLong,
        other => Error::Tpdu(TpduFailure::T1(other.map_io(|_| ()))),
    }
}

fn t0_failure<I, C>(e: T0Error<Error<I, C>>) -> Error<I, C> {
    match e {
        T0Error::Io(e) => e,
        T0Error::ResponseTooLong => Error::ResponseTooLong,
        T0Error::InvalidCommand => Error::Tpdu(TpduFailure::T0(T0Error::InvalidCommand)),
        T0Error::ExtendedLength => Error::Tpdu(TpduFailure::T0(T0Error::ExtendedLength)),
        T0Error::InvalidResponse => Error::Tpdu(TpduFailure::T0(T0Error::InvalidResponse)),
        T0Error::TooManyGetResponse => Error::Tpdu(TpduFailure::T0(T0Error::TooManyGetResponse)),
    }
}

/// Largest T=1 information field a block in one message of `max_msg` bytes can carry.
fn inf_room(max_msg: usize, edc: Edc) -> u8 {
    let room = max_msg.saturating_sub(HEADER_LEN + 3 + edc.epilogue_len());
    u8::try_from(room.min(254)).unwrap_or(254).max(1)
}

impl<IO, C, K, const N: usize> Session<IO, C, K, N>
where
    IO: Pipe,
    C: Clock,
    K: Control,
{
    /// What the TPDU setup of the last power-on decided (`None` above TPDU level).
    pub fn tpdu_setup_result(&self) -> Option<TpduSetup> {
        self.tpdu_setup
    }

    /// After power-on at TPDU level: parse the ATR, PPS / SetParameters as the reader needs,
    /// the IFSD exchange.
    pub(super) async fn tpdu_setup(&mut self) -> Result<(), SessionError<IO, K>> {
        self.tpdu = TpduState::None;
        self.tpdu_setup = None;
        if self.desc.exchange_level() != ExchangeLevel::Tpdu {
            return Ok(());
        }
        let atr_copy = self.atr;
        let atr_bytes = atr_copy.get(..self.atr_len).unwrap_or(&[]);
        let atr = Atr::parse(atr_bytes).map_err(|_| Error::Protocol(Violation::BadAtr))?;
        let desc = self.desc;
        let reader_has = |p: Protocol| desc.supports_protocol(p.number());
        let specific = atr.specific_mode();
        // What each side offers (bit 0 T=0, bit 1 T=1), for the error when they do not meet.
        let mask = |has: &dyn Fn(Protocol) -> bool| {
            u8::from(has(Protocol::T0)) | (u8::from(has(Protocol::T1)) << 1)
        };
        let no_common = |card: u8| {
            Error::Unsupported(Unsupported::Protocol {
                card,
                reader: mask(&reader_has),
            })
        };
        let protocol = match specific {
            Some(mode) => match Protocol::from_number(mode.protocol) {
                Some(p) if reader_has(p) => p,
                Some(p) => return Err(no_common(mask(&|q| q == p))),
                None => return Err(no_common(0)),
            },
            None if atr.offers_protocol(Protocol::T1) && reader_has(Protocol::T1) => Protocol::T1,
            None if atr.offers_protocol(Protocol::T0) && reader_has(Protocol::T0) => Protocol::T0,
            None => return Err(no_common(mask(&|p| atr.offers_protocol(p)))),
        };
        // TA1's Fi/Di if the reader's data rates allow it, else the default.
        let wanted = atr.fidi();
        let rate_ok = match (atr::fi(wanted), atr::di(wanted)) {
            (Some(fi), Some(di)) => {
                let top = u64::from(desc.default_clock_khz) * 1000 * u64::from(di);
                match top.checked_div(u64::from(fi)) {
                    Some(rate) => desc.max_data_rate == 0 || rate <= u64::from(desc.max_data_rate),
                    None => false,
                }
            }
            _ => false,
        };
        let mut fidi = if rate_ok { wanted } else { atr::DEFAULT_FIDI };
        if let Some(mode) = specific {
            if mode.implicit_fidi {
                fidi = atr::DEFAULT_FIDI;
            }
        }
        let negotiable = specific.is_none();
        let pps_needed =
            negotiable && (Some(protocol) != atr.default_protocol() || fidi != atr::DEFAULT_FIDI);
        let mut pps_sent = false;
        if pps_needed && !desc.auto_negotiation() && !desc.auto_pps() {
            let request = PpsRequest::new(protocol, (fidi != atr::DEFAULT_FIDI).then_some(fidi));
            let mut answer = [0u8; 8];
            let n = Carrier { session: self }
                .xfr(request.as_bytes(), &mut answer, 0)
                .await?;
            let outcome = request
                .check_response(answer.get(..n).unwrap_or(&[]))
                .map_err(|e| Error::Tpdu(TpduFailure::Pps(e)))?;
            fidi = outcome.fidi;
            pps_sent = true;
        }
        let skip_parameters =
            desc.auto_negotiation() || (desc.auto_parameters() && !desc.auto_pps() && !pps_sent);
        if !skip_parameters {
            let raw = atr.ccid_parameters(protocol, fidi);
            let data = raw.as_bytes();
            let params = ProtocolData::parse(protocol.number(), data)?;
            self.set_parameters(&params).await?;
        }
        let ifsd = match protocol {
            Protocol::T0 => {
                self.tpdu = TpduState::T0;
                0
            }
            Protocol::T1 => {
                let edc = atr.t1_edc();
                let room = inf_room(self.max_msg, edc);
                let max_ifsd = u8::try_from(desc.max_ifsd.min(254)).unwrap_or(254).max(1);
                let mut engine = T1::new(T1Params {
                    ifsc: atr.t1_ifsc().min(room),
                    ifsd: max_ifsd.min(room),
                    edc,
                    nad: 0,
                });
                if !desc.auto_ifsd() {
                    engine
                        .negotiate_ifsd(&mut Carrier { session: self })
                        .await
                        .map_err(t1_failure)?;
                }
                let ifsd = engine.ifsd();
                self.tpdu = TpduState::T1(engine);
                ifsd
            }
        };
        self.tpdu_setup = Some(TpduSetup {
            protocol,
            fidi,
            pps_sent,
            set_parameters_sent: !skip_parameters,
            ifsd,
        });
        Ok(())
    }

    /// One APDU at TPDU level.
    pub(super) async fn tpdu_exchange(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, SessionError<IO, K>> {
        match core::mem::take(&mut self.tpdu) {
            TpduState::T1(mut engine) => {
                let r = engine
                    .transceive(&mut Carrier { session: self }, command, response)
                    .await;
                // A power-on inside (never) or a removal resets the state; keep the engine
                // only while the card stays powered.
                if self.powered {
                    self.tpdu = TpduState::T1(engine);
                }
                r.map_err(t1_failure)
            }
            TpduState::T0 => {
                // A TPDU-level reader may pass the TPDU to a card answering at APDU level
                // (QEMU's usb-ccid with ccid-card-passthru): its data-plus-SW answers are taken.
                let carrier = &mut Carrier { session: self };
                let r = t0::transmit_with(carrier, command, response, t0::Replies::ApduLevel).await;
                if self.powered {
                    self.tpdu = TpduState::T0;
                }
                r.map_err(t0_failure)
            }
            TpduState::None => Err(Error::Unsupported(Unsupported::Tpdu)),
        }
    }
}
