//! A CCID reader in memory, at APDU level, in front of any card the core can talk to (a
//! [`cardunlock_core::Transport`]): the other end of the byte pipe a
//! [`Session`](crate::session::Session) writes to, with no USB, no heap and no allocation.
//!
//! It exists for what needs a reader without hardware and without `std`: a firmware image that
//! links the whole CCID path (`firmware-size`), and benchmarks that measure the framing cost
//! alone (a replayed card behind it). For fault injection use the reader simulator (crate `cardunlock-ccid-sim`).

use core::convert::Infallible;

use cardunlock_core::Transport;

use crate::codec::{
    msg_type, ClockStatus, CommandStatus, Header, IccStatus, Request, RequestKind, Response,
    ResponseKind, SlotError, Status, HEADER_LEN, SHORT_MESSAGE_LEN,
};

/// A one-slot reader at short APDU level with `card` always present. Each message the session
/// flushes is answered at once: IccPowerOn with `atr`, XfrBlock with the card's response,
/// anything else with the slot status. A command the card fails on (a transport error) is
/// answered with `bError` HW_ERROR.
pub struct Loopback<T> {
    card: T,
    atr: &'static [u8],
    rx: [u8; SHORT_MESSAGE_LEN],
    rx_len: usize,
    tx: [u8; SHORT_MESSAGE_LEN],
    tx_len: usize,
    tx_pos: usize,
}

impl<T: Transport> Loopback<T> {
    /// A reader with `card` in its slot, answering power-on with `atr`.
    pub const fn new(card: T, atr: &'static [u8]) -> Self {
        Self {
            card,
            atr,
            rx: [0; SHORT_MESSAGE_LEN],
            rx_len: 0,
            tx: [0; SHORT_MESSAGE_LEN],
            tx_len: 0,
            tx_pos: 0,
        }
    }

    /// The card behind the reader.
    pub fn card(&self) -> &T {
        &self.card
    }

    /// Gives the card back.
    pub fn into_card(self) -> T {
        self.card
    }

    async fn answer(&mut self) {
        let rx_len = core::mem::take(&mut self.rx_len);
        let message = self.rx.get(..rx_len).unwrap_or(&[]);
        self.tx_pos = 0;
        // An XfrBlock (the common case) is taken apart in line; anything else is parsed in full.
        let parsed = match *message {
            [msg_type::XFR_BLOCK, l0, l1, l2, l3, slot, seq, bwi, p0, p1, ref data @ ..]
                if usize::try_from(u32::from_le_bytes([l0, l1, l2, l3])) == Ok(data.len()) =>
            {
                Ok(Request {
                    slot,
                    seq,
                    kind: RequestKind::XfrBlock {
                        bwi,
                        level: u16::from_le_bytes([p0, p1]),
                        data,
                    },
                })
            }
            _ => Request::parse(message),
        };
        // The reply echoes bSeq, even of a command it cannot parse.
        let seq = match parsed {
            Ok(req) => req.seq,
            Err(_) => message.get(6).copied().unwrap_or(0),
        };
        let (slot, status, kind) = match parsed {
            Ok(Request {
                slot,
                kind: RequestKind::XfrBlock { data, .. },
                ..
            }) => {
                // The card writes its response straight behind the reply's header (261 bytes:
                // a short APDU's response, 256 and SW1 SW2, fits).
                let room = self.tx.get_mut(HEADER_LEN..).unwrap_or(&mut []);
                let room_len = room.len();
                let answered = self.card.transmit(data, room).await;
                let (command, n) = match answered {
                    Ok(n) if n <= room_len => (CommandStatus::Ok, n),
                    _ => {
                        if let Some(room) = self.tx.get_mut(HEADER_LEN..) {
                            room.fill(0);
                        }
                        (CommandStatus::Failed(SlotError::HardwareError), 0)
                    }
                };
                let (b_status, b_error) = Status::new(IccStatus::Active, command).to_bytes();
                let header = Header {
                    msg_type: msg_type::DATA_BLOCK,
                    length: u32::try_from(n).unwrap_or(0),
                    slot,
                    seq,
                    specific: [b_status, b_error, 0],
                };
                // Split after the await: a slice kept across it loses its known length.
                if let Some(head) = self.tx.get_mut(..HEADER_LEN) {
                    head.copy_from_slice(&header.to_bytes());
                }
                self.tx_len = HEADER_LEN + n;
                wipe(self.rx.get_mut(..rx_len).unwrap_or(&mut []));
                return;
            }
            Ok(Request {
                slot,
                kind: RequestKind::IccPowerOn(_),
                ..
            }) => (
                slot,
                CommandStatus::Ok,
                ResponseKind::DataBlock {
                    chain: 0,
                    data: self.atr,
                },
            ),
            Ok(req) => (
                req.slot,
                CommandStatus::Ok,
                ResponseKind::SlotStatus {
                    clock: ClockStatus::Running,
                },
            ),
            Err(_) => (
                0,
                CommandStatus::Failed(SlotError::CommandNotSupported),
                ResponseKind::SlotStatus {
                    clock: ClockStatus::Running,
                },
            ),
        };
        let reply = Response {
            slot,
            seq,
            status: Status::new(IccStatus::Active, status),
            kind,
        };
        self.tx_len = reply.encode(&mut self.tx).unwrap_or(0);
        wipe(self.rx.get_mut(..rx_len).unwrap_or(&mut []));
    }
}

/// Clears the received command (it may have carried a PIN or PUK), once per message.
fn wipe(buf: &mut [u8]) {
    buf.fill(0);
    core::hint::black_box(&*buf);
}

impl<T> embedded_io_async::ErrorType for Loopback<T> {
    type Error = Infallible;
}

impl<T: Transport> embedded_io_async::Write for Loopback<T> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        let room = self.rx.get_mut(self.rx_len..).unwrap_or(&mut []);
        let n = buf.len().min(room.len());
        if let (Some(dst), Some(src)) = (room.get_mut(..n), buf.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.rx_len += n;
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        if self.rx_len >= HEADER_LEN {
            self.answer().await;
        }
        Ok(())
    }
}

impl<T: Transport> embedded_io_async::Read for Loopback<T> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let pending = self.tx.get(self.tx_pos..self.tx_len).unwrap_or(&[]);
        let n = buf.len().min(pending.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), pending.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.tx_pos += n;
        Ok(n)
    }
}
