//! The slot commands: status, power on (voltage fallback) and off, parameters, and the APDU
//! entry point that picks the exchange level.

use crate::pipe::Pipe;

use super::exchange::{fast_data_block, msg_type_of, reply, Outgoing};
use super::{wipe, Control, Error, Lost, Session, SessionError, SlotState, Unsupported, Violation};
use crate::clock::Clock;
use crate::codec::{
    chain, CommandStatus, IccStatus, ProtocolData, RequestKind, ResponseKind, SlotError, Voltage,
    HEADER_LEN,
};
use crate::descriptor::ExchangeLevel;

impl<IO, C, K, const N: usize> Session<IO, C, K, N>
where
    IO: Pipe,
    C: Clock,
    K: Control,
{
    /// Runs the ABORT sequence (control request, bulk Abort with the same `bSeq`, drain until
    /// its SlotStatus).
    pub async fn abort(&mut self) -> Result<(), SessionError<IO, K>> {
        self.abort_sequence().await
    }

    /// The slot's status (GetSlotStatus).
    pub async fn slot_status(&mut self) -> Result<SlotState, SessionError<IO, K>> {
        let msg = self.encode(RequestKind::GetSlotStatus)?;
        let h = self.command(msg).await?;
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
            self.tpdu = super::tpdu::TpduState::default();
        }
        let msg = self.encode(RequestKind::IccPowerOff)?;
        let h = self.command(msg).await?;
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
            self.tpdu = super::tpdu::TpduState::default();
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
        let msg = self.encode(RequestKind::IccPowerOn(v))?;
        let h = self.command(msg).await?;
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
        if data.is_empty() || data.len() > super::ATR_MAX {
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
        let msg = self.encode(RequestKind::GetParameters)?;
        self.parameters_reply(msg).await
    }

    /// Sets the protocol parameters (SetParameters); returns those in force.
    pub async fn set_parameters(
        &mut self,
        params: &ProtocolData,
    ) -> Result<ProtocolData, SessionError<IO, K>> {
        let mut data = [0u8; 7];
        let n = params.encode(&mut data)?;
        let msg = self.encode(RequestKind::SetParameters {
            protocol: params.protocol(),
            data: data.get(..n).unwrap_or(&[]),
        })?;
        self.parameters_reply(msg).await
    }

    async fn parameters_reply(
        &mut self,
        msg: Outgoing<'_>,
    ) -> Result<ProtocolData, SessionError<IO, K>> {
        let h = self.command(msg).await?;
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
        let level = self.desc.exchange_level();
        let apdu_level = matches!(
            level,
            ExchangeLevel::ShortApdu | ExchangeLevel::ShortExtendedApdu
        );
        if apdu_level && command.len() <= self.max_msg - HEADER_LEN {
            // The common case in line: the APDU in one XfrBlock, a whole response that fits.
            let head = self.xfr_head(command.len(), chain::WHOLE);
            let sent = self.drive(head, command).await;
            if sent.is_ok() {
                if let Some((0, data)) = fast_data_block(&self.rx) {
                    if let Some(dst) = response.get_mut(..data.len()) {
                        dst.copy_from_slice(data);
                        let n = data.len();
                        self.wipe_rx();
                        return Ok(n);
                    }
                }
            }
            // Anything else (a chained response, an error, no room) is checked again there.
            let result = match sent {
                Ok(()) => self.chained_response(response).await,
                Err(e) => Err(e),
            };
            self.wipe_rx();
            return result;
        }
        let result = match level {
            ExchangeLevel::ShortApdu | ExchangeLevel::ShortExtendedApdu => {
                self.chained_command(command, response).await
            }
            #[cfg(feature = "tpdu")]
            ExchangeLevel::Tpdu => self.tpdu_exchange(command, response).await,
            #[cfg(not(feature = "tpdu"))]
            level @ ExchangeLevel::Tpdu => Err(Error::Unsupported(Unsupported::Level(level))),
            level @ ExchangeLevel::Character => Err(Error::Unsupported(Unsupported::Level(level))),
        };
        self.wipe_rx();
        result
    }

    /// Wipes the replies of the last exchange from the receive buffer (each command message
    /// left none: an APDU never goes into `tx`).
    fn wipe_rx(&mut self) {
        let dirty = core::mem::take(&mut self.rx_state.dirty).min(N);
        wipe(self.rx.get_mut(..dirty).unwrap_or(&mut []));
    }
}
