//! What the simulated reader does with one bulk-OUT message: faults, the card, the reply.

use cardunlock_ccid::codec::{
    chain, msg_type, ClockStatus, CommandStatus, Header, Request, RequestKind, ResponseKind,
    SlotError, Status, Voltage, HEADER_LEN,
};

use super::{adjust_length, ReaderSim};
use crate::config::{Event, Fault, When};
use crate::SlotCard;

impl<S: SlotCard> ReaderSim<S> {
    /// Answers the message `h` heads with a failed SlotStatus naming `error`.
    fn refuse(&mut self, h: &Header, delay: u64, error: SlotError) {
        let status = Status::new(self.icc(), CommandStatus::Failed(error));
        let kind = ResponseKind::SlotStatus {
            clock: ClockStatus::Running,
        };
        let reply = Self::encode_reply(h.slot, h.seq, status, kind);
        self.push_reply(delay, reply);
    }

    pub(crate) fn on_message(&mut self, msg: &[u8]) {
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
            self.refuse(&h, delay, SlotError::BadParameter(1));
            return;
        }
        let Ok(req) = Request::parse(msg) else {
            self.refuse(&h, delay, SlotError::CommandNotSupported);
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
            && self.config.descriptor.exchange_level()
                == cardunlock_ccid::descriptor::ExchangeLevel::Tpdu
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
}
